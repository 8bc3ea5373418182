"""Start and stop the lab's libvirt endpoint: a real libvirtd with QEMU (Debian's libvirt-daemon-system and
qemu-system-x86), private to the lab (libvirtd_main.py runs it in namespaces of its own).

QEMU runs with TCG (``type='qemu'``) unless VIRTPLANE_LAB_KVM=1 lets it use ``/dev/kvm``; the provider chooses
by the host's domain capabilities. ``stop`` ends the namespace's every process (libvirtd, virtlogd, QEMU);
``start`` clears what an earlier run left, so no domain outlives the lab.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from virtplane.errors import VirtplaneError
from virtplane_lab import process

NODE_FILE = Path(__file__).with_name("libvirt") / "node.xml"  # the test driver's host: GPUs, mdev types, SR-IOV
NEEDED = {"libvirtd": "libvirt-daemon-system", "virtlogd": "libvirt-daemon-system",
          "qemu-system-x86_64": "qemu-system-x86", "unshare": "util-linux"}
_STATE_DIRS = ("etc", "lib", "log", "cache", "pool")


def test_driver_uri(node_file: Path = NODE_FILE) -> str:
    """libvirt's test driver on our node file (``test:///abs/path.xml``): each connection gets a fresh copy."""
    return f"test://{node_file.resolve()}"


@dataclass(kw_only=True)
class LibvirtInstance:
    """A running private libvirtd; ``uri`` reaches it (``qemu+unix:///system?socket=…``)."""

    pid: int
    uri: str
    run_dir: str
    socket_dir: str = ""  # a short directory of its own for the UNIX socket (removed by ``stop``)

    def settings(self) -> dict[str, str]:
        return {"LIBVIRT_DEFAULT_URI": self.uri}

    def environ(self) -> dict[str, str]:
        return self.settings()

    def shell_exports(self) -> list[str]:
        return [f"export {name}='{value}'" for name, value in self.settings().items()]

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    def alive(self) -> bool:
        return process.alive(self.pid)

    def stop(self, timeout: float = 30.0) -> None:
        """Kill ``unshare`` (it ignores SIGTERM while it waits for its child): its child, PID 1 of the namespace, is
        killed with it (``--kill-child``), and with that every process of the namespace; wait until they are all
        gone (they end after ``unshare`` does: the kernel ends a namespace's processes when its PID 1 ends)."""
        inside = descendants(self.pid)
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            return
        deadline = time.monotonic() + timeout
        while any(process.alive(pid) for pid in [self.pid, *inside]) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.socket_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)


def descendants(pid: int) -> list[int]:
    """The processes under ``pid`` (children, their children, ...), as /proc says now."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue  # ended meanwhile
            parents.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        children = parents.get(pending.pop(), [])
        found += children
        pending += children
    return found


def start(work_dir: Path, *, network: bool = True, kvm: bool | None = None, ovmf: bool = True,
          timeout: float = 120.0) -> LibvirtInstance:
    """Start libvirtd and virtlogd in their own namespaces and wait until the lab's pool (and network) exist.
    QEMU runs with TCG unless ``kvm`` (default: the environment variable VIRTPLANE_LAB_KVM=1); ``ovmf=False``
    hides the UEFI firmware from it (a host without Debian's ovmf)."""
    missing = sorted({package for binary, package in NEEDED.items() if shutil.which(binary) is None})
    if missing:
        raise VirtplaneError(f"the libvirt side of the lab needs Debian's {', '.join(missing)} "
                             f"(run `make lab` or `apt-get install {' '.join(missing)}`)")
    run_dir = work_dir / "libvirt"
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in _STATE_DIRS:  # no domain, volume or socket of an earlier run survives
        shutil.rmtree(run_dir / name, ignore_errors=True)
    # A UNIX socket's path holds at most 107 bytes: the socket gets a short directory of its own, not the run dir.
    socket_dir = tempfile.mkdtemp(prefix="virtplane-libvirt-", dir="/tmp")
    args = ["unshare", "--pid", "--fork", "--kill-child", "--mount", "--net", "--mount-proc",
            sys.executable, "-m", "virtplane_lab.libvirtd_main", "--run-dir", str(run_dir), "--socket-dir", socket_dir]
    if not network:
        args.append("--no-network")
    if not ovmf:
        args.append("--no-ovmf")
    if kvm if kvm is not None else os.environ.get("VIRTPLANE_LAB_KVM") == "1":
        args.append("--kvm")
    try:
        pid, ready = process.launch(args, run_dir, "libvirt daemon (libvirtd)", timeout)
    except VirtplaneError:
        shutil.rmtree(socket_dir, ignore_errors=True)
        raise
    return LibvirtInstance(pid=pid, uri=ready["uri"], run_dir=str(run_dir), socket_dir=socket_dir)

