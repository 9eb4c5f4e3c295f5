"""Keep secrets out of everything orchestrate writes: reports, logs, saved tool configs."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"}
)
_SECRET_KEYS = r"(?:password|passwd|secret|token|api[_-]?key|access[_-]?key)"  # noqa: S105
# "password": "x"  /  password: x  /  password=x  /  \"password\":\"x\" (JSON inside JSON)
_KEY_VALUE = re.compile(
    rf"""(?P<key>\\?["']?{_SECRET_KEYS}\\?["']?\s*[:=]\s*)(?P<quote>\\?["']?)"""
    rf"""(?P<value>[^"'\s,&}}\\]+)""",
    re.IGNORECASE,
)
# Values known to be secret (read from ${VAR} in the config, login tokens): every text
# orchestrate writes is cleaned of them, whichever writer writes it.
_KNOWN: set[str] = set()
# Shorter values would mask ordinary words and numbers.
MIN_SECRET_LENGTH = 4


def remember_secret(value: str) -> None:
    if len(value) >= MIN_SECRET_LENGTH:
        _KNOWN.add(value)


_AUTH_VALUE = re.compile(r"(?P<scheme>\b(?:Bearer|Basic|Token)\s+)[A-Za-z0-9._~+/=-]+")
# A scheme starts where no scheme character precedes it: without the look-behind every
# position of a long base64 run (an embedded plot, a histogram) rescans the run, O(n^2).
_URL_PASSWORD = re.compile(
    r"(?P<prefix>(?<![a-z0-9+.-])[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+(?=@)", re.I
)


def redact_url(url: str) -> str:
    """The URL with any password in its user-info replaced."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:{MASK}@{parts.hostname}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def redact_text(text: str, secrets: tuple[str, ...] = (), keys: bool = True) -> str:
    """Mask known secret values, bearer tokens, URL passwords and (``keys``) values of
    password-like keys; reports pass ``keys=False`` since an endpoint such as
    ``/api/livekit/token`` may be a key there."""
    for secret in sorted({*secrets, *_KNOWN}, key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda m: m.group("prefix") + MASK, text)
    text = _AUTH_VALUE.sub(lambda m: m.group("scheme") + MASK, text)
    if not keys:
        return text
    return _KEY_VALUE.sub(lambda m: m.group("key") + m.group("quote") + MASK, text)
