"""A private Docker engine for tests: its own dockerd, socket, data and exec roots.

Debian's ``docker.io`` daemon is started with no iptables rules and no bridge (containers
use ``--network host`` and bind 127.0.0.1 only), so nothing on the machine changes. The
image is made without any registry: a root filesystem holding Debian's static busybox
(``busybox-static``) and its applet links, imported as a tarball through the SDK (what
``docker import`` does). The SDK is always pointed at the private socket, never at the
machine's own daemon.

Containers go under a cgroup parent of their own (``--cgroup-parent``), whose CPU weight
is raised: on a machine shared with other busy tests, a container held to half a CPU by
its quota must be able to get that half, or a test of the quota measures the neighbours.

Teardown runs even when a test fails: remove the containers, stop the daemon (it stops its
containerd), kill any survivor started from our folders, unmount what the daemon left under
its roots (its netns mount, the data root's bind mount), remove the cgroup folders it
created (``docker`` and our parent), delete the folders; anything left raises an error.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import psutil
from docker.errors import DockerException

LOG = logging.getLogger(__name__)

IMAGE = "orchestrate-busybox:test"
BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")
APPLETS = ("sh", "httpd", "sleep", "dd", "cat", "echo", "true", "wget")
CGROUP_ROOT = Path("/sys/fs/cgroup")
# Eight times a plain process's CPU weight (cgroup v1 cpu.shares, v2 cpu.weight): the
# quota, not the neighbours, then decides what the container gets.
CPU_SHARES = 8 * 1024
CPU_WEIGHT = 8 * 100
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
INSTALL_HINT = "run `bash scripts/setup.sh` as root (it installs docker.io and busybox-static)"


@dataclass
class DockerEngine:
    root: Path
    host: str  # unix://ROOT/docker.sock: what DOCKER_HOST must say
    pid: int
    ready_seconds: float  # from starting dockerd to its API answering a ping
    image: str = IMAGE
    client: Any = field(default=None, repr=False)

    def run(
        self,
        name: str,
        argv: list[str],
        *,
        memory: str | None = None,
        cpus: float | None = None,
    ) -> Any:
        """Start a detached container on the host network (it binds 127.0.0.1 only)."""
        limits: dict[str, Any] = {}
        if memory is not None:
            limits["mem_limit"] = memory
        if cpus is not None:
            limits["nano_cpus"] = round(cpus * 1e9)
        return self.client.containers.run(
            self.image, argv, name=name, detach=True, network_mode="host", **limits
        )


def static_busybox() -> Path | None:
    """Debian's busybox-static binary (a dynamic busybox cannot run in an empty rootfs)."""
    for candidate in BUSYBOX_PATHS:
        path = Path(candidate)
        if path.is_file() and _is_static(path):
            return path
    return None


def _is_static(path: Path) -> bool:
    """An ELF file without a PT_INTERP program header needs no dynamic loader."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit only: all we run on
        return False
    phoff = int.from_bytes(data[0x20:0x28], "little")
    size = int.from_bytes(data[0x36:0x38], "little")
    count = int.from_bytes(data[0x38:0x3A], "little")
    interp = 3
    return all(
        int.from_bytes(data[phoff + i * size : phoff + i * size + 4], "little") != interp
        for i in range(count)
    )


def engine_missing() -> str | None:
    """Why a private engine cannot start here, or None."""
    missing = [name for name in ("dockerd", "containerd", "runc") if not _which(name)]
    if static_busybox() is None:
        missing.append("a static busybox (busybox-static)")
    return f"missing {', '.join(missing)}: {INSTALL_HINT}" if missing else None


def _which(name: str) -> str | None:
    # As a user, /usr/sbin (dockerd) is often not on PATH.
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def rootfs_tar(busybox: Path) -> bytes:
    """A tiny root filesystem: busybox, its applet links, /www/index.html for httpd."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder in ("bin", "www", "tmp", "dev", "proc", "sys", "etc"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
        tar.add(str(busybox), arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        page = b"hello from busybox httpd\n"
        info = tarfile.TarInfo("www/index.html")
        info.size, info.mode = len(page), 0o644
        tar.addfile(info, io.BytesIO(page))
    return buffer.getvalue()


def _engine_cgroups(parent: str) -> set[Path]:
    """Cgroup folders a daemon may make: ``docker`` and ``parent`` trees, in every hierarchy."""
    found: set[Path] = set()
    tops = [*CGROUP_ROOT.glob("*/docker"), *CGROUP_ROOT.glob(f"*/{parent}"), CGROUP_ROOT / parent]
    for top in tops:
        if top.is_symlink() or not top.is_dir():
            continue
        found.add(top)
        for folder, subdirs, _files in os.walk(top):
            found.update(Path(folder) / name for name in subdirs)
    return found


def _weighted_parent(parent: str) -> None:
    """Create the containers' parent cgroup with a raised CPU weight (best effort)."""
    v1 = CGROUP_ROOT / "cpu"
    folder, knob, value = (
        (v1 / parent, "cpu.shares", CPU_SHARES)
        if (v1 / "cpu.shares").exists()
        else (CGROUP_ROOT / parent, "cpu.weight", CPU_WEIGHT)
    )
    try:
        folder.mkdir()
        (folder / knob).write_text(str(value))
    except OSError as exc:  # no cpu controller here: containers get a plain weight
        LOG.warning("cannot raise the CPU weight of %s: %s", folder, exc)


def _mounts_under(root: Path) -> list[Path]:
    """Mount points under ``root`` (deepest first), from this process's mount table."""
    points: list[Path] = []
    with Path("/proc/self/mountinfo").open(encoding="utf-8") as table:
        for line in table:
            # The mount point is field 5; spaces and the like are octal escapes.
            raw = line.split()[4]
            point = Path(raw.encode().decode("unicode_escape"))
            if point == root or root in point.parents:
                points.append(point)
    return sorted(set(points), key=lambda p: len(p.parts), reverse=True)


def _processes_of(root: Path, known: set[int]) -> list[psutil.Process]:
    """Live processes we started: a known pid, or one whose command line names our folder."""
    mine: list[psutil.Process] = []
    marker = str(root)
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if proc.info["pid"] in known or marker in " ".join(proc.info["cmdline"] or []):
            mine.append(proc)
    return mine


def _wait_ready(proc: subprocess.Popen[bytes], host: str, log: Path) -> Any:
    """An SDK client on the private socket once the daemon answers a ping."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"dockerd exited with code {proc.returncode}:\n{tail}")
        try:
            # base_url, not DOCKER_HOST: never the machine's own daemon.
            client = docker.DockerClient(base_url=host, timeout=10)
            client.ping()
        except (DockerException, OSError):
            time.sleep(0.05)
            continue
        return client
    raise RuntimeError(f"dockerd did not answer on {host} within {READY_TIMEOUT:g} s")


@contextmanager
def start_docker_engine() -> Iterator[DockerEngine]:
    """A private dockerd with the busybox image imported; everything removed afterwards."""
    busybox = static_busybox()
    dockerd = _which("dockerd")
    if busybox is None or dockerd is None:
        raise RuntimeError(engine_missing())
    # Short: a unix socket path must fit in 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="orch-dockerd-"))
    parent = root.name  # unique: our cgroups never mix with another daemon's
    cgroups_before = _engine_cgroups(parent)
    host = f"unix://{root}/docker.sock"
    log = root / "dockerd.log"
    proc: subprocess.Popen[bytes] | None = None
    engine: DockerEngine | None = None
    seen: set[int] = set()
    try:
        _weighted_parent(parent)
        started = time.monotonic()
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [dockerd, "--iptables=false", "--ip6tables=false", "--bridge=none",
                 "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
                 "--pidfile", str(root / "dockerd.pid"), "--cgroup-parent", f"/{parent}",
                 "-H", host],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        seen.add(proc.pid)
        client = _wait_ready(proc, host, log)
        engine = DockerEngine(root, host, proc.pid, time.monotonic() - started, client=client)
        repository, tag = IMAGE.split(":")
        client.api.import_image_from_data(rootfs_tar(busybox), repository=repository, tag=tag)
        yield engine
    finally:
        leftovers = _teardown(root, proc, engine, seen, cgroups_before, parent)
        if leftovers:
            raise RuntimeError("the test Docker engine left behind: " + "; ".join(leftovers))


def _teardown(
    root: Path,
    proc: subprocess.Popen[bytes] | None,
    engine: DockerEngine | None,
    seen: set[int],
    cgroups_before: set[Path],
    parent: str,
) -> list[str]:
    """Remove everything the engine made; return what could not be removed."""
    if engine is not None and engine.client is not None:
        with suppress(DockerException, OSError):
            for container in engine.client.containers.list(all=True):
                container.remove(force=True)
        engine.client.close()
    # containerd and its shims, to check they are gone once the daemon stopped.
    seen.update(p.pid for p in _processes_of(root, seen))
    if proc is not None:
        with suppress(psutil.NoSuchProcess):
            seen.update(c.pid for c in psutil.Process(proc.pid).children(recursive=True))
        _stop(proc)
    survivors = _processes_of(root, seen)
    for survivor in survivors:
        with suppress(psutil.NoSuchProcess):
            survivor.kill()
    psutil.wait_procs(survivors, timeout=5)
    leftovers = [f"process {' '.join(p.info['cmdline'] or [])}" for p in _processes_of(root, seen)]
    for point in _mounts_under(root):
        if subprocess.run(["umount", str(point)], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
    leftovers += [f"mount {point}" for point in _mounts_under(root)]
    # Deepest first: a cgroup folder can only go once its children are gone.
    for folder in sorted(_engine_cgroups(parent) - cgroups_before, key=lambda p: -len(p.parts)):
        with suppress(FileNotFoundError):  # e.g. cpu and cpuacct: one hierarchy, two names
            try:
                folder.rmdir()
            except OSError as exc:
                leftovers.append(f"cgroup {folder} ({exc.strerror})")
    if not _mounts_under(root):  # never delete through a mount we failed to remove
        shutil.rmtree(root, ignore_errors=True)
    if root.exists():
        leftovers.append(f"folder {root}")
    return leftovers


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM lets dockerd stop containerd and clean up; SIGKILL the group if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
