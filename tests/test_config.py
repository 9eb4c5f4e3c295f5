from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from orchestrator.config import (
    REFERENCE_URL,
    Config,
    parse_config,
    render_starter_config,
)
from orchestrator.engines import known_tools
from orchestrator.errors import ConfigError, ExitCode
from orchestrator.plan import build_suite, load_config


def write(tmp_path: Path, text: str, name: str = "orchestrate.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env=env or {})
    message = str(info.value)
    assert "\n" not in message
    assert info.value.exit_code == ExitCode.USAGE
    return message


def test_no_file_gives_the_reference_target_and_seed_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(None, env={})
    assert config.source is None
    assert config.target.base_url == REFERENCE_URL
    assert config.target.command == [
        sys.executable, "-m", "orchestrator.reference_target", "--port", "8000",
    ]  # fmt: skip
    paths = {name: (e.method, e.path) for name, e in config.endpoints.items()}
    assert paths == {
        "health": ("GET", "/health"),
        "login": ("POST", "/api/auth/login"),
        "session-start": ("POST", "/api/session/start"),
        "livekit-token": ("POST", "/api/livekit/token"),
        "transcription": ("POST", "/api/transcription"),
        "textbooks-hierarchy": ("GET", "/api/textbooks/hierarchy"),
    }
    login_body = json.loads(config.endpoints["login"].body or "")
    assert login_body == {"email": "test@example.com", "password": "TestPassword123!"}
    assert config.endpoints["login"].headers == {"Content-Type": "application/json"}
    assert json.loads(config.endpoints["transcription"].body or "")["text"]
    flow = [(json.loads(m.send or ""), m.think) for m in config.ws.messages]
    assert flow == [
        ({"type": "ping"}, 2),
        ({"type": "student_message", "content": "Hello"}, 5),
        ({"type": "session_update"}, 10),
    ]
    assert config.ws.path == "/ws"
    assert config.login is not None and config.login.path == "/api/auth/login"
    assert config.report_dir == Path("load-reports")
    assert config.secrets() == ()


def test_orchestrate_yaml_in_cwd_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "report_dir: out\ntarget: {base_url: 'http://localhost:3006/', port: 3006}\n")
    monkeypatch.chdir(tmp_path)
    config = load_config(None, env={})
    assert config.source == tmp_path / "orchestrate.yaml"
    assert config.report_dir == Path("out")
    # A target of its own is not started by orchestrate: no command unless given.
    assert config.target.base_url == "http://localhost:3006"
    assert config.target.command is None
    assert config.target.spec().port == 3006


def test_explicit_config_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nope.yaml not found"):
        load_config(tmp_path / "nope.yaml")


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "# nothing yet\n"), env={})
    assert config.target.base_url == REFERENCE_URL
    assert len(config.endpoints) == 6


def test_typo_in_a_key_names_the_key_path(tmp_path: Path) -> None:
    message = config_error(tmp_path, "scenarios:\n  normal:\n    usres: 5\n")
    assert message.endswith("orchestrate.yaml: scenarios.normal.usres: unknown key")


def test_wrong_type_names_the_key_path(tmp_path: Path) -> None:
    message = config_error(
        tmp_path,
        "scenarios:\n  normal:\n    shape:\n      stages: [{duration: 0, target: 5}]\n",
    )
    assert message.endswith(
        "orchestrate.yaml: scenarios.normal.shape.stages.0.duration: Input should be greater than 0"
    )


def test_unknown_tool_names_the_key_path_and_the_choices(tmp_path: Path) -> None:
    message = config_error(tmp_path, "scenarios:\n  mine: {tool: jmeter, users: 2, hold: 5}\n")
    choices = ", ".join(known_tools())
    assert f"scenarios.mine.tool: unknown tool 'jmeter': choose one of {choices}" in message


def test_several_errors_are_one_line(tmp_path: Path) -> None:
    message = config_error(
        tmp_path, "target: {bse_url: x}\nendpoints:\n  a: {path: /a, weight: lots}\n"
    )
    assert "target.bse_url: unknown key" in message
    assert "endpoints.a.weight: Input should be a valid integer" in message
    assert "; " in message


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    message = config_error(tmp_path, "target:\n  base_url: http://x\n   bad: [\n")
    assert message.startswith(f"{tmp_path / 'orchestrate.yaml'}:3:")
    assert "YAML syntax error" in message


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert "top level must be a mapping" in config_error(tmp_path, "- a\n- b\n")


def test_env_variables_are_substituted_and_kept_as_secrets(tmp_path: Path) -> None:
    text = (
        "login:\n  path: /login\n  body: {user: me, password: '${APP_PASSWORD}'}\n"
        "endpoints:\n  me:\n    path: /me\n    headers: {X-Api-Key: 'key-${API_KEY}'}\n"
        "database: {url: 'postgresql://app:${PGPASSWORD}@db/app'}\n"
        "report_dir: '$${HOME}/reports'\n"
    )
    env = {"APP_PASSWORD": "s3cret!", "API_KEY": "abc123", "PGPASSWORD": "pg-pass"}
    config = load_config(write(tmp_path, text), env=env)
    assert config.login is not None
    assert json.loads(config.login.body or "") == {"user": "me", "password": "s3cret!"}
    assert config.endpoints["me"].headers == {"X-Api-Key": "key-abc123"}
    assert config.database.url == "postgresql://app:pg-pass@db/app"
    assert config.report_dir == Path("${HOME}/reports")  # $${ is the escape
    assert set(config.secrets()) == {"s3cret!", "abc123", "pg-pass"}


def test_unset_env_variable_names_the_key_path_and_the_variable(tmp_path: Path) -> None:
    message = config_error(tmp_path, "endpoints:\n  me: {path: /me, headers: {Token: '${NOPE}'}}\n")
    assert message == (
        f"{tmp_path / 'orchestrate.yaml'}: endpoints.me.headers.Token: "
        "environment variable NOPE is not set"
    )


def test_body_mapping_is_sent_as_json(tmp_path: Path) -> None:
    text = (
        "endpoints:\n"
        "  a: {method: post, path: /a, body: {n: 1, tags: [x]}}\n"
        "  b: {method: POST, path: /b, body: 'raw text', headers: {Content-Type: text/plain}}\n"
        "  c: {path: /c, body: {n: 2}, headers: {content-type: application/vnd.x+json}}\n"
    )
    config = load_config(write(tmp_path, text), env={})
    a, b, c = config.endpoints["a"], config.endpoints["b"], config.endpoints["c"]
    assert a.method == "POST" and json.loads(a.body or "") == {"n": 1, "tags": ["x"]}
    assert a.headers == {"Content-Type": "application/json"}
    assert b.body == "raw text" and b.headers == {"Content-Type": "text/plain"}
    assert c.headers == {"content-type": "application/vnd.x+json"}
    assert "endpoints.d.body: body must be text" in config_error(
        tmp_path, "endpoints:\n  d: {path: /d, body: 5}\n"
    )


def test_login_token_extraction_and_header(tmp_path: Path) -> None:
    text = (
        "login:\n  path: /auth\n  token_path: data.session.0.jwt\n"
        "  header: X-Auth\n  template: 'JWT {token}'\n"
    )
    config = load_config(write(tmp_path, text), env={})
    login = config.login
    assert login is not None and login.method == "POST"
    token = login.extract_token({"data": {"session": [{"jwt": "t0k"}]}})
    assert token == "t0k"
    assert login.auth_headers(token) == {"X-Auth": "JWT t0k"}
    with pytest.raises(ConfigError, match=r"no 'data\.session\.0\.jwt'"):
        login.extract_token({"data": {}})
    assert "login.template: template must contain {token}" in config_error(
        tmp_path, "login: {path: /a, template: Bearer}\n"
    )
    assert load_config(write(tmp_path, "login: null\n"), env={}).login is None


def test_scenario_naming_an_unknown_endpoint(tmp_path: Path) -> None:
    message = config_error(
        tmp_path, "scenarios:\n  x: {endpoints: [health, nope], users: 1, hold: 1}\n"
    )
    assert "scenarios.x.endpoints: unknown endpoint(s) nope; known: health, login" in message


def test_suite_naming_an_unknown_scenario(tmp_path: Path) -> None:
    message = config_error(tmp_path, "suites:\n  mine: [normal, nrmal]\n")
    assert (
        "suites.mine.scenarios.1: unknown scenario 'nrmal'; known: api-smoke, db-exhaustion"
        in message
    )


def test_new_scenario_needs_a_load(tmp_path: Path) -> None:
    assert "scenarios.x: needs a shape, or users and hold" in config_error(
        tmp_path, "scenarios:\n  x: {tool: k6}\n"
    )
    assert "scenarios.y: the shorthand needs both users and hold" in config_error(
        tmp_path, "scenarios:\n  y: {users: 3}\n"
    )


def test_thresholds_in_the_wrong_place(tmp_path: Path) -> None:
    message = config_error(tmp_path, "thresholds: ['p95 < 1s']\n")
    assert "thresholds.0: p95 is a per-scenario metric" in message
    message = config_error(tmp_path, "scenarios:\n  normal: {thresholds: ['p96 < 1s']}\n")
    assert "scenarios.normal.thresholds.0: unknown metric 'p96'" in message
    message = config_error(
        tmp_path, "scenarios:\n  normal: {thresholds: ['aggregateThroughput > 1/s']}\n"
    )
    assert "aggregateThroughput is suite-wide" in message


def test_target_gives_only_one_way_to_find_the_process(tmp_path: Path) -> None:
    message = config_error(tmp_path, "target: {pid: 12, container: web}\n")
    assert "give only one of pid, command, container" in message
    assert "target.base_url: " in config_error(tmp_path, "target: {base_url: 'ftp://x'}\n")


def test_starter_file_loads_and_builds_every_suite(tmp_path: Path) -> None:
    text = render_starter_config()
    shipped = Path(__file__).parents[1] / "tool_configs" / "orchestrate.example.yaml"
    assert text == shipped.read_text(encoding="utf-8")
    config = load_config(write(tmp_path, text), env={})
    # The starter spells out the defaults, so it means the same as no file at all.
    defaults = parse_config({}, env={})
    for key in ("endpoints", "ws", "login", "database", "thresholds", "report_dir"):
        assert getattr(config, key) == getattr(defaults, key), key
    assert config.target.base_url == defaults.target.base_url
    for suite in ("full", "ci", "quick"):
        assert build_suite(suite, config).scenarios
    assert build_suite("quick", config).scenarios[0].tool == "k6"


def test_config_is_frozen() -> None:
    config = parse_config({}, env={})
    assert isinstance(config, Config)
    with pytest.raises(ValueError, match="frozen"):
        config.report_dir = Path("x")  # type: ignore[misc]
