// orchestrate's Artillery processor: exact latency data and the WebSocket session.
//
// Artillery keeps only approximate summaries (sketches), and its ws engine measures no
// latency at all. This processor:
//   * runs each WebSocket user's session itself (orchestrateWsSession, a function step):
//     connect, send every message, match each reply to its message by the echoed "id"
//     (first-in-first-out for messages without one), think, repeat;
//   * records every round trip (WebSocket) or time to first byte (HTTP, afterResponse)
//     in integer microseconds, per wall-clock second, in total and under its endpoint
//     (the HTTP request's name, the WebSocket message's name), and writes them to
//     $ORCHESTRATE_ARTILLERY_DATA/<pid>-<thread>.json when the worker exits, so that
//     orchestrate builds an exact HdrHistogram (no sketch, no averaged percentiles);
//   * also emits Artillery counters and histograms (orchestrate.*) so the tool's own
//     report shows the same numbers;
//   * for the closed model, keeps users connected and repeating their flow until the
//     shape's level drops below the number of active users (orchestrateKeepGoing).
'use strict';

const fs = require('fs');
const path = require('path');
const { threadId } = require('worker_threads');
const WebSocket = require('ws');

const DATA_DIR = process.env.ORCHESTRATE_ARTILLERY_DATA || '';
const FLUSH_MS = 1000;

const seconds = new Map(); // epoch second -> {requests, errors, active, values: Map(us -> n)}
// endpoint name -> {requests, responses, ok, codes, errors, seconds: Map(epoch second -> ...)}
const endpoints = new Map();
const sessions = new Map(); // session length in ms -> n
const counters = {};
let active = 0;
let clockStart = null; // ms epoch of the shape's t=0 (closed model)

function count(ee, name, n = 1) {
  counters[name] = (counters[name] || 0) + n;
  ee.emit('counter', `orchestrate.${name}`, n);
}

function bucket() {
  const second = Math.floor(Date.now() / 1000);
  let b = seconds.get(second);
  if (!b) {
    b = { requests: 0, errors: 0, active, values: new Map() };
    seconds.set(second, b);
  }
  b.active = Math.max(b.active, active);
  return b;
}

function recordLatency(ee, metric, ms) {
  const us = Math.max(1, Math.round(ms * 1000));
  const b = bucket();
  b.requests += 1;
  b.values.set(us, (b.values.get(us) || 0) + 1);
  ee.emit('histogram', `orchestrate.${metric}`, ms);
}

function recordFailure() {
  const b = bucket();
  b.requests += 1;
  b.errors += 1;
}

// The same, under the request's endpoint: a response (status null: a WebSocket reply)
// or a failure without one (err: its code).
function endpointSecond(name) {
  let e = endpoints.get(name);
  if (!e) {
    e = { requests: 0, responses: 0, ok: 0, codes: {}, errors: {}, seconds: new Map() };
    endpoints.set(name, e);
  }
  const t = Math.floor(Date.now() / 1000);
  let b = e.seconds.get(t);
  if (!b) {
    b = { requests: 0, errors: 0, values: new Map() };
    e.seconds.set(t, b);
  }
  e.requests += 1;
  b.requests += 1;
  return [e, b];
}

function endpointResponse(name, ms, status, failedAs) {
  if (!name) return;
  const [e, b] = endpointSecond(name);
  const us = Math.max(1, Math.round(ms * 1000));
  b.values.set(us, (b.values.get(us) || 0) + 1);
  e.responses += 1;
  if (status !== null) e.codes[status] = (e.codes[status] || 0) + 1;
  if (failedAs) {
    e.errors[failedAs] = (e.errors[failedAs] || 0) + 1;
    b.errors += 1;
  } else if (status !== null && status >= 400) {
    e.errors.non_2xx = (e.errors.non_2xx || 0) + 1;
    b.errors += 1;
  } else {
    e.ok += 1;
  }
}

function endpointFailure(name, err) {
  if (!name) return;
  const [e, b] = endpointSecond(name);
  const code = (err && err.code) || 'other';
  e.errors[code] = (e.errors[code] || 0) + 1;
  b.errors += 1;
}

// A flow's iterations in this worker: completed ones' durations (us -> count), failed
// ones by step and kind.
const flowIterations = { completed: 0, failed: {}, values: new Map() };

function flowFailed(name, kind) {
  const byKind = flowIterations.failed[name] || (flowIterations.failed[name] = {});
  byKind[kind] = (byKind[kind] || 0) + 1;
}

function dump() {
  if (!DATA_DIR) return;
  const out = {
    version: 1,
    flow: {
      completed: flowIterations.completed,
      failed: flowIterations.failed,
      values: [...flowIterations.values.entries()]
    },
    pid: process.pid,
    thread: threadId,
    counters,
    sessionsMs: [...sessions.entries()],
    seconds: [...seconds.entries()].map(([t, b]) => ({
      t,
      requests: b.requests,
      errors: b.errors,
      concurrency: b.active,
      values: [...b.values.entries()]
    })),
    endpoints: [...endpoints.entries()].map(([name, e]) => ({
      name,
      requests: e.requests,
      responses: e.responses,
      ok: e.ok,
      codes: e.codes,
      errors: e.errors,
      seconds: [...e.seconds.entries()].map(([t, b]) => ({
        t,
        requests: b.requests,
        errors: b.errors,
        values: [...b.values.entries()]
      }))
    }))
  };
  const file = path.join(DATA_DIR, `${process.pid}-${threadId}.json`);
  // Write then rename so a reader never sees half a file.
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(out));
  fs.renameSync(`${file}.tmp`, file);
}

// The worker may be stopped with process.exit() at any moment: flush now and then, and
// once more on exit.
setInterval(dump, FLUSH_MS).unref();

// One figures line a second, in the format orchestrate's progress display reads.
function p95Of(values) {
  const pairs = [...values.entries()].sort((a, b) => a[0] - b[0]);
  const total = pairs.reduce((n, [, c]) => n + c, 0);
  let seen = 0;
  for (const [us, c] of pairs) {
    seen += c;
    if (seen >= 0.95 * total) return us / 1000;
  }
  return null;
}

function logLastSecond() {
  const b = seconds.get(Math.floor(Date.now() / 1000) - 1);
  if (!b) return;
  const p95 = p95Of(b.values);
  const tail = p95 === null ? '' : `, p95 ${p95.toFixed(2)} ms`;
  process.stderr.write(`  worker ${threadId}: ${b.requests} req/s, ${b.errors} failed${tail}\n`);
}
setInterval(logLastSecond, 1000).unref();
process.on('exit', dump);

function nowMs() {
  return Number(process.hrtime.bigint()) / 1e6;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- closed model -------------------------------------------------------------------

function levelAt(shape, t) {
  let start = 0;
  for (const [duration, from, to] of shape.segments) {
    if (t < start + duration) {
      return from + ((to - from) * (t - start)) / duration;
    }
    start += duration;
  }
  return -1; // the shape is over
}

// Whether this user stays for another pass over its flow; leaving users free their
// place at once so that only as many leave as the shape asks for.
function keepGoing(spec) {
  const shape = spec.shape;
  if (!shape || shape.model !== 'closed') return false;
  const t = (Date.now() - clockStart) / 1000;
  if (active > levelAt(shape, t) + 1e-9) {
    return false;
  }
  return true;
}

// Whether a user should go on to its flow's next loop: not once the shape is over (a
// flow may have more loops than the shape has time for), nor in the closed model when
// more users are active than the shape's level.
function wantsAnotherLoop(spec) {
  const shape = spec.shape;
  if (!shape || clockStart === null) return true;
  if (shape.model === 'closed') return keepGoing(spec);
  return levelAt(shape, (Date.now() - clockStart) / 1000) >= 0;
}

function noteArrival(spec) {
  if (clockStart === null && spec.shape) {
    clockStart = Date.now() - (spec.shape.firstArrivalMs || 0);
  }
}

// ---- WebSocket ------------------------------------------------------------------------

function errorWithCode(code, message) {
  const err = new Error(message || code);
  err.code = code;
  return err;
}

function connect(ws, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(errorWithCode('ETIMEDOUT', 'WebSocket connect timed out'));
    }, timeoutMs);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      ws.terminate();
      reject(errorWithCode(`ws_http_${res.statusCode}`, 'WebSocket upgrade refused'));
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(errorWithCode(err.code || 'ws_error', err.message));
    });
  });
}

function idOf(text) {
  try {
    const value = JSON.parse(text);
    if (value && typeof value === 'object' && 'id' in value) return String(value.id);
  } catch (_err) {
    // not JSON: matched first-in-first-out
  }
  return null;
}

class Conversation {
  constructor(ws, ee) {
    this.ws = ws;
    this.ee = ee;
    this.byId = new Map(); // id -> [entry]
    this.anonymous = []; // entries of messages without an id
    this.closed = null;
    ws.on('message', (data) => this.onMessage(String(data)));
    ws.on('close', () => this.fail(errorWithCode('ws_closed', 'connection closed')));
    ws.on('error', (err) => this.fail(errorWithCode(err.code || 'ws_error', err.message)));
  }

  onMessage(text) {
    const at = nowMs();
    count(this.ee, 'ws.messages_received');
    const id = idOf(text);
    let entry = null;
    const queue = id === null ? null : this.byId.get(id);
    if (queue && queue.length) entry = queue.shift();
    else if (this.anonymous.length) entry = this.anonymous.shift();
    if (!entry) return; // unsolicited (e.g. a server push)
    entry.resolve(at);
  }

  fail(err) {
    if (this.closed) return;
    this.closed = err;
    for (const queue of [this.anonymous, ...this.byId.values()]) {
      for (const entry of queue.splice(0)) entry.reject(err);
    }
  }

  // Sends one message; resolves with its round trip in ms once the reply is in.
  send(payload) {
    if (this.closed) return Promise.reject(this.closed);
    const id = idOf(payload);
    let entry;
    const reply = new Promise((resolve, reject) => {
      entry = { resolve, reject };
    });
    if (id === null) this.anonymous.push(entry);
    else {
      if (!this.byId.has(id)) this.byId.set(id, []);
      this.byId.get(id).push(entry);
    }
    const sentAt = nowMs();
    this.ws.send(payload);
    count(this.ee, 'ws.messages_sent');
    return reply.then((at) => at - sentAt);
  }
}

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(errorWithCode('ws_reply_timeout')), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function runFlow(conversation, spec, timeoutMs, ee) {
  const flow = spec.ws;
  for (let loop = 0; loop < flow.loops; loop++) {
    if (loop > 0 && !wantsAnotherLoop(spec)) return;
    for (const message of flow.messages) {
      const reply = conversation.send(message.payload);
      if (message.expectReply) {
        count(ee, 'ws.round_trips');
        try {
          const rtt = await withTimeout(reply, timeoutMs);
          count(ee, 'ws.replies');
          recordLatency(ee, 'ws.rtt', rtt);
          endpointResponse(message.name, rtt, null);
        } catch (err) {
          count(ee, 'ws.failed_round_trips');
          recordFailure();
          endpointFailure(message.name, err);
          throw err;
        }
      } else {
        reply.catch(() => {}); // a late or missing reply to a fire-and-forget message
      }
      if (message.thinkMs > 0) await sleep(message.thinkMs);
    }
  }
}

async function orchestrateWsSession(context, ee) {
  const spec = context.vars.orchestrate;
  const flow = spec.ws;
  const timeoutMs = spec.timeoutMs;
  noteArrival(spec);
  count(ee, 'ws.connections_attempted');
  const ws = new WebSocket(flow.url, { headers: flow.headers, handshakeTimeout: timeoutMs });
  ws.on('error', () => {}); // reported through connect() or the conversation, never thrown
  try {
    await connect(ws, timeoutMs);
  } catch (err) {
    count(ee, 'ws.connections_failed');
    recordFailure();
    throw err;
  }
  count(ee, 'ws.connections_open');
  active += 1;
  bucket();
  const openedAt = Date.now();
  let left = false;
  const conversation = new Conversation(ws, ee);
  try {
    do {
      await runFlow(conversation, spec, timeoutMs, ee);
      left = !keepGoing(spec);
    } while (!left);
  } finally {
    active -= 1;
    conversation.closed = conversation.closed || errorWithCode('ws_closed');
    ws.close();
    const length = Date.now() - openedAt;
    sessions.set(length, (sessions.get(length) || 0) + 1);
  }
}

// ---- HTTP -----------------------------------------------------------------------------

// Artillery's http.response_time is the time to first byte: record the same, exactly.
// The request's name (Artillery passes the step's request params) is its endpoint.
function orchestrateAfterResponse(req, res, context, ee, next) {
  const ttfb = res.timings && res.timings.phases && res.timings.phases.firstByte;
  const step = flowStep(context, req);
  const failure = {};
  const failedAs = step ? flowCheck(step, res, context, failure) : null;
  if (step) {
    const kind = res.statusCode >= 400 ? 'non_2xx' : failedAs;
    flowProgress(step, req.name, failure.why ? `${kind}:${failure.why}` : kind, context);
    if (failure.missing) flowNotSent(context, step, failure.missing, ee);
    // Artillery counts its own failed captures; a failed expect check only we know of.
    if (kind === 'expect_failed') ee.emit('counter', 'errors.expect_failed', 1);
  }
  if (typeof ttfb === 'number') {
    recordLatency(ee, 'http.ttfb', ttfb);
    if (res.statusCode >= 400 || failedAs) bucket().errors += 1;
    endpointResponse(req && req.name, ttfb, res.statusCode, failedAs);
  }
  return next();
}

// ---- flows: Artillery captures and fills {{ var }} itself; we check and pause ----------

function flowStep(context, req) {
  const flow = context.vars.orchestrate && context.vars.orchestrate.flow;
  return flow && req ? flow.steps[req.name] || null : null;
}

function jsonAt(value, path) {
  for (const key of path.split('.')) {
    if (Array.isArray(value) && /^[0-9]+$/.test(key) && Number(key) < value.length) {
      value = value[Number(key)];
    } else if (value !== null && typeof value === 'object' && key in value) {
      value = value[key];
    } else {
      return undefined;
    }
  }
  return value;
}

// After a failed capture Artillery ends the user: each later step that uses a value not
// captured (directly, or through a step that, not sent, captured nothing either) is
// counted under its name as a failed request of kind capture_missing, with no latency.
// Artillery's own counters get it too (errors.capture_missing), so totals agree.
function flowNotSent(context, step, vars, ee) {
  const missing = new Set(vars);
  for (const later of Object.values(context.vars.orchestrate.flow.steps)) {
    if (later.index <= step.index || !later.uses.some((v) => missing.has(v))) continue;
    for (const rule of later.capture) missing.add(rule.var);
    recordFailure();
    endpointFailure(later.name, { code: 'capture_missing' });
    ee.emit('counter', 'errors.capture_missing', 1);
  }
}

// An expect check of the step that failed ('expect_failed'), else null; also draws the
// step's think time when it is a range (orchestrateThink sleeps it). A failed capture
// also sets failure.why (the rule) and failure.missing (the values not taken).
function flowCheck(step, res, context, failure) {
  if (step.thinkMax > step.thinkMin) {
    context.vars._orchestrateThinkMs = 1000 * (step.thinkMin + Math.random() * (step.thinkMax - step.thinkMin));
  }
  if (res.statusCode >= 400) return null;
  let body;
  const parsed = () => {
    if (body === undefined) {
      try {
        body = JSON.parse(res.body);
      } catch (err) {
        body = null;
      }
    }
    return body;
  };
  // Artillery captures the values itself (and ends the user when one is missing): the
  // same rules are looked at here only to name the step's error.
  for (const [number, rule] of step.capture.entries()) {
    let value;
    if (rule.kind === 'json') {
      value = jsonAt(parsed(), rule.source);
    } else if (rule.kind === 'header') {
      value = res.headers && res.headers[rule.source.toLowerCase()];
    } else {
      const match = new RegExp(rule.source).exec(String(res.body));
      value = match ? match[1] : undefined;
    }
    if (value === undefined || value === null || typeof value === 'object') {
      failure.why = `${rule.kind} ${rule.source}`;
      failure.missing = step.capture.slice(number).map((r) => r.var);
      return 'capture_failed';
    }
  }
  const expect = step.expect;
  if (!expect) return null;
  if (expect.status !== null && res.statusCode !== expect.status) return 'expect_failed';
  if (expect.json !== null) {
    const value = jsonAt(parsed(), expect.json);
    if (value === undefined || (expect.equals !== null && value !== expect.equals)) return 'expect_failed';
  }
  return null;
}

// Artillery goes on with the next steps after a failed one: the iteration is counted as
// failed at its first failed step, and as completed only when none failed.
function flowProgress(step, name, failedAs, context) {
  const vars = context.vars;
  if (failedAs) {
    if (!vars._flowFailed) flowFailed(name, failedAs);
    vars._flowFailed = true;
  } else if (step.last && !vars._flowFailed) {
    // It ends when the user's last pause does (the next iteration starts then).
    const pauseMs = step.thinkMax > step.thinkMin ? vars._orchestrateThinkMs : 1000 * step.thinkMin;
    const us = Math.max(1, Math.round((Date.now() - vars._flowStart + pauseMs) * 1000));
    flowIterations.completed += 1;
    flowIterations.values.set(us, (flowIterations.values.get(us) || 0) + 1);
  }
}

function orchestrateBeforeRequest(req, context, _ee, next) {
  const step = flowStep(context, req);
  if (step && step.index === 0) {
    context.vars._flowStart = Date.now();
    context.vars._flowFailed = false;
  }
  return next();
}

function orchestrateThink(context, _ee, next) {
  const ms = context.vars._orchestrateThinkMs || 0;
  context.vars._orchestrateThinkMs = 0;
  setTimeout(next, ms);
}

function leave(context) {
  if (context.vars._orchestrateIn) {
    context.vars._orchestrateIn = false;
    active -= 1;
  }
}

// A request that got no response (refused, reset, timed out): Artillery ends the user.
function orchestrateOnError(err, req, context, _ee, next) {
  const step = flowStep(context, req);
  if (step && !context.vars._flowFailed) flowFailed(req.name, (err && err.code) || 'other');
  recordFailure();
  endpointFailure(req && req.name, err);
  leave(context);
  return next();
}

let users = 0;

function orchestrateArrive(context, _ee, next) {
  noteArrival(context.vars.orchestrate);
  const flow = context.vars.orchestrate.flow;
  if (flow && flow.data.length) {
    // The user's data row (per Artillery worker: user N of the worker takes row N mod rows).
    Object.assign(context.vars, flow.data[users % flow.data.length]);
    users += 1;
  }
  context.vars._orchestrateIn = true;
  active += 1;
  bucket();
  return next();
}

function orchestrateLeave(context, _ee, next) {
  leave(context);
  return next();
}

// whileTrue of the closed-model HTTP loop (checked after each pass).
function orchestrateKeepGoing(context, next) {
  const stay = keepGoing(context.vars.orchestrate);
  if (!stay) leave(context);
  return next(stay);
}

module.exports = {
  orchestrateWsSession,
  orchestrateAfterResponse,
  orchestrateOnError,
  orchestrateArrive,
  orchestrateLeave,
  orchestrateKeepGoing,
  orchestrateThink,
  orchestrateBeforeRequest
};
