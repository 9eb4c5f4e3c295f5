"""Built-in suites: golden shapes pin every scenario (a ramp must really hold afterwards)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from orchestrator.builtins import BUILTIN_SUITES
from orchestrator.config import Config, parse_config
from orchestrator.errors import ConfigError
from orchestrator.plan import PlannedScenario, Suite, build_suite, load_config
from orchestrator.recovery import spike_phases

GOLDEN = Path(__file__).parent / "golden" / "suites.json"


@pytest.fixture
def config() -> Config:
    return parse_config({}, env={})


def describe(planned: PlannedScenario) -> dict[str, Any]:
    scenario = planned.scenario
    out: dict[str, Any] = {
        "name": planned.name,
        "tool": planned.tool,
        "protocol": scenario.protocol,
        "requires": planned.requires,
        "shape": scenario.shape.model_dump(),
        "thresholds": [t.text for t in planned.thresholds],
    }
    if scenario.endpoints:
        out["endpoints"] = [f"{e.method} {e.path}" for e in scenario.endpoints]
    if scenario.protocol == "postgres":
        out["database"] = {
            "query_type": scenario.query_type,
            "query_weights": scenario.query_weights,
            "stop_when": [scenario.stop_when_error_rate, scenario.stop_when_p95,
                          scenario.stop_when_pool_wait],
        }  # fmt: skip
    if scenario.ws is not None:
        out["ws"] = {
            "path": scenario.ws.path,
            "loops": scenario.ws.loops,
            "messages": [[m.payload, m.think] for m in scenario.ws.messages],
        }
    return out


def describe_suites(config: Config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, scale in (("full", 1.0), ("ci", 1.0), ("full", 0.05)):
        suite = build_suite(name, config, scale=scale)
        key = name if scale == 1.0 else f"{name}@{scale}"
        out[key] = {
            "scenarios": [describe(p) for p in suite.scenarios],
            "suite_thresholds": [t.text for t in suite.suite_thresholds],
            "total_duration": suite.total_duration,
        }
    return out


def test_golden_shapes_of_every_builtin_scenario(config: Config) -> None:
    actual = describe_suites(config)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(actual, indent=1) + "\n", encoding="utf-8")
    assert actual == json.loads(GOLDEN.read_text(encoding="utf-8"))


def segments(suite: Suite, name: str) -> list[tuple[float, int, int]]:
    return next(p for p in suite.scenarios if p.name == name).scenario.shape.segments()


def test_full_suite_follows_the_seed_plan(config: Config) -> None:
    suite = build_suite("full", config)
    assert [p.name for p in suite.scenarios] == BUILTIN_SUITES["full"]
    by_name = {p.name: p for p in suite.scenarios}
    totals = {p.name: p.scenario.shape.total_duration for p in suite.scenarios}
    assert totals == {
        "normal": 300, "peak": 600, "stress": 1200, "spike": 300, "endurance": 3600,
        "ws-normal": 600, "ws-stress": 600, "ws-spike": 230, "db-pool": 300,
        "db-exhaustion": 200,
    }  # fmt: skip
    # A ramp then a real hold at the target for the rest of the time.
    assert segments(suite, "normal") == [(10, 0, 50), (290, 50, 50)]
    assert segments(suite, "peak") == [(30, 0, 100), (570, 100, 100)]
    assert segments(suite, "endurance") == [(30, 0, 50), (3570, 50, 50)]
    # WebSocket spike: the seed's burst and hold, between a baseline and a recovery window.
    assert segments(suite, "ws-spike") == [
        (30, 50, 50), (10, 50, 1000), (120, 1000, 1000), (10, 1000, 50), (60, 50, 50),
    ]  # fmt: skip
    ws_spike = spike_phases(by_name["ws-spike"].scenario.shape)
    assert ws_spike is not None and ws_spike.lengths() == (30, 130, 60)
    # Spike: baseline, 10 s up, 120 s at 1000, drop, recovery window at the baseline.
    assert segments(suite, "spike") == [
        (60, 50, 50), (10, 50, 1000), (120, 1000, 1000), (10, 1000, 50), (100, 50, 50),
    ]  # fmt: skip
    # Stress: every level 50, 100, ..., 500 is held for most of its two minutes.
    holds = [(d, low) for d, low, high in segments(suite, "stress") if low == high]
    assert [level for _, level in holds] == list(range(50, 501, 50))
    assert all(d >= 115 for d, _ in holds)
    by_name = {p.name: p for p in suite.scenarios}
    assert {p.tool for p in suite.scenarios if p.scenario.protocol == "http"} == {"autocannon"}
    assert {p.tool for p in suite.scenarios if p.scenario.protocol == "ws"} == {"artillery"}
    db = by_name["db-pool"]
    assert (db.tool, db.requires, db.scenario.protocol) == ("pgbench", "pgbench", "postgres")
    assert db.scenario.base_url == config.database.url
    assert db.scenario.shape.peak == 50
    assert (db.scenario.query_type, db.scenario.query_weights) == (
        "mixed", {"read": 4, "transaction": 1},
    )  # fmt: skip
    # db-exhaustion: 5 -> 100 clients, each level held ~10 s, stopping at the first that
    # did not hold; its gate is the limit it finds.
    exhaustion = by_name["db-exhaustion"]
    holds = [(d, low) for d, low, high in segments(suite, "db-exhaustion") if low == high]
    assert [level for _, level in holds] == list(range(5, 101, 5))
    assert exhaustion.scenario.query_type == "read"
    assert (exhaustion.scenario.stop_when_p95, exhaustion.scenario.stop_when_pool_wait) == (
        500.0, 1.0,
    )  # fmt: skip
    assert [t.text for t in exhaustion.thresholds] == ["maxDatabaseConnections > 15"]
    # The HTTP built-ins run the seed's journey (the default config has its endpoints).
    for name in ("normal", "peak", "stress", "spike", "endurance"):
        assert by_name[name].scenario.request_names == JOURNEY, name
    assert "/health" not in [e.path for e in by_name["normal"].scenario.endpoints]
    assert [t.text for t in by_name["normal"].thresholds] == [
        "errorRate < 0.1%", "p50 < 200ms", "p95 < 500ms", "throughputPerEndpoint > 10/s",
    ]  # fmt: skip
    assert [t.metric for t in suite.suite_thresholds] == [
        "aggregateThroughput", "aggregateWsMessageRate", "memoryDeltaPer100Users",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "connections", "rate"), [("ws-normal", 50, 100), ("ws-stress", 500, 500)]
)
def test_ws_message_rates_and_connection_lifetimes(
    config: Config, name: str, connections: int, rate: float
) -> None:
    planned = next(p for p in build_suite("full", config).scenarios if p.name == name)
    flow = planned.scenario.ws
    assert flow is not None
    loop_seconds = sum(m.think for m in flow.messages)
    per_connection = len(flow.messages) / loop_seconds
    assert per_connection * connections == pytest.approx(rate, rel=0.01)
    # Each connection keeps talking for the whole scenario, not one pass of the flow.
    assert flow.loops * loop_seconds >= planned.scenario.shape.total_duration
    assert (flow.loops - 1) * loop_seconds < planned.scenario.shape.total_duration
    # The seed's messages, in the seed's order and proportions.
    assert [json.loads(m.payload)["type"] for m in flow.messages] == [
        "ping", "student_message", "session_update",
    ]  # fmt: skip
    assert flow.messages[2].think == pytest.approx(5 * flow.messages[0].think, rel=0.01)


JOURNEY = [
    "login", "session-start", "livekit-token",
    "transcription", "transcription #2", "transcription #3", "textbooks-hierarchy",
]  # fmt: skip


def test_the_journey_carries_the_token_and_session(config: Config) -> None:
    flow = build_suite("ci", config).scenarios[0].scenario.flow
    assert flow is not None
    steps = {s.name: s for s in flow.steps}
    assert [c.var for c in steps["login"].capture] == ["token"]
    assert [c.var for c in steps["session-start"].capture] == ["sessionId"]
    assert json.loads(steps["livekit-token"].body or "") == {"sessionId": "{{sessionId}}"}
    for step in flow.steps[1:]:
        assert step.headers["Authorization"] == "Bearer {{token}}", step.name
    assert all(s.think == (0.2, 0.5) for s in flow.steps)


def test_endpoints_or_journey_false_keep_weighted_requests(tmp_path: Path) -> None:
    path = tmp_path / "orchestrate.yaml"
    path.write_text(
        "scenarios:\n  normal: {endpoints: [health, login]}\n  spike: {journey: false}\n",
        encoding="utf-8",
    )
    config = load_config(path)
    by_name = {p.name: p for p in build_suite("full", config).scenarios}
    assert by_name["normal"].scenario.flow is None
    assert by_name["normal"].scenario.request_names == ["health", "login"]
    assert by_name["spike"].scenario.flow is None
    assert by_name["spike"].scenario.request_names == ["session-start", "livekit-token"]
    assert by_name["peak"].scenario.request_names == JOURNEY
    # An API without the seed's endpoints: every endpoint, weighted, as before.
    path.write_text("endpoints:\n  home: {path: /}\n", encoding="utf-8")
    other = {p.name: p for p in build_suite("full", load_config(path)).scenarios}
    assert other["normal"].scenario.flow is None
    assert other["normal"].scenario.request_names == ["home"]


def test_ci_suite_is_short(config: Config) -> None:
    suite = build_suite("ci", config)
    assert [p.name for p in suite.scenarios] == ["api-smoke", "ws-smoke"]
    assert suite.total_duration < 120
    smoke = suite.scenarios[0]
    assert smoke.scenario.request_names == JOURNEY
    assert smoke.scenario.shape.peak == 10 and smoke.scenario.shape.total_duration == 30
    assert [t.text for t in smoke.thresholds] == ["errorRate < 5%", "p95 < 1000ms"]
    assert suite.suite_thresholds == []


def test_scale_shortens_stages_but_never_users(config: Config) -> None:
    full = build_suite("full", config)
    quick = build_suite("full", config, scale=0.05)
    for long, short in zip(full.scenarios, quick.scenarios, strict=True):
        for a, b in zip(long.scenario.shape.stages, short.scenario.shape.stages, strict=True):
            assert b.target == a.target
            assert b.duration == max(1.0, round(a.duration * 0.05, 3))
        assert short.scenario.shape.peak == long.scenario.shape.peak
    normal = next(p for p in quick.scenarios if p.name == "normal")
    assert normal.scenario.shape.segments() == [(1.0, 0, 50), (14.5, 50, 50)]
    stress = next(p for p in quick.scenarios if p.name == "stress")
    assert min(s.duration for s in stress.scenario.shape.stages) == 1.0
    ws = next(p for p in quick.scenarios if p.name == "ws-normal").scenario
    assert ws.ws is not None
    assert ws.ws.loops == math.ceil(30.5 / sum(m.think for m in ws.ws.messages))
    with pytest.raises(ConfigError, match="--scale must be > 0"):
        build_suite("full", config, scale=0)


def test_only_and_skip(config: Config) -> None:
    only = build_suite("full", config, only=["spike", "normal"])
    assert [p.name for p in only.scenarios] == ["normal", "spike"]  # suite order kept
    skipped = build_suite("full", config, skip=["db-pool", "endurance"])
    assert len(skipped.scenarios) == 8
    assert "db-pool" not in [p.name for p in skipped.scenarios]
    # What was left out, with its transport: suite-wide gates about it are not applicable.
    assert skipped.left_out == {"endurance": "http", "db-pool": "postgres"}
    alone = build_suite("full", config, only=["db-pool"])
    assert set(alone.left_out) == set(BUILTIN_SUITES["full"]) - {"db-pool"}
    assert alone.left_out["ws-spike"] == "ws" and alone.left_out["db-exhaustion"] == "postgres"
    with pytest.raises(ConfigError, match=r"no scenario 'nrmal'; its scenarios: normal, peak"):
        build_suite("full", config, only=["nrmal"])
    with pytest.raises(ConfigError, match="no scenario 'normal'; its scenarios: api-smoke"):
        build_suite("ci", config, skip=["normal"])
    with pytest.raises(ConfigError, match="leave no scenario"):
        build_suite("ci", config, skip=["api-smoke", "ws-smoke"])


def test_unknown_suite_lists_the_known_ones(config: Config) -> None:
    with pytest.raises(ConfigError, match=r"unknown suite 'fll'; known: ci, full"):
        build_suite("fll", config)


def test_config_overrides_builtins_and_adds_suites() -> None:
    config = parse_config(
        {
            "target": {"base_url": "http://127.0.0.1:3006"},
            "endpoints": {
                "home": {"path": "/"},
                "search": {"path": "/search", "weight": 3},
                "session-start": {"method": "POST", "path": "/s"},
            },
            "scenarios": {
                "normal": {"users": 5, "ramp": 2, "hold": 8},
                "peak": {"thresholds": ["p95 < 300ms"]},
                "browse": {"endpoints": ["search"], "tool": "k6", "users": 3, "hold": 4,
                           "think_time": 0.5},
                "chat": {"protocol": "ws", "users": 2, "hold": 6,
                         "ws": {"path": "/chat", "loops": 2,
                                "messages": [{"send": {"hi": 1}, "think": 1}]}},
            },
            "suites": {"mine": {"scenarios": ["browse", "normal", "chat"],
                                "thresholds": ["aggregateThroughput > 5/s"]}},
        },
        env={},
    )  # fmt: skip
    full = {p.name: p for p in build_suite("full", config).scenarios}
    normal = full["normal"]
    # Only the load changed; tool, thresholds and description come from the built-in.
    assert normal.scenario.shape.segments() == [(2, 0, 5), (8, 5, 5)]
    assert normal.tool == "autocannon" and len(normal.thresholds) == 4
    assert normal.scenario.base_url == "http://127.0.0.1:3006"
    # Not the seed's API (only some of its names): the built-ins load every endpoint.
    assert [e.name for e in normal.scenario.endpoints] == ["home", "search", "session-start"]
    assert [e.name for e in full["spike"].scenario.endpoints] == ["home", "search", "session-start"]
    assert [t.text for t in full["peak"].thresholds] == ["p95 < 300ms"]
    assert full["peak"].scenario.shape.peak == 100
    mine = build_suite("mine", config)
    browse, normal2, chat = mine.scenarios
    assert (browse.tool, browse.scenario.think_time) == ("k6", 0.5)
    assert [(e.path, e.weight) for e in browse.scenario.endpoints] == [("/search", 3)]
    assert normal2 == normal
    assert chat.tool == "artillery" and chat.scenario.ws is not None
    assert chat.scenario.ws.loops == 2 and chat.scenario.ws_url == "ws://127.0.0.1:3006/chat"
    assert [t.text for t in mine.suite_thresholds] == ["aggregateThroughput > 5/s"]


def test_stress_stops_at_its_breaking_point_and_a_config_can_change_it(config: Config) -> None:
    full = {p.name: p.scenario for p in build_suite("full", config).scenarios}
    assert full["stress"].stop_when_error_rate == 50.0
    # Only the stress test looks for a breaking point; the others run their whole shape.
    assert {n for n, s in full.items() if s.stop_when_error_rate is not None} == {
        "stress", "db-exhaustion",
    }  # fmt: skip
    own = parse_config({"scenarios": {"stress": {"stop_when_error_rate": 20}}}, env={})
    stress = build_suite("full", own, only=["stress"]).scenarios[0].scenario
    assert stress.stop_when_error_rate == 20.0
    assert stress.shape == full["stress"].shape
    with pytest.raises(ConfigError, match="stop_when_error_rate"):
        parse_config({"scenarios": {"stress": {"stop_when_error_rate": 0}}}, env={})
