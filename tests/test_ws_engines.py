"""The same WebSocket scenario is the same work on Artillery and on k6: as many connections,
each looping the flow for as long as the shape keeps it (closed model), or one session of
``loops`` passes per arrival (open model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.engines import k6
from orchestrator.execute import RunSettings, run_scenario
from orchestrator.models import LoadTestResult, Status, WebSocketStats
from orchestrator.scenarios import LoadShape, Scenario, Stage, WsFlow, WsMessage

URL = "http://127.0.0.1:8123"
THINK = 0.05


def ping_scenario(url: str, shape: LoadShape, loops: int = 1) -> Scenario:
    """As `orchestrate run --url ws://…/ws --message '{"type":"ping"}'` builds it."""
    return Scenario(
        name="ws-same-work",
        protocol="ws",
        base_url=url,
        shape=shape,
        ws=WsFlow(messages=[WsMessage(payload='{"type":"ping"}', think=THINK)], loops=loops),
        timeout=2,
    )


def run_on(tool: str, scenario: Scenario, workdir: Path) -> tuple[LoadTestResult, WebSocketStats]:
    result = run_scenario(
        scenario, tool, workdir / tool, None, RunSettings(sink=None), "not asked to sample"
    )
    assert result.status is Status.COMPLETED, (tool, result.status_detail)
    assert result.errors == {}, tool
    ws = result.websocket
    assert ws is not None and ws.connections_failed == 0, tool
    return result, ws


def per_connection(ws: WebSocketStats) -> float:
    assert ws.messages_sent is not None and ws.connections_open
    return ws.messages_sent / ws.connections_open


# ---- the k6 config (golden, no load) --------------------------------------------------


def test_k6_ws_config_is_golden() -> None:
    config = k6.build_config(ping_scenario(URL, LoadShape.constant(5, 3)))
    assert config == {
        "options": {
            # One VU per connection slot; a slot holds its connection for the whole run.
            "scenarios": {
                "main": {
                    "executor": "constant-vus",
                    "vus": 5,
                    "duration": "3s",
                    "gracefulStop": "6s",  # connect timeout + one pass (reply timeout, think) + 1
                }
            },
            "discardResponseBodies": True,
            "summaryTrendStats": k6.TREND_STATS,
            "systemTags": k6.SYSTEM_TAGS,
        },
        "http": None,
        "ws": {
            "url": "ws://127.0.0.1:8123/ws",
            "headers": {},
            "loops": 1,
            "shape": {"model": "closed", "endS": 3.0, "segments": [[3.0, 5, 5]]},
            "timeoutMs": 2000,
            "watchMs": 200,
            "messages": [
                {
                    "name": "ping",  # tags its round trips: the per-message numbers
                    "payload": '{"type":"ping"}',
                    "object": {"type": "ping"},
                    "think": THINK,
                    "expectReply": True,
                }
            ],
        },
    }


def test_k6_ws_ramp_keeps_one_vu_per_slot_and_the_shape_for_the_script() -> None:
    shape = LoadShape(
        start=0,
        stages=[
            Stage(duration=1, target=10),
            Stage(duration=2, target=10),
            Stage(duration=1, target=2),
        ],
    )
    config = k6.build_config(ping_scenario(URL, shape))
    assert config["options"]["scenarios"]["main"] == {
        "executor": "constant-vus",
        "vus": 10,
        "duration": "4s",
        "gracefulStop": "6s",
    }
    assert config["ws"]["shape"] == {
        "model": "closed",
        "endS": 4.0,
        "segments": [[1.0, 0, 10], [2.0, 10, 10], [1.0, 10, 2]],
    }
    # The open model keeps k6's arrival-rate executor: one session per arrival.
    opened = k6.build_config(ping_scenario(URL, shape.model_copy(update={"model": "open"})))
    assert opened["options"]["scenarios"]["main"]["executor"] == "ramping-arrival-rate"
    assert opened["ws"]["shape"]["model"] == "open"


# ---- the same scenario run on both engines --------------------------------------------


@pytest.mark.load
def test_closed_model_holds_the_same_connections_on_both_engines(
    reference_target: Any, node_tools: Path, tmp_path: Path
) -> None:
    scenario = ping_scenario(reference_target.url, LoadShape.constant(5, 3))
    numbers: dict[str, tuple[float, float]] = {}
    for tool in ("artillery", "k6"):
        result, ws = run_on(tool, scenario, tmp_path)
        # One connection per user, held for the run: no reconnect churn.
        assert ws.connections_attempted == ws.connections_open == 5, tool
        assert result.concurrency == 5, tool
        assert ws.session_length is not None and ws.session_length.mean, tool
        held_s = ws.session_length.mean / 1000
        numbers[tool] = (per_connection(ws), per_connection(ws) / held_s)
        print(
            f"{tool}: {ws.connections_open} connections, {ws.messages_sent} messages, "
            f"{numbers[tool][0]:.1f} per connection over {held_s:.2f} s "
            f"({numbers[tool][1]:.1f} per connection-second)"
        )
    (art_count, art_rate), (k6_count, k6_rate) = numbers["artillery"], numbers["k6"]
    # Each message waits for its reply then THINK: at most 1/THINK a second per connection.
    assert k6_rate <= 1 / THINK and art_rate <= 1 / THINK
    assert min(art_rate, k6_rate) / max(art_rate, k6_rate) >= 0.7
    # Artillery brings a closed model's users in over its first second (a phase), so its
    # connections are held ~0.6 s less of a 3 s run; per connection the counts stay close.
    assert min(art_count, k6_count) / max(art_count, k6_count) >= 0.6


@pytest.mark.load
def test_open_model_is_one_session_of_loops_passes_per_arrival_on_both_engines(
    reference_target: Any, node_tools: Path, tmp_path: Path
) -> None:
    shape = LoadShape.constant(5, 2, "open")
    scenario = ping_scenario(reference_target.url, shape, loops=3)
    opened: dict[str, int] = {}
    for tool in ("artillery", "k6"):
        _, ws = run_on(tool, scenario, tmp_path)
        assert ws.connections_open is not None
        opened[tool] = ws.connections_open
        print(f"{tool}: {ws.connections_open} sessions, {per_connection(ws):.2f} messages each")
        # 3 passes each; a session still going when the shape ends starts no new pass.
        assert 2.5 <= per_connection(ws) <= 3.0, tool
    assert all(9 <= n <= 12 for n in opened.values()), opened
