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
// Usage: node autocannon-runner.js PLAN.json   (no user text ever comes through argv)

const fs = require('fs')
const path = require('path')
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads')
const autocannon = require('autocannon')
const hdr = require('hdr-histogram-js')

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

// Everything one autocannon instance measured, bucketed by whole seconds of the run.
class Recorder {
  constructor (runStartMs) {
    this.runStartMs = runStartMs
    this.seconds = new Map()
    this.responses = 0
    this.ok = 0
    this.non2xx = 0
    this.errors = 0
    this.timeouts = 0
    this.statusCodes = {}
    this.errorKinds = {}
    this.autocannon = null
    this.failure = null
    this.startedMs = Date.now()
    this.endedMs = null
    this.last = null
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

  // The second a response or error belongs to. This runs for every response: the common
  // case (the same second as the last one) is one clock read and two comparisons.
  bucket () {
    const now = Date.now()
    const last = this.last
    if (last !== null && now < last.endMs && now >= last.startMs) return last
    const t = Math.max(0, Math.floor((now - this.runStartMs) / 1000))
    let b = this.seconds.get(t)
    if (!b) {
      const startMs = this.runStartMs + t * 1000
      b = { t, startMs, endMs: startMs + 1000, requests: 0, errors: 0, histogram: newHistogram(), encoded: null }
      this.seconds.set(t, b)
      this.encodeBefore(t - 1)
    }
    this.last = b
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

  // autocannon's 'response' event, taken as it comes (no closure in between).
  response (client, statusCode, resBytes, responseTime) {
    const b = this.bucket()
    b.requests++
    ;(b.histogram || this.histogramOf(b)).recordValue(toMicros(responseTime))
    this.responses++
    const codes = this.statusCodes
    codes[statusCode] = (codes[statusCode] || 0) + 1
    if (statusCode >= 200 && statusCode < 300) {
      this.ok++
    } else {
      this.non2xx++
      b.errors++
      addCount(this.errorKinds, 'non_2xx', 1)
    }
  }

  reqError (err) {
    const b = this.bucket()
    b.requests++
    b.errors++
    this.errors++
    const kind = errorKind(err)
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
      seconds,
      autocannon: this.autocannon
    }
  }
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
  const recorder = new Recorder(runStartMs)
  return new Promise((resolve) => {
    const opts = {
      url: spec.url,
      requests: spec.requests,
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
      recorder.endedMs = Date.now()
      if (err) recorder.failure = String((err && err.message) || err)
      recorder.autocannon = autocannonCounters(result)
      resolve(recorder)
    })
    instance.on('response', recorder.response.bind(recorder))
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
  const b = recorder.seconds.get(t)
  if (b) log(`  ${t + 1}s: ${b.requests} req/s, ${b.errors} failed`)
}

function mergeInto (total, part) {
  for (const key of ['responses', 'ok', 'non2xx', 'errors', 'timeouts']) total[key] += part[key]
  for (const [k, v] of Object.entries(part.statusCodes)) addCount(total.statusCodes, k, v)
  for (const [k, v] of Object.entries(part.errorKinds)) addCount(total.errorKinds, k, v)
  for (const s of part.seconds) {
    let b = total.secondsByT.get(s.t)
    if (!b) {
      b = { t: s.t, requests: 0, errors: 0, histograms: [] }
      total.secondsByT.set(s.t, b)
    }
    b.requests += s.requests
    b.errors += s.errors
    b.histograms.push(s.histogram)
  }
  if (part.autocannon) total.autocannon.push(part.autocannon)
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

// The step record written to the output file, from the parts of its threads.
function buildStep (index, spec, startMs, endMs, parts, failures) {
  const total = {
    responses: 0, ok: 0, non2xx: 0, errors: 0, timeouts: 0,
    statusCodes: {}, errorKinds: {}, secondsByT: new Map(), autocannon: []
  }
  for (const part of parts) mergeInto(total, part)
  // One second at a time, so a long step never holds all its histograms decoded.
  const stepHist = newHistogram()
  const seconds = [...total.secondsByT.values()].sort((a, b) => a.t - b.t).map((b) => {
    let histogram = b.histograms[0]
    if (b.histograms.length > 1) {
      const merged = newHistogram()
      for (const h of b.histograms) merged.add(hdr.decodeFromCompressedBase64(h))
      histogram = hdr.encodeIntoCompressedBase64(merged)
      stepHist.add(merged)
    } else {
      stepHist.add(hdr.decodeFromCompressedBase64(histogram))
    }
    return { t: b.t, requests: b.requests, errors: b.errors, histogram }
  })
  return {
    index,
    connections: spec.connections,
    overallRate: spec.overallRate || null,
    plannedDuration: spec.duration,
    start: (startMs - state.runStartMs) / 1000,
    duration: (endMs - startMs) / 1000,
    threads: parts.length,
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
    histogram: total.responses > 0 ? hdr.encodeIntoCompressedBase64(stepHist) : null,
    seconds,
    autocannon: sumCounters(total.autocannon),
    failures
  }
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
    steps: state.steps
  }
  const target = plan.output
  const tmp = target + '.tmp'
  // Write then rename: a kill mid-write never leaves half a JSON document.
  fs.writeFileSync(tmp, JSON.stringify(out))
  fs.renameSync(tmp, target)
}

function stepSpec (plan, step, share, threads) {
  const rate = plan.overallRate ? Math.max(1, Math.round(plan.overallRate / threads)) : null
  return {
    url: plan.url,
    requests: plan.requests,
    connections: share,
    pipelining: plan.pipelining,
    duration: step.duration,
    timeout: plan.timeout,
    overallRate: rate
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
    const spec = stepSpec(plan, step, step.connections, 1)
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
      parts.map((n, i) => runOnThread(pool[i], stepSpec(plan, step, n, parts.length)))
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
  log(`autocannon-runner: ${err && err.stack ? err.stack : err}`)
  process.exit(1)
})
