"""k6's error codes as our error kinds (connection_refused, timeout, non_2xx, ...)."""

from __future__ import annotations

# k6 error codes (lib/netext/httpext/error_codes.go), checked on real runs of k6 1.1.0:
# refused port -> 1212, request timeout -> 1050, HTTP 500 -> 1500.
ERROR_CODES = {
    1000: "other",
    1010: "connection_error",
    1020: "invalid_url",
    1050: "timeout",
    1201: "broken_pipe",
    1210: "connection_error",
    1211: "timeout",
    1212: "connection_refused",
    1213: "connection_error",
    1220: "connection_reset",
}


def error_kind(code: str | None, status: str) -> str:
    """Our error kind for a failed k6 request (its error_code tag and status)."""
    number = int(code) if code and code.isdigit() else 0
    if number in ERROR_CODES:
        return ERROR_CODES[number]
    for low, high, kind in (
        (1100, 1200, "dns"),
        (1200, 1300, "connection_error"),
        (1300, 1400, "tls"),
        (1400, 1600, "non_2xx"),
        (1600, 1700, "http2"),
    ):
        if low <= number < high:
            return kind
    return "non_2xx" if status not in ("", "0") else "other"
