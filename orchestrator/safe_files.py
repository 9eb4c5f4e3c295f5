"""Writing the files a run leaves: whole or not at all, and a failure said in one line.

A full disk, a read-only mount or a missing permission must never cost what was measured:
each file is written to a temporary name beside it and renamed into place (a reader, or
the next run, never sees half a file), the temporary file is removed when the write fails,
and what could not be written is collected so that the run can say it once.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import ReportError


@dataclass(frozen=True)
class Unwritten:
    """A file that could not be written, and the operating system's reason."""

    path: Path
    reason: str

    @classmethod
    def of(cls, path: Path, exc: OSError) -> Unwritten:
        return cls(path, exc.strerror or type(exc).__name__)


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file renamed into place."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    # Hidden, and unique per process: two writers never share a temporary file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(raw)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def describe_unwritten(unwritten: Sequence[Unwritten], base: Path) -> str:
    """One line: which files (relative to ``base``) could not be written, and why."""
    names = []
    for item in unwritten:
        try:
            names.append(str(item.path.relative_to(base)))
        except ValueError:
            names.append(str(item.path))
    reasons = list(dict.fromkeys(item.reason for item in unwritten))
    return f"could not write {', '.join(names)} in {base}: {'; '.join(reasons)}"


class NotWrittenError(ReportError):
    """Files the disk refused, raised after everything else was written."""

    def __init__(self, unwritten: Sequence[Unwritten], base: Path) -> None:
        super().__init__(describe_unwritten(unwritten, base))
        self.unwritten = list(unwritten)
