"""Start and stop the lab's Proxmox VE endpoint (fakepve, run by ``fakepve_main`` in its own process)."""

from __future__ import annotations

import importlib.util
import json
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from virtplane.errors import VirtplaneError
from virtplane.lab import process

USER = "root@pam"


@dataclass
class FakepveInstance:
    """A running fake PVE cluster: where it listens, how to log in, and how to verify its certificate."""

    url: str
    pid: int
    ca_file: str
    password_file: str
    user: str = USER

    @property
    def password(self) -> str:
        return Path(self.password_file).read_text().strip()

    def environ(self) -> dict[str, str]:
        """The PROXMOX_VE_* variables an Endpoint reads to reach this cluster."""
        return {
            "PROXMOX_VE_ENDPOINT": self.url,
            "PROXMOX_VE_USERNAME": self.user,
            "PROXMOX_VE_PASSWORD": self.password,
            "PROXMOX_VE_CA_FILE": self.ca_file,
        }

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    def alive(self) -> bool:
        return process.alive(self.pid)

    def stop(self, timeout: float = 10.0) -> None:
        process.stop(self.pid, timeout)


def start(work_dir: Path, *, nodes: int = 3, time_scale: float = 0.0, latency: float = 0.0,
          guests: Path | None = None, timeout: float = 60.0) -> FakepveInstance:
    """Start fakepve in its own session (it outlives this process) and wait until it serves.

    ``time_scale`` is real seconds per PVE second for tasks (0: tasks finish at once); ``latency`` is
    PVE seconds added to every response (so it is scaled too); ``guests`` seeds VMs (benchmarks)."""
    if importlib.util.find_spec("fakepve") is None:
        raise VirtplaneError("the Proxmox side of the lab needs fakepve: pip install 'virtplane[lab]' "
                             "(or run `make lab`)")
    run_dir = work_dir / "fakepve"
    run_dir.mkdir(parents=True, exist_ok=True)
    password_file = run_dir / "password"
    password_file.write_text(secrets.token_urlsafe(18))
    password_file.chmod(0o600)
    ca_file = run_dir / "ca.pem"
    ready_file = run_dir / "ready.json"
    ready_file.unlink(missing_ok=True)
    args = [sys.executable, "-m", "virtplane.lab.fakepve_main", "--nodes", str(nodes),
            "--password-file", str(password_file), "--cert-out", str(ca_file),
            "--time-scale", str(time_scale), "--latency", str(latency)]
    if guests is not None:
        args += ["--guests", str(guests)]
    with open(ready_file, "w") as out, open(run_dir / "fakepve.log", "w") as log:
        child = subprocess.Popen(args, stdout=out, stderr=log, stdin=subprocess.DEVNULL,
                                 start_new_session=True, cwd=run_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = ready_file.read_text().strip()
        if text:
            ready = json.loads(text.splitlines()[0])
            return FakepveInstance(url=ready["url"], pid=child.pid, ca_file=str(ca_file),
                                   password_file=str(password_file))
        if child.poll() is not None:
            log_text = (run_dir / "fakepve.log").read_text().strip()
            raise VirtplaneError(f"the Proxmox simulator (fakepve) exited during start-up: {log_text[-500:]}")
        time.sleep(0.05)
    child.kill()
    raise VirtplaneError(f"the Proxmox simulator (fakepve) did not start within {timeout:.0f} s")
