"""Benchmark the k6 raw-output parser: `python benchmarks/bench_k6_parse.py`.

Generates a raw k6 `--out json` file (gzip) in the exact line format of a real k6 1.1.0
run with k6's default tags (the heaviest format: ~13 lines, ~3 KB per request), then
parses it in a child process and prints requests/s, lines/s and the child's peak RSS.
Fails (exit 1) if peak RSS reaches 300 MB. The generated file is cached in the temp dir.
"""

from __future__ import annotations

import argparse
import gzip
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

RSS_LIMIT_MB = 300

# Lines copied from a real run (k6 1.1.0, default system tags); {t} time, {v} value, {tags}.
TAGS = (
    '{{"expected_response":"{ok}","group":"","method":"GET",'
    '"name":"http://127.0.0.1:18555/api/items","proto":"HTTP/1.1","scenario":"main",'
    '"status":"{status}","url":"http://127.0.0.1:18555/api/items"}}'
)
ERROR_TAGS = (
    '{{"error":"dial: connection refused","error_code":"1212","expected_response":"false",'
    '"group":"","method":"GET","name":"http://127.0.0.1:18555/api/items","scenario":"main",'
    '"status":"0","url":"http://127.0.0.1:18555/api/items"}}'
)
HTTP_METRICS = (
    "http_reqs",
    "http_req_duration",
    "http_req_blocked",
    "http_req_connecting",
    "http_req_tls_handshaking",
    "http_req_sending",
    "http_req_waiting",
    "http_req_receiving",
    "http_req_failed",
)
ITERATION_METRICS = ("data_sent", "data_received", "iteration_duration", "iterations")
POINT = '{{"metric":"{m}","type":"Point","data":{{"time":"{t}","value":{v},"tags":{tags}}}}}\n'
DEFINITION = (
    '{{"type":"Metric","data":{{"name":"{m}","type":"trend","contains":"time",'
    '"thresholds":[],"submetrics":null}},"metric":"{m}"}}\n'
)


def request_template(tags: str, failed: int) -> str:
    """All 13 lines of one request (one iteration), as a %-template: time t, values d/w/i."""
    values = ("1", "%(d)s", "0.004458", "0", "0", "0.015008", "%(w)s", "0.089237", str(failed))
    lines = [
        POINT.format(m=m, t="%(t)s", v=v, tags=tags)
        for m, v in zip(HTTP_METRICS, values, strict=True)
    ]
    for m, v in zip(ITERATION_METRICS, ("244", "315", "%(i)s", "1"), strict=True):
        lines.append(POINT.format(m=m, t="%(t)s", v=v, tags='{"group":"","scenario":"main"}'))
    return "".join(lines)


def generate(path: Path, requests: int, rate: int) -> None:
    rng = random.Random(42)
    start = datetime(2026, 11, 25, 20, 8, 0, tzinfo=UTC)
    ok = request_template(TAGS.format(ok="true", status="200"), 0)
    server_error = request_template(
        TAGS.format(ok="false", status="500").replace('{"exp', '{"error_code":"1500","exp', 1), 1
    )
    refused = request_template(ERROR_TAGS.format(), 1)
    with gzip.open(path, "wt", compresslevel=1, encoding="utf-8") as out:
        out.writelines(DEFINITION.format(m=m) for m in (*HTTP_METRICS, *ITERATION_METRICS))
        chunk: list[str] = []
        second_text = ""
        last_second = -1
        for i in range(requests):
            offset_us = i * 1_000_000 // rate
            second, micros = divmod(offset_us, 1_000_000)
            if second != last_second:
                last_second = second
                second_text = (start + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%S")
                stamp = f"{second_text}.{micros:06d}123Z"
                for gauge in ("vus", "vus_max"):
                    chunk.append(POINT.format(m=gauge, t=stamp, v=50, tags="{}"))
            stamp = f"{second_text}.{micros:06d}123Z"
            roll = rng.random()
            template = ok if roll < 0.98 else server_error if roll < 0.99 else refused
            duration = 0.0 if template is refused else rng.lognormvariate(0.5, 0.6)
            values = {
                "t": stamp,
                "d": f"{duration:.6f}",
                "w": f"{duration * 0.9:.6f}",
                "i": f"{duration + 0.2:.6f}",
            }
            chunk.append(template % values)
            if len(chunk) > 5000:
                out.writelines(chunk)
                chunk.clear()
        out.writelines(chunk)


CHILD = """
import sys, time
from pathlib import Path
from orchestrator.engines.k6 import output as k6
started, cpu = time.perf_counter(), time.process_time()
result = k6.import_raw(Path(sys.argv[1]))
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
print(elapsed, cpu, result.total_requests, result.response_time.p50, result.response_time.p99,
      len(result.time_series), result.errors)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=5000, help="requests per second in the file")
    args = parser.parse_args()
    path = Path(tempfile.gettempdir()) / f"k6-bench-{args.requests}-{args.rate}.json.gz"
    if not path.is_file():
        print(f"generating {path} ({args.requests:,} requests) ...", flush=True)
        began = time.perf_counter()
        partial = path.with_suffix(".part")
        generate(partial, args.requests, args.rate)
        partial.rename(path)
        print(f"  generated in {time.perf_counter() - began:.1f} s", flush=True)
    with gzip.open(path, "rb") as handle:
        lines = sum(1 for _ in handle)
    print(f"file: {path.stat().st_size / 1e6:.1f} MB gzip, {lines:,} lines", flush=True)
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    elapsed_s, cpu_s, total, p50, p99, seconds, errors = out.stdout.split(maxsplit=6)
    elapsed = float(elapsed_s)
    print(f"parsed {int(total):,} requests ({lines:,} lines) in {elapsed:.2f} s")
    print(f"  CPU time {float(cpu_s):.2f} s: {int(total) / float(cpu_s):,.0f} requests/s of CPU")
    print(f"  {int(total) / elapsed:,.0f} requests/s (http_req_duration samples/s)")
    print(f"  {lines / elapsed:,.0f} lines/s (all k6 metric samples)")
    print(f"  p50 {p50} ms, p99 {p99} ms, {seconds} time-series buckets, errors {errors.strip()}")
    print(f"  peak RSS of the parsing process: {peak_mb:.1f} MB (limit {RSS_LIMIT_MB} MB)")
    return 0 if peak_mb < RSS_LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
