"""Artillery's counters read as whole numbers, and failures sorted into our error kinds."""

from __future__ import annotations

import math
import re
from collections import defaultdict

ERROR_KINDS = {
    "ECONNREFUSED": "connection_refused",
    "ECONNRESET": "connection_reset",
    "EPIPE": "connection_reset",
    "ETIMEDOUT": "timeout",
    "ESOCKETTIMEDOUT": "timeout",
    "ws_reply_timeout": "timeout",
    "ws_closed": "connection_closed",
    "ENOTFOUND": "dns",
    "EAI_AGAIN": "dns",
    # Artillery's own capture found nothing in a reply (a flow step's capture_failed): the
    # request was answered, its failure is the capture's.
    "Failed capture or match": "capture_failed",
}
# Kinds of answered requests that failed (every other kind got no response).
ANSWERED_KINDS = ("non_2xx", "capture_failed", "expect_failed")
_CODE_IN_MESSAGE = re.compile(r"\b(E[A-Z]{3,})\b")


def count(counters: dict[str, float], name: str) -> int:
    value = counters.get(name, 0)
    return 0 if value is None or math.isnan(value) else int(value)


def kind_of(code: str) -> str:
    """Our error kind for an error code or message (``ECONNREFUSED``, ``ws_closed``, ...)."""
    found = _CODE_IN_MESSAGE.search(code)
    return ERROR_KINDS.get(found.group(1) if found else code, ERROR_KINDS.get(code, code))


def error_kinds(counters: dict[str, float]) -> dict[str, int]:
    """``errors.*`` by kind; a refused connect that Artillery's ws engine counts twice
    (``errors.ECONNREFUSED`` and ``errors.connect ECONNREFUSED host:port``) counts once."""
    raw = {k[len("errors.") :]: count(counters, k) for k in counters if k.startswith("errors.")}
    out: dict[str, int] = defaultdict(int)
    for key, value in raw.items():
        code = _CODE_IN_MESSAGE.search(key)
        if code and code.group(1) != key and code.group(1) in raw:
            continue  # the same failure, once as its message and once as its code
        out[kind_of(key)] += value
    return {k: v for k, v in out.items() if v}
