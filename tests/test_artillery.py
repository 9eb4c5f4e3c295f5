"""Artillery adapter: generated scripts, the parser on real outputs, real runs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from engine_helpers import run_engine, run_prepared

from orchestrator import histogram as hist
from orchestrator.engines import artillery
from orchestrator.engines.artillery import output as parser
from orchestrator.errors import ParseError
from orchestrator.models import LoadTestResult, Status
from orchestrator.process import ToolRun
from orchestrator.scenarios import LoadShape, Scenario, WsFlow, WsMessage

FIXTURES = Path(__file__).parent / "fixtures" / "artillery"
TOKEN = "s3cr3t-t0ken-value"


def ws_scenario(base_url: str, stages: list[dict[str, float]], model: str = "closed") -> Scenario:
    return Scenario.model_validate(
        {
            "name": "ws-test",
            "protocol": "ws",
            "base_url": base_url,
            "ws": {
                "path": "/ws",
                "headers": {"Authorization": f"Bearer {TOKEN}"},
                "loops": 3,
                "messages": [
                    {"payload": '{"type":"ping","id":"p1"}', "think": 0.25},
                    {"payload": '{"type":"student_message","content":"hi"}', "think": 0.5},
                    {"payload": '{"type":"session_update"}', "expect_reply": False},
                ],
            },
            "shape": {"model": model, "stages": stages},
        }
    )


def run_artillery(scenario: Scenario, workdir: Path) -> tuple[LoadTestResult, ToolRun]:
    engine_run = run_engine("artillery", scenario, workdir)
    return engine_run.result, engine_run.run


# ---- generated scripts (golden) ----------------------------------------------------------


def test_closed_hold_ramp_and_spike_phases() -> None:
    scenario = ws_scenario(
        "http://127.0.0.1:9",
        [
            {"duration": 4, "target": 20},  # hold 20 (arrive in the first second)
            {"duration": 3, "target": 50},  # ramp up: 30 more over 3 s
            {"duration": 1, "target": 100},  # spike
            {"duration": 2.5, "target": 10},  # fall: users leave, nobody arrives
        ],
    )
    script = artillery.build_script(scenario, Path("/p/processor.js"))
    assert script["config"]["phases"] == [
        {"duration": 1, "arrivalCount": 20, "maxVusers": 100},
        {"pause": 3},
        {"duration": 3, "arrivalCount": 30, "maxVusers": 100},
        {"duration": 1, "arrivalCount": 50, "maxVusers": 100},
        {"pause": "2500ms"},
    ]
    orchestrate = script["config"]["variables"]["orchestrate"]
    assert orchestrate["shape"]["firstArrivalMs"] == 50  # 1 s / 20 users
    assert orchestrate["shape"]["segments"] == [
        [4, 20, 20],
        [3, 20, 50],
        [1, 50, 100],
        [2.5, 100, 10],
    ]
    assert script["scenarios"] == [
        {"name": "ws-test", "flow": [{"function": "orchestrateWsSession"}]}
    ]


def test_open_model_phases() -> None:
    scenario = ws_scenario(
        "http://127.0.0.1:9",
        [
            {"duration": 2.5, "target": 5},
            {"duration": 3, "target": 20},
            {"duration": 2, "target": 0},
        ],
        model="open",
    )
    phases = artillery.build_script(scenario, Path("/p.js"))["config"]["phases"]
    assert phases == [
        {"duration": "2500ms", "arrivalRate": 5},
        {"duration": 3, "arrivalRate": 5, "rampTo": 20},
        {"duration": 2, "arrivalRate": 20, "rampTo": 0},
    ]
    held_zero = ws_scenario(
        "http://h:1", [{"duration": 2, "target": 0}, {"duration": 1, "target": 3}], "open"
    )
    assert artillery.open_phases(held_zero.shape)[0] == {"pause": 2}


def test_think_times_and_ws_flow_have_units() -> None:
    scenario = ws_scenario("https://example.test:8443/app", [{"duration": 5, "target": 2}])
    text = artillery.render_script(artillery.build_script(scenario, Path("/p.js")))
    data = yaml.safe_load(text)
    ws = data["config"]["variables"]["orchestrate"]["ws"]
    assert ws["url"] == "wss://example.test:8443/ws"
    assert data["config"]["target"] == "https://example.test:8443"
    assert [m["think"] for m in ws["messages"]] == ["250ms", "500ms", "0ms"]
    assert [m["thinkMs"] for m in ws["messages"]] == [250, 500, 0]
    assert [m["expectReply"] for m in ws["messages"]] == [True, True, False]
    # Each message's round trips are recorded under its name (the payload's type).
    assert [m["name"] for m in ws["messages"]] == ["ping", "student_message", "session_update"]
    assert "think: 0.5" not in text


def test_http_script_weights_and_closed_loop() -> None:
    scenario = Scenario.model_validate(
        {
            "name": "h",
            "base_url": "http://127.0.0.1:9",
            "endpoints": [
                {"path": "/health", "weight": 3},
                {"method": "POST", "path": "/api/x", "body": "{}", "weight": 1},
            ],
            "think_time": 0.5,
            "shape": {"stages": [{"duration": 3, "target": 4}]},
        }
    )
    scenarios = artillery.build_script(scenario, Path("/p.js"))["scenarios"]
    assert [s["weight"] for s in scenarios] == [3, 1]
    assert scenarios[1]["flow"] == [
        {
            "loop": [
                # The request's name: the processor records it under its endpoint.
                {"post": {"url": "http://127.0.0.1:9/api/x", "name": "POST /api/x", "body": "{}"}},
                {"think": "500ms"},
            ],
            "whileTrue": "orchestrateKeepGoing",
        }
    ]
    assert scenarios[0]["afterResponse"] == ["orchestrateAfterResponse"]


def test_timeout_covers_shape_and_one_more_loop() -> None:
    scenario = ws_scenario("http://127.0.0.1:9", [{"duration": 6, "target": 5}])
    # Users start no loop after the shape ends, so at most one more loop runs:
    # (0.25 + 10 + 0.5 + 10) s of replies/think + 10 s connect, + 30 s grace.
    assert artillery.timeout_for(scenario) == pytest.approx(6 + 10 + 20.75 + 30)


def test_saved_script_is_redacted(node_tools: Path, tmp_path: Path) -> None:
    scenario = ws_scenario("http://127.0.0.1:9", [{"duration": 2, "target": 2}])
    invocation = artillery.prepare(scenario, tmp_path / "report")
    try:
        saved = invocation.saved_configs[0].read_text(encoding="utf-8")
        real = Path(invocation.argv[-1]).read_text(encoding="utf-8")
        assert TOKEN not in saved and "Authorization" in saved
        assert TOKEN in real
        assert invocation.argv[1:3] == ["--require", str(artillery.telemetry_blocker_path())]
        assert invocation.env["ARTILLERY_DISABLE_TELEMETRY"] == "true"
    finally:
        assert invocation.private_dir is not None
        shutil.rmtree(invocation.private_dir)


# ---- parser on real outputs --------------------------------------------------------------


def parse_fixture(name: str, scenario: Scenario) -> LoadTestResult:
    folder = FIXTURES / name
    return parser.parse_output(
        scenario,
        folder / "artillery-output.json",
        folder / "artillery-data",
        run=None,
        tool_version="2.0.21",
    )


def test_parse_ws_run_with_exact_histogram() -> None:
    result = parse_fixture(
        "ws-ok", ws_scenario("http://127.0.0.1:1", [{"duration": 5, "target": 50}])
    )
    ws = result.websocket
    assert ws is not None and ws.connections_open == 50 and ws.connections_failed == 0
    assert result.total_requests == result.successful_requests == ws.messages_sent == 1008
    assert result.response_time.source == "histogram"
    assert result.histogram is not None
    assert hist.decode(result.histogram).get_total_count() == result.successful_requests
    rt = result.response_time
    assert rt.p50 is not None and rt.p95 is not None and rt.p99 is not None
    assert 0 < rt.p50 <= rt.p95 <= rt.p99
    assert sum(b.requests for b in result.time_series) == result.total_requests
    assert result.time_series[0].t == 0
    assert ws.session_length is not None and ws.session_length.source == "histogram"


def test_parse_refused_ws_run() -> None:
    result = parse_fixture(
        "ws-refused", ws_scenario("http://127.0.0.1:1", [{"duration": 5, "target": 50}], "open")
    )
    assert result.status == Status.TARGET_FAILED
    assert result.errors == {"connection_refused": 250}
    assert result.failed_requests == result.total_requests == 250
    assert result.error_rate == 100.0
    assert result.response_time.p50 is None and "responseTime" in result.missing
    assert result.websocket is not None and result.websocket.connections_open == 0


def test_parse_http_run() -> None:
    scenario = Scenario.model_validate(
        {
            "name": "h",
            "base_url": "http://127.0.0.1:1",
            "endpoints": [{"path": "/health"}, {"path": "/api/error"}],
            "shape": {"stages": [{"duration": 4, "target": 20}]},
        }
    )
    result = parse_fixture("http-ok", scenario)
    assert result.status_codes == {"200": 449, "500": 42}
    assert result.errors == {"non_2xx": 42}
    assert result.total_requests == 491 and result.failed_requests == 42
    assert result.response_time.source == "histogram"
    assert result.response_time.resolution_us == 1000.0


def test_import_native_ws_engine_counts_refusals_once() -> None:
    result = parser.import_file(FIXTURES / "native-ws-refused.json", scenario_name="old")
    # Artillery counts each refusal twice (errors.ECONNREFUSED and errors.connect ECONN...)
    assert result.errors == {"connection_refused": 10}
    assert result.status == Status.TARGET_FAILED
    assert result.websocket is not None and result.websocket.connections_failed == 10


def test_import_native_ws_engine_says_what_is_missing() -> None:
    result = parser.import_file(FIXTURES / "native-ws-ok.json", scenario_name="old")
    assert result.protocol == "ws" and result.status == Status.COMPLETED
    assert result.websocket is not None and result.websocket.messages_sent == 10
    assert result.response_time.p50 is None
    assert "responseTime" in result.missing and "histogram" in result.missing


def test_import_our_output_is_approximate() -> None:
    result = parser.import_file(FIXTURES / "ws-ok" / "artillery-output.json")
    assert result.response_time.source == "approximate"
    assert result.histogram is None and "histogram" in result.missing
    assert result.total_requests == 1008


def test_truncated_output_names_file_and_place(tmp_path: Path) -> None:
    text = (FIXTURES / "ws-ok" / "artillery-output.json").read_text(encoding="utf-8")
    cut = tmp_path / "cut.json"
    cut.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(ParseError, match=r"cut\.json \(line \d+ column \d+\)"):
        parser.import_file(cut)


def test_wrong_structure_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"aggregate": {"counters": {"vusers.created": "many"}}}))
    with pytest.raises(ParseError, match=r"bad\.json \(aggregate\.counters\.vusers\.created\)"):
        parser.import_file(bad)
    empty = tmp_path / "empty.json"
    empty.write_text("")
    with pytest.raises(ParseError, match="empty"):
        parser.import_file(empty)


def test_truncated_worker_data_is_a_parse_error(tmp_path: Path) -> None:
    data = tmp_path / "artillery-data"
    data.mkdir()
    text = (FIXTURES / "ws-ok" / "artillery-data" / "worker.json").read_text(encoding="utf-8")
    (data / "w.json").write_text(text[:500], encoding="utf-8")
    with pytest.raises(ParseError, match=r"w\.json"):
        parser.parse_output(
            ws_scenario("http://127.0.0.1:1", [{"duration": 1, "target": 1}]),
            FIXTURES / "ws-ok" / "artillery-output.json",
            data,
            run=None,
            tool_version=None,
        )


# ---- real runs ---------------------------------------------------------------------------


@pytest.mark.load
def test_real_ws_run_50_connections(
    node_tools: Path, reference_target: Any, tmp_path: Path
) -> None:
    load_s = 5.0
    scenario = ws_scenario(reference_target.url, [{"duration": load_s, "target": 50}])
    result, run = run_artillery(scenario, tmp_path)
    ws = result.websocket
    assert result.status == Status.COMPLETED, result.status_detail
    assert ws is not None
    assert ws.connections_attempted == ws.connections_open == 50
    assert ws.connections_failed == 0
    assert ws.messages_sent is not None and ws.messages_sent >= 50 * 9
    assert result.successful_requests is not None
    assert ws.messages_received is not None and ws.messages_received >= result.successful_requests
    assert result.successful_requests >= 50 * 6  # two round trips per pass, >= 3 passes
    rt = result.response_time
    assert rt.source == "histogram"
    assert rt.p50 is not None and rt.p95 is not None and rt.p99 is not None
    assert 0 < rt.p50 <= rt.p95 <= rt.p99
    assert result.concurrency == 50
    assert result.throughput is not None and result.throughput > 0
    assert TOKEN not in (tmp_path / artillery.SCRIPT_NAME).read_text(encoding="utf-8")
    # Telemetry blocked: the process ends soon after the last metric (without the blocker
    # Artillery 2.0.21 waited ~12 s more here), and the whole run stays close to the load.
    report = json.loads((tmp_path / artillery.OUTPUT_NAME).read_text(encoding="utf-8"))
    last_metric_s = report["aggregate"]["lastMetricAt"] / 1000
    assert run.ended.timestamp() - last_metric_s < 6.0
    # Measured here: ~13-14 s with the blocker, ~25 s without (start-up is 3-4.5 s).
    assert run.elapsed < load_s + 15


@pytest.mark.load
def test_real_ws_run_against_closed_port(
    node_tools: Path, closed_port: int, tmp_path: Path
) -> None:
    scenario = ws_scenario(
        f"http://127.0.0.1:{closed_port}", [{"duration": 2, "target": 10}], model="open"
    )
    result, _run = run_artillery(scenario, tmp_path)
    assert result.status == Status.TARGET_FAILED
    ws = result.websocket
    assert ws is not None and ws.connections_attempted == ws.connections_failed == 20
    assert ws.connections_open == 0
    assert result.errors == {"connection_refused": 20}
    assert result.total_requests == result.failed_requests == 20


@pytest.mark.load
def test_real_http_run(node_tools: Path, reference_target: Any, tmp_path: Path) -> None:
    scenario = Scenario.model_validate(
        {
            "name": "http-art",
            "base_url": reference_target.url,
            "endpoints": [{"path": "/health", "weight": 3}, {"path": "/api/error"}],
            "shape": {"model": "open", "stages": [{"duration": 3, "target": 20}]},
        }
    )
    result, _run = run_artillery(scenario, tmp_path)
    assert result.total_requests == 60
    assert result.status_codes.get("500", 0) == result.errors.get("non_2xx", 0) > 0
    assert result.successful_requests == result.status_codes["200"]
    assert result.response_time.source == "histogram"
    assert result.histogram is not None
    assert hist.decode(result.histogram).get_total_count() == result.total_requests


@pytest.mark.load
def test_interrupted_ws_run_keeps_what_was_measured(
    reference_target: Any, node_tools: Path, tmp_path: Path
) -> None:
    """Ctrl-C before Artillery writes --output: the processor's data is still the result."""
    import signal
    import threading

    scenario = Scenario(
        name="ws-interrupted",
        protocol="ws",
        base_url=reference_target.url,
        ws=WsFlow(messages=[WsMessage(payload='{"type":"ping"}', think=0.05)]),
        shape=LoadShape.constant(5, 30.0),
    )
    invocation = artillery.prepare(scenario, tmp_path)
    started: list[int] = []
    timer = threading.Timer(6.0, lambda: os.killpg(started[0], signal.SIGINT))
    timer.start()
    try:
        engine_run = run_prepared("artillery", scenario, invocation, on_start=started.append)
    finally:
        timer.cancel()
    assert engine_run.run.elapsed < 25
    result = engine_run.result
    assert result.websocket is not None
    # Artillery brings its users in over the first seconds: on a busy machine not all 5
    # may be in by the Ctrl-C; every one that was is counted, open, with its messages.
    ws = result.websocket
    assert ws.connections_open is not None and 1 <= ws.connections_open <= 5
    assert ws.connections_open == ws.connections_attempted
    assert result.total_requests and result.total_requests > 10
    assert result.response_time.p50 is not None
    assert "errors" in result.missing
