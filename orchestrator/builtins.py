"""The built-in scenarios and suites: the seed plan's ``full`` suite and a short ``ci``.

Each built-in is a :class:`ScenarioConfig`, as if written in ``orchestrate.yaml``; a config
scenario of the same name overrides its fields (:func:`orchestrator.plan.resolve_scenario`).
"""

from __future__ import annotations

from typing import Any

from orchestrator.config import ScenarioConfig
from orchestrator.config_requests import LoginConfig
from orchestrator.flows import FlowConfig

# Endpoints the built-ins load when the config defines all of them (the seed's API); with an
# API of other names a built-in loads every endpoint (name `endpoints:` to choose).
API_ENDPOINTS = ("login", "session-start", "livekit-token", "transcription", "textbooks-hierarchy")
CRITICAL_ENDPOINTS = ("login", "session-start", "livekit-token", "transcription")
SPIKE_ENDPOINTS = ("session-start", "livekit-token")
# The seed's user journey (see seed_journey): the HTTP built-ins below run it when the config
# defines every endpoint it uses, unless a scenario names `endpoints:` or says `journey: false`.
JOURNEY_ENDPOINTS = API_ENDPOINTS
JOURNEY_SCENARIOS = ("normal", "peak", "stress", "spike", "endurance", "api-smoke")
JOURNEY_TRANSCRIPTIONS = 3
# Seconds after each step, drawn uniformly: short enough that 50 users still give every
# step the seed's `throughputPerEndpoint > 10/s` (7 steps, ~2.5 s an iteration: ~20/s).
JOURNEY_THINK = (0.2, 0.5)
# Percent of a stress step's requests failing at which the target counts as broken.
STRESS_BREAKING_ERROR_RATE = 50.0
# Percent of a db-exhaustion step's transactions failing at which the step did not hold.
DB_EXHAUSTION_ERROR_RATE = 1.0


def _ramp_hold(users: int, ramp: float, total: float) -> dict[str, Any]:
    """Ramp from 0 to ``users`` then hold so that the whole scenario lasts ``total``."""
    return {"start": 0, "stages": [
        {"duration": ramp, "target": users},
        {"duration": total - ramp, "target": users},
    ]}  # fmt: skip


def _stress_steps(first: int = 50, last: int = 500, step: int = 50, each: float = 120.0,
                  climb: float = 5.0) -> dict[str, Any]:  # fmt: skip
    """Steps of ``each`` seconds (a short climb, then a real hold) from first to last users."""
    stages: list[dict[str, float]] = [{"duration": each, "target": first}]
    for level in range(first + step, last + 1, step):
        stages += [
            {"duration": climb, "target": level},
            {"duration": each - climb, "target": level},
        ]
    return {"start": first, "stages": stages}


def _spike(base: int = 50, peak: int = 1000, before: float = 60.0,
           after: float = 100.0) -> dict[str, Any]:  # fmt: skip
    """Baseline (``before`` s), 10 s to the peak, 120 s hold, 10 s drop, recovery at
    baseline (``after`` s); by default 5 min."""
    return {"start": base, "stages": [
        {"duration": before, "target": base},
        {"duration": 10, "target": peak},
        {"duration": 120, "target": peak},
        {"duration": 10, "target": base},
        {"duration": after, "target": base},
    ]}  # fmt: skip


_BUILTINS: dict[str, dict[str, Any]] = {
    "normal": {
        "description": "Normal load: 50 users, 10 s ramp, 5 min; the baseline.",
        "shape": _ramp_hold(50, 10, 300),
        "thresholds": ["errorRate < 0.1%", "p50 < 200ms", "p95 < 500ms",
                       "throughputPerEndpoint > 10/s"],
    },
    "peak": {
        "description": "Peak load: 100 users, 30 s ramp, 10 min.",
        "shape": _ramp_hold(100, 30, 600),
        "thresholds": ["errorRate < 1%", "p95 < 500ms", "cpuUtilization < 80%"],
    },
    "stress": {
        "description": "Stress: 50 -> 500 users in steps of 50 every 2 min (20 min); "
        "finds the breaking point (stops after a step in which over half the requests "
        "failed).",
        "shape": _stress_steps(),
        "thresholds": ["errorRate < 5%", "p99 < 1000ms"],
        # Past half the requests failing the target is broken: more steps would only
        # hammer it (mostly fast failures) for the rest of the 20 min. The SLA (5%) still
        # judges the run; this only decides when there is nothing more to learn.
        "stop_when_error_rate": STRESS_BREAKING_ERROR_RATE,
    },
    "spike": {
        "description": "Spike: baseline 50 users, to 1000 in 10 s, hold 120 s, drop, then "
        "100 s at baseline to measure recovery.",
        "shape": _spike(),
        "thresholds": ["errorRate < 5%"],
    },
    "endurance": {
        "description": "Endurance: 50 users, 30 s ramp, 60 min; finds memory leaks (a trend "
        "verdict on memory, threads and open files).",
        "shape": _ramp_hold(50, 30, 3600),
        "thresholds": ["errorRate < 0.1%", "memoryDelta < 20MB", "memoryLeak == false"],
    },
    "ws-normal": {
        "description": "WebSocket normal: 50 connections arriving at 5/s, 10 min, ~100 msg/s.",
        "protocol": "ws", "shape": _ramp_hold(50, 10, 600),
        "ws_message_rate": 2.0, "thresholds": ["errorRate < 1%"],
    },
    "ws-stress": {
        "description": "WebSocket stress: ramp to 500 connections in 2 min, 10 min, ~500 msg/s.",
        "protocol": "ws", "shape": _ramp_hold(500, 120, 600),
        "ws_message_rate": 1.0, "thresholds": ["errorRate < 5%"],
    },
    "ws-spike": {
        "description": "WebSocket spike: 50 connections for 30 s, burst to 1000 in 10 s, "
        "hold 2 min (~1000 msg/s), drop back to 50, then 60 s at 50 to measure recovery.",
        "protocol": "ws", "shape": _spike(50, 1000, before=30, after=60),
        "ws_message_rate": 1.0, "thresholds": ["errorRate < 10%"],
    },
    "db-pool": {
        "description": "Database pool: 50 concurrent clients, mixed: 4 point reads to 1 "
        "TPC-B-like read/write transaction, 5 min.",
        "protocol": "postgres", "users": 50, "hold": 300,
        "query_type": "mixed", "query_weights": {"read": 4, "transaction": 1},
        "thresholds": ["errorRate < 1%", "p95 < 500ms"],
    },
    "db-exhaustion": {
        "description": "Database pool exhaustion: 5 -> 100 clients of point reads in steps "
        "of 5 every 10 s, until connections are refused, a client waits over 1 s for a "
        "server connection or p95 passes 500 ms; reports the most clients that held.",
        "protocol": "postgres", "shape": _stress_steps(5, 100, 5, each=10.0, climb=1.0),
        # Point reads: the limit found is the connections', not row locks'.
        "query_type": "read",
        "stop_when_error_rate": DB_EXHAUSTION_ERROR_RATE, "stop_when_p95": 500.0,
        "stop_when_pool_wait": 1.0,
        # The seed: "Supabase free tier minimum" (findDatabaseCapacityLimit > 15).
        "thresholds": ["maxDatabaseConnections > 15"],
    },
    "api-smoke": {
        "description": "CI smoke: 10 users, 30 s, on the seed's journey (or its critical "
        "endpoints).",
        "users": 10, "hold": 30,
        "thresholds": ["errorRate < 5%", "p95 < 1000ms"],
    },
    "ws-smoke": {
        "description": "CI smoke: 10 WebSocket connections, 20 s.",
        "protocol": "ws", "users": 10, "hold": 20,
        "ws_message_rate": 1.0, "thresholds": ["errorRate < 5%"],
    },
}  # fmt: skip


def seed_journey(login: LoginConfig | None) -> FlowConfig:
    """The seed's journey as a flow of the config's endpoints: login (its token captured),
    session start (its id captured), a LiveKit token for that session, transcriptions,
    the textbook hierarchy; each step with the login's token and a think time. The token's
    path and header are the config's login's, so a target that answers otherwise works."""
    token_path = login.token_path if login is not None else "token"
    header = login.header if login is not None else "Authorization"
    template = login.template if login is not None else "Bearer {token}"
    auth = {header: template.replace("{token}", "{{token}}")}
    think = list(JOURNEY_THINK)
    steps: list[dict[str, Any]] = [
        {"endpoint": "login", "capture": [{"json": token_path, "as": "token"}], "think": think},
        {
            "endpoint": "session-start",
            "headers": auth,
            "capture": [{"json": "sessionId", "as": "sessionId"}],
            "think": think,
        },
        {
            "endpoint": "livekit-token",
            "headers": auth,
            "body": {"sessionId": "{{sessionId}}"},
            "think": think,
        },
        *(
            {"endpoint": "transcription", "headers": auth, "think": think}
            for _ in range(JOURNEY_TRANSCRIPTIONS)
        ),
        {"endpoint": "textbooks-hierarchy", "headers": auth, "think": think},
    ]
    return FlowConfig.model_validate({"steps": steps})


BUILTIN_SCENARIOS = {name: ScenarioConfig.model_validate(s) for name, s in _BUILTINS.items()}
PREFERRED_ENDPOINTS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("normal", "peak", "stress", "endurance"), API_ENDPOINTS),
    "spike": SPIKE_ENDPOINTS,
    "api-smoke": CRITICAL_ENDPOINTS,
}
BUILTIN_SUITES: dict[str, list[str]] = {
    "full": ["normal", "peak", "stress", "spike", "endurance",
             "ws-normal", "ws-stress", "ws-spike", "db-pool", "db-exhaustion"],
    "ci": ["api-smoke", "ws-smoke"],
}  # fmt: skip
