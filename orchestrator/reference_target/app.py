"""The reference target: a small real ASGI service with tunable latency, errors, capacity and leak.

Everything under ``/api/`` passes through the fault injector; ``/health`` never does, so it
stays a clean baseline to compare injected behaviour against.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from orchestrator.reference_target.db import Database, hash_password
from orchestrator.reference_target.faults import (
    FaultInjectionMiddleware,
    Faults,
    PeerCounter,
    TargetSettings,
    error_response,
)
from orchestrator.reference_target.sessions import session_refusal
from orchestrator.reference_target.tokens import sign_token, verify_token

LOG = logging.getLogger(__name__)

LOGIN_TOKEN_TTL_S = 24 * 3600
LIVEKIT_TOKEN_TTL_S = 3600
MAX_SLOW_MS = 60_000.0
GRACEFUL_SHUTDOWN_S = 2


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        data = json.loads(await request.body())
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _word_count_text(body: bytes, data: dict[str, Any] | None) -> str:
    if data is not None and isinstance(data.get("text"), str):
        return str(data["text"])
    return body.decode("utf-8", errors="replace")


class ReferenceTarget:
    """Endpoint handlers plus the state they share; the database opens with the lifespan."""

    def __init__(self, settings: TargetSettings) -> None:
        self.settings = settings
        self.faults = Faults(settings)
        self.peers: Counter[str] = Counter()
        self._db: Database | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError("database is not open: run the app with its lifespan")
        return self._db

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self._db = Database(self.settings.db_path)
        try:
            yield
        finally:
            self._db.close()
            self._db = None

    def _subject(self, headers: Headers) -> str | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        claims = verify_token(token.strip(), self.settings.secret)
        subject = claims.get("sub") if claims else None
        return subject if isinstance(subject, str) else None

    def _authorized(self, headers: Headers) -> tuple[bool, str | None]:
        subject = self._subject(headers)
        return (subject is not None or not self.settings.require_auth), subject

    async def health(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def peer_counts(self, _request: Request) -> Response:
        return JSONResponse({"peers": dict(self.peers)})

    async def login(self, request: Request) -> Response:
        data = await _json_object(request)
        email = data.get("email") if data else None
        password = data.get("password") if data else None
        if not isinstance(email, str) or not isinstance(password, str):
            return error_response(400, "expected JSON with email and password")
        if not await run_in_threadpool(self._check_password, email, password):
            return error_response(401, "invalid credentials")
        claims = {"sub": email, "iat": int(time.time()), "exp": time.time() + LOGIN_TOKEN_TTL_S}
        return JSONResponse({"token": sign_token(claims, self.settings.secret)})

    def _check_password(self, email: str, password: str) -> bool:
        user = self.db.find_user(email)
        if user is None:
            return False
        return hmac.compare_digest(hash_password(password, user.salt), user.password_hash)

    async def session_start(self, request: Request) -> Response:
        allowed, subject = self._authorized(request.headers)
        if not allowed:
            return error_response(401, "missing or invalid bearer token")
        session_id = await run_in_threadpool(self.db.insert_session, subject)
        return JSONResponse({"sessionId": session_id})

    async def livekit_token(self, request: Request) -> Response:
        allowed, subject = self._authorized(request.headers)
        if not allowed:
            return error_response(401, "missing or invalid bearer token")
        data = await _json_object(request) or {}
        refusal = await run_in_threadpool(session_refusal, self.db, data, subject)
        if refusal is not None:
            return error_response(403, refusal)
        room = data.get("room") if isinstance(data.get("room"), str) else None
        room = room or f"room-{secrets.token_hex(4)}"
        identity = data.get("identity") if isinstance(data.get("identity"), str) else None
        claims = {
            "sub": identity or subject or "anonymous",
            "video": {"room": room, "roomJoin": True},
            "exp": time.time() + LIVEKIT_TOKEN_TTL_S,
        }
        return JSONResponse({"token": sign_token(claims, self.settings.secret), "room": room})

    async def transcription(self, request: Request) -> Response:
        body = await request.body()
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        text = _word_count_text(body, parsed if isinstance(parsed, dict) else None)
        words = len(text.split())
        row_id = await run_in_threadpool(self.db.insert_transcription, text, words)
        return JSONResponse({"id": row_id, "words": words})

    async def hierarchy(self, _request: Request) -> Response:
        textbooks = await run_in_threadpool(self.db.textbook_hierarchy)
        return JSONResponse({"textbooks": textbooks})

    async def always_error(self, _request: Request) -> Response:
        return error_response(500, "intentional failure")

    async def slow(self, request: Request) -> Response:
        try:
            ms = float(request.query_params.get("ms", "0"))
        except ValueError:
            return error_response(400, "ms must be a number")
        if not 0 <= ms <= MAX_SLOW_MS:
            return error_response(400, f"ms must be between 0 and {MAX_SLOW_MS:.0f}")
        await asyncio.sleep(ms / 1000)
        return JSONResponse({"sleptMs": ms})

    async def websocket(self, websocket: WebSocket) -> None:
        allowed, _ = self._authorized(websocket.headers)
        if not allowed:
            await websocket.close(code=1008)
            return
        await websocket.accept()
        with contextlib.suppress(WebSocketDisconnect):
            await self._converse(websocket)

    async def _converse(self, websocket: WebSocket) -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            reply = ws_reply(raw if raw is not None else message.get("bytes") or b"")
            await self.faults.delay()
            await websocket.send_text(json.dumps(reply))


def _tutor_reply(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content", "")
    return {"type": "tutor_message", "content": f"Tutor: you said {content!s}"}


_WS_HANDLERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "ping": lambda _message: {"type": "pong"},
    "student_message": _tutor_reply,
    "session_update": lambda _message: {"type": "session_ack"},
}
# Replies a client must be able to correlate even when it sent no id of its own.
_ALWAYS_IDENTIFIED = {"tutor_message", "session_ack"}


def ws_reply(raw: str | bytes) -> dict[str, Any]:
    try:
        message = json.loads(raw)
    except ValueError:
        return {"type": "error", "error": "invalid json"}
    if not isinstance(message, dict):
        return {"type": "error", "error": "expected a JSON object"}
    handler = _WS_HANDLERS.get(str(message.get("type")))
    reply = handler(message) if handler else {"type": "error", "error": "unknown message type"}
    if "id" in message:
        reply["id"] = message["id"]
    elif reply["type"] in _ALWAYS_IDENTIFIED:
        reply["id"] = secrets.token_hex(8)
    return reply


def create_app(settings: TargetSettings) -> Starlette:
    target = ReferenceTarget(settings)
    routes = [
        Route("/health", target.health, methods=["GET"]),
        Route("/peers", target.peer_counts, methods=["GET"]),
        Route("/api/auth/login", target.login, methods=["POST"]),
        Route("/api/session/start", target.session_start, methods=["POST"]),
        Route("/api/livekit/token", target.livekit_token, methods=["POST"]),
        Route("/api/transcription", target.transcription, methods=["POST"]),
        Route("/api/textbooks/hierarchy", target.hierarchy, methods=["GET"]),
        Route("/api/error", target.always_error, methods=["GET"]),
        Route("/api/slow", target.slow, methods=["GET"]),
        WebSocketRoute("/ws", target.websocket),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(PeerCounter, counts=target.peers),
            Middleware(FaultInjectionMiddleware, faults=target.faults),
        ],
        lifespan=target.lifespan,
    )
    app.state.target = target
    return app


class _AnnouncingServer(uvicorn.Server):
    """Prints the URL only after startup, so a reader of the line can connect at once."""

    def __init__(self, config: uvicorn.Config, announcement: str) -> None:
        super().__init__(config)
        self._announcement = announcement

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            print(self._announcement, flush=True)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto
    # says TCP, and without it Nagle plus delayed ACKs caps each connection near 25 req/s.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(settings: TargetSettings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run until SIGINT/SIGTERM; uvicorn then re-raises the signal (KeyboardInterrupt on SIGINT)."""
    sock = _bind(host, port)
    bound_port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        create_app(settings),
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = _AnnouncingServer(config, f"listening on {_url(host, bound_port)}")
    LOG.info("reference target on %s:%d with %s", host, bound_port, settings)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
