"""Stream k6's raw ``--out json`` NDJSON (plain or gzip) into counts and histograms.

k6 writes ~10 lines (~2.8 KB) per HTTP request, so the file is read line by line and
never held in memory: a line whose metric we do not use is skipped by a byte-prefix
check before any JSON decoding. Each HTTP request is counted in total and under its name
tag; latencies are kept per second (and name) until the second is over, then go into
the histograms (see :mod:`.tally`).
"""

from __future__ import annotations

import json
import re
from array import array
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from orchestrator import histogram as hdr
from orchestrator.engines.k6.errors import error_kind
from orchestrator.engines.k6.rawfile import iter_blocks
from orchestrator.engines.k6.tally import NameTally, Tally, connection_levels
from orchestrator.errors import ParseError

__all__ = ["Tally", "connection_levels", "error_kind", "read_raw"]

POINT_PREFIX = b'{"metric":"'
METRIC_PREFIX = b'{"type":"Metric"'
# Seconds a sample may arrive behind the newest one and still join its second's histogram
# (k6 stamps requests at their end and writes them nearly in order).
WINDOW_S = 10

HTTP, RTT, FAILURE, VUS, VUS_MAX, DROPPED, SESSIONS, SESSION_LEN, COUNTER, FLOW, ITER = range(11)
KINDS: dict[str, int] = {
    "http_req_duration": HTTP,
    "flow_failures": FLOW,
    "flow_iteration": ITER,
    # A flow step not sent (a value it uses was not captured): counted as a failed request
    # of its kind under its step, like a WebSocket failure without a reply.
    "flow_not_sent": FAILURE,
    "ws_rtt": RTT,
    "ws_failures": FAILURE,
    "vus": VUS,
    "vus_max": VUS_MAX,
    "dropped_iterations": DROPPED,
    "ws_sessions": SESSIONS,
    "ws_session_duration": SESSION_LEN,
    # Plain sums: ours (the generated script) and k6's own WebSocket counters.
    "ws_messages_sent": COUNTER,
    "ws_messages_received": COUNTER,
    "ws_replies_expected": COUNTER,
    "ws_opened": COUNTER,
    "ws_closed": COUNTER,
    "ws_msgs_sent": COUNTER,
    "ws_msgs_received": COUNTER,
}
KINDS_BY_BYTES = {name.encode(): kind for name, kind in KINDS.items()}
# No ^ anchor: re then searches for the literal prefix at C speed (10x faster); feed()
# checks that a match starts a line.
NEEDED_LINE = re.compile(
    rb'\{"metric":"('
    + b"|".join(re.escape(n) for n in KINDS_BY_BYTES)
    + rb')","type":"Point"[^\n]*'
)
NEWLINE = ord("\n")
# orjson: measured on a 5 s, 130,000-request output (233 MB of JSON), 0.21 -> 0.05 s to
# decode the lines we use (the stdlib's json before).
DECODE = orjson.loads


def _url_like(name: str | None) -> str | None:
    # k6's name tag is the URL unless a script renamed the request (ours: "GET /health").
    return name if name and "://" in name else None


def _epoch_second(stamp: str) -> int:
    # "2026-11-25T20:08:00.4849768Z" or with a "+01:00" offset: drop the fraction only.
    rest = stamp[19:]
    offset = rest.lstrip(".0123456789") or "Z"
    return int(datetime.fromisoformat(stamp[:19] + offset).timestamp())


class StreamReader:
    """Feeds raw k6 lines into a :class:`Tally`, one second's histogram at a time."""

    def __init__(self) -> None:
        self.tally = Tally()
        self._second_of: dict[str, int] = {}
        # per open second: latencies (µs) by request name (None: unnamed)
        self._open: dict[int, dict[str | None, array[int]]] = {}
        self._newest = 0

    def second(self, stamp: str) -> int:
        tally = self.tally
        if tally.first_stamp is None or stamp < tally.first_stamp:
            tally.first_stamp = stamp
        if tally.last_stamp is None or stamp > tally.last_stamp:
            tally.last_stamp = stamp
        key = stamp[:19]
        sec = self._second_of.get(key)
        if sec is None:
            sec = self._second_of[key] = _epoch_second(stamp)
        return sec

    @staticmethod
    def count(named: NameTally, sec: int, failed: bool, n: int = 1) -> None:
        named.total += n
        bucket = named.seconds.get(sec)
        if bucket is None:
            bucket = named.seconds[sec] = [0, 0]
        bucket[0] += n
        if failed:
            bucket[1] += n
        else:
            named.successful += n

    def record(self, sec: int, value_ms: float, name: str | None) -> None:
        value_us = min(max(round(value_ms * 1000.0), hdr.LOWEST_US), hdr.HIGHEST_US)
        by_name = self._open.get(sec)
        if by_name is None:
            if sec < self._newest - WINDOW_S:
                # Its second is already summarised: it still counts in the histograms.
                self.tally.late_samples += 1
                self.tally.histogram_of(name).record_value(value_us)
                return
            by_name = self._open[sec] = {}
            if sec > self._newest:
                self._newest = sec
                self._close_before(sec - WINDOW_S)
        values = by_name.get(name)
        if values is None:
            values = by_name[name] = array("q")
        values.append(value_us)

    def _close_before(self, limit: int | None) -> None:
        for sec in sorted(s for s in self._open if limit is None or s < limit):
            self.tally.close_second(sec, self._open.pop(sec))

    def finish(self) -> Tally:
        self._close_before(None)
        tally = self.tally
        tally.finish()
        if tally.counters["ws_closed"]:
            # Our WebSocket script keeps a VU per connection slot, idle while the shape
            # does not want it: open connections, not VUs, are its concurrency.
            tally.concurrency = connection_levels(tally.connections)
            tally.vus_peak = max(tally.concurrency.values(), default=0)
        return tally

    def add(self, kind: int, name: str, data: dict[str, Any]) -> None:
        sec = self.second(data["time"])
        tags = data.get("tags") or {}
        value = data["value"]
        if kind == HTTP:
            self._add_http(sec, value, tags)
        elif kind == RTT:
            self._add_reply(sec, value, tags)
        elif kind == FAILURE:
            self._add_failure(sec, int(value), tags)
        elif kind == FLOW:
            self._add_flow_failure(sec, int(value), tags)
        elif kind == ITER:
            self._add_iteration(value, tags)
        else:
            self._add_other(kind, name, sec, value, tags)

    def _add_http(self, sec: int, value: float, tags: dict[str, str]) -> None:
        tally = self.tally
        status = tags.get("status", "")
        expected = tags.get("expected_response")
        ok = expected == "true" if expected is not None else status[:1] in ("2", "3")
        name = tags.get("name")
        named = tally.names.get(name) if name is not None else None
        if named is None:
            named = tally.name_tally(name, tags.get("method"))
        if status and status != "0":  # "0": no response (refused, timed out, ...)
            named.status_codes[status] += 1
            self.record(sec, value, name)
        if not ok:
            named.errors[error_kind(tags.get("error_code"), status)] += 1
            if "error" in tags:
                tally.error_messages[tags["error"]] += 1
        self.count(named, sec, not ok)
        if tally.target is None:
            tally.target = tags.get("url") or _url_like(name)

    def _add_reply(self, sec: int, value: float, tags: dict[str, str]) -> None:
        # A WebSocket round trip (our script's ws_rtt), named after its flow message.
        name = tags.get("name")
        self.record(sec, value, name)
        self.count(self.tally.name_tally(name, None), sec, False)

    def _add_failure(self, sec: int, n: int, tags: dict[str, str]) -> None:
        # A message whose reply never came counts under the message; a failed connect
        # belongs to no message.
        kind = tags.get("kind", "other")
        named = self.tally.name_tally(tags.get("name"), None)
        named.errors[kind] += n
        if tags.get("phase") == "connect":
            self.tally.connect_failures += n
        self.count(named, sec, True, n)

    def _add_iteration(self, value_ms: float, tags: dict[str, str]) -> None:
        tally = self.tally
        if tags.get("outcome") == "completed":
            tally.flow_completed += 1
            hdr.record_ms(tally.flow_time, value_ms)
        else:
            tally.flow_failed[(tags.get("step", "?"), tags.get("kind", "other"))] += 1

    def _add_flow_failure(self, sec: int, n: int, tags: dict[str, str]) -> None:
        # A flow step's answered request (counted a success) whose capture or expect check
        # failed (load.js): the same request, now a failure of that kind.
        named = self.tally.name_tally(tags.get("name"), None)
        named.errors[tags.get("kind", "other")] += n
        named.successful -= n
        bucket = named.seconds.setdefault(sec, [0, 0])
        bucket[1] += n

    def _add_other(
        self, kind: int, name: str, sec: int, value: float, tags: dict[str, str]
    ) -> None:
        tally = self.tally
        if kind == VUS:
            level = int(value)
            tally.vus_peak = max(tally.vus_peak or 0, level)
            tally.concurrency[sec] = max(tally.concurrency.get(sec, 0), level)
        elif kind == VUS_MAX:
            tally.vus_max_peak = max(tally.vus_max_peak or 0, int(value))
        elif kind == DROPPED:
            tally.dropped += int(value)
            tally.dropped_seen = True
        elif kind == SESSION_LEN:
            hdr.record_ms(tally.session_length, value)
        else:
            tally.counters[name] += int(value)
            if name in ("ws_opened", "ws_closed"):
                tally.connections.setdefault(sec, [0, 0])[name == "ws_closed"] += int(value)
            if kind == SESSIONS and tally.target is None:
                tally.target = tags.get("url") or _url_like(tags.get("name"))


class _LineParser:
    """Finds the lines we use in each block (a C-speed regex scan) and decodes only those.

    A block whose lines do not all look like k6 lines goes line by line, so a stray line
    is found and named.
    """

    def __init__(self, path: Path, reader: StreamReader) -> None:
        self.path = path
        self.reader = reader
        self.lines = 0
        self.pending: tuple[int, str] | None = None
        self._why = ""

    def feed(self, block: bytes) -> None:
        self._raise_pending()
        count = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
        # A block whose every line starts like a k6 line is scanned fast; anything else is
        # read line by line to name the bad line.
        points = block.count(POINT_PREFIX)
        if points == count or points + block.count(METRIC_PREFIX) == count:
            for match in NEEDED_LINE.finditer(block):
                start = match.start()
                if start and block[start - 1] != NEWLINE:
                    continue
                self._raise_pending()
                name = match.group(1)
                if not self._take(match.group(0), KINDS_BY_BYTES[name], name.decode()):
                    self._fail(self.lines + block.count(b"\n", 0, start) + 1)
            if self.pending is not None and self.pending[0] < self.lines + count:
                self._raise_pending()  # the bad line is not the last one read
        else:
            for number, line in enumerate(block.splitlines(), start=self.lines + 1):
                self._raise_pending()
                self._take_any(line, number)
        self.lines += count
        self.reader.tally.lines = self.lines

    def _raise_pending(self) -> None:
        # A bad line followed by more data is corruption, not a line cut short at the end.
        if self.pending is not None:
            raise ParseError(str(self.path), f"line {self.pending[0]}", self.pending[1])

    def _take(self, line: bytes, kind: int, name: str) -> bool:
        try:
            obj = DECODE(line)
            self.reader.add(kind, name, obj["data"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self._why = f"malformed k6 line: {exc!s:.120}"
            return False
        return True

    def _take_any(self, line: bytes, number: int) -> None:
        if line.startswith(POINT_PREFIX):
            end = line.find(b'"', 11)
            kind = KINDS_BY_BYTES.get(line[11:end])
            if kind is not None and not self._take(line, kind, line[11:end].decode()):
                self._fail(number)
            return
        if line.startswith(METRIC_PREFIX) or not line.strip():
            return
        try:  # valid JSON in another key order is still k6 output
            obj = json.loads(line)
        except ValueError as exc:
            self.pending = (number, f"not JSON: {exc}")
            return
        if not isinstance(obj, dict) or obj.get("type") not in ("Point", "Metric"):
            raise ParseError(str(self.path), f"line {number}", "not a k6 JSON output line")
        name = str(obj.get("metric"))
        if obj["type"] == "Point" and name in KINDS and not self._take(line, KINDS[name], name):
            self._fail(number)

    def _fail(self, number: int) -> None:
        self.pending = (number, self._why)


def read_raw(path: Path, *, partial_ok: bool = False, reader: StreamReader | None = None) -> Tally:
    """Stream a raw k6 JSON output (.json or .gz) into a Tally.

    A malformed line is a ParseError naming the line. A file cut short (k6 stopped
    mid-write, or a truncated copy) is a ParseError too, unless ``partial_ok`` (the run
    was interrupted): then what was read is kept and ``tally.truncated`` says where it ended.
    """
    # A caller may pass its own reader (e.g. one that keeps each second's values to merge
    # several raw outputs exactly).
    reader = reader or StreamReader()
    tally = reader.tally
    parser = _LineParser(path, reader)
    for block in iter_blocks(path, tally):
        parser.feed(block)
    if parser.pending is not None:
        tally.truncated = tally.truncated or f"the last line is cut short ({parser.pending[1]})"
    if tally.truncated:
        where = f"after line {tally.lines}"
        if not partial_ok:
            raise ParseError(str(path), where, tally.truncated)
        tally.truncated = f"{where}: {tally.truncated}"
    if tally.lines == 0:
        raise ParseError(str(path), "line 1", "file is empty")
    return reader.finish()
