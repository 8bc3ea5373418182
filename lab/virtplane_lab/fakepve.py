"""Start and stop the lab's Proxmox VE endpoint (fakepve, run by ``fakepve_main`` in its own process)."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from virtplane.errors import VirtplaneError
from virtplane_lab import process

USER = "root@pam"
SNIPPETS_STORAGE = "lab-snippets"  # a shared directory storage for cloud-init snippets (docs/cloud-init.md)


@dataclass(kw_only=True)
class FakepveInstance(process.Simulator):
    """A running fake PVE cluster; ``url`` is ``https://host:port``."""

    password_variable: ClassVar[str] = "PROXMOX_VE_PASSWORD"

    url: str
    user: str = USER
    snippets_dir: str = ""  # the lab-snippets storage's directory (its snippets are in snippets_dir/snippets)

    def settings(self) -> dict[str, str]:
        settings = {"PROXMOX_VE_ENDPOINT": self.url, "PROXMOX_VE_USERNAME": self.user,
                    "PROXMOX_VE_CA_FILE": self.ca_file}
        if self.snippets_dir:  # mounted here as a share would be: virtplane writes cloud-init snippets into it
            settings.update(PROXMOX_VE_SNIPPETS_STORAGE=SNIPPETS_STORAGE,
                            PROXMOX_VE_SNIPPETS_PATH=str(Path(self.snippets_dir) / "snippets"))
        return settings


def start(work_dir: Path, *, nodes: int = 3, time_scale: float = 0.0, latency: float = 0.0,
          guests: Path | None = None, timeout: float = 60.0, workers: int = 0,
          service_ms: float = 5.0) -> FakepveInstance:
    """Start fakepve in its own session (it outlives this process) and wait until it serves.

    ``time_scale`` is real seconds per PVE second for tasks (0: tasks finish at once); ``latency`` is
    PVE seconds added to every response (so it is scaled too); ``guests`` seeds VMs (benchmarks); ``workers``
    serves the API with that many workers, each request holding one for ``service_ms`` (real PVE has 3; then
    ``latency`` is real seconds)."""
    if importlib.util.find_spec("fakepve") is None:
        raise VirtplaneError("the Proxmox side of the lab needs fakepve: pip install ./lab (from a virtplane checkout) "
                             "(or run `make lab`)")
    run_dir = work_dir / "fakepve"
    run_dir.mkdir(parents=True, exist_ok=True)
    password_file = process.new_password(run_dir)
    ca_file = run_dir / "ca.pem"
    snippets_dir = run_dir / "snippets-storage"
    args = [sys.executable, "-m", "virtplane_lab.fakepve_main", "--nodes", str(nodes),
            "--password-file", str(password_file), "--cert-out", str(ca_file),
            "--time-scale", str(time_scale), "--latency", str(latency), "--snippets-dir", str(snippets_dir)]
    if guests is not None:
        args += ["--guests", str(guests)]
    if workers:
        args += ["--workers", str(workers), "--service-ms", str(service_ms)]
    pid, ready = process.launch(args, run_dir, "Proxmox simulator (fakepve)", timeout)
    return FakepveInstance(url=ready["url"], pid=pid, ca_file=str(ca_file), password_file=str(password_file),
                           snippets_dir=str(snippets_dir))
