"""One scenario, any engine that supports it; a clear error for one that cannot."""

from __future__ import annotations

import pytest

from orchestrator.engines import check_supports, known_tools
from orchestrator.errors import ConfigError
from orchestrator.scenarios import LoadShape, Scenario, WsFlow, WsMessage

WS = Scenario(
    name="chat",
    protocol="ws",
    base_url="http://127.0.0.1:8000",
    ws=WsFlow(messages=[WsMessage(payload='{"type":"ping"}')]),
    shape=LoadShape.constant(5, 2),
)


def test_every_tool_is_registered() -> None:
    assert known_tools() == ["artillery", "autocannon", "k6", "pgbench"]


@pytest.mark.parametrize("tool", ["artillery", "k6"])
def test_websocket_engines_accept_a_ws_scenario(tool: str) -> None:
    assert tool == check_supports(tool, WS).NAME


def test_autocannon_cannot_run_websocket_and_says_which_can() -> None:
    with pytest.raises(ConfigError, match=r"autocannon cannot run ws load .*artillery, k6"):
        check_supports("autocannon", WS)


def test_unknown_tool_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown tool 'jmeter'"):
        check_supports("jmeter", WS)
