"""The pinned Node tools cache (autocannon, Artillery and our runners' modules) and `tools doctor`.

The Node tools (autocannon, Artillery) are installed by ``npm ci`` from the committed
lockfile into ``<cache>/node-tools/<lockfile hash>``, so a CI job can cache exactly that
folder and a changed lockfile never reuses a stale install. The cache root is
``$ORCHESTRATE_TOOLS_DIR`` or the user cache dir.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from orchestrator.errors import ToolError, ToolNotFoundError
from orchestrator.process import resolve_executable

LOG = logging.getLogger(__name__)

TOOLS_DIR_ENV = "ORCHESTRATE_TOOLS_DIR"
INSTALL_HINT = "run `orchestrate tools install`"
NODE_HINT = "install Node.js 20 or newer (https://nodejs.org) and put `node` on PATH"
MARKER = ".orchestrate-complete"
# What `npm ci` installs from; the install folder is named by their digest.
LOCK_FILES = ("package.json", "package-lock.json")


def tool_configs_dir() -> Path:
    return Path(str(resources.files("tool_configs")))


def node_manifest_dir() -> Path:
    return tool_configs_dir() / "node"


def lock_hash(manifest_dir: Path | None = None) -> str:
    """Name of the install folder: a digest of LOCK_FILES (CI cache keys hash the same files)."""
    folder = manifest_dir or node_manifest_dir()
    digest = hashlib.sha256()
    for name in LOCK_FILES:
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()[:16]


def tools_root() -> Path:
    configured = os.environ.get(TOOLS_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("orchestrate")) / "node-tools"


def install_dir() -> Path:
    return tools_root() / lock_hash()


def is_installed() -> bool:
    return (install_dir() / MARKER).is_file()


def node_executable() -> str:
    return resolve_executable("node", NODE_HINT)


def node_modules() -> Path:
    """The installed node_modules, or a one-line error naming the install command."""
    folder = install_dir() / "node_modules"
    if not is_installed():
        raise ToolNotFoundError(f"Node load tools not installed in {install_dir()}: {INSTALL_HINT}")
    if not folder.is_dir():
        raise ToolNotFoundError(
            f"Node load tools in {install_dir()} are incomplete (no node_modules): "
            "run `orchestrate tools install --force`"
        )
    return folder


def node_tool_entry(tool: str) -> Path:
    """The JS entry point of an installed Node tool (run it with `node`)."""
    package = node_modules() / tool
    try:
        manifest = json.loads((package / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ToolNotFoundError(
            f"{tool} is missing or broken in {package}: run `orchestrate tools install --force`"
        ) from None
    bin_field = manifest.get("bin") if isinstance(manifest, dict) else None
    entry = bin_field.get(tool) if isinstance(bin_field, dict) else bin_field
    if not isinstance(entry, str):
        raise ToolNotFoundError(f"{tool} not found in {package}: {INSTALL_HINT}")
    return package / entry


def node_script(name: str) -> Path:
    """One of our own Node scripts shipped in tool_configs/node."""
    return node_manifest_dir() / name


def node_env() -> dict[str, str]:
    """Environment for Node processes: our scripts find the cached modules."""
    return {"NODE_PATH": str(node_modules())}


def install(force: bool = False) -> tuple[Path, bool]:
    """Install the pinned Node tools; returns (folder, whether anything was done).

    Builds in a temporary sibling folder and renames it into place only when ``npm ci``
    succeeded, so a failed or interrupted install never leaves a half-built folder.
    """
    target = install_dir()
    if is_installed() and not force:
        return target, False
    npm = resolve_executable("npm", NODE_HINT)
    root = tools_root()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    try:
        for name in LOCK_FILES:
            shutil.copy2(node_manifest_dir() / name, staging / name)
        env = {**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1", "npm_config_fund": "false"}
        # Install scripts are not needed by autocannon or Artillery; one of Artillery's
        # optional engines would try to download a browser.
        cmd = [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]
        _run_teed(cmd, cwd=staging, env=env)
        (staging / MARKER).write_text(lock_hash(), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target, True


def _run_teed(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    import subprocess_tee

    LOG.info("running %s in %s", " ".join(cmd), cwd)
    result = subprocess_tee.run(cmd, cwd=str(cwd), env=env)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout or "").strip().splitlines()[-1:] or [""]
        raise ToolError(f"`{' '.join(cmd[1:])}` failed with code {result.returncode}: {tail[0]}")


@dataclass
class ToolStatus:
    name: str
    path: str | None
    version: str | None
    ok: bool
    detail: str = ""


def probe_version(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else None


@functools.cache
def node_tool_version(tool: str) -> str | None:
    """Version of an installed Node tool, from its package.json (None when not installed)."""
    try:
        manifest = node_modules() / tool / "package.json"
        return str(json.loads(manifest.read_text(encoding="utf-8"))["version"])
    except (ToolNotFoundError, OSError, KeyError, ValueError):
        return None


def doctor() -> list[ToolStatus]:
    """Node and npm, then every engine, with version, path and whether it is usable."""
    from orchestrator.engines import all_engines

    statuses: list[ToolStatus] = []
    for name in ("node", "npm"):
        try:
            path = resolve_executable(name, NODE_HINT)
            statuses.append(ToolStatus(name, path, probe_version([path, "--version"]), True))
        except ToolNotFoundError as exc:
            statuses.append(ToolStatus(name, None, None, False, str(exc)))
    for engine in all_engines():
        try:
            path = engine.executable()
            statuses.append(ToolStatus(engine.NAME, path, engine.version(), True))
        except ToolNotFoundError as exc:
            statuses.append(ToolStatus(engine.NAME, None, None, False, str(exc)))
    return statuses


def node_tool_executable(tool: str) -> str:
    """What runs a Node tool: Node itself must be there, then the tool's entry point."""
    node_executable()
    return str(node_tool_entry(tool))
