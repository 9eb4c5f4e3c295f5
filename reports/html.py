"""index.html: one self-contained page (inline CSS, plots from plots/) to read a run at a glance."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.errors import ExitCode
from orchestrator.models import LoadTestResult, Threshold
from orchestrator.redact import redact_text
from orchestrator.sla import suite_exit_code
from reports import plots
from reports.summary import check_verdict, fmt_ms, fmt_num, fmt_threshold, summary_rows
from reports.summary import verdict_rows as build_verdict_rows

LOG = logging.getLogger(__name__)

VERDICT_CLASS = {"PASS": "pass", "NOT MEASURED": "warn", "SKIPPED": "warn", "INTERRUPTED": "warn"}
OVERALL = {
    ExitCode.OK: "PASS",
    ExitCode.SLA_FAILED: "FAIL: an SLA was not met or could not be measured",
    ExitCode.USAGE: "USAGE ERROR",
    ExitCode.TOOL_OR_TARGET_FAILED: "FAILED: a tool or the target failed",
    ExitCode.INTERRUPTED: "INTERRUPTED",
}


@dataclass
class Section:
    """One result's part of the page."""

    anchor: str
    scenario: str
    verdict: str
    rows: list[tuple[str, str]]
    missing: list[tuple[str, str]]
    steps: list[dict[str, str]]
    plots: list[plots.Plot] = field(default_factory=list)


def verdict_class(verdict: str) -> str:
    return VERDICT_CLASS.get(verdict, "fail")


def overall_verdict(code: int) -> str:
    try:
        return OVERALL[ExitCode(code)]
    except ValueError:
        return f"exit code {code}"


def step_rows(result: LoadTestResult) -> list[dict[str, str]]:
    if len(result.steps) < 2:
        return []
    return [
        {
            "step": str(s.index),
            "load": f"{s.concurrency:,}",
            "seconds": f"{s.duration:.1f}",
            "requests": f"{s.total_requests:,}",
            "failed": f"{s.failed_requests:,}",
            "throughput": fmt_num(s.throughput, 1, " req/s"),
            "p95": fmt_ms(s.response_time.p95),
            "p99": fmt_ms(s.response_time.p99),
        }
        for s in result.steps
    ]


def build_sections(
    results: Sequence[LoadTestResult], run_dir: Path, verdicts: Sequence[str], draw: bool
) -> list[Section]:
    sections = []
    for index, (result, verdict) in enumerate(zip(results, verdicts, strict=True), start=1):
        stem = f"{index:02d}-{plots.slug(result.scenario)}"
        section = Section(
            anchor=stem,
            scenario=result.scenario,
            verdict=verdict,
            rows=summary_rows(result),
            missing=sorted(result.missing.items()),
            steps=step_rows(result),
        )
        if draw:
            try:
                section.plots = plots.plot_result(result, run_dir, stem)
            except OSError:
                raise  # the disk refused it: the writer says so once
            except Exception as exc:
                LOG.warning(
                    "plots of %s not drawn: %s: %s", result.scenario, type(exc).__name__, exc
                )
                section.plots = [plots.Plot("Plots", reason=f"plots failed: {exc}")]
        sections.append(section)
    return sections


def render_html(
    run_dir: Path,
    title: str,
    results: Sequence[LoadTestResult],
    *,
    skipped: dict[str, str] | None = None,
    suite_checks: Sequence[Threshold] = (),
    exit_code: int | None = None,
    draw: bool = True,
) -> str:
    """The page's HTML (not yet redacted); draws the plots into run_dir/plots when ``draw``."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    skipped = skipped or {}
    verdicts = build_verdict_rows(results, skipped)
    code = exit_code if exit_code is not None else suite_exit_code(results, skipped, suite_checks)
    suite_plot = None
    if draw:
        try:
            suite_plot = plots.plot_suite(results, run_dir)
        except OSError:
            raise
        except Exception as exc:
            LOG.warning("suite plot not drawn: %s: %s", type(exc).__name__, exc)
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=select_autoescape(["html", "html.j2"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["verdict_class"] = verdict_class
    started = min((r.started_at for r in results), default=None)
    return env.get_template("report.html.j2").render(
        title=title,
        written_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        started_at=started.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if started else None,
        exit_code=exit_code,
        overall=overall_verdict(code),
        overall_class=verdict_class(overall_verdict(code).split(":")[0]),
        verdicts=verdicts,
        suite_checks=[
            (check_verdict(c), fmt_threshold(c).removeprefix(check_verdict(c) + " "))
            for c in suite_checks
        ],
        suite_plot=suite_plot,
        sections=build_sections(
            results, run_dir, [v.verdict for v in verdicts[: len(results)]], draw
        ),
    )


def write_html(
    run_dir: Path,
    title: str,
    results: Sequence[LoadTestResult],
    *,
    skipped: dict[str, str] | None = None,
    suite_checks: Sequence[Threshold] = (),
    exit_code: int | None = None,
    secrets: tuple[str, ...] = (),
) -> Path:
    """Write run_dir/index.html and its plots; the whole page passes through redaction."""
    # Plot titles carry scenario names: mask secrets there too, before they become pixels.
    shown = [
        r.model_copy(update={"scenario": redact_text(r.scenario, secrets, keys=False)})
        for r in results
    ]
    html = render_html(
        run_dir, title, shown, skipped=skipped, suite_checks=suite_checks, exit_code=exit_code
    )
    path = run_dir / "index.html"
    path.write_text(redact_text(html, secrets, keys=False), encoding="utf-8")
    return path
