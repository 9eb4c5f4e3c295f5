// Preloaded with `node --require` before Artillery: replaces its telemetry client.
//
// ARTILLERY_DISABLE_TELEMETRY only anonymises the events; Artillery still sends them with
// posthog-node and, with no internet, waits ~12 s at exit for the failed DNS look-ups.
// A stub client makes capture and shutdown no-ops, so a run ends when its load ends.
'use strict';

const Module = require('module');

class NoTelemetry {
  capture() {}
  identify() {}
  flush() {}
  async shutdownAsync() {}
  async shutdown() {}
}

const load = Module._load;
Module._load = function loadWithoutTelemetry(request, parent, isMain) {
  if (request === 'posthog-node') {
    return { PostHog: NoTelemetry };
  }
  return load.call(this, request, parent, isMain);
};
