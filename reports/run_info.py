"""What produced a run: orchestrate and tool versions, host, command line, config, git commit.

Every report carries it (summary.json's ``run``, summary.md, report.html, junit.xml
properties) so that a number read months later can be traced to what measured it. Nothing
here may fail a report: what cannot be found is None with a reason in ``missing``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from pydantic import Field

from orchestrator.models import LoadTestResult, Model
from orchestrator.redact import MASK, SECRET_HEADERS, redact_text

LOG = logging.getLogger(__name__)

GIT_TIMEOUT = 5.0
HEADER_OPTIONS = frozenset({"-H", "--header"})


class RunInfo(Model):
    orchestrate_version: str | None = None
    tool_versions: dict[str, str] = Field(
        default_factory=dict, description="Load tool -> version(s) the results report."
    )
    host: str
    cpu_count: int | None = Field(default=None, description="CPUs this process may use.")
    platform: str
    python: str
    command_line: str = Field(description="The command that wrote the report, secrets masked.")
    config_file: str | None = Field(default=None, description="As given; None: the defaults.")
    config_sha256: str | None = None
    git_commit: str | None = Field(
        default=None, description="HEAD of the git work tree the command ran in."
    )
    git_dirty: bool | None = Field(
        default=None, description="Tracked files differed from that commit."
    )
    missing: dict[str, str] = Field(default_factory=dict)


def orchestrate_version() -> str | None:
    try:
        return metadata.version("orchestrate")
    except metadata.PackageNotFoundError:
        return None


def tool_versions(results: Sequence[LoadTestResult]) -> dict[str, str]:
    found: dict[str, list[str]] = {}
    for result in results:
        versions = found.setdefault(result.tool, [])
        version = result.tool_version or "unknown"
        if version not in versions:
            versions.append(version)
    return {tool: ", ".join(versions) for tool, versions in sorted(found.items())}


def mask_argv(argv: Sequence[str], secrets: tuple[str, ...] = ()) -> str:
    """The command line as a shell would show it, with secret header values and every
    known or password-like secret masked."""
    shown: list[str] = []
    after_header = False
    for arg in argv:
        shown.append(arg)
        if after_header or arg.startswith("--header="):
            name, sep, _ = arg.removeprefix("--header=").partition(":")
            if sep and name.strip().lower() in SECRET_HEADERS:
                prefix = "--header=" if arg.startswith("--header=") else ""
                shown[-1] = f"{prefix}{name}: {MASK}"
        after_header = arg in HEADER_OPTIONS
    return redact_text(shlex.join(shown), secrets, keys=True)


def _program(argv: Sequence[str]) -> list[str]:
    """argv with the program named as a user types it (not a venv's absolute path)."""
    if not argv:
        return []
    head = Path(argv[0]).name
    if head in {"__main__.py", "-m"}:
        head = "orchestrate"
    return [head, *argv[1:]]


def config_digest(path: Path) -> tuple[str | None, str | None]:
    """(sha256 of the file's bytes, None) or (None, why not)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest(), None
    except OSError as exc:
        return None, f"cannot read {path.name}: {exc.strerror or exc}"


def git_commit(cwd: Path) -> tuple[str | None, bool | None, str | None]:
    """(HEAD commit, tracked changes?, None) of the work tree at ``cwd``, or (None, None, why)."""
    git = shutil.which("git")
    if git is None:
        return None, None, "git is not installed"
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}

    def output(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [git, *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )

    try:
        head = output("rev-parse", "--verify", "HEAD")
        if head.returncode != 0:
            return None, None, "not a git work tree (or no commit yet)"
        status = output("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, None, f"git failed: {type(exc).__name__}"
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return head.stdout.strip(), dirty, None


def collect_run_info(
    results: Sequence[LoadTestResult] = (),
    *,
    config_file: Path | None = None,
    argv: Sequence[str] | None = None,
    cwd: Path | None = None,
    secrets: tuple[str, ...] = (),
) -> RunInfo:
    """The run's metadata, read now; ``argv`` defaults to this process's command line."""
    missing: dict[str, str] = {}
    version = orchestrate_version()
    if version is None:
        missing["orchestrateVersion"] = "the orchestrate package is not installed"
    digest = None
    if config_file is None:
        missing["configSha256"] = "no config file was passed to the report writer"
    else:
        digest, why = config_digest(config_file)
        if why:
            missing["configSha256"] = why
    commit, dirty, why = git_commit(cwd or Path.cwd())
    if why:
        missing["gitCommit"] = why
    try:
        cpus: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count()
    return RunInfo(
        orchestrate_version=version,
        tool_versions=tool_versions(results),
        host=socket.gethostname() or "unknown",
        cpu_count=cpus,
        platform=f"{platform.system()} {platform.release()} {platform.machine()}".strip(),
        python=platform.python_version(),
        command_line=mask_argv(_program(sys.argv if argv is None else argv), secrets),
        config_file=None if config_file is None else str(config_file),
        config_sha256=digest,
        git_commit=commit,
        git_dirty=dirty,
        missing=missing,
    )


def run_rows(info: RunInfo) -> list[tuple[str, str]]:
    """(label, value) pairs for Markdown and HTML."""
    tools = ", ".join(f"{tool} {version}" for tool, version in info.tool_versions.items())
    commit = info.git_commit or f"n/a ({info.missing.get('gitCommit', 'unknown')})"
    if info.git_commit and info.git_dirty:
        commit += " (with uncommitted changes)"
    if info.config_file is None:
        config = f"n/a ({info.missing.get('configSha256', 'unknown')})"
    elif info.config_sha256:
        config = f"{info.config_file} (sha256 {info.config_sha256})"
    else:
        config = f"{info.config_file} (sha256 n/a: {info.missing.get('configSha256', 'unknown')})"
    return [
        ("orchestrate", info.orchestrate_version or "n/a (not installed as a package)"),
        ("load tools", tools or "none ran"),
        ("host", f"{info.host}, {info.cpu_count or '?'} CPUs, {info.platform}"),
        ("python", info.python),
        ("command", info.command_line),
        ("config", config),
        ("git commit", commit),
    ]
