"""The reference target: endpoint behaviour, injected faults, WebSocket, and the real server."""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from orchestrator.reference_target import LEAKED, TargetSettings, create_app
from orchestrator.reference_target.__main__ import main

REPO_ROOT = Path(__file__).resolve().parents[1]
LOGIN = {"email": "test@example.com", "password": "TestPassword123!"}

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(TargetSettings())) as c:
        yield c


@pytest.fixture(autouse=True)
def _clear_leak() -> Iterator[None]:
    LEAKED.clear()
    yield
    LEAKED.clear()


def _client(**settings: Any) -> TestClient:
    return TestClient(create_app(TargetSettings(**settings)))


def _login(c: TestClient) -> str:
    response = c.post("/api/auth/login", json=LOGIN)
    assert response.status_code == 200
    token = response.json()["token"]
    assert isinstance(token, str)
    return token


async def _concurrently(app: Starlette, paths: list[str]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://target") as c,
    ):
        return await asyncio.gather(*(c.get(path) for path in paths))


# --- HTTP endpoints -------------------------------------------------------------------------


def test_health(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_unknown_route_is_404(client: TestClient) -> None:
    assert client.get("/nope").status_code == 404
    assert client.get("/api/nope").status_code == 404


def test_login_accepts_seeded_user(client: TestClient) -> None:
    assert _login(client).count(".") == 2


@pytest.mark.parametrize(
    "body",
    [{"email": "test@example.com", "password": "wrong"}, {"email": "x@y.z", "password": "p"}],
)
def test_login_rejects_bad_credentials(client: TestClient, body: dict[str, str]) -> None:
    response = client.post("/api/auth/login", json=body)
    assert response.status_code == 401


def test_login_rejects_malformed_body(client: TestClient) -> None:
    assert client.post("/api/auth/login", content=b"not json").status_code == 400
    assert client.post("/api/auth/login", json={"email": 1}).status_code == 400


def test_session_start_without_auth_accepts_anything(client: TestClient) -> None:
    first = client.post("/api/session/start")
    second = client.post("/api/session/start", headers={"Authorization": "Bearer garbage"})
    assert first.status_code == second.status_code == 200
    assert second.json()["sessionId"] == first.json()["sessionId"] + 1


def test_session_start_requires_login_token_when_auth_required() -> None:
    with _client(require_auth=True) as c:
        assert c.post("/api/session/start").status_code == 401
        bad = c.post("/api/session/start", headers={"Authorization": "Bearer a.b.c"})
        assert bad.status_code == 401
        headers = {"Authorization": f"Bearer {_login(c)}"}
        response = c.post("/api/session/start", headers=headers)
        assert response.status_code == 200
        assert isinstance(response.json()["sessionId"], int)


def test_livekit_token_echoes_room(client: TestClient) -> None:
    named = client.post("/api/livekit/token", json={"room": "lesson-1"}).json()
    assert named["room"] == "lesson-1"
    assert named["token"].count(".") == 2
    generated = client.post("/api/livekit/token").json()
    assert generated["room"].startswith("room-")


def test_transcription_counts_words_from_json_or_raw_body(client: TestClient) -> None:
    from_json = client.post("/api/transcription", json={"text": "the quick brown fox"}).json()
    raw = client.post("/api/transcription", content=b"two words").json()
    assert from_json["words"] == 4
    assert raw == {"id": from_json["id"] + 1, "words": 2}


def test_hierarchy_shape(client: TestClient) -> None:
    textbooks = client.get("/api/textbooks/hierarchy").json()["textbooks"]
    assert len(textbooks) == 3
    for book in textbooks:
        assert set(book) == {"id", "title", "chapters"}
        assert len(book["chapters"]) == 5
        assert all(len(chapter["sections"]) == 4 for chapter in book["chapters"])
    assert textbooks[0]["chapters"][0]["sections"][0]["title"] == "Section 1.1.1"


def test_file_database_is_seeded_once(tmp_path: Path) -> None:
    db = str(tmp_path / "target.db")
    for _ in range(2):
        with _client(db_path=db) as c:
            assert len(c.get("/api/textbooks/hierarchy").json()["textbooks"]) == 3
    assert Path(db).exists()


def test_error_route_and_slow_route(client: TestClient) -> None:
    assert client.get("/api/error").status_code == 500
    start = time.perf_counter()
    assert client.get("/api/slow", params={"ms": 50}).json() == {"sleptMs": 50.0}
    assert time.perf_counter() - start >= 0.05
    assert client.get("/api/slow", params={"ms": "x"}).status_code == 400


# --- injected faults ------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "expected"), [(0.1, 10), (0.25, 25), (0.3, 30), (1.0, 100)])
def test_error_rate_is_exact(rate: float, expected: int) -> None:
    with _client(error_rate=rate) as c:
        statuses = [c.get("/api/slow").status_code for _ in range(100)]
        assert statuses.count(500) == expected
        assert statuses.count(200) == 100 - expected
        assert c.get("/health").status_code == 200


def test_latency_applies_to_api_but_not_health() -> None:
    with _client(latency_ms=200) as c:
        start = time.perf_counter()
        c.get("/health")
        health_s = time.perf_counter() - start
        start = time.perf_counter()
        c.get("/api/slow")
        api_s = time.perf_counter() - start
    assert health_s < 0.15 <= 0.2 <= api_s


def test_max_in_flight_rejects_excess_with_503() -> None:
    app = create_app(TargetSettings(max_in_flight=2))
    paths = ["/api/slow?ms=300"] * 6 + ["/health"]
    responses = asyncio.run(_concurrently(app, paths))
    statuses = [r.status_code for r in responses[:-1]]
    assert statuses.count(200) == 2
    assert statuses.count(503) == 4
    assert responses[-1].status_code == 200
    assert [r.status_code for r in asyncio.run(_concurrently(app, ["/api/slow"] * 2))] == [200, 200]


def test_concurrent_writes_get_unique_ids() -> None:
    app = create_app(TargetSettings())

    async def post_many() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://target") as c,
        ):
            return await asyncio.gather(
                *(c.post("/api/transcription", json={"text": "a b"}) for _ in range(50))
            )

    ids = {r.json()["id"] for r in asyncio.run(post_many())}
    assert len(ids) == 50


def test_leak_grows_per_api_request() -> None:
    with _client(leak_bytes_per_request=1000) as c:
        for _ in range(10):
            c.get("/api/slow")
        c.get("/health")
    assert len(LEAKED) == 10
    assert sum(map(len, LEAKED)) == 10_000


@pytest.mark.parametrize(
    "settings",
    [
        {"error_rate": 1.5},
        {"latency_ms": -1},
        {"max_in_flight": 0},
        {"leak_bytes_per_request": -1},
    ],
)
def test_invalid_settings_are_rejected(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TargetSettings(**settings)


def test_cli_rejects_invalid_settings_as_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--error-rate", "2"])
    assert exc.value.code == 2


# --- WebSocket ------------------------------------------------------------------------------


def test_websocket_replies_echo_ids(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"type": "ping", "id": 7}))
        assert ws.receive_json() == {"type": "pong", "id": 7}
        ws.send_text(json.dumps({"type": "ping"}))
        assert ws.receive_json() == {"type": "pong"}
        ws.send_text(json.dumps({"type": "student_message", "content": "hi", "id": "m1"}))
        tutor = ws.receive_json()
        assert tutor["type"] == "tutor_message"
        assert tutor["id"] == "m1"
        assert "hi" in tutor["content"]
        ws.send_text(json.dumps({"type": "session_update", "state": "x", "id": "s1"}))
        assert ws.receive_json() == {"type": "session_ack", "id": "s1"}
        ws.send_text(json.dumps({"type": "session_update"}))
        assert ws.receive_json()["id"]


def test_websocket_rejects_bad_messages(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_text("{nope")
        assert ws.receive_json() == {"type": "error", "error": "invalid json"}
        ws.send_text(json.dumps({"type": "dance", "id": 3}))
        assert ws.receive_json() == {"type": "error", "error": "unknown message type", "id": 3}


def test_websocket_latency_is_injected() -> None:
    with _client(latency_ms=100) as c, c.websocket_connect("/ws") as ws:
        start = time.perf_counter()
        ws.send_text(json.dumps({"type": "ping", "id": 1}))
        ws.receive_json()
        assert time.perf_counter() - start >= 0.1


def test_websocket_requires_token_when_auth_required() -> None:
    with _client(require_auth=True) as c:
        with pytest.raises(WebSocketDisconnect) as exc, c.websocket_connect("/ws"):
            pass
        assert exc.value.code == 1008
        headers = {"Authorization": f"Bearer {_login(c)}"}
        with c.websocket_connect("/ws", headers=headers) as ws:
            ws.send_text(json.dumps({"type": "ping", "id": 1}))
            assert ws.receive_json() == {"type": "pong", "id": 1}


# --- the real server ------------------------------------------------------------------------


def _start_server(*extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.reference_target", "--port", "0", *extra],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=8).strip()
    except queue.Empty:
        proc.kill()
        raise
    assert line.startswith("listening on http://127.0.0.1:"), line
    return proc, line.removeprefix("listening on ")


def _stop(proc: subprocess.Popen[str], sig: signal.Signals) -> int:
    proc.send_signal(sig)
    start = time.monotonic()
    try:
        code = proc.wait(timeout=5)
    finally:
        proc.kill()
    assert time.monotonic() - start < 5
    return code


def test_real_server_on_port_zero_stops_on_sigint() -> None:
    proc, url = _start_server()
    with urllib.request.urlopen(f"{url}/health", timeout=3) as response:
        assert json.load(response) == {"status": "ok"}
    assert _stop(proc, signal.SIGINT) == 130


def test_real_server_with_file_db_stops_on_sigterm(tmp_path: Path) -> None:
    proc, url = _start_server("--db", str(tmp_path / "t.db"), "--error-rate", "1")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"{url}/api/textbooks/hierarchy", timeout=3)
    assert exc.value.code == 500
    assert _stop(proc, signal.SIGTERM) == -signal.SIGTERM
    assert (tmp_path / "t.db").exists()
