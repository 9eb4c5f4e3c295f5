"""``orchestrate run`` and ``api.load_test``: one load test, planned as a suite of one."""

from __future__ import annotations

from orchestrator import process
from orchestrator.execute import RunSettings
from orchestrator.options import RunOptions
from orchestrator.plan import Suite
from orchestrator.redact import SECRET_HEADERS
from orchestrator.workflow import Job, Outcome, View, run_job


def secret_header_values(headers: dict[str, str]) -> tuple[str, ...]:
    return tuple(v for k, v in headers.items() if k.lower() in SECRET_HEADERS and v)


def plan_run(options: RunOptions, view: View = "results") -> Job:
    """The job of one load test; ConfigError (nothing started) if the options cannot run."""
    planned = options.planned()
    if planned.scenario.shards > 1 or options.agents:
        from orchestrator.engines.k6.sharding import check_shardable

        check_shardable(planned.tool, planned.scenario, options.agents)
    return Job(
        suite=Suite(name=planned.name, scenarios=[planned], suite_thresholds=[]),
        title=f"orchestrate run: {planned.name}",
        heading=f"run {planned.name}",
        label=options.name,
        base_url=options.url,
        target=options.target_spec(),
        report_dir=options.report_dir,
        settings=RunSettings(
            sample_interval=options.sample_interval,
            sink=None if options.quiet else process.write_to_stderr,
            agents=list(options.agents),
        ),
        view=view,
        secrets=secret_header_values(options.headers),
        allowed_hosts=tuple(options.allow_hosts),
        json_output=options.json_output,
        baseline=options.baseline,
    )


def measure(options: RunOptions, view: View = "results") -> Outcome:
    """Run the load test and write its report (even when it fails or is interrupted)."""
    return run_job(plan_run(options, view))


def run_command(options: RunOptions) -> int:
    return int(measure(options).code)
