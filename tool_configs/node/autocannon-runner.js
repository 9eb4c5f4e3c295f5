'use strict'
// Runs autocannon (programmatic API) from one JSON plan and writes a machine-readable
// output file with exact latency histograms (integer microseconds, HdrHistogram V2
// compressed base64) per second of the run.
//
// Why not the CLI: its --json has no p95 and keeps whole milliseconds only. Why our own
// worker threads instead of autocannon's `workers` option: with that option the
// `response` / `reqError` events stay inside autocannon's threads, so we run one plain
// autocannon instance per thread of ours and record every response where it happens.
//
// Checkpoints: a SIGKILL (or a crash) leaves no chance to write the output, so every
// instance appends each second it has finished (counts so far + that second's encoded
// histogram) to the plan's `checkpoints` file (NDJSON) as it goes; a run killed mid-step
// is then read back up to its last whole second instead of losing the step.
//
// Usage: node autocannon-runner.js PLAN.json   (no user text ever comes through argv)

const fs = require('fs')
const path = require('path')
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads')
const autocannon = require('autocannon')
const hdr = require('hdr-histogram-js')
const { flowOptions } = require('./autocannon-flow')

const FORMAT = 'orchestrate-autocannon/1'
const HIGHEST_US = 3600000000
// 32-bit counts record 4x faster than 'packed' (this is on every response's path); the
// ~90 KB each costs is bounded by encoding every second that is over (see Recorder.bucket).
const HIST_OPTS = {
  bitBucketSize: 32,
  lowestDiscernibleValue: 1,
  highestTrackableValue: HIGHEST_US,
  numberOfSignificantValueDigits: 3
}
// Steps end at autocannon's next sample tick: a short tick keeps fractional steps exact.
const SAMPLE_INT_MS = 100
// After a stop request, how long to wait for autocannon before writing what we have.
const STOP_GRACE_MS = 4000

function newHistogram () {
  return hdr.build(HIST_OPTS)
}

function toMicros (ms) {
  return Math.min(Math.max(Math.round(ms * 1000), 1), HIGHEST_US)
}

function errorKind (err) {
  const code = err && err.code ? String(err.code) : ''
  if (code === 'ECONNREFUSED') return 'connection_refused'
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'connection_reset'
  if (code === 'ETIMEDOUT' || /timed out/i.test((err && err.message) || '')) return 'timeout'
  return code ? 'other/' + code.toLowerCase() : 'other'
}

function addCount (map, key, n) {
  map[key] = (map[key] || 0) + n
}

// Appends one JSON line; a checkpoint that cannot be written (disk full) is skipped:
// it must never cost the run itself.
function appendLine (file, record) {
  if (!file) return
  try {
    fs.appendFileSync(file, JSON.stringify(record) + '\n')
  } catch (err) {}
}

// Counts and per-second histograms of a set of requests: all of an instance's, or one
// endpoint's (each response is recorded in both). `onNewSecond(t)` is called when second
// `t` gets its first record, before it is counted (the totals' checkpoints hang on it).
class Tally {
  constructor (onNewSecond) {
    this.onNewSecond = onNewSecond || null
    this.unsaved = new Set()
    this.seconds = new Map()
    this.responses = 0
    this.ok = 0
    this.non2xx = 0
    this.errors = 0
    this.timeouts = 0
    this.statusCodes = {}
    this.errorKinds = {}
    this.last = null
  }

  bucket (t) {
    const last = this.last
    if (last && last.t === t) return last
    let b = this.seconds.get(t)
    if (!b) {
      // Nothing of second t is recorded yet: the counters hold exactly the seconds before.
      this.encodeBefore(t)
      if (this.onNewSecond) this.onNewSecond(t)
      b = { t, requests: 0, errors: 0, histogram: newHistogram(), encoded: null }
      this.seconds.set(t, b)
    }
    this.last = b
    this.unsaved.add(b)
    return b
  }

  // Seconds before `t` get no more responses: keep only their encoded form.
  encodeBefore (t) {
    for (const b of this.seconds.values()) {
      if (b.t < t && b.histogram) {
        b.encoded = hdr.encodeIntoCompressedBase64(b.histogram)
        b.histogram = null
      }
    }
  }

  histogramOf (b) {
    if (!b.histogram) {
      // A late response for a second already encoded: bring it back.
      b.histogram = hdr.decodeFromCompressedBase64(b.encoded, 32)
      b.encoded = null
    }
    return b.histogram
  }

  // `failedAs`: a flow step's failed capture or check (autocannon-flow.js): answered,
  // but an error of that kind.
  response (t, statusCode, micros, failedAs) {
    const b = this.bucket(t)
    b.requests++
    this.histogramOf(b).recordValue(micros)
    this.responses++
    addCount(this.statusCodes, statusCode, 1)
    if (failedAs) {
      this.non2xx++
      b.errors++
      addCount(this.errorKinds, failedAs, 1)
    } else if (statusCode >= 200 && statusCode < 300) {
      this.ok++
    } else {
      this.non2xx++
      b.errors++
      addCount(this.errorKinds, 'non_2xx', 1)
    }
  }

  reqError (t, kind) {
    const b = this.bucket(t)
    b.requests++
    b.errors++
    this.errors++
    if (kind === 'timeout') this.timeouts++
    addCount(this.errorKinds, kind, 1)
  }

  // Plain-JSON form, also what a worker thread posts back.
  snapshot () {
    const seconds = [...this.seconds.values()]
      .sort((a, b) => a.t - b.t)
      .map((b) => ({
        t: b.t,
        requests: b.requests,
        errors: b.errors,
        histogram: b.histogram ? hdr.encodeIntoCompressedBase64(b.histogram) : b.encoded
      }))
    return {
      responses: this.responses,
      ok: this.ok,
      non2xx: this.non2xx,
      errors: this.errors,
      timeouts: this.timeouts,
      statusCodes: this.statusCodes,
      errorKinds: this.errorKinds,
      seconds
    }
  }
}

// Everything one autocannon instance measured, bucketed by whole seconds of the run, in
// total and per endpoint (the plan's `endpoint` index of each request).
class Recorder {
  // `checkpoint`: {file, step, part} to append the totals' finished seconds to, or null.
  constructor (runStartMs, endpoints, checkpoint) {
    this.runStartMs = runStartMs
    this.checkpoint = checkpoint || null
    this.idleTimer = null
    this.total = new Tally((t) => this.saveCheckpoint(t))
    // One endpoint: its numbers are the totals, recorded once (this is on every
    // response's path, and the generator is often the busiest process on the machine).
    this.endpoints = (endpoints || 0) > 1
      ? Array.from({ length: endpoints }, () => new Tally())
      : [this.total]
    // Endpoint of the response or failure autocannon reports next (see attributed).
    this.answered = 0
    this.override = null
    // A flow's iterations (autocannon-flow.js): completed ones' durations, failed by step.
    this.flow = { completed: 0, failed: {}, histogram: null }
    this.failing = 0
    this.autocannon = null
    this.failure = null
    this.startedMs = Date.now()
    this.endedMs = null
  }

  // What a step needs from one instance, as plain JSON (worker threads post it back).
  result () {
    return {
      part: this.snapshot(),
      failure: this.failure,
      startedMs: this.startedMs,
      endedMs: this.endedMs || Date.now()
    }
  }

  second () {
    return Math.max(0, Math.floor((Date.now() - this.runStartMs) / 1000))
  }

  // Appends the totals' finished seconds not yet saved, with the counters as of second
  // `t`'s start; called only while nothing of second `t` is recorded, so the two agree.
  // A run killed mid-way keeps what these hold (per-endpoint numbers are not saved).
  saveCheckpoint (t) {
    const c = this.checkpoint
    const total = this.total
    if (!c || total.unsaved.size === 0) return
    const seconds = [...total.unsaved].filter((b) => b.t < t).sort((a, b) => a.t - b.t)
    if (seconds.length === 0) return
    for (const b of seconds) total.unsaved.delete(b)
    appendLine(c.file, {
      step: c.step,
      part: c.part,
      upTo: t,
      counts: {
        responses: total.responses,
        ok: total.ok,
        non2xx: total.non2xx,
        errors: total.errors,
        timeouts: total.timeouts
      },
      statusCodes: total.statusCodes,
      errorKinds: total.errorKinds,
      seconds: seconds.map((b) => ({
        t: b.t,
        requests: b.requests,
        errors: b.errors,
        histogram: b.histogram ? hdr.encodeIntoCompressedBase64(b.histogram) : b.encoded
      }))
    })
  }

  // Once a second: when nothing arrived yet in this second (an idle or hung target),
  // the last busy second is saved anyway.
  watchIdle () {
    if (!this.checkpoint) return
    this.idleTimer = setInterval(() => {
      const t = this.second()
      if (!this.total.last || this.total.last.t < t) {
        this.total.encodeBefore(t)
        this.saveCheckpoint(t)
      }
    }, 1000)
    this.idleTimer.unref()
  }

  stopWatching () {
    if (this.idleTimer) clearInterval(this.idleTimer)
    this.idleTimer = null
  }

  response (statusCode, responseTime) {
    const t = this.second()
    const micros = toMicros(responseTime)
    const kind = this.override
    this.override = null
    this.total.response(t, statusCode, micros, kind)
    const endpoint = this.endpoints[this.answered]
    if (endpoint !== this.total) endpoint.response(t, statusCode, micros, kind)
  }

  reqError (err) {
    this.failed(this.failing, errorKind(err))
  }

  // A failed request of endpoint `index` (a flow step not sent because a value it uses was
  // not captured, too: no latency), in total and under its endpoint.
  failed (index, kind) {
    const t = this.second()
    this.total.reqError(t, kind)
    const endpoint = this.endpoints[index]
    if (endpoint !== this.total) endpoint.reqError(t, kind)
  }

  flowDone (ms) {
    if (!this.flow.histogram) this.flow.histogram = newHistogram()
    this.flow.completed++
    this.flow.histogram.recordValue(toMicros(ms))
  }

  flowFailed (step, kind) {
    const byKind = this.flow.failed[step] || (this.flow.failed[step] = {})
    byKind[kind] = (byKind[kind] || 0) + 1
  }

  snapshot () {
    const f = this.flow
    return {
      flow: { completed: f.completed, failed: f.failed, histogram: f.histogram ? hdr.encodeIntoCompressedBase64(f.histogram) : null },
      ...this.total.snapshot(),
      endpoints: this.endpoints.map((e) => e.snapshot()),
      autocannon: this.autocannon
    }
  }
}

// Tell the recorder which endpoint each response and failure belongs to. A response: the
// request's own onResponse hook, which autocannon calls just before its 'response' event
// for the very request answered (pipelined ones included). A failure: autocannon's
// 'reqError' names no request, so the connection's own 'connError'/'timeout' events
// (whose listeners added here run before autocannon's) say which requests were in flight;
// exact with pipelining 1 (autocannon reports a failed pipelined batch as a whole).
function attributed (spec, recorder) {
  if (spec.flow) return flowOptions(spec.flow, spec.requests, recorder)
  const opts = { requests: spec.requests }
  if (!spec.requests.some((r) => r.endpoint !== spec.requests[0].endpoint)) {
    recorder.answered = recorder.failing = spec.requests[0].endpoint || 0
    return opts
  }
  opts.requests = spec.requests.map((r) => ({ ...r, onResponse: () => { recorder.answered = r.endpoint } }))
  opts.setupClient = (client) => {
    const queue = client.pipelinedRequests
    const clear = queue.clear
    let lost = []
    // A timeout empties the queue before autocannon reports it: keep what was in flight.
    queue.clear = function () {
      lost = this.pendingRequests.map((p) => p.req.endpoint)
      return clear.call(this)
    }
    client.on('timeout', () => {
      if (lost.length) recorder.failing = lost.shift()
    })
    client.on('connError', () => {
      const inFlight = queue.toArray()
      const req = inFlight.length ? inFlight[inFlight.length - 1].req : client.requestIterator.currentRequest
      if (req) recorder.failing = req.endpoint
    })
  }
  return opts
}

// autocannon's own counters (raw result: skipAggregateResult), kept for cross-checks.
function autocannonCounters (result) {
  if (!result) return null
  const codes = {}
  for (const [code, stat] of Object.entries(result.statusCodeStats || {})) codes[code] = stat.count
  return {
    requestsSent: result.totalRequests,
    completed: result.totalCompletedRequests,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    resets: result.resets,
    statusCodes: codes,
    duration: result.duration
  }
}

// One autocannon instance for one step; resolves with the recorder when it finished.
function runInstance (spec, runStartMs, onInstance) {
  const recorder = new Recorder(runStartMs, spec.endpoints, spec.checkpoint)
  recorder.watchIdle()
  return new Promise((resolve) => {
    const opts = {
      ...attributed(spec, recorder),
      url: spec.url,
      connections: spec.connections,
      pipelining: spec.pipelining,
      duration: spec.duration,
      timeout: spec.timeout,
      sampleInt: SAMPLE_INT_MS,
      skipAggregateResult: true
    }
    if (spec.overallRate) opts.overallRate = spec.overallRate
    recorder.startedMs = Date.now()
    const instance = autocannon(opts, (err, result) => {
      recorder.stopWatching()
      recorder.endedMs = Date.now()
      if (err) recorder.failure = String((err && err.message) || err)
      recorder.autocannon = autocannonCounters(result)
      resolve(recorder)
    })
    instance.on('response', (client, statusCode, resBytes, responseTime) => {
      recorder.response(statusCode, responseTime)
    })
    instance.on('reqError', (err) => recorder.reqError(err))
    if (onInstance) onInstance(instance, recorder)
  })
}

// ---- worker thread: runs one share of each step's connections, step after step ----
if (!isMainThread) {
  let instance = null
  let stopRequested = false
  parentPort.on('message', (msg) => {
    if (msg.cmd === 'stop') {
      stopRequested = true
      if (instance) instance.stop()
    } else if (msg.cmd === 'run') {
      stopRequested = false
      runInstance(msg.spec, msg.runStartMs, (inst) => {
        instance = inst
        if (stopRequested) inst.stop()
      }).then((recorder) => {
        instance = null
        parentPort.postMessage({ cmd: 'done', result: recorder.result() })
      })
    }
  })
  parentPort.postMessage({ cmd: 'ready' })
  return
}

// ---- main thread ----
const state = {
  plan: null,
  runStartMs: Date.now(),
  steps: [],
  interrupted: false,
  stoppers: [],
  pool: [],
  current: null,
  writing: false,
  stoppedEarly: null
}

function log (line) {
  process.stderr.write(line + '\n')
}

// A light progress line when no terminal shows autocannon's progress bar.
function logLastSecond (recorder) {
  const t = Math.floor((Date.now() - state.runStartMs) / 1000) - 1
  const b = recorder.total.seconds.get(t)
  if (b) log(`  ${t + 1}s: ${b.requests} req/s, ${b.errors} failed`)
}

function sumCounters (list) {
  if (list.length === 0) return null
  const out = { requestsSent: 0, completed: 0, errors: 0, timeouts: 0, non2xx: 0, resets: 0, statusCodes: {}, duration: 0 }
  for (const c of list) {
    for (const key of ['requestsSent', 'completed', 'errors', 'timeouts', 'non2xx', 'resets']) out[key] += c[key] || 0
    for (const [k, v] of Object.entries(c.statusCodes)) addCount(out.statusCodes, k, v)
    out.duration = Math.max(out.duration, c.duration || 0)
  }
  return out
}

// Counts, codes, error kinds and histograms (whole and per second) of tally snapshots
// (one per thread), merged exactly.
function summarise (snapshots) {
  const total = { responses: 0, ok: 0, non2xx: 0, errors: 0, timeouts: 0, statusCodes: {}, errorKinds: {} }
  const secondsByT = new Map()
  for (const part of snapshots) {
    for (const key of ['responses', 'ok', 'non2xx', 'errors', 'timeouts']) total[key] += part[key]
    for (const [k, v] of Object.entries(part.statusCodes)) addCount(total.statusCodes, k, v)
    for (const [k, v] of Object.entries(part.errorKinds)) addCount(total.errorKinds, k, v)
    for (const s of part.seconds) {
      let b = secondsByT.get(s.t)
      if (!b) {
        b = { t: s.t, requests: 0, errors: 0, histograms: [] }
        secondsByT.set(s.t, b)
      }
      b.requests += s.requests
      b.errors += s.errors
      b.histograms.push(s.histogram)
    }
  }
  // One second at a time, so a long step never holds all its histograms decoded.
  const whole = newHistogram()
  const seconds = [...secondsByT.values()].sort((a, b) => a.t - b.t).map((b) => {
    let histogram = b.histograms[0]
    if (b.histograms.length > 1) {
      const merged = newHistogram()
      for (const h of b.histograms) merged.add(hdr.decodeFromCompressedBase64(h))
      histogram = hdr.encodeIntoCompressedBase64(merged)
      whole.add(merged)
    } else {
      whole.add(hdr.decodeFromCompressedBase64(histogram))
    }
    return { t: b.t, requests: b.requests, errors: b.errors, histogram }
  })
  return {
    counts: {
      requests: total.responses + total.errors,
      responses: total.responses,
      ok: total.ok,
      non2xx: total.non2xx,
      errors: total.errors,
      timeouts: total.timeouts
    },
    statusCodes: total.statusCodes,
    errorKinds: total.errorKinds,
    histogram: total.responses > 0 ? hdr.encodeIntoCompressedBase64(whole) : null,
    seconds
  }
}

// The step record written to the output file, from the parts of its threads.
function buildStep (index, spec, startMs, endMs, parts, failures) {
  const endpoints = ((state.plan && state.plan.endpoints) || []).map((_, i) => ({
    index: i,
    ...summarise(parts.map((p) => p.endpoints[i]).filter(Boolean))
  }))
  return {
    index,
    connections: spec.connections,
    overallRate: spec.overallRate || null,
    plannedDuration: spec.duration,
    start: (startMs - state.runStartMs) / 1000,
    duration: (endMs - startMs) / 1000,
    threads: parts.length,
    ...summarise(parts),
    endpoints,
    autocannon: sumCounters(parts.map((p) => p.autocannon).filter(Boolean)),
    flow: mergeFlows(parts.map((p) => p.flow).filter(Boolean)),
    failures
  }
}

// The flow iterations of a step's threads, merged exactly.
function mergeFlows (flows) {
  const out = { completed: 0, failed: {}, histogram: null }
  const whole = newHistogram()
  for (const f of flows) {
    out.completed += f.completed
    for (const [step, kinds] of Object.entries(f.failed)) {
      const into = out.failed[step] || (out.failed[step] = {})
      for (const [kind, n] of Object.entries(kinds)) addCount(into, kind, n)
    }
    if (f.histogram) whole.add(hdr.decodeFromCompressedBase64(f.histogram))
  }
  if (out.completed > 0) out.histogram = hdr.encodeIntoCompressedBase64(whole)
  return out
}

function writeOutput (complete) {
  const plan = state.plan
  const out = {
    format: FORMAT,
    autocannonVersion: require('autocannon/package.json').version,
    node: process.version,
    url: plan ? plan.url : null,
    startedAt: state.runStartMs,
    endedAt: Date.now(),
    latencyUnit: 'us',
    resolutionUs: 1,
    interrupted: state.interrupted,
    complete,
    plannedSteps: plan ? plan.steps.length : 0,
    stoppedEarly: state.stoppedEarly,
    endpoints: plan ? plan.endpoints || [] : [],
    steps: state.steps
  }
  const target = plan.output
  const tmp = target + '.tmp'
  // Write then rename: a kill mid-write never leaves half a JSON document.
  try {
    fs.writeFileSync(tmp, JSON.stringify(out))
    fs.renameSync(tmp, target)
  } catch (err) {
    try { fs.unlinkSync(tmp) } catch (_) {}
    throw err
  }
}

function stepSpec (plan, step, share, threads, index, part) {
  const rate = plan.overallRate ? Math.max(1, Math.round(plan.overallRate / threads)) : null
  return {
    url: plan.url,
    requests: plan.requests,
    flow: plan.flow || null,
    endpoints: (plan.endpoints || []).length,
    connections: share,
    pipelining: plan.pipelining,
    duration: step.duration,
    timeout: plan.timeout,
    overallRate: rate,
    checkpoint: plan.checkpoints ? { file: plan.checkpoints, step: index, part } : null
  }
}

function shares (connections, threads) {
  const out = []
  for (let i = 0; i < threads; i++) {
    out.push(Math.floor(connections / threads) + (i < connections % threads ? 1 : 0))
  }
  return out.filter((n) => n > 0)
}

// Threads are started once and reused by every step: starting one (loading autocannon)
// takes a noticeable fraction of a second that must not eat into a step.
function threadPool (size) {
  while (state.pool.length < size) {
    const worker = new Worker(__filename)
    let ready
    const entry = { worker, pending: null, ready: new Promise((resolve) => { ready = resolve }) }
    const settle = (value) => {
      const pending = entry.pending
      entry.pending = null
      if (pending) pending(value)
    }
    worker.on('message', (msg) => {
      if (msg.cmd === 'done') settle(msg.result)
      if (msg.cmd === 'ready') ready()
    })
    worker.on('error', (err) => settle({ part: null, failure: String(err && err.message) }))
    worker.on('exit', () => {
      entry.dead = true
      ready()
      settle({ part: null, failure: 'worker thread exited without a result' })
    })
    state.pool.push(entry)
  }
  return state.pool.slice(0, size)
}

function runOnThread (entry, spec) {
  if (entry.dead) return Promise.resolve({ part: null, failure: 'worker thread is gone' })
  return new Promise((resolve) => {
    entry.pending = resolve
    state.stoppers.push(() => entry.worker.postMessage({ cmd: 'stop' }))
    entry.worker.postMessage({ cmd: 'run', spec, runStartMs: state.runStartMs })
  })
}

async function runStep (plan, index, step) {
  const threads = Math.min(Math.max(plan.workers, 0), step.connections)
  let results
  if (threads <= 1) {
    const spec = stepSpec(plan, step, step.connections, 1, index, 0)
    let ticker = null
    const recorder = await runInstance(spec, state.runStartMs, (instance, rec) => {
      state.current = { recorder: rec, index, step }
      state.stoppers.push(() => instance.stop())
      if (plan.progress && process.stderr.isTTY) {
        autocannon.track(instance, { renderResultsTable: false, renderProgressBar: true })
      } else if (plan.progress) {
        ticker = setInterval(() => logLastSecond(rec), 1000)
      }
    })
    if (ticker) clearInterval(ticker)
    results = [recorder.result()]
  } else {
    const parts = shares(step.connections, threads)
    const pool = threadPool(parts.length)
    results = await Promise.all(
      parts.map((n, i) => runOnThread(pool[i], stepSpec(plan, step, n, parts.length, index, i)))
    )
  }
  state.current = null
  const failures = results.map((r) => r.failure).filter(Boolean)
  const parts = results.map((r) => r.part).filter(Boolean)
  const timed = results.filter((r) => r.startedMs)
  const startMs = Math.min(...timed.map((r) => r.startedMs), Date.now())
  const endMs = timed.length ? Math.max(...timed.map((r) => r.endedMs)) : startMs
  const stepSpecOut = { connections: step.connections, duration: step.duration, overallRate: plan.overallRate }
  return buildStep(index, stepSpecOut, startMs, endMs, parts, failures)
}

function pause (index, step) {
  const startMs = Date.now()
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      resolve(buildStep(index, { connections: 0, duration: step.duration, overallRate: null }, startMs, Date.now(), [], []))
    }
    const timer = setTimeout(done, step.duration * 1000)
    state.stoppers.push(done)
  })
}

// The plan's stopWhenErrorRate (percent): a step that failed more than that is the
// breaking point, and the steps after it would only hammer a broken target.
function breakingPoint (plan, index, record) {
  const limit = plan.stopWhenErrorRate
  const c = record.counts
  if (limit == null || c.requests === 0 || index >= plan.steps.length - 1) return null
  const errorRate = (100 * (c.non2xx + c.errors)) / c.requests
  return errorRate > limit ? { afterStep: index, errorRate, limit } : null
}

function onSignal (signal) {
  if (state.interrupted) {
    // Second signal: write what is complete (plus the running step so far) and leave.
    finishNow()
    return
  }
  state.interrupted = true
  log(`autocannon-runner: ${signal}, stopping and writing what was measured`)
  for (const stop of state.stoppers) stop()
  setTimeout(finishNow, STOP_GRACE_MS).unref()
}

function finishNow () {
  if (state.writing) return
  state.writing = true
  const current = state.current
  if (current) {
    const spec = { connections: current.step.connections, duration: current.step.duration, overallRate: state.plan.overallRate }
    const part = current.recorder.snapshot()
    state.steps.push(buildStep(current.index, spec, current.recorder.startedMs, Date.now(), [part], ['stopped before autocannon finished the step']))
  }
  writeOutput(false)
  process.exit(130)
}

async function main () {
  const planPath = process.argv[2]
  if (!planPath) {
    log('usage: node autocannon-runner.js PLAN.json')
    process.exit(2)
  }
  state.plan = JSON.parse(fs.readFileSync(planPath, 'utf8'))
  const plan = state.plan
  process.on('SIGINT', () => onSignal('SIGINT'))
  process.on('SIGTERM', () => onSignal('SIGTERM'))
  fs.mkdirSync(path.dirname(plan.output), { recursive: true })
  const peak = Math.max(0, ...plan.steps.map((s) => s.connections))
  const threads = Math.min(Math.max(plan.workers, 0), peak)
  if (threads > 1) {
    // Load autocannon in every thread before the clock starts.
    await Promise.all(threadPool(threads).map((entry) => entry.ready))
  }
  state.runStartMs = Date.now()
  writeOutput(false)
  for (let i = 0; i < plan.steps.length && !state.interrupted; i++) {
    const step = plan.steps[i]
    state.stoppers = []
    log(`step ${i + 1}/${plan.steps.length}: ${step.connections} connections for ${step.duration}s`)
    appendLine(plan.checkpoints, {
      stepStart: i,
      connections: step.connections,
      overallRate: plan.overallRate || null,
      start: (Date.now() - state.runStartMs) / 1000
    })
    const record = step.connections > 0 ? await runStep(plan, i, step) : await pause(i, step)
    if (state.writing) return
    state.steps.push(record)
    const c = record.counts
    log(`step ${i + 1} done: ${c.requests} requests, ${c.non2xx} non-2xx, ${c.errors} errors in ${record.duration.toFixed(2)}s`)
    state.stoppedEarly = breakingPoint(plan, i, record)
    writeOutput(false)
    if (state.stoppedEarly) {
      log(`stopping after step ${i + 1}: ${state.stoppedEarly.errorRate.toFixed(1)}% failed, over the limit of ${state.stoppedEarly.limit}%`)
      break
    }
  }
  state.writing = true
  writeOutput(!state.interrupted)
  process.exit(state.interrupted ? 130 : 0)
}

main().catch((err) => {
  // The stack goes first: the last line is the one a failed run's status shows.
  if (err && err.stack) log(err.stack)
  log(`autocannon-runner: ${err && err.message ? err.message : err}`)
  process.exit(1)
})
