"""``orchestrate analyze RUN_DIR``: every verdict and the capacity report again, from the
saved results alone (nothing is run); ``orchestrate compare BASE NEW``: regressions."""

from __future__ import annotations

import sys
from pathlib import Path

from orchestrator.errors import ConfigError, ExitCode


def analyze_command(run_dir: Path) -> int:
    from orchestrator.conclude import reanalyse, write_capacity
    from reports.console import print_capacity, print_verdicts

    if not run_dir.is_dir():
        raise ConfigError(f"no run directory {run_dir}")
    found = reanalyse(run_dir)
    if found.capacity is not None:
        write_capacity(found.capacity, run_dir)
        print_capacity(found.capacity)
    print_verdicts(found.results, found.skipped, found.suite_checks, f"analyze {run_dir.name}")
    return int(found.code)


def compare_command(base: Path, new: Path, markdown: Path | None) -> int:
    """Exit 1 when the new run regressed against the base, naming each regression."""
    from orchestrator.compare import compare_runs, describe, render_markdown

    comparison = compare_runs(base, new)
    text = render_markdown(comparison)
    if markdown is not None:
        markdown.write_text(text, encoding="utf-8")
    for change in comparison.regressions:
        print(f"regression: {describe(change)}", file=sys.stderr)
    print(text, end="")
    return int(ExitCode.SLA_FAILED if comparison.regressions else ExitCode.OK)
