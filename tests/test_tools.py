"""The Node tools cache: keyed by the lockfile, never half-built, one-line errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from orchestrator import tools
from orchestrator.errors import ToolError, ToolNotFoundError


def test_install_dir_is_keyed_by_the_lockfile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(tools.TOOLS_DIR_ENV, str(tmp_path))
    assert tools.install_dir() == tmp_path / tools.lock_hash()
    assert len(tools.lock_hash()) == 16


def test_missing_tools_are_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(tools.TOOLS_DIR_ENV, str(tmp_path))
    with pytest.raises(ToolNotFoundError, match="run `orchestrate tools install`"):
        tools.node_tool_entry("autocannon")


def test_failed_install_leaves_no_half_built_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # npm is a platform edge: a stand-in that writes part of a tree, then fails.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    npm = fake_bin / "npm"
    npm.write_text("#!/bin/sh\nmkdir -p node_modules/half\necho 'npm ERR! network' >&2\nexit 1\n")
    npm.chmod(npm.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    root = tmp_path / "cache"
    monkeypatch.setenv(tools.TOOLS_DIR_ENV, str(root))
    with pytest.raises(ToolError, match="failed with code 1"):
        tools.install()
    assert list(root.iterdir()) == []
    assert not tools.is_installed()


def test_reinstall_with_nothing_changed_is_a_no_op(node_tools: Path) -> None:
    assert tools.install() == (node_tools, False)


def test_a_marker_without_node_modules_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(tools.TOOLS_DIR_ENV, str(tmp_path))
    folder = tools.install_dir()
    folder.mkdir(parents=True)
    (folder / tools.MARKER).write_text(tools.lock_hash(), encoding="utf-8")
    with pytest.raises(ToolNotFoundError, match=r"incomplete .*tools install --force"):
        tools.node_tool_entry("autocannon")
    (folder / "node_modules" / "autocannon").mkdir(parents=True)
    with pytest.raises(ToolNotFoundError, match="missing or broken"):
        tools.node_tool_entry("autocannon")
