"""``orchestrate import --tool T FILE...``: results of runs made elsewhere, as a report.

Nothing is run: each file is read by its engine, then the workflow's last steps (write the
report, show the results) are the same as after a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from orchestrator.engines import get_engine
from orchestrator.errors import ExitCode, ParseError
from orchestrator.workflow import Outcome, finish, new_run_dir


def import_command(tool: str, files: Sequence[Path], report_dir: Path) -> int:
    engine = get_engine(tool)
    missing = [path for path in files if not path.is_file()]
    if missing:
        raise ParseError(str(missing[0]), "open", "no such file")
    results = [engine.import_file(path) for path in files]
    outcome = Outcome(new_run_dir(report_dir, f"import-{tool}"), results, code=ExitCode.OK)
    title = f"imported {tool} results"
    finish(title, title, "results", outcome)
    return int(outcome.code)
