"""The CI files: .github/workflows/load-tests.yml and the composite action.yml.

actionlint (with shellcheck on every `run:` script) lints the workflow; it checks workflows
only, so the action is checked where a workflow uses it (`uses: ./` in a generated
repository), by a structural schema below, and by running its shell steps for real.
The Node tools cache must follow the lockfile: the workflow's key hashes exactly the files
whose digest names the install folder (orchestrator.tools.lock_hash).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator import tools

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "load-tests.yml"
ACTION = ROOT / "action.yml"
VENV_BIN = Path(sys.executable).parent
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def tool(name: str) -> str:
    beside = VENV_BIN / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    assert found, f"{name} not found: `bash scripts/setup.sh dev` installs it (dev extras)"
    return found


def lint(cwd: Path, *files: str) -> subprocess.CompletedProcess[str]:
    """actionlint with shellcheck beside it on PATH (it then checks every `run:` script)."""
    return subprocess.run(
        [tool("actionlint"), "-no-color", "-verbose", *files],
        cwd=cwd,
        env={**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def steps_of(workflow: dict[Any, Any], job: str) -> list[dict[str, Any]]:
    return list(workflow["jobs"][job]["steps"])


def one_step(steps: list[dict[str, Any]], uses: str) -> dict[str, Any]:
    (step,) = [s for s in steps if str(s.get("uses", "")).startswith(uses)]
    return step


# ---- the workflow -------------------------------------------------------------------------


def test_workflow_passes_actionlint_with_shellcheck() -> None:
    done = lint(ROOT, str(WORKFLOW.relative_to(ROOT)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'Rule "shellcheck" was disabled' not in done.stderr  # the scripts were checked too


def test_workflow_runs_ci_on_pull_requests_and_full_on_schedule_and_demand() -> None:
    workflow = load(WORKFLOW)
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"pull_request", "schedule", "workflow_dispatch"}
    assert triggers["workflow_dispatch"]["inputs"]["scale"]["default"] == 0.05
    env = workflow["jobs"]["load-tests"]["env"]
    assert env["SUITE"] == "${{ github.event_name == 'pull_request' && 'ci' || 'full' }}"
    assert "inputs.scale" in env["SCALE"]
    steps = steps_of(workflow, "load-tests")
    (run,) = [s for s in steps if s.get("id") == "suite"]
    assert 'orchestrate suite "$SUITE" --scale "$SCALE"' in run["run"]
    assert run["run"].rstrip().endswith('exit "$code"')  # the exit code is the verdict
    upload = one_step(steps, "actions/upload-artifact@")
    assert upload["if"].startswith("always()")  # the report is kept when the suite fails
    assert upload["with"]["path"] == "${{ steps.suite.outputs.report-dir }}"


def test_workflow_caches_the_node_tools_folder_keyed_on_the_lockfile() -> None:
    workflow = load(WORKFLOW)
    job = workflow["jobs"]["load-tests"]
    steps = steps_of(workflow, "load-tests")
    cache = one_step(steps, "actions/cache@")
    # The folder cached is the one `orchestrate tools install` fills: $ORCHESTRATE_TOOLS_DIR.
    assert "ORCHESTRATE_TOOLS_DIR" in job["env"]
    assert cache["with"]["path"] == "${{ env.ORCHESTRATE_TOOLS_DIR }}"
    (hashed,) = re.findall(r"hashFiles\(([^)]*)\)", cache["with"]["key"])
    files = [f.strip().strip("'\"") for f in hashed.split(",")]
    # Exactly the files whose digest names the install folder, so the two change together.
    assert files == [f"tool_configs/node/{name}" for name in tools.LOCK_FILES]
    assert all((ROOT / f).is_file() for f in files)
    install = next(
        i for i, s in enumerate(steps) if "orchestrate tools install" in s.get("run", "")
    )
    assert steps.index(cache) < install  # restored before the install looks for it
    python = one_step(steps, "actions/setup-python@")
    assert python["with"]["cache"] == "pip"


def test_lock_hash_changes_when_the_lockfile_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "node"
    copy.mkdir()
    for name in tools.LOCK_FILES:
        shutil.copy2(tools.node_manifest_dir() / name, copy / name)
    same = tools.lock_hash(copy)
    assert same == tools.lock_hash()

    lock = json.loads((copy / "package-lock.json").read_text(encoding="utf-8"))
    lock["packages"]["node_modules/autocannon"]["version"] = "9.0.1"
    (copy / "package-lock.json").write_text(json.dumps(lock, indent=2), encoding="utf-8")
    bumped = tools.lock_hash(copy)
    assert bumped != same

    manifest = json.loads((copy / "package.json").read_text(encoding="utf-8"))
    manifest["dependencies"]["autocannon"] = "9.0.1"
    (copy / "package.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    assert tools.lock_hash(copy) not in (same, bumped)

    # The install folder (the one CI caches) is named by that hash.
    monkeypatch.setenv(tools.TOOLS_DIR_ENV, str(tmp_path / "cache"))
    assert tools.install_dir() == tmp_path / "cache" / same


# ---- the composite action -----------------------------------------------------------------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ActionInput(Strict):
    description: str
    required: bool = False
    default: str | None = None


class ActionOutput(Strict):
    description: str
    value: str


class CompositeStep(Strict):
    id: str | None = None
    name: str | None = None
    if_: str | None = Field(default=None, alias="if")
    uses: str | None = None
    with_: dict[str, str] | None = Field(default=None, alias="with")
    run: str | None = None
    shell: str | None = None
    env: dict[str, str] | None = None
    working_directory: str | None = Field(default=None, alias="working-directory")
    continue_on_error: bool | str | None = Field(default=None, alias="continue-on-error")

    @model_validator(mode="after")
    def one_kind(self) -> CompositeStep:
        if (self.uses is None) == (self.run is None):
            raise ValueError("a step has either `uses` or `run`")
        if self.run is not None and self.shell is None:
            raise ValueError("a composite `run` step must name its shell")
        return self


class Runs(Strict):
    using: Literal["composite"]
    steps: list[CompositeStep]


class Branding(Strict):
    icon: str
    color: Literal["white", "yellow", "blue", "green", "orange", "red", "purple", "gray-dark"]


class ActionMetadata(Strict):
    """What GitHub reads from action.yml (the subset a composite action may use)."""

    name: str
    description: str
    author: str | None = None
    branding: Branding | None = None
    inputs: dict[str, ActionInput]
    outputs: dict[str, ActionOutput]
    runs: Runs


def test_action_metadata_is_a_composite_action_whose_references_resolve() -> None:
    text = ACTION.read_text(encoding="utf-8")
    action = ActionMetadata.model_validate(yaml.safe_load(text))
    assert {"suite", "config", "scale", "baseline"} <= set(action.inputs)
    assert {"report-dir", "exit-code"} <= set(action.outputs)
    steps = action.runs.steps
    ids = [s.id for s in steps]
    for expression in EXPRESSION.findall(text):
        for name in re.findall(r"\binputs\.([A-Za-z0-9_-]+)", expression):
            assert name in action.inputs, expression
        for step_id, output in re.findall(r"\bsteps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)",
                                          expression):  # fmt: skip
            assert step_id in ids, expression
            producer = steps[ids.index(step_id)]
            if producer.run is not None:  # our own step: it must write that output
                assert f"{output}=" in producer.run, (step_id, output)
    for index, step in enumerate(steps):
        # A step reads only outputs of steps before it.
        used = re.findall(r"\bsteps\.([A-Za-z0-9_-]+)\.", step.model_dump_json(by_alias=True))
        assert all(ids.index(u) < index for u in used), step.name


def test_action_passes_actionlint_where_a_workflow_uses_it(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()  # actionlint finds the project root by it
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    shutil.copy2(ACTION, tmp_path / "action.yml")
    use = """\
on: pull_request
jobs:
  load:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: load
        uses: ./
        with:
          suite: ci
          config: orchestrate.yaml
          scale: "0.2"
          {baseline}: previous-report
          artifact-name: report
      - if: always()
        env:
          REPORT_DIR: ${{{{ steps.load.outputs.report-dir }}}}
          EXIT_CODE: ${{{{ steps.load.outputs.exit-code }}}}
        run: echo "$REPORT_DIR $EXIT_CODE"
"""
    (workflows / "use.yml").write_text(use.format(baseline="baseline"), encoding="utf-8")
    done = lint(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    # actionlint did read action.yml: an input it does not declare is an error.
    (workflows / "use.yml").write_text(use.format(baseline="base-line"), encoding="utf-8")
    done = lint(tmp_path)
    assert done.returncode == 1
    assert 'input "base-line" is not defined in action' in done.stdout


def run_scripts() -> list[tuple[str, str]]:
    action = ActionMetadata.model_validate(load(ACTION))
    return [(s.name or s.id or "", s.run) for s in action.runs.steps if s.run is not None]


@pytest.mark.parametrize(("name", "script"), run_scripts(), ids=[n for n, _ in run_scripts()])
def test_action_scripts_pass_shellcheck(name: str, script: str) -> None:
    # Values reach the scripts through env: an expression pasted into a script is an
    # injection risk (a branch name is code there), and shellcheck could not read it.
    assert "${{" not in script, name
    done = subprocess.run(
        [tool("shellcheck"), "--shell=bash", "-"],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout


def action_step(step_id: str) -> CompositeStep:
    action = ActionMetadata.model_validate(load(ACTION))
    (step,) = [s for s in action.runs.steps if s.id == step_id]
    return step


def run_step(
    step: CompositeStep, tmp_path: Path, cwd: Path | None = None, **env: str
) -> tuple[int, dict[str, str], str]:
    """Run a step's script as the runner does (bash -eo pipefail) in ``cwd``."""
    outputs = tmp_path / "github-output"
    outputs.write_text("", encoding="utf-8")
    summary = tmp_path / "step-summary"
    base = {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "GITHUB_OUTPUT": str(outputs),
        "GITHUB_ENV": str(tmp_path / "github-env"),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_ACTION_PATH": str(ROOT),
        "RUNNER_TEMP": str(tmp_path / "runner-temp"),
    }
    assert step.run is not None
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step.run],
        cwd=cwd or tmp_path,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    pairs = [line.split("=", 1) for line in outputs.read_text(encoding="utf-8").splitlines()]
    return done.returncode, dict(pairs), done.stdout + done.stderr


def test_action_caches_the_tools_folder_under_the_lockfile_hash(tmp_path: Path) -> None:
    action = ActionMetadata.model_validate(load(ACTION))
    (cache,) = [s for s in action.runs.steps if s.uses and s.name and "Node load tools" in s.name]
    assert cache.uses is not None and cache.uses.startswith("actions/cache@")
    assert cache.with_ is not None
    assert cache.with_["path"] == "${{ steps.paths.outputs.tools-dir }}"
    assert "${{ steps.install.outputs.lock-hash }}" in cache.with_["key"]

    # The folder: $RUNNER_TEMP/orchestrate-tools unless the caller chose one.
    code, outputs, log = run_step(action_step("paths"), tmp_path)
    assert code == 0, log
    assert outputs["tools-dir"] == str(tmp_path / "runner-temp" / "orchestrate-tools")
    assert (tmp_path / "github-env").read_text(encoding="utf-8") == (
        f"ORCHESTRATE_TOOLS_DIR={outputs['tools-dir']}\n"
    )
    mine = tmp_path / "mine"
    code, outputs, log = run_step(action_step("paths"), tmp_path, ORCHESTRATE_TOOLS_DIR=str(mine))
    assert code == 0 and outputs["tools-dir"] == str(mine), log

    # The key: what the install step prints is lock_hash(), the install folder's name.
    install = action_step("install").run or ""
    (snippet,) = re.findall(r"-c '([^']*lock_hash[^']*)'", install)
    printed = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()
    assert printed == tools.lock_hash() == tools.install_dir().name
    assert "lock-hash=$lock_hash" in install


def test_action_compares_with_the_baseline_and_keeps_its_verdict(tmp_path: Path) -> None:
    step = action_step("compare")
    # A baseline that is no report directory: one line, and the step records exit code 2.
    code, outputs, log = run_step(step, tmp_path, BASELINE="old", NEW=str(tmp_path))
    assert code == 0, log
    assert outputs["exit-code"] == "2", log
    assert "old is not a report directory" in log


@pytest.mark.parametrize(
    ("run_code", "compare_code", "verdict"),
    [("0", "", "0"), ("1", "", "1"), ("0", "1", "1"), ("3", "0", "3"), ("", "", "3")],
)
def test_action_verdict(tmp_path: Path, run_code: str, compare_code: str, verdict: str) -> None:
    code, outputs, log = run_step(
        action_step("verdict"), tmp_path, RUN_CODE=run_code, COMPARE_CODE=compare_code
    )
    assert (code, outputs["exit-code"]) == (int(verdict), verdict), log


def test_readme_example_of_the_action_passes_actionlint(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("**The reusable action**") :]
    start = section.index("```yaml\n") + len("```yaml\n")
    example = section[start : section.index("\n```", start)]
    assert "uses: OWNER/orchestrate@v1" in example
    (tmp_path / ".git").mkdir()
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    shutil.copy2(ACTION, tmp_path / "action.yml")
    # The same action, from the local copy instead of a tag of the repository.
    local = example.replace("uses: OWNER/orchestrate@v1", "uses: ./")
    (workflows / "readme.yml").write_text(local, encoding="utf-8")
    done = lint(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


ONE_SCENARIO = """\
target: {{base_url: "{url}"}}
login: null
endpoints:
  health: {{method: GET, path: /health}}
scenarios:
  quick:
    endpoints: [health]
    users: 2
    hold: 1
    thresholds: ["errorRate < 5%"]
suites:
  quick: [quick]
"""


@pytest.mark.load
@pytest.mark.parametrize("where", ["workflow", "action"])
def test_the_suite_step_runs_a_real_suite_and_reports_its_verdict(
    where: str, reference_target: Any, node_tools: Path, tmp_path: Path
) -> None:
    """The script of the step that runs the suite, as the runner runs it, in a workspace
    whose orchestrate.yaml points at a local reference target."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    config = workspace / "orchestrate.yaml"
    config.write_text(ONE_SCENARIO.format(url=reference_target.url), encoding="utf-8")
    env = {"SUITE": "quick", "SCALE": "1", "REPORT_ROOT": "load-reports"}
    env["ORCHESTRATE_TOOLS_DIR"] = str(tools.tools_root())  # where node_tools installed them
    if where == "workflow":
        (step,) = [s for s in steps_of(load(WORKFLOW), "load-tests") if s.get("id") == "suite"]
        script = str(step["run"])
    else:
        script = action_step("run").run or ""
        env["CONFIG"] = str(config)
    code, outputs, log = run_step(
        CompositeStep(run=script, shell="bash"), tmp_path, cwd=workspace, **env
    )
    assert code == 0, log  # the workflow's step exits with the suite's code: 0 here
    assert outputs["exit-code"] == "0"
    report = Path(outputs["report-dir"])
    assert report.parent == workspace / "load-reports"
    assert (report / "junit.xml").is_file() and (report / "quick" / "result.json").is_file()
    # orchestrate put the verdict on the job's summary page itself.
    summary = (tmp_path / "step-summary").read_text(encoding="utf-8")
    assert "**PASS**: every scenario met its SLA" in summary
