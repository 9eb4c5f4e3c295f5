"""junit.xml in every report directory, and the Markdown summary on a CI job's page.

The results come from real short runs: a two-scenario suite through the real CLI against the
reference target (one scenario meets its SLA, one cannot), and autocannon at a closed port.
Every junit.xml is validated against the two JUnit schemas common consumers follow
(tests/fixtures/junit/README.md says where they come from).
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from orchestrator import sla
from orchestrator.api import load_test
from orchestrator.models import LoadTestResult, Status
from reports.junit import render_junit
from reports.step_summary import STEP_SUMMARY_ENV, append_step_summary
from reports.writer import write_report

SCHEMAS = Path(__file__).parent / "fixtures" / "junit"
SUITE_CONFIG = """\
target: {{base_url: "{url}"}}
login: null
endpoints:
  health: {{method: GET, path: /health}}
scenarios:
  steady:
    endpoints: [health]
    users: 3
    hold: 1
    thresholds: ["errorRate < 5%", "p95 < 500ms"]
  impossible:
    endpoints: [health]
    users: 3
    hold: 1
    thresholds: ["p50 < 1us"]
suites:
  demo:
    scenarios: [steady, impossible]
    thresholds: ["aggregateThroughput > 1/s"]
"""
EARLIER_STEP = "Output of an earlier step."


@pytest.fixture(scope="module")
def schemas() -> list[xmlschema.XMLSchema]:
    return [xmlschema.XMLSchema(SCHEMAS / name) for name in ("junit-10.xsd", "JUnit.xsd")]


def assert_valid(path: Path, schemas: list[xmlschema.XMLSchema]) -> ET.Element:
    for schema in schemas:
        schema.validate(str(path))  # raises with the element and the rule broken
    return ET.parse(path).getroot()


def cases_of(root: ET.Element) -> dict[str, ET.Element]:
    (suite,) = root.findall("testsuite")
    return {case.attrib["name"]: case for case in suite.findall("testcase")}


@dataclass
class SuiteRun:
    code: int
    stderr: str
    run_dir: Path
    summary_file: Path
    results: dict[str, LoadTestResult]


@pytest.fixture(scope="module")
def suite_run(
    reference_target: Any, node_tools: Path, tmp_path_factory: pytest.TempPathFactory
) -> SuiteRun:
    """`orchestrate suite demo` as a CI job runs it: GITHUB_STEP_SUMMARY set."""
    work = tmp_path_factory.mktemp("suite")
    config = work / "orchestrate.yaml"
    config.write_text(SUITE_CONFIG.format(url=reference_target.url), encoding="utf-8")
    summary_file = work / "step-summary.md"
    summary_file.write_text(EARLIER_STEP + "\n", encoding="utf-8")
    reports = work / "reports"
    argv = ["suite", "demo", "-q", "--config", str(config), "--report-dir", str(reports)]
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", *argv],
        cwd=work,
        env={**os.environ, STEP_SUMMARY_ENV: str(summary_file)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    (run_dir,) = [p for p in reports.iterdir() if not p.is_symlink()]
    results = {
        path.parent.name: LoadTestResult.model_validate_json(path.read_text(encoding="utf-8"))
        for path in run_dir.glob("*/result.json")
    }
    return SuiteRun(done.returncode, done.stderr, run_dir, summary_file, results)


@pytest.mark.load
def test_suite_junit_has_a_case_per_scenario_and_per_check(
    suite_run: SuiteRun, schemas: list[xmlschema.XMLSchema]
) -> None:
    assert suite_run.code == 1, suite_run.stderr  # the impossible SLA fails the suite
    root = assert_valid(suite_run.run_dir / "junit.xml", schemas)
    (suite,) = root.findall("testsuite")
    cases = cases_of(root)
    assert sorted(cases) == [
        "impossible",
        "impossible SLA p50 < 0.001 ms",
        "steady",
        "steady SLA errorRate < 5%",
        "steady SLA p95 < 500 ms",
        "suite SLA aggregateThroughput > 1.0/s",
    ]
    assert {c.attrib["classname"] for c in cases.values()} == {"orchestrate suite demo"}
    assert suite.attrib["tests"] == "6"
    assert suite.attrib["failures"] == "2"  # the scenario and its one check
    assert suite.attrib["skipped"] == "0"
    exit_code = suite.find("properties/property[@name='exitCode']")
    assert exit_code is not None and exit_code.attrib["value"] == "1"

    # Each scenario's case carries its own measured duration.
    for name, result in suite_run.results.items():
        assert cases[name].attrib["time"] == f"{result.duration:.3f}"
    assert cases["steady"].find("failure") is None
    assert cases["steady SLA p95 < 500 ms"].find("failure") is None

    # A failure says measured vs limit, in the report's own words.
    measured = suite_run.results["impossible"].response_time.p50
    assert measured is not None
    check = cases["impossible SLA p50 < 0.001 ms"].find("failure")
    assert check is not None and check.attrib["type"] == "sla_failed"
    assert check.attrib["message"].startswith("FAIL p50 < 0.001 ms (measured ")
    scenario = cases["impossible"].find("failure")
    assert scenario is not None and scenario.attrib["message"] == check.attrib["message"]
    assert "status: completed" in (scenario.text or "")


@pytest.mark.load
def test_suite_appends_its_summary_to_the_job_summary(suite_run: SuiteRun) -> None:
    text = suite_run.summary_file.read_text(encoding="utf-8")
    before, sep, ours = text.partition("# orchestrate suite demo")
    assert sep, text
    assert before.strip() == EARLIER_STEP  # appended, not overwritten
    assert "**FAIL**: an SLA was not met" in ours
    assert f"Report directory: `{suite_run.run_dir.name}`" in ours
    assert "| impossible | autocannon | FAIL | FAIL p50 < 0.001 ms (measured" in ours
    assert "| steady | autocannon | PASS |" in ours
    assert "- PASS aggregateThroughput > 1.0/s" in ours
    # The rest is the report's summary.md, after its title.
    summary_md = (suite_run.run_dir / "summary.md").read_text(encoding="utf-8")
    assert ours.rstrip().endswith(summary_md.partition("\n")[2].rstrip())


@pytest.mark.load
def test_failed_and_skipped_scenarios(
    suite_run: SuiteRun,
    schemas: list[xmlschema.XMLSchema],
    closed_port: int,
    node_tools: Path,
    tmp_path: Path,
) -> None:
    refused = load_test(
        f"http://127.0.0.1:{closed_port}/health",
        connections=2,
        duration=1,
        thresholds=["errorRate < 5%"],
        report_dir=tmp_path / "run",
    )
    assert refused.status is Status.TARGET_FAILED
    # A single `run` writes its junit.xml too.
    run_root = assert_valid(tmp_path / "run" / "latest" / "junit.xml", schemas)
    run_case = cases_of(run_root)["pytest"]
    run_failure = run_case.find("failure")
    assert run_failure is not None and run_failure.attrib["type"] == "target_failed"

    steady = suite_run.results["steady"]
    skipped = {"db-pool": "skipped: pgbench not found (--skip db-pool to leave it out)"}
    combined = tmp_path / "combined"
    code = sla.suite_exit_code([steady, refused], skipped)
    write_report(combined, "orchestrate suite mixed", [steady, refused], skipped=skipped,
                 exit_code=int(code))  # fmt: skip
    root = assert_valid(combined / "junit.xml", schemas)
    (suite,) = root.findall("testsuite")
    cases = cases_of(root)
    assert (suite.attrib["tests"], suite.attrib["failures"], suite.attrib["skipped"]) == (
        "6",  # steady + 2 checks, pytest + 1 check, db-pool
        "2",  # the refused scenario and its check, not judged on a failed run
        "1",
    )
    failure = cases["pytest"].find("failure")
    assert failure is not None and failure.attrib["type"] == "target_failed"
    assert failure.attrib["message"] == (refused.status_detail or "status target_failed")
    check = cases["pytest SLA errorRate < 5%"].find("failure")
    assert check is not None and check.attrib["type"] == "not_measured"
    assert check.attrib["message"] == (
        "NOT MEASURED errorRate < 5% (measured 100%; run target_failed: not judged)"
    )
    skip = cases["db-pool"].find("skipped")
    assert skip is not None and skip.attrib["message"] == skipped["db-pool"]
    assert cases["db-pool"].attrib["time"] == "0.000"


@pytest.mark.load
def test_secrets_and_terminal_escapes_stay_out(
    suite_run: SuiteRun, schemas: list[xmlschema.XMLSchema], tmp_path: Path
) -> None:
    secret = "s3cr3t-token-value"
    failed = suite_run.results["steady"].model_copy(
        update={
            "status": Status.TOOL_FAILED,
            # What a tool's colored stderr and a leaked token look like in a status detail.
            "status_detail": f"\x1b[31mlogin refused\x1b[0m for Bearer {secret}\x00",
        }
    )
    write_report(tmp_path, "orchestrate suite demo", [failed], exit_code=3, secrets=(secret,))
    text = (tmp_path / "junit.xml").read_text(encoding="utf-8")
    assert secret not in text
    root = assert_valid(tmp_path / "junit.xml", schemas)
    failure = cases_of(root)["steady"].find("failure")
    assert failure is not None and failure.attrib["type"] == "tool_failed"
    assert "login refused" in failure.attrib["message"]


def test_an_empty_run_is_still_a_valid_document(schemas: list[xmlschema.XMLSchema],
                                                tmp_path: Path) -> None:  # fmt: skip
    path = tmp_path / "junit.xml"
    path.write_text(render_junit("imported k6 results", [], hostname="ci"), encoding="utf-8")
    root = assert_valid(path, schemas)
    (suite,) = root.findall("testsuite")
    assert suite.attrib["tests"] == "0"
    assert suite.find("properties/property[@name='exitCode']") is None


def test_job_summary_only_when_the_variable_is_set(tmp_path: Path) -> None:
    target = tmp_path / "summary.md"
    assert append_step_summary("# t", env={}) is None
    assert not target.exists()
    assert append_step_summary("# one\n", env={STEP_SUMMARY_ENV: str(target)}) == target
    assert append_step_summary("# two", env={STEP_SUMMARY_ENV: str(target)}) == target
    assert target.read_text(encoding="utf-8") == "\n# one\n\n# two\n"
    # An unwritable summary is a warning, never a failed report.
    blocked = tmp_path / "missing-dir" / "summary.md"
    assert append_step_summary("# three", env={STEP_SUMMARY_ENV: str(blocked)}) is None


def test_the_schemas_reject_what_consumers_reject(
    schemas: list[xmlschema.XMLSchema], tmp_path: Path
) -> None:
    """A check that the validation above can fail: two shapes other JUnit writers produce."""
    good = render_junit("t", [], hostname="ci")
    four_decimals = good.replace('time="0.000"', 'time="0.0001"')
    no_properties = (
        good.replace('<property name="timestampZone" value="UTC" />', "")
        .replace("<properties>", "")
        .replace("</properties>", "")
    )
    junit10, ant = schemas
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        junit10.validate(four_decimals)
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        ant.validate(no_properties)
    for schema in schemas:
        schema.validate(good)
