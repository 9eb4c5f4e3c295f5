"""``orchestrate suite NAME``: every scenario of a suite against one target, one verdict."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from orchestrator.execute import RunSettings
from orchestrator.plan import build_suite, load_config
from orchestrator.workflow import Job, run_job


def suite_command(
    name: str,
    *,
    config_path: Path | None,
    scale: float,
    only: Sequence[str],
    skip: Sequence[str],
    report_dir: Path | None,
    sample_interval: float,
    quiet: bool,
    allow_hosts: Sequence[str] = (),
    json_output: bool = False,
    baseline: Path | None = None,
) -> int:
    """Plan the suite from the config, run it; the exit code is the verdict."""
    config = load_config(config_path)
    suite = build_suite(name, config, scale=scale, only=only, skip=skip)
    job = Job(
        suite=suite,
        title=f"orchestrate suite {suite.name}",
        heading=f"suite {suite.name}",
        label=f"suite-{suite.name}",
        base_url=config.target.base_url,
        target=config.target,
        report_dir=report_dir or Path(config.report_dir),
        # The tools' raw output goes to each scenario's tool.log; the console shows progress.
        settings=RunSettings(sample_interval=sample_interval, sink=None, progress=not quiet),
        view="verdicts",
        login=config.login,
        secrets=config.secrets(),
        allowed_hosts=(*config.allowed_hosts, *allow_hosts),
        json_output=json_output,
        config_file=config.source,
        baseline=baseline,
    )
    return int(run_job(job).code)
