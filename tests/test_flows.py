"""User journeys (flows): config validation, each engine's generated config (golden), and
real runs of the same three-step flow on autocannon, k6 and Artillery against the
reference target, whose ``livekit/token`` refuses a session id it did not issue."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from engine_helpers import run_engine

from orchestrator.engines import artillery, autocannon, k6
from orchestrator.errors import ConfigError
from orchestrator.models import LoadTestResult
from orchestrator.plan import load_config, plan_scenario, resolve_scenario
from orchestrator.scenarios import Scenario

GOLDEN = Path(__file__).parent / "golden" / "flow-configs.json"
ENGINES = ["autocannon", "k6", "artillery"]
STEPS = ["login", "session-start", "livekit-token"]


def flow_yaml(url: str, **extra: Any) -> dict[str, Any]:
    session: dict[str, Any] = {
        "endpoint": "session-start",
        "headers": {"Authorization": "Bearer {{token}}"},
        "capture": [{"json": "sessionId", "as": "sid"}],
    }
    livekit = {
        "endpoint": "livekit-token",
        "headers": {"Authorization": "Bearer {{token}}"},
        "body": {"sessionId": "{{sid}}", "identity": "{{email}}"},
        "expect": {"status": 200, "json": "room"},
    }
    login = {
        "endpoint": "login",
        "body": {"email": "{{email}}", "password": "{{password}}"},
        "capture": [{"json": "token", "as": "token"}],
    }
    scenario = {
        "users": 3,
        "hold": 3,
        "flow": {"data": "users.csv", "steps": [login, session, livekit]},
    }
    scenario.update(extra)
    return {"target": {"base_url": url}, "scenarios": {"journey": scenario}}


def plan(tmp_path: Path, data: dict[str, Any], tool: str = "k6") -> Scenario:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "users.csv").write_text(
        "email,password\ntest@example.com,TestPassword123!\n", encoding="utf-8"
    )
    data["scenarios"]["journey"].setdefault("tool", tool)
    path = tmp_path / "orchestrate.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    config = load_config(path)
    return plan_scenario("journey", resolve_scenario("journey", config), config).scenario


# ---- validation ----------------------------------------------------------------------


def test_flow_steps_are_the_endpoints(tmp_path: Path) -> None:
    scenario = plan(tmp_path, flow_yaml("http://127.0.0.1:8000"))
    assert scenario.request_names == STEPS
    assert scenario.flow is not None
    assert scenario.flow.data == [{"email": "test@example.com", "password": "TestPassword123!"}]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["flow"]["steps"][1].pop("capture"), "steps.2 (livekit-token) uses sid"),
        (
            lambda s: s["flow"]["steps"][0]["capture"][0].update(regex="("),
            "scenarios.journey.flow",
        ),
        (lambda s: s["flow"]["steps"][0].update(endpoint="nope"), "flow.steps.0.endpoint"),
        (lambda s: s["flow"].update(data="missing.csv"), "scenarios.journey.flow.data"),
        (lambda s: s["flow"]["steps"][0].update(think=[2, 1]), "think"),
    ],
)
def test_bad_flows_are_refused_naming_the_key(tmp_path: Path, change: Any, message: str) -> None:
    data = flow_yaml("http://127.0.0.1:8000")
    change(data["scenarios"]["journey"])
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan(tmp_path, data)


# ---- golden: what each engine is given --------------------------------------------------


def generated(tmp_path: Path) -> dict[str, Any]:
    scenario = plan(tmp_path, flow_yaml("http://127.0.0.1:8000"))
    plan_ac = autocannon.build_plan(scenario, Path("/out/autocannon-output.json"))
    script = artillery.build_script(scenario, Path("/processor.js"))
    return {
        "autocannon": {"requests": plan_ac["requests"], "flow": plan_ac["flow"]},
        "k6": k6.build_config(scenario)["flow"],
        "artillery": {
            "scenarios": script["scenarios"],
            "flow": script["config"]["variables"]["orchestrate"]["flow"],
        },
    }


def test_generated_configs_match_golden(tmp_path: Path) -> None:
    got = json.loads(json.dumps(generated(tmp_path)))
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert got == json.loads(GOLDEN.read_text(encoding="utf-8"))


# ---- real runs ----------------------------------------------------------------------


def run(tool: str, scenario: Scenario, workdir: Path) -> LoadTestResult:
    return run_engine(tool, scenario, workdir).result


def steps_of(result: LoadTestResult) -> dict[str, Any]:
    return {e.name: e for e in result.endpoints}


def test_same_flow_same_counts_on_every_engine(reference_target: Any, tmp_path: Path) -> None:
    users = 3
    # A pause after the last step paces the iterations (about 6 per user in 3 s), so the
    # engines' own overheads do not decide the counts.
    data = flow_yaml(reference_target.url, users=users, hold=3)
    data["scenarios"]["journey"]["flow"]["steps"][2]["think"] = 0.5
    iterations: dict[str, int] = {}
    for tool in ENGINES:
        scenario = plan(tmp_path / tool, json.loads(json.dumps(data)), tool)
        result = run(tool, scenario, tmp_path / tool / "out")
        steps = steps_of(result)
        assert list(steps) == STEPS, tool
        counts = [steps[name].total_requests for name in STEPS]
        # Every step of every iteration happened, in order: a later step never ran more
        # often than an earlier one, and at most once less per user (cut by the end).
        assert counts[0] >= counts[1] >= counts[2] >= counts[0] - users, (tool, counts)
        # No step refused: the target got every captured token and session id right.
        for name in STEPS:
            assert steps[name].failed_requests == 0, (tool, name, steps[name].errors)
            assert set(steps[name].status_codes) == {"200"}, (tool, name)
        iterations[tool] = counts[2]
        # Per flow: each iteration that got through the last step completed, none failed.
        assert result.flow is not None
        assert result.flow.iterations_completed == counts[2], (tool, result.flow)
        assert result.flow.iterations_failed == 0
        p50 = result.flow.iteration_time.p50
        assert p50 is not None
        assert p50 >= 500  # the 0.5 s pause is in every iteration
    # Within one iteration per user; Artillery brings its users in over its first second
    # (arrivals), which at 0.5 s a pass costs each of them up to two more.
    assert abs(iterations["autocannon"] - iterations["k6"]) <= users, iterations
    assert abs(iterations["artillery"] - iterations["k6"]) <= 2 * users, iterations


@pytest.mark.parametrize("tool", ENGINES)
def test_a_failed_capture_is_the_steps_error(
    reference_target: Any, tmp_path: Path, tool: str
) -> None:
    data = flow_yaml(reference_target.url, users=2, hold=2)
    data["scenarios"]["journey"]["flow"]["steps"][1]["capture"] = [
        {"json": "noSuchKey", "as": "sid"}
    ]
    result = run(tool, plan(tmp_path, data, tool), tmp_path / "out")
    steps = steps_of(result)
    session = steps["session-start"]
    assert session.total_requests > 0
    # The result says which step and why.
    assert result.flow is not None
    assert result.flow.iterations_completed == 0
    assert [(f.step, f.kind, f.detail) for f in result.flow.failures] == [
        ("session-start", "capture_failed", "json noSuchKey not found in the reply")
    ]
    assert result.flow.failures[0].iterations == session.total_requests
    if tool == "artillery":
        # Artillery's own capture ends the user at its first failed capture: each user
        # got to session-start once, and no further.
        assert session.total_requests <= 2
    assert session.errors == {"capture_failed": session.total_requests}
    # The step using the value not captured: not sent, counted as its own failed request
    # of a named kind, once per failed iteration, without a latency.
    livekit = steps["livekit-token"]
    assert livekit.total_requests == session.total_requests
    assert livekit.failed_requests == livekit.total_requests
    assert livekit.successful_requests == 0
    assert livekit.errors == {"capture_missing": livekit.total_requests}
    assert livekit.status_codes == {}
    assert livekit.response_time.p50 is None
    # Totals agree everywhere: the run's, and each step's.
    for step in steps.values():
        assert step.total_requests == step.successful_requests + step.failed_requests
    total, ok, failed = result.total_requests, result.successful_requests, result.failed_requests
    assert total is not None and ok is not None and failed is not None
    assert total == ok + failed
    assert total == sum(s.total_requests for s in steps.values())
    assert result.errors.get("capture_missing") == livekit.total_requests


@pytest.mark.parametrize("tool", ENGINES)
def test_think_times_pace_the_users(reference_target: Any, tmp_path: Path, tool: str) -> None:
    # 10 users, 1 s after each of 2 steps: each user sends 1 request a second.
    steps = [
        {"endpoint": "health", "think": 1},
        {"endpoint": "textbooks-hierarchy", "think": 1},
    ]
    data = {
        "target": {"base_url": reference_target.url},
        "scenarios": {"paced": {"tool": tool, "users": 10, "hold": 5, "flow": steps}},
    }
    path = tmp_path / "orchestrate.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    config = load_config(path)
    scenario = plan_scenario("paced", resolve_scenario("paced", config), config).scenario
    result = run(tool, scenario, tmp_path / "out")
    # A 5 s run at one request per user a second is +-1 request per user (20%) at its
    # edges (who sends at exactly 5.0 s): judge the seconds in between, once every user is in
    # (Artillery brings them in over its first second).
    inner = [b.requests for b in result.time_series if 1 <= b.t < 4]
    assert len(inner) == 3, result.time_series
    assert sum(inner) / len(inner) == pytest.approx(10.0, rel=0.10), inner
    assert result.flow is not None
    assert result.flow.iteration_time.p50 == pytest.approx(2000, rel=0.10)


def test_secret_data_columns_are_masked_in_saved_configs(tmp_path: Path) -> None:
    scenario = plan(tmp_path, flow_yaml("http://127.0.0.1:8000"), "k6")
    invocation = k6.prepare(scenario, tmp_path / "out")
    try:
        saved = invocation.saved_configs[0].read_text(encoding="utf-8")
        real = next(invocation.private_dir.iterdir()).read_text(encoding="utf-8")  # type: ignore[union-attr]
    finally:
        import shutil

        shutil.rmtree(invocation.private_dir or tmp_path / "none", ignore_errors=True)
    assert "TestPassword123!" in real  # the tool gets the value...
    assert "TestPassword123!" not in saved  # ...the report folder never does
    assert "test@example.com" in saved


def test_autocannon_flows_need_pipelining_1(tmp_path: Path) -> None:
    data = flow_yaml("http://127.0.0.1:8000", pipelining=4)
    scenario = plan(tmp_path, data, "autocannon")
    with pytest.raises(ConfigError, match="pipelining must be 1"):
        autocannon.check_scenario(scenario)


def test_the_target_refuses_a_session_it_did_not_issue(reference_target: Any) -> None:
    import urllib.error
    import urllib.request

    def post(path: str, body: dict[str, Any], token: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            reference_target.url + path, json.dumps(body).encode(), headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, None

    _, login = post(
        "/api/auth/login", {"email": "test@example.com", "password": "TestPassword123!"}
    )
    token = login["token"]
    _, session = post("/api/session/start", {}, token)
    assert post("/api/livekit/token", {"sessionId": session["sessionId"]}, token)[0] == 200
    assert post("/api/livekit/token", {"sessionId": 10**9}, token)[0] == 403
    assert post("/api/livekit/token", {"sessionId": "{{sid}}"}, token)[0] == 403
    assert post("/api/livekit/token", {"room": "r1"}, token)[0] == 200  # none given: as before
