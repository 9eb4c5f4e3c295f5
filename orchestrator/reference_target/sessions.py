"""Checks that let the reference target confirm a flow carried its values along.

A LiveKit token asked for a ``sessionId`` must name a session this target issued, to the
same user: a journey that lost or mixed up its captured values is refused (403), so a
load test can tell a real journey from requests that only look like one.
"""

from __future__ import annotations

from typing import Any

from orchestrator.reference_target.db import Database


def session_refusal(db: Database, data: dict[str, Any], subject: str | None) -> str | None:
    """Why the request's ``sessionId`` is refused, or None (none given, or a valid one)."""
    if "sessionId" not in data:
        return None
    raw = data["sessionId"]
    text = str(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else ""
    if not text.isdigit():
        return "sessionId must be a session id this service issued"
    owner = db.session_owner(int(text))
    if owner is None:
        return f"unknown session {text}"
    if owner[0] != subject:
        return f"session {text} belongs to another user"
    return None
