"""What `orchestrate run` loads before the load is over: never the heavy libraries.

pandas, matplotlib and scipy (with numpy) cost about a second to import; a run must not
pay for them before the tool has finished, nor before its verdict is on the console. A real
1 s run in a subprocess records ``sys.modules`` when the tool starts and when the PASS/FAIL
headline is printed. No timing is asserted here: speed lives in benchmarks/bench_overhead.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import RunningTarget

HEAVY = ("pandas", "matplotlib", "scipy", "numpy")

PROBE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    import orchestrator.cli
    from orchestrator import process
    import reports.console

    HEAVY = {heavy!r}
    seen = {{}}

    def loaded(moment):
        seen[moment] = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)

    loaded("cli imported")
    start_tool = process.run_tool

    def run_tool(*args, **kwargs):
        loaded("tool started")
        return start_tool(*args, **kwargs)

    headline = reports.console.print_headline

    def print_headline(result):
        headline(result)
        loaded("verdict printed")

    process.run_tool = run_tool
    reports.console.print_headline = print_headline
    code = orchestrator.cli.main(sys.argv[1:])
    loaded("exit")
    Path("modules.json").write_text(json.dumps(seen))
    sys.exit(code)
    """
)


@pytest.mark.load
def test_a_run_imports_no_heavy_library_before_its_verdict(
    tmp_path: Path, reference_target: RunningTarget, node_tools: Path
) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE.format(heavy=HEAVY), encoding="utf-8")
    url = f"{reference_target.url}/health"
    argv = [sys.executable, str(probe), "run", "--url", url, "-d", "1", "-q"]
    done = subprocess.run(
        [*argv, "--report-dir", "reports"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads((tmp_path / "modules.json").read_text(encoding="utf-8"))
    assert seen["cli imported"] == []
    assert seen["tool started"] == []
    assert seen["verdict printed"] == []
    # The report is complete when the command exits: its plots did need matplotlib.
    assert "matplotlib" in seen["exit"]
    (run_dir,) = [p for p in (tmp_path / "reports").iterdir() if not p.is_symlink()]
    assert (run_dir / "report.html").is_file()
    assert "PASS" in done.stdout


def test_planning_a_run_imports_no_heavy_library() -> None:
    """`--help`, option parsing and planning (the steps before any tool) stay light."""
    code = textwrap.dedent(
        """
        import sys
        from orchestrator.commands.run import plan_run
        from orchestrator.options import RunOptions
        plan_run(RunOptions(url="http://127.0.0.1:9/health", duration=1))
        print(sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r}))
        """
    ).format(heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
