"""The reference target's switches: its settings, and the middlewares that inject latency,
errors, an admission limit and a memory leak, and count requests per client address."""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Module-level on purpose: a leak must outlive any one app instance, like a real global cache.
LEAKED: list[bytes] = []

API_PREFIX = "/api/"


@dataclass(frozen=True)
class TargetSettings:
    latency_ms: float = 0
    latency_jitter_ms: float = 0
    error_rate: float = 0.0
    max_in_flight: int | None = None
    leak_bytes_per_request: int = 0
    db_path: str | None = None
    require_auth: bool = False
    secret: str = "reference-target-secret"  # noqa: S105 - signs fake tokens for a test service

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or self.latency_jitter_ms < 0:
            raise ValueError("latency and jitter must be >= 0 ms")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("error rate must be between 0 and 1")
        if self.max_in_flight is not None and self.max_in_flight < 1:
            raise ValueError("max in flight must be >= 1")
        if self.leak_bytes_per_request < 0:
            raise ValueError("leak bytes per request must be >= 0")


class Faults:
    """Injected behaviour shared by every request of one app instance.

    All state is touched only from the event loop thread, so plain integers need no lock.
    """

    def __init__(self, settings: TargetSettings) -> None:
        self._settings = settings
        # Exact fraction so that N requests fail exactly floor(N * rate) times, for any rate.
        self._rate = Fraction(settings.error_rate).limit_denominator(1_000_000)
        self._rng = random.Random()  # noqa: S311 - jitter, not cryptography
        self._counted = 0
        self.in_flight = 0

    def try_admit(self) -> bool:
        cap = self._settings.max_in_flight
        if cap is not None and self.in_flight >= cap:
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        self.in_flight -= 1

    def leak(self) -> None:
        size = self._settings.leak_bytes_per_request
        if size:
            # Non-zero fill: zeroed pages may stay unmapped and never show up in RSS.
            LEAKED.append(b"\x01" * size)

    async def delay(self) -> None:
        jitter = self._settings.latency_jitter_ms
        delay_ms = self._settings.latency_ms + (self._rng.uniform(-jitter, jitter) if jitter else 0)
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)

    def next_fails(self) -> bool:
        self._counted += 1
        n = self._counted
        return math.floor(n * self._rate) > math.floor((n - 1) * self._rate)


class FaultInjectionMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware) so the injector itself adds almost no overhead."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        if not self.faults.try_admit():
            await error_response(503, "over capacity")(scope, receive, send)
            return
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.faults.release()

        async def send_releasing(message: Message) -> None:
            # The slot is free before the response's last bytes leave: a client that sends
            # its next request on receiving them must find it free (N users, N slots).
            if message["type"] == "http.response.body" and not message.get("more_body"):
                release()
            await send(message)

        try:
            await self._serve(scope, receive, send_releasing)
        finally:
            release()

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.faults.leak()
        await self.faults.delay()
        if self.faults.next_fails():
            await error_response(500, "injected failure")(scope, receive, send)
            return
        await self.app(scope, receive, send)


class PeerCounter:
    """Counts HTTP requests and WebSocket connections by client address (``GET /peers``).

    Lets a test with several load generators check that each of them really reached the
    target. Pure ASGI and outermost, so every request counts, faults or not.
    """

    def __init__(self, app: ASGIApp, counts: Counter[str]) -> None:
        self.app = app
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            self.counts[str(client[0]) if client else "unknown"] += 1
        await self.app(scope, receive, send)


def error_response(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)
