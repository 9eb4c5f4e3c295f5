"""Load only what you own: the hosts a run may send load to, checked before any request.

Loopback is always allowed (``127.0.0.0/8``, ``::1``, and names that resolve only to
loopback, such as ``localhost``). Any other host must match a pattern of the config's
``allowed_hosts`` or of ``--allow-host`` (shell-style wildcards: ``*.staging.example.com``).
A refused host stops the run before anything starts (exit 2) with the way to allow it; an
allowed host that does not resolve stops it too (exit 3), instead of a tool's stack trace.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from orchestrator.errors import ConfigError, TargetError

LOG = logging.getLogger(__name__)

# RFC 6761: names under .invalid never resolve, so they are not even looked up.
NEVER_RESOLVES = ".invalid"


def host_of(url: str) -> str:
    """The host a URL names (brackets of IPv6 literals removed), lower case."""
    try:
        host = urlsplit(url).hostname
    except ValueError as exc:
        raise ConfigError(f"bad URL {url!r}: {exc}") from None
    if not host:
        raise ConfigError(f"bad URL {url!r}: it names no host")
    return host.lower()


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve(host: str) -> list[str]:
    """Addresses of ``host``; TargetError (one line) when it does not resolve."""
    if host.endswith(NEVER_RESOLVES):
        raise TargetError(f"cannot resolve {host}: names under .invalid never resolve")
    literal = _literal(host)
    if literal is not None:
        return [str(literal)]
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetError(f"cannot resolve {host}: {exc}") from None
    return sorted({str(info[4][0]) for info in infos})


def is_loopback(host: str) -> bool:
    """A loopback address, or a name whose every address is loopback."""
    literal = _literal(host)
    if literal is not None:
        return literal.is_loopback
    if host.endswith(NEVER_RESOLVES):
        return False
    try:
        addresses = resolve(host)
    except TargetError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def is_allowed(host: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(host, pattern.lower()) for pattern in patterns)


def check_targets(urls: Iterable[str], allowed_hosts: Iterable[str]) -> None:
    """Refuse, before any load, a URL whose host is neither loopback nor allowed.

    ConfigError (exit 2) names ``allowed_hosts`` and ``--allow-host``; an allowed host
    that does not resolve is a TargetError (exit 3).
    """
    patterns = list(allowed_hosts)
    for url in dict.fromkeys(urls):
        host = host_of(url)
        if is_loopback(host):
            continue
        if not is_allowed(host, patterns):
            raise ConfigError(
                f"refusing to load {host}: only loopback and the hosts in allowed_hosts may "
                f"be loaded; if it is yours, add it to allowed_hosts in the config or pass "
                f"--allow-host {host}"
            )
        LOG.info("loading %s: allowed by allowed_hosts", host)
        resolve(host)
