"""Find a process's descendants at every sampling tick without reading every process.

psutil's ``children(recursive=True)`` reads the stat file of every process on the machine;
at 10 Hz that alone costs several % of a core. A process outside the tree can join it only
by being born into it (a pid we have not seen) or by being re-parented to a subreaper in it,
so between full scans only new pids are read; a full scan every ``full_scan_every`` seconds
catches re-parenting and a pid number reused within that period.
"""

from __future__ import annotations

import time

import psutil


class TreeIndex:
    """The live members of one process tree, root first."""

    def __init__(self, root: psutil.Process, full_scan_every: float = 1.0) -> None:
        self.root = root
        self.full_scan_every = full_scan_every
        self._procs: dict[int, psutil.Process] = {}
        # Parent of each member as last read; None: member by the last full scan, not read yet.
        self._ppid: dict[int, int | None] = {}
        self._outside: set[int] = set()
        self._last_full: float | None = None

    def members(self) -> list[psutil.Process]:
        """Root and descendants; raises NoSuchProcess when the root is gone."""
        now = time.monotonic()
        if self._last_full is None or now - self._last_full >= self.full_scan_every:
            self._scan_all()
            self._last_full = now
        else:
            self._scan_new()
        return [self.root, *(p for pid, p in self._procs.items() if pid != self.root.pid)]

    def note_parent(self, pid: int, ppid: int) -> None:
        """Record a member's parent as read with its stats (keeps re-parenting visible)."""
        if pid in self._ppid:
            self._ppid[pid] = ppid

    def _scan_all(self) -> None:
        # pids first: one born during children() is then "new" at the next tick, not lost.
        before = set(psutil.pids())
        found = {p.pid: p for p in self.root.children(recursive=True)}
        procs: dict[int, psutil.Process] = {self.root.pid: self.root}
        for pid, proc in found.items():
            cached = self._procs.get(pid)
            # Keep last tick's object (psutil caches on it) unless the pid was reused.
            same = cached is not None and cached.create_time() == proc.create_time()
            procs[pid] = cached if same and cached is not None else proc
        self._procs = procs
        self._ppid = {pid: self._ppid.get(pid) for pid in procs}
        self._outside = before - procs.keys()

    def _scan_new(self) -> None:
        alive = set(psutil.pids())
        parents: dict[int, int | None] = {p: pp for p, pp in self._ppid.items() if p in alive}
        candidates: dict[int, psutil.Process] = {}
        for pid in alive - self._outside - self._procs.keys():
            try:
                proc = psutil.Process(pid)
                parents[pid] = proc.ppid()
                candidates[pid] = proc
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                self._outside.add(pid)
        reach = {self.root.pid}
        grew = True
        while grew:  # a few passes: trees are shallow
            grew = False
            for pid, ppid in parents.items():
                if pid not in reach and (ppid is None or ppid in reach):
                    reach.add(pid)
                    grew = True
        self._procs = {pid: self._procs.get(pid) or candidates[pid] for pid in reach}
        self._ppid = {pid: parents.get(pid) for pid in reach}
        self._outside = (self._outside & alive) | (parents.keys() - reach)
