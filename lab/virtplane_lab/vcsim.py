"""Build and run our vcsim main (govmomi's vSphere simulator, from Debian's packages) on loopback."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from virtplane.errors import VirtplaneError
from virtplane_lab import process

SOURCE = Path(__file__).with_name("vcsim_main.go")
GOPATH = "/usr/share/gocode"
USER = "virtplane"


@dataclass(kw_only=True)
class VcsimInstance(process.Simulator):
    """A running vSphere simulator; ``host`` is ``host:port``."""

    password_variable: ClassVar[str] = "VSPHERE_PASSWORD"

    host: str
    user: str = USER

    def settings(self) -> dict[str, str]:
        return {"VSPHERE_SERVER": self.host, "VSPHERE_USER": self.user, "VSPHERE_CA_FILE": self.ca_file}


def build(work_dir: Path) -> Path:
    """Compile the simulator into ``work_dir`` unless a binary of the current source is there."""
    if shutil.which("go") is None or not Path(GOPATH, "src/github.com/vmware/govmomi").is_dir():
        raise VirtplaneError(
            "building the vSphere simulator needs Debian's golang-go and golang-github-vmware-govmomi-dev "
            "(run `make lab` or `apt-get install golang-go golang-github-vmware-govmomi-dev`)")
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    binary = work_dir / f"vcsim-{digest}"
    if binary.exists():
        return binary
    work_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOFLAGS="",
               GOCACHE=str(work_dir / "gocache"))
    # Built under a name of this process's, then renamed: a test run's other workers may build it at the same
    # time, and none may start a binary another is still writing.
    partial = work_dir / f".vcsim-{digest}.{os.getpid()}"
    result = subprocess.run(["go", "build", "-o", str(partial), str(SOURCE)], env=env,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise VirtplaneError(f"building the vSphere simulator failed: {result.stderr.strip()}")
    partial.replace(binary)
    return binary


def start(work_dir: Path, *, hosts: int = 3, vms: int = 0, delay_ms: int = 0, own_vms: str = "",
          datastores: int = 1, timeout: float = 300.0, bin_dir: Path | None = None,
          pci_per_host: int | None = None, device_vms: bool = True) -> VcsimInstance:
    """Start a simulator in its own session (it outlives this process) and wait until it serves.

    ``own_vms`` marks the seeded VMs as owned by that stack (benchmarks); ``bin_dir`` caches the build;
    ``pci_per_host`` sets how many PCI devices each host has (the simulator's default is 8); ``device_vms``
    seeds the VMs other teams run on the lab's GPUs (a 20 GB vGPU on DC0_C0_H0, a powered-off Dynamic
    DirectPath VM on DC0_C0_H1)."""
    binary = build(bin_dir or work_dir / "bin")
    run_dir = work_dir / "vcsim"
    run_dir.mkdir(parents=True, exist_ok=True)
    password_file = process.new_password(run_dir)
    ca_file = run_dir / "ca.pem"
    args = [str(binary), "-hosts", str(hosts), "-vms", str(vms), "-delay-ms", str(delay_ms),
            "-datastores", str(datastores), "-cert-out", str(ca_file), "-user", USER,
            "-password-file", str(password_file)]
    if own_vms:
        args += ["-own-vms", own_vms]
    if pci_per_host is not None:
        args += ["-pci-per-host", str(pci_per_host)]
    if not device_vms:
        args += ["-device-vms=false"]
    pid, ready = process.launch(args, run_dir, "vSphere simulator", timeout)
    return VcsimInstance(host=ready["host"], pid=pid, ca_file=str(ca_file), password_file=str(password_file))
