"""The fault matrix: every fault provoked for real on a real run of ``orchestrate``.

Each case asserts one clear line on stderr (no traceback), the documented exit code (0 ok,
1 SLA failed only, 2 usage/config, 3 tool/target failed, 130 interrupted), the report
directory holding what was measured before the fault (a partial result is
``interrupted``/``tool_failed`` with what is unknown in ``missing``, never zeros), and no
process left behind: every process seen under ``orchestrate`` while it ran is gone after.
SIGTERM and SIGHUP of a run are in ``test_interrupts.py``; secrets at rest in
``test_secrets.py``. Load runs are 2-3 s against the reference target on 127.0.0.1.

Report roots are named ``load-reports``, not ``reports``: ``python -m orchestrator`` puts
its working directory first on ``sys.path``, where a ``reports/`` folder would shadow the
``reports`` package of an editable install.
"""

from __future__ import annotations

import errno
import gzip
import json
import multiprocessing
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from conftest import RunningTarget
from fault_helpers import Orchestrate, orchestrate, partial_files, run_dirs

from orchestrator import tools
from orchestrator.models import LoadTestResult, Status
from orchestrator.workflow import new_run_dir

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a filesystem needs root")


def autocannon_run(url: str, reports: Path, seconds: int = 2, *extra: str) -> list[str]:
    return [
        "run", "-q", "--tool", "autocannon", "-c", "2", "-d", str(seconds),
        "--url", url, "--report-dir", str(reports), *extra,
    ]  # fmt: skip


def read_result(run_dir: Path) -> LoadTestResult:
    return LoadTestResult.model_validate_json((run_dir / "run" / "result.json").read_text())


def checkpointed(reports: Path, seconds: int = 1) -> Callable[[], bool]:
    """True once the autocannon runner has saved ``seconds`` whole seconds of its run."""

    def check() -> bool:
        for path in reports.glob("*/run/autocannon-checkpoints.ndjson"):
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                with suppress(ValueError):
                    if json.loads(line).get("upTo", 0) >= seconds:
                        return True
        return False

    return check


def console_requests(stdout: str) -> int:
    """The request count of the result table printed on stdout."""
    found = re.search(r"requests\s*│\s*([\d,]+) total", stdout)
    assert found is not None, stdout
    return int(found.group(1).replace(",", ""))


# ---- a small filesystem of our own, for "disk full" and "read-only" ----


@contextmanager
def small_tmpfs(mountpoint: Path, size_kib: int, *options: str) -> Iterator[Path]:
    mountpoint.mkdir(parents=True, exist_ok=True)
    opts = ",".join([f"size={size_kib}k", *options])
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(disk: Path, leave_kib: int = 0) -> None:
    """Fill the filesystem until about ``leave_kib`` KiB are free (none: until ENOSPC)."""
    left = shutil.disk_usage(disk).free - leave_kib * 1024
    fd = os.open(disk / f"filler-{uuid.uuid4().hex[:6]}", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while leave_kib == 0 or left > 0:
            chunk = 64 * 1024 if leave_kib == 0 else min(left, 64 * 1024)
            left -= os.write(fd, b"\0" * chunk)  # unbuffered: ENOSPC is raised here
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)


# ---- disk full ----


@ROOT_ONLY
@pytest.mark.load
def test_disk_full_while_writing_the_report(
    tmp_path: Path, reference_target: RunningTarget, node_tools: Path
) -> None:
    with small_tmpfs(tmp_path / "disk", 1024) as disk:
        # Room for what is measured (tool log, plan, output, checkpoints, result.json:
        # ~60 KiB with per-second histograms) and the small summaries (~30 KiB), not for the page
        # and its plots (~350 KiB).
        fill(disk, leave_kib=128)
        reports = disk / "load-reports"
        args = autocannon_run(f"{reference_target.url}/health", reports)
        with orchestrate(args, tmp_path / "run") as run:
            code = run.finish()
        assert code == 3, run.stderr
        assert "Traceback" not in run.stderr
        (line,) = run.error_lines()
        assert line.startswith("orchestrate: error: could not write "), line
        assert line.endswith(": No space left on device"), line
        assert "report.html" in line
        assert "result.json" not in line and "summary.json" not in line

        (run_dir,) = run_dirs(reports)
        result = read_result(run_dir)  # whole: written as soon as it was measured
        assert result.status is Status.COMPLETED
        assert result.total_requests is not None and result.total_requests > 0
        # The machine-readable files came before the page: they are complete.
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["results"][0]["totalRequests"] == result.total_requests
        assert (run_dir / "summary.md").read_text().strip()
        assert not (run_dir / "report.html").exists()
        assert not (run_dir / "plots").exists()
        assert not (run_dir / ".html.tmp").exists()
        assert partial_files(run_dir) == []
        assert run.left_behind() == []


@ROOT_ONLY
@pytest.mark.load
def test_disk_full_during_the_run_keeps_the_numbers_on_the_console(
    tmp_path: Path, reference_target: RunningTarget, node_tools: Path
) -> None:
    with small_tmpfs(tmp_path / "disk", 1024) as disk:
        reports = disk / "load-reports"
        args = autocannon_run(f"{reference_target.url}/health", reports, 3)
        with orchestrate(args, tmp_path / "run") as run:
            run.wait_for(checkpointed(reports), "a first checkpoint")
            fill(disk)
            code = run.finish()
        assert code == 3, run.stderr
        assert "Traceback" not in run.stderr
        # The runner could not write its output (ENOSPC): read back from its checkpoints.
        failed, unwritten = run.error_lines()
        assert failed.startswith("orchestrate: run: tool_failed: exited with code 1"), failed
        assert "ENOSPC" in failed and "up to its last checkpoint" in failed
        assert unwritten.startswith("orchestrate: error: could not write run/result.json, ")
        assert unwritten.endswith(": No space left on device")
        assert console_requests(run.stdout) > 0  # nothing measured is lost
        (run_dir,) = run_dirs(reports)
        assert not (run_dir / "run" / "result.json").exists()
        assert partial_files(run_dir) == []
        assert run.left_behind() == []


# ---- report directory unusable: known before the load, so exit 2 and nothing started ----


def _unusable_report_dir(case: str, tmp_path: Path) -> Iterator[Path]:
    if case == "a file in the way":
        (tmp_path / "load-reports").write_text("not a folder")
        yield tmp_path / "load-reports"
    elif case == "under /proc":
        yield Path(f"/proc/orchestrate-{uuid.uuid4().hex[:8]}")
    elif case == "read-only mount":
        if os.geteuid() != 0:
            pytest.skip("mounting a filesystem needs root")
        with small_tmpfs(tmp_path / "ro", 64, "ro") as ro:
            yield ro / "load-reports"
    else:  # immutable folder
        if os.geteuid() != 0 or shutil.which("chattr") is None:
            pytest.skip("chattr +i needs root and e2fsprogs")
        folder = tmp_path / "immutable"
        folder.mkdir()
        made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
        if made.returncode != 0:
            pytest.skip(f"chattr +i not supported here: {made.stderr.decode().strip()}")
        try:
            yield folder
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=False)


@pytest.mark.parametrize(
    "case", ["a file in the way", "under /proc", "read-only mount", "immutable folder"]
)
def test_unusable_report_dir_is_refused_before_anything_starts(
    case: str, tmp_path: Path, closed_port: int
) -> None:
    started = tmp_path / "target-started"
    # A target command that would leave a mark: it must never run.
    target = shlex.join([sys.executable, "-c", f"open({str(started)!r}, 'w')"])
    with contextmanager(_unusable_report_dir)(case, tmp_path) as reports:
        args = autocannon_run(f"http://127.0.0.1:{closed_port}/", reports)
        with orchestrate([*args, "--target-cmd", target], tmp_path / "run") as run:
            code = run.finish()
        assert code == 2, run.stderr
        assert run.stderr.strip().splitlines() == run.error_lines()
        (line,) = run.error_lines()
        assert line.startswith("orchestrate: error: "), line
        assert str(reports) in line and "--report-dir" in line
        assert not started.exists()
        assert run.seen == {}


# ---- the load tool dies ----


@pytest.mark.load
def test_autocannon_killed_mid_run_keeps_what_it_measured(
    tmp_path: Path, reference_target: RunningTarget, node_tools: Path
) -> None:
    reports = tmp_path / "load-reports"
    with orchestrate(autocannon_run(f"{reference_target.url}/health", reports, 3), tmp_path) as run:
        node = run.wait_for_child("node")
        run.wait_for(checkpointed(reports), "a first checkpoint")
        node.kill()  # SIGKILL: the runner cannot write anything more
        code = run.finish()
    assert code == 3, run.stderr
    assert "Traceback" not in run.stderr
    (line,) = run.error_lines()
    assert line.startswith("orchestrate: run: tool_failed: was killed by SIGKILL"), line

    (run_dir,) = run_dirs(reports)
    result = read_result(run_dir)
    assert result.status is Status.TOOL_FAILED
    assert result.total_requests is not None and result.total_requests > 0
    assert result.successful_requests is not None and result.successful_requests > 0
    assert result.concurrency == 2 and result.duration > 0.9  # its first whole second
    assert result.throughput is not None and result.throughput > 0
    assert result.response_time.p95 is not None
    assert result.time_series and sum(b.requests for b in result.time_series) > 0
    assert "unknown" in result.missing["totalRequests"]
    assert "killed by SIGKILL" in result.missing["totalRequests"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["exitCode"] == 3
    assert run.left_behind() == []


# ---- the target dies ----


@pytest.mark.load
def test_a_target_we_did_not_start_dies_mid_run(
    tmp_path: Path, target_factory: Callable[..., RunningTarget], node_tools: Path
) -> None:
    target = target_factory()
    reports = tmp_path / "load-reports"
    with orchestrate(autocannon_run(f"{target.url}/health", reports, 3), tmp_path) as run:
        run.wait_for(checkpointed(reports), "a first checkpoint")
        target.process.kill()
        code = run.finish()
    assert code == 3, run.stderr
    (line,) = run.error_lines()
    # Not our child: its exit code cannot be known, and is not made up.
    found = re.fullmatch(
        r"orchestrate: run: target_failed: the target \(pid (\d+)\) exited (\d+\.\d) s "
        r"into the run",
        line,
    )
    assert found is not None, line
    assert int(found.group(1)) == target.pid
    assert "None" not in run.stderr
    result = read_result(run_dirs(reports)[0])
    assert result.status is Status.TARGET_FAILED
    assert result.total_requests is not None and result.total_requests > 0
    assert run.left_behind() == []


EXITING_SERVER = """
import http.server, os, sys, threading

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

threading.Timer(float(sys.argv[2]), lambda: os._exit(7)).start()
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


@pytest.mark.load
def test_a_target_we_started_dies_mid_run_with_its_exit_code(
    tmp_path: Path, closed_port: int, node_tools: Path
) -> None:
    server = tmp_path / "server.py"
    server.write_text(EXITING_SERVER)
    command = shlex.join([sys.executable, str(server), str(closed_port), "1.5"])
    reports = tmp_path / "load-reports"
    args = autocannon_run(f"http://127.0.0.1:{closed_port}/", reports, 3)
    with orchestrate([*args, "--target-cmd", command], tmp_path) as run:
        code = run.finish()
    assert code == 3, run.stderr
    (line,) = run.error_lines()
    assert re.fullmatch(
        r"orchestrate: run: target_failed: the target \(pid \d+\) exited \d+\.\d s into the "
        r"run with exit code 7",
        line,
    ), line
    assert run.left_behind() == []


# ---- interruptions ----


@pytest.mark.load
def test_a_second_ctrl_c_while_the_report_is_written_does_not_cut_it(
    tmp_path: Path, reference_target: RunningTarget, node_tools: Path
) -> None:
    reports = tmp_path / "load-reports"
    args = autocannon_run(f"{reference_target.url}/health", reports, 10)
    with orchestrate(args, tmp_path) as run:
        run.wait_for(checkpointed(reports), "a first checkpoint")
        run.signal(signal.SIGINT)
        run.wait_for(lambda: list(reports.glob("*/summary.json")), "the report's first file")
        (run_dir,) = run_dirs(reports)
        # The page and its plots come last, moved in whole: not there yet.
        page_before = (run_dir / "report.html").exists()
        # Keep pressing Ctrl-C while the report is written.
        while run.proc.poll() is None and not (run_dir / "report.html").exists():
            with suppress(ProcessLookupError):
                run.signal(signal.SIGINT)
            time.sleep(0.05)
        code = run.finish()
    assert not page_before
    assert code == 130, run.stderr
    assert "Traceback" not in run.stderr
    assert "orchestrate: SIGINT: finishing the clean-up first" in run.error_lines()
    assert run.error_lines()[-1] == "orchestrate: interrupted (Ctrl-C)"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["exitCode"] == 130
    assert (run_dir / "report.html").read_text().rstrip().endswith("</html>")
    svgs = list((run_dir / "plots").glob("*.svg"))
    assert svgs and all(p.read_text().rstrip().endswith("</svg>") for p in svgs)
    result = read_result(run_dir)
    assert result.status is Status.INTERRUPTED
    assert result.total_requests is not None and result.total_requests > 0
    assert partial_files(run_dir) == []
    assert run.left_behind() == []


def _private_k6_folders(run: Orchestrate) -> list[Path]:
    return list(run.tmp.glob("orchestrate-*"))


@pytest.mark.load
@pytest.mark.parametrize("fault", ["SIGTERM to orchestrate", "SIGKILL to k6"])
def test_the_private_k6_script_is_removed_when_the_run_is_stopped(
    fault: str, tmp_path: Path, reference_target: RunningTarget
) -> None:
    secret = f"Bearer k6-fault-{uuid.uuid4().hex}"
    reports = tmp_path / "load-reports"
    args = ["run", "-q", "--tool", "k6", "-c", "2", "-d", "10", "--url"]
    args += [f"{reference_target.url}/health", "-H", f"Authorization: {secret}"]
    with orchestrate([*args, "--report-dir", str(reports)], tmp_path) as run:
        k6 = run.wait_for_child("k6")
        (private,) = _private_k6_folders(run)
        script = private / "k6-script.js"
        assert private.stat().st_mode & 0o777 == 0o700
        assert script.stat().st_mode & 0o777 == 0o600
        assert secret in script.read_text()  # the real one: what must not stay behind
        time.sleep(1)  # let it measure something
        if fault == "SIGTERM to orchestrate":
            run.signal(signal.SIGTERM)
        else:
            k6.kill()
        code = run.finish()
    assert code == (130 if fault.startswith("SIGTERM") else 3), run.stderr
    assert "Traceback" not in run.stderr
    assert _private_k6_folders(run) == []
    assert list(run.tmp.iterdir()) == []
    for path in reports.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".gz":
                with suppress(EOFError, OSError):  # cut by the kill: what is there counts
                    data = gzip.decompress(data)
            assert secret.encode() not in data, path
    assert secret not in run.stdout + run.stderr
    assert run.left_behind() == []


# ---- bad input that must fail before anything starts ----


def test_a_port_out_of_range_is_refused_before_anything_starts(tmp_path: Path) -> None:
    reports = tmp_path / "load-reports"
    with orchestrate(autocannon_run("http://127.0.0.1:99999/", reports), tmp_path) as run:
        code = run.finish()
    assert code == 2
    assert run.stderr.strip().splitlines() == [
        "orchestrate: error: base_url: port out of range 1-65535 in 'http://127.0.0.1:99999'"
    ]
    assert not reports.exists()  # nothing ran, so no port (80 or any) was ever sampled
    assert run.seen == {}


def test_a_tools_folder_without_node_modules_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "tools"
    (folder / tools.lock_hash()).mkdir(parents=True)
    (folder / tools.lock_hash() / tools.MARKER).write_text(tools.lock_hash())
    reports = tmp_path / "load-reports"
    env = {tools.TOOLS_DIR_ENV: str(folder)}
    with orchestrate(autocannon_run("http://127.0.0.1:9/", reports), tmp_path, env) as run:
        code = run.finish()
    assert code == 3
    (line,) = run.stderr.strip().splitlines()
    assert "incomplete" in line and "tools install --force" in line, line
    assert not reports.exists()
    assert run.seen == {}


# ---- two runs in the same second ----


def _make_many(reports: Path, count: int) -> list[str]:
    return [new_run_dir(reports, "same").name for _ in range(count)]


def test_run_dirs_made_at_once_by_threads_and_processes_are_all_distinct(tmp_path: Path) -> None:
    reports = tmp_path / "load-reports"
    with ThreadPoolExecutor(16) as pool:
        by_threads = [d.name for d in pool.map(lambda _: new_run_dir(reports, "same"), range(256))]
    with multiprocessing.get_context("spawn").Pool(4) as procs:
        batches = procs.starmap(_make_many, [(reports, 24)] * 4)
    by_processes = [name for batch in batches for name in batch]
    made = by_threads + by_processes
    assert len(made) == len(set(made)) == 256 + 96
    assert sorted(made) == sorted(d.name for d in run_dirs(reports))
    # They did collide: far fewer distinct seconds than folders.
    assert len({name.split("-")[0] for name in made}) < len(made) / 4
    latest = reports / "latest"
    assert latest.is_symlink() and os.readlink(latest) in made
    assert [p.name for p in reports.iterdir() if p.name.startswith(".")] == []


# ---- a bug is not a verdict ----


def test_an_unexpected_error_is_one_line_and_exit_3_never_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestrator import cli

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("a bug in a command")

    monkeypatch.setattr(LoadTestResult, "model_json_schema", broken)
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    assert cli.main(["schema"]) == 3
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("orchestrate: internal error: RuntimeError: a bug in a command")
