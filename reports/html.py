"""report.html: ONE self-contained file to open, mail or attach to a CI run.

Plots are embedded as SVG ``data:`` URIs and the CSS is inline, so the file alone shows
everything; raw files are linked by paths relative to the report folder (they work while the
file sits in its folder). The page answers first: the overall verdict, the capacity report,
the regressions; then per scenario the numbers and plots that back them; then what ran it.

``index.html`` is a tiny redirect to report.html, kept so that a report folder served by a web
server, and links people already have to ``index.html``, still open the report. The same SVGs
are also saved under ``plots/`` for use outside the page.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.models import LoadTestResult, Threshold
from orchestrator.redact import redact_text
from orchestrator.sla import suite_exit_code
from reports.findings import baseline_name, capacity_view, change_row, shown_changes
from reports.plots import Plot
from reports.run_info import RunInfo, run_rows
from reports.sections import Section, build_section
from reports.summary import check_verdict, fmt_threshold, overall
from reports.summary import verdict_rows as build_verdict_rows

if TYPE_CHECKING:
    from orchestrator.compare import Comparison

LOG = logging.getLogger(__name__)

REPORT = "report.html"
INDEX = "index.html"
VERDICT_CLASS = {"PASS": "pass", "NOT MEASURED": "warn", "SKIPPED": "warn", "INTERRUPTED": "warn"}
# Files of the report folder the page links to, when they are there.
FOLDER_FILES = ("summary.md", "summary.json", "results.csv", "junit.xml")


def verdict_class(verdict: str) -> str:
    return VERDICT_CLASS.get(verdict, "fail")


@dataclass
class Overall:
    word: str
    meaning: str
    css: str
    tally: str  # "2 of 3 scenarios passed"


def overall_of(code: int, verdicts: Sequence[str]) -> Overall:
    word, meaning = overall(code)
    passed = sum(v == "PASS" for v in verdicts)
    tally = f"{passed} of {len(verdicts)} scenario{'s' if len(verdicts) != 1 else ''} passed"
    css = {"PASS": "pass", "INTERRUPTED": "warn"}.get(word, "fail")
    return Overall(word, meaning, css, tally if verdicts else "no scenario ran")


@dataclass
class Comparing:
    baseline: str
    regressions: int
    rows: list[dict[str, str]]
    unmatched: list[str]


def comparing(comparison: Comparison | None) -> Comparing | None:
    if comparison is None:
        return None
    rows = [change_row(c) for c in shown_changes(comparison)]
    return Comparing(
        baseline_name(comparison), len(comparison.regressions), rows, comparison.unmatched
    )


def _analyses(
    results: Sequence[LoadTestResult], capacity: Mapping[str, Any] | None
) -> list[Mapping[str, Any] | None]:
    """Each result's analysis in the capacity report (matched by scenario name, in order)."""
    left = list((capacity or {}).get("scenarios") or [])
    found: list[Mapping[str, Any] | None] = []
    for result in results:
        match = next((a for a in left if a.get("scenario") == result.scenario), None)
        if match is not None:
            left.remove(match)
        found.append(match)
    return found


def figure_sections(
    results: Sequence[LoadTestResult],
    run_dir: Path,
    verdicts: Sequence[str],
    draw: bool,
    capacity: Mapping[str, Any] | None = None,
) -> list[Section]:
    from reports.figures import scenario_figures

    sections = []
    analyses = _analyses(results, capacity)
    for index, (result, verdict) in enumerate(zip(results, verdicts, strict=True), start=1):
        section = build_section(index, result, verdict, run_dir)
        if draw:
            try:
                section.plots = scenario_figures(result, analyses[index - 1])
            except Exception as exc:
                LOG.warning(
                    "plots of %s not drawn: %s: %s", result.scenario, type(exc).__name__, exc
                )
                section.plots = [Plot("plots", "Plots", reason=f"plots failed: {exc}")]
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
    failure: str | None = None,
    run: RunInfo | None = None,
    capacity: Mapping[str, Any] | None = None,
    comparison: Comparison | None = None,
    secrets: tuple[str, ...] = (),
    draw: bool = True,
) -> tuple[str, dict[str, Plot]]:
    """The page's HTML, redacted, and its drawn plots by file name.

    The text is redacted before the pictures go in: a secret's letters met by chance in
    base64 must not break a picture (the pictures are drawn from redacted results)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    skipped = skipped or {}
    verdicts = build_verdict_rows(results, skipped)
    code = exit_code if exit_code is not None else suite_exit_code(results, skipped, suite_checks)
    suite_plot = None
    if draw:
        try:
            from reports.figures import suite_figure

            suite_plot = suite_figure(results)
        except Exception as exc:
            LOG.warning("suite plot not drawn: %s: %s", type(exc).__name__, exc)
    sections = figure_sections(
        results, run_dir, [v.verdict for v in verdicts[: len(results)]], draw, capacity
    )
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=select_autoescape(["html", "html.j2"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["verdict_class"] = verdict_class
    images: dict[str, str] = {}

    def image_src(plot: Plot) -> str:
        token = uuid.uuid4().hex  # random: no secret redacted below can be part of it
        images[token] = plot.data_uri
        return token

    env.globals["image_src"] = image_src
    started = min((r.started_at for r in results), default=None)
    html = env.get_template("report.html.j2").render(
        title=title,
        written_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        started_at=started.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if started else None,
        exit_code=code,
        overall=overall_of(int(code), [v.verdict for v in verdicts]),
        failure=failure,
        capacity=capacity_view(capacity) if capacity is not None else None,
        comparison=comparing(comparison),
        verdicts=verdicts,
        suite_checks=[
            (check_verdict(c), fmt_threshold(c).removeprefix(check_verdict(c) + " "))
            for c in suite_checks
        ],
        suite_plot=suite_plot,
        sections=sections,
        run_rows=run_rows(run) if run is not None else [],
        run=run,
        folder_files=[name for name in FOLDER_FILES if (run_dir / name).is_file()],
    )
    html = redact_text(html, secrets, keys=False)
    for token, uri in images.items():
        html = html.replace(f'src="{token}"', f'src="{uri}"', 1)
    drawn = {f"{s.anchor}-{p.kind}.svg": p for s in sections for p in s.plots if p.svg}
    if suite_plot is not None and suite_plot.svg:
        drawn[f"{suite_plot.kind}.svg"] = suite_plot
    return html, drawn


def redacted(result: LoadTestResult, secrets: tuple[str, ...]) -> LoadTestResult:
    """The result with secrets masked in every text (names become plot labels, so this is
    done before drawing); the base64 histograms are left whole so they still decode."""
    data = result.model_dump(mode="json", by_alias=True)
    histograms = [data.pop("histogram", None)]
    for endpoint in data.get("endpoints", []):
        histograms.append(endpoint.pop("histogram", None))
    data = json.loads(redact_text(json.dumps(data), secrets, keys=False))
    data["histogram"] = histograms[0]
    for endpoint, encoded in zip(data.get("endpoints", []), histograms[1:], strict=True):
        endpoint["histogram"] = encoded
    return LoadTestResult.model_validate(data)


def redirect_page(title: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="refresh" content="0; url={REPORT}">\n'
        f"<title>{escape(title)}</title></head>\n"
        f'<body><p>The report is <a href="{REPORT}">{REPORT}</a>.</p></body></html>\n'
    )


def write_html(
    run_dir: Path,
    title: str,
    results: Sequence[LoadTestResult],
    *,
    secrets: tuple[str, ...] = (),
    out_dir: Path | None = None,
    **options: Any,
) -> list[Path]:
    """Write report.html, index.html (a redirect) and plots/*.svg; everything redacted.

    Links are relative to ``run_dir``; the files go to ``out_dir`` (default ``run_dir``),
    e.g. a staging folder inside it. A disk error is raised: the writer says it once.
    """
    out = out_dir or run_dir
    shown = [redacted(r, secrets) for r in results] if secrets else list(results)
    html, drawn = render_html(run_dir, title, shown, secrets=secrets, **options)
    report = out / REPORT
    report.write_text(html, encoding="utf-8")
    index = out / INDEX
    index.write_text(redact_text(redirect_page(title), secrets, keys=False), encoding="utf-8")
    written = [report, index]
    if drawn:
        folder = out / "plots"
        folder.mkdir(exist_ok=True)
        for name, plot in drawn.items():
            assert plot.svg is not None
            (folder / name).write_bytes(plot.svg)
    return written
