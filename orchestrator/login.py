"""The config's login step: one request before the load, whose token every request carries."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from orchestrator.errors import TargetError
from orchestrator.scenarios import Scenario

if TYPE_CHECKING:
    from orchestrator.config import LoginConfig

LOGIN_TIMEOUT = 10.0


def log_in(login: LoginConfig, base_url: str) -> str:
    """Make the config's login request once; the token it returns (kept out of reports)."""
    url = urljoin(base_url.rstrip("/") + "/", login.path.lstrip("/"))
    data = login.body.encode("utf-8") if login.body is not None else None
    # The base URL was validated as http(s) with the config.
    request = urllib.request.Request(  # noqa: S310
        url, data=data, method=login.method, headers=login.headers
    )
    try:
        with urllib.request.urlopen(request, timeout=LOGIN_TIMEOUT) as response:  # noqa: S310
            payload = json.loads(response.read().decode("utf-8", errors="replace"))
    except urllib.error.HTTPError as exc:
        raise TargetError(f"login {login.method} {url} failed: HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise TargetError(f"login {login.method} {url} failed: {exc}") from exc
    except ValueError as exc:
        raise TargetError(f"login {login.method} {url} did not answer JSON") from exc
    return login.extract_token(payload)


def with_headers(scenario: Scenario, headers: dict[str, str]) -> Scenario:
    """The scenario with ``headers`` added to every request and WebSocket connect; a flow
    is left as it is (it logs in itself and carries its own token)."""
    if scenario.flow is not None:
        return scenario
    endpoints = [
        e.model_copy(update={"headers": {**e.headers, **headers}}) for e in scenario.endpoints
    ]
    ws = scenario.ws
    if ws is not None:
        ws = ws.model_copy(update={"headers": {**ws.headers, **headers}})
    return scenario.model_copy(update={"endpoints": endpoints, "ws": ws})
