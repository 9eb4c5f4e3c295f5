'use strict'
// User journeys on autocannon: each connection is one user walking the plan's flow steps
// in order (autocannon's `requests` array; its per-connection `context` is reset each time
// the array starts over, i.e. each iteration).
//
// - {{var}} in a step's path, headers and body is filled from the context in the step's
//   setupRequest; values come from the user's data row and earlier captures (all data
//   from the plan, never code).
// - A step's onResponse (called just before autocannon's 'response' event for that very
//   request) runs its capture rules and expect checks. A failed one makes the recorder
//   count that response as an error of kind capture_failed / expect_failed, and ends the
//   iteration: the next step's setupRequest returns null, which makes autocannon start
//   the array (and a fresh context) again. After a failed capture, each later step using
//   a value not captured is counted (not sent) as a failed request of kind capture_missing.
// - Think time: autocannon sends a connection's next request as soon as the reply is in
//   (Client._doRequest). We wrap that method per connection so that, after a step with a
//   think time, the connection waits on a timer (with its request timeout cleared) while
//   every other connection goes on.

const VARIABLE = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g

function fill (text, vars) {
  if (text === null || text === undefined) return { text, missing: false }
  let missing = false
  const out = String(text).replace(VARIABLE, (whole, name) => {
    if (name in vars) return String(vars[name])
    missing = true
    return whole
  })
  return { text: out, missing }
}

function jsonAt (value, path) {
  for (const key of path.split('.')) {
    if (Array.isArray(value) && /^[0-9]+$/.test(key) && Number(key) < value.length) {
      value = value[Number(key)]
    } else if (value !== null && typeof value === 'object' && key in value) {
      value = value[key]
    } else {
      return undefined
    }
  }
  return value
}

function parse (body) {
  try {
    return JSON.parse(body)
  } catch (err) {
    return undefined
  }
}

// The later steps (indexes) that use a value of `vars` (not captured in this iteration),
// directly or through a step that, not sent, captured nothing either.
function dependents (steps, index, vars) {
  const missing = new Set(vars)
  const out = []
  for (let i = index + 1; i < steps.length; i++) {
    if ((steps[i].uses || []).some((v) => missing.has(v))) {
      out.push(i)
      for (const rule of steps[i].capture) missing.add(rule.var)
    }
  }
  return out
}

// null when the reply gives what the step needs, else the kind of failure; a failed
// capture also sets `failure.why` (the rule) and `failure.missing` (the values not taken).
function check (step, status, body, context, headers, failure) {
  if (status >= 400) return null // counted as non_2xx already
  let parsed
  for (const [number, rule] of step.capture.entries()) {
    let value
    if (rule.kind === 'json') {
      if (parsed === undefined) parsed = parse(body)
      value = jsonAt(parsed, rule.source)
    } else if (rule.kind === 'header') {
      value = headers[rule.source.toLowerCase()]
      if (value === undefined) {
        const key = Object.keys(headers).find((k) => k.toLowerCase() === rule.source.toLowerCase())
        value = key === undefined ? undefined : headers[key]
      }
    } else {
      const match = new RegExp(rule.source).exec(String(body))
      value = match ? match[1] : undefined
    }
    if (value === undefined || value === null || typeof value === 'object') {
      failure.why = `${rule.kind} ${rule.source}`
      failure.missing = step.capture.slice(number).map((r) => r.var)
      return 'capture_failed'
    }
    context[rule.var] = value
  }
  const expect = step.expect
  if (expect) {
    if (expect.status !== null && status !== expect.status) return 'expect_failed'
    if (expect.json !== null) {
      if (parsed === undefined) parsed = parse(body)
      const value = jsonAt(parsed, expect.json)
      if (value === undefined || (expect.equals !== null && value !== expect.equals)) return 'expect_failed'
    }
  }
  return null
}

function thinkMs (step) {
  return 1000 * (step.thinkMin + Math.random() * (step.thinkMax - step.thinkMin))
}

// autocannon options running `flow` (plan.flow) on every connection; `recorder` gets
// `answered` (the step index) and `override` (a failure kind for that response).
function flowOptions (flow, requests, recorder) {
  const rows = flow.data || []
  let users = 0
  const built = requests.map((request, index) => {
    const step = flow.steps[index]
    return {
      ...request,
      setupRequest: (req, context) => {
        if (context.__stop) return null
        if (index === 0) context.__startedMs = Date.now()
        const path = fill(request.path, context)
        const body = fill(request.body, context)
        const headers = {}
        let missing = path.missing || body.missing
        for (const [k, v] of Object.entries(request.headers || {})) {
          const key = fill(k, context)
          const value = fill(v, context)
          missing = missing || key.missing || value.missing
          headers[key.text] = value.text
        }
        // Cannot happen after a successful capture (the plan is checked); kept safe.
        if (missing) return null
        const out = { ...req, path: path.text, headers }
        if (request.body !== undefined && request.body !== null) out.body = body.text
        return out
      },
      onResponse: (status, body, context, headers) => {
        recorder.answered = request.endpoint
        const failure = {}
        const kind = check(step, status, body, context, headers || {}, failure)
        recorder.override = kind
        const pauseMs = step.thinkMax > 0 ? thinkMs(step) : 0
        if (pauseMs) context.__pauseMs = pauseMs
        if (kind !== null || status >= 400) {
          context.__stop = true
          recorder.flowFailed(step.name, failure.why ? `${kind}:${failure.why}` : kind || 'non_2xx')
          if (failure.missing) {
            for (const i of dependents(flow.steps, index, failure.missing)) {
              recorder.failed(requests[i].endpoint || 0, 'capture_missing')
            }
          }
        } else if (index === requests.length - 1) {
          // The iteration ends when the user's last pause does (the next one starts then).
          recorder.flowDone(Date.now() - context.__startedMs + pauseMs)
        }
      }
    }
  })
  const setupClient = (client) => {
    const iterator = client.requestIterator
    // The user's data row: user N (in the order connections open) takes row N mod rows.
    if (rows.length) {
      iterator.initialContext = { ...rows[users % rows.length] }
      users++
      iterator.resetContext()
      iterator.currentRequestIndex = 0
      iterator.currentRequest = iterator.requests[0]
      iterator.rebuildRequest()
    }
    // A failure names no request: with pipelining 1 it is the one in flight.
    const failing = (kind) => () => {
      const index = iterator.currentRequest.endpoint || 0
      recorder.failing = index
      if (!iterator.context.__stop) recorder.flowFailed(flow.steps[index].name, kind)
      iterator.context.__stop = true
    }
    client.on('timeout', failing('timeout'))
    client.on('connError', failing('connection_error'))
    const send = client._doRequest
    client._doRequest = function () {
      const ms = iterator.context.__pauseMs
      if (!ms) return send.call(this)
      iterator.context.__pauseMs = 0
      // No request is in flight while the user thinks: its timeout must not fire.
      this.timeoutTicker.clear()
      const timer = setTimeout(() => {
        if (!this.destroyed) send.call(this)
      }, ms)
      if (timer.unref) timer.unref()
    }
  }
  // The first request is built before setupClient runs: from the first row.
  return { requests: built, setupClient, initialContext: rows.length ? { ...rows[0] } : {} }
}

module.exports = { flowOptions, fill, jsonAt, dependents }
