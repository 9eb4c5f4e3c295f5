"""The run options, defined once: what the CLI and ``api.load_test`` both validate through."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.api import load_test
from orchestrator.cli import main
from orchestrator.engines import default_engine, known_tools
from orchestrator.errors import ConfigError
from orchestrator.options import RunOptions


def test_each_transport_gets_the_registrys_default_engine() -> None:
    for url, transport in (
        ("http://127.0.0.1:8000/health", "http"),
        ("ws://127.0.0.1:8000/ws", "ws"),
        ("postgresql://postgres@127.0.0.1:5432/postgres", "postgres"),
    ):
        planned = RunOptions(url=url).planned()
        assert planned.scenario.protocol == transport
        assert planned.tool == default_engine(transport)
        assert planned.requires is None  # a single run's tool is never optional
    chosen = known_tools()[0]
    assert RunOptions(tool=chosen).planned().tool == chosen


def test_the_cli_and_the_api_forms_are_the_same_options(tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text('{"a": 1}', encoding="utf-8")
    from_cli = RunOptions.from_values(
        {"headers": ["X-Token: abc", "Accept:  application/json"], "body": f"@{body}"}
    )
    from_api = RunOptions.from_values(
        {"headers": {"X-Token": "abc", "Accept": "application/json"}, "body": '{"a": 1}'}
    )
    assert from_cli == from_api
    (endpoint,) = from_cli.scenario().endpoints
    assert endpoint.headers == {"X-Token": "abc", "Accept": "application/json"}
    assert endpoint.body == '{"a": 1}'


def test_a_url_path_and_query_become_the_endpoint() -> None:
    scenario = RunOptions(url="http://127.0.0.1:9/a/b?x=1", ramp=2, duration=3).scenario()
    assert scenario.base_url == "http://127.0.0.1:9"
    assert [e.path for e in scenario.endpoints] == ["/a/b?x=1"]
    assert [(s.duration, s.target) for s in scenario.shape.stages] == [(2, 10), (3, 10)]


@pytest.mark.parametrize(
    ("values", "why"),
    [
        ({"connections": 0}, "connections: Input should be greater than or equal to 1"),
        ({"tool": "jmeter"}, "unknown tool 'jmeter': choose one of " + ", ".join(known_tools())),
        ({"headers": ["no colon"]}, "bad header 'no colon'"),
        ({"body": "@/nonexistent/body.json"}, "cannot read body file /nonexistent/body.json"),
        ({"open_model": True}, "needs --rate"),
        ({"pid": 1, "target_cmd": "serve"}, "give only one of --pid"),
        ({"thresholds": ["aggregateThroughput > 1/s"]}, "is not a scenario metric"),
        ({"threshold": ["p95 < 1s"]}, "threshold: unknown key"),
    ],
)
def test_bad_options_are_one_config_error(values: dict[str, object], why: str) -> None:
    with pytest.raises(ConfigError) as raised:
        RunOptions.from_values(values)
    assert why in str(raised.value)
    assert "\n" not in str(raised.value)


def test_load_test_checks_its_options_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="conections: unknown key"):
        load_test("http://127.0.0.1:9/", conections=5, report_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_help_names_every_engine_from_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    for tool in known_tools():
        assert tool in shown
