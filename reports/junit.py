"""junit.xml: one test case per scenario and per SLA check, for CI test-report viewers.

The shape is chosen to be valid against both schemas the common consumers follow (checked in
tests/test_junit.py): Apache Ant's (``<testsuites>`` without attributes around one
``<testsuite>`` that has ``package``, ``id``, ``timestamp`` without a zone, ``hostname``,
``<properties>``, ``<system-out>`` and ``<system-err>``; at most one child per test case)
and Jenkins/Surefire's junit-10 (times with at most three decimals).

A scenario's case fails when it did not pass: an SLA failed or could not be measured, or
the tool or the target failed (the status says which); a skipped scenario is ``<skipped>``.
Each SLA check is its own case whose failure says measured vs limit.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from orchestrator.models import LoadTestResult, Threshold
from orchestrator.redact import redact_text
from orchestrator.sla import Verdict, format_metric, verdict
from reports.summary import fmt_threshold, summary_rows

# Characters XML 1.0 cannot hold at all (tool output may carry them into a status detail).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
Clean = Callable[[str], str]  # masks secrets and drops what XML cannot hold
FAILURE_TYPES = {
    Verdict.SLA_FAILED: "sla_failed",
    Verdict.NOT_JUDGED: "not_measured",
    Verdict.INTERRUPTED: "interrupted",
}


def render_junit(
    title: str,
    results: Sequence[LoadTestResult],
    skipped: dict[str, str] | None = None,
    suite_checks: Sequence[Threshold] = (),
    *,
    exit_code: int | None = None,
    secrets: tuple[str, ...] = (),
    hostname: str | None = None,
    properties: Mapping[str, str] | None = None,
) -> str:
    """The junit.xml text for one run or suite (``title`` is the suite's classname);
    ``properties`` (the run's metadata) are listed after the exit code."""

    def clean(text: str) -> str:
        return _NOT_XML.sub("?", redact_text(text, secrets, keys=False))

    classname = clean(title)
    cases: list[ET.Element] = []
    for result in results:
        cases.append(_scenario_case(result, classname, clean))
        cases += [
            _check_case(f"{result.scenario} SLA", check, classname, clean)
            for check in result.thresholds
        ]
    for name, why in (skipped or {}).items():
        case = _case(classname, clean(name), 0.0)
        ET.SubElement(case, "skipped", message=clean(why))
        cases.append(case)
    cases += [_check_case("suite SLA", check, classname, clean) for check in suite_checks]

    started = min((r.started_at for r in results), default=None)
    ended = max((r.ended_at for r in results), default=None)
    wall = (ended - started).total_seconds() if started and ended else 0.0
    stamp = (started or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    root = ET.Element("testsuites")
    suite = ET.SubElement(
        root,
        "testsuite",
        name=classname,
        package="orchestrate",
        id="0",
        timestamp=stamp,
        hostname=clean(hostname or socket.gethostname() or "localhost"),
        tests=str(len(cases)),
        failures=str(sum(c.find("failure") is not None for c in cases)),
        errors="0",
        skipped=str(sum(c.find("skipped") is not None for c in cases)),
        time=_seconds(wall),
    )
    listed = ET.SubElement(suite, "properties")
    # The Ant schema wants a timestamp without a zone: say which one it is.
    ET.SubElement(listed, "property", name="timestampZone", value="UTC")
    if exit_code is not None:
        ET.SubElement(listed, "property", name="exitCode", value=str(exit_code))
    for name, value in (properties or {}).items():
        ET.SubElement(listed, "property", name=name, value=clean(value))
    suite.extend(cases)
    ET.SubElement(suite, "system-out").text = ""
    ET.SubElement(suite, "system-err").text = ""
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def _seconds(value: float) -> str:
    # Three decimals at most: junit-10's SUREFIRE_TIME pattern.
    return f"{max(value, 0.0):.3f}"


def _case(classname: str, name: str, seconds: float) -> ET.Element:
    return ET.Element("testcase", classname=classname, name=name, time=_seconds(seconds))


def _scenario_case(result: LoadTestResult, classname: str, clean: Clean) -> ET.Element:
    case = _case(classname, clean(result.scenario), result.duration)
    judged = verdict(result)
    if judged is Verdict.PASSED:
        return case
    if judged is Verdict.FAILED:
        kind = result.status.value
        message = result.status_detail or f"status {kind}"
    else:
        kind = FAILURE_TYPES[judged]
        unmet = [c for c in result.thresholds if c.passed is not True]
        message = "; ".join(fmt_threshold(c) for c in unmet) or f"status {result.status.value}"
    failure = ET.SubElement(case, "failure", type=kind, message=clean(message))
    # The whole summary of the scenario, as the report shows it, for whoever opens the case.
    failure.text = clean("\n".join(f"{label}: {value}" for label, value in summary_rows(result)))
    return case


def _check_case(prefix: str, check: Threshold, classname: str, clean: Clean) -> ET.Element:
    limit = format_metric(check.metric, check.limit)
    case = _case(classname, clean(f"{prefix} {check.metric} {check.op} {limit}"), 0.0)
    if check.passed is not True:
        kind = "sla_failed" if check.passed is False else "not_measured"
        ET.SubElement(case, "failure", type=kind, message=clean(fmt_threshold(check)))
    return case
