"""Start and stop the lab's XenServer / XCP-ng pool (``virtplane_lab.xapisim``, run in its own process)."""

from __future__ import annotations

import json
import ssl
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from virtplane_lab import process

USER = "root"


@dataclass(kw_only=True)
class XenserverInstance(process.Simulator):
    """A running simulated pool: ``url`` is the master's (``https://127.0.0.1:PORT/``), ``member_url`` a pool
    member's on the same port (it answers HOST_IS_SLAVE)."""

    password_variable: ClassVar[str] = "XENSERVER_PASSWORD"

    url: str
    member_url: str
    control_url: str
    user: str = USER

    def settings(self) -> dict[str, str]:
        return {"XENSERVER_URL": self.url, "XENSERVER_USERNAME": self.user, "XENSERVER_CA_FILE": self.ca_file}

    def control(self, action: str, **payload: Any) -> dict[str, Any]:
        """Call the simulator's control endpoint: ``fault`` (drop=method, when=before|after, times, slow=method,
        seconds), ``clear``, ``reset``, ``calls``, ``objects``."""
        context = ssl.create_default_context(cafile=self.ca_file)
        request = urllib.request.Request(self.control_url + action, data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return json.loads(response.read())

    def calls(self) -> list[str]:
        """The XML-RPC methods the pool received, in order (names only)."""
        return list(self.control("calls")["calls"])


def start(work_dir: Path, *, name: str = "xenserver", timeout: float = 60.0) -> XenserverInstance:
    """Start one simulated pool in its own session (it outlives this process), serving HTTPS with a certificate
    from a CA written to ``ca.pem``, and wait until it serves."""
    run_dir = work_dir / name
    run_dir.mkdir(parents=True, exist_ok=True)
    password_file = process.new_password(run_dir)
    ca_file = run_dir / "ca.pem"
    args = [sys.executable, "-m", "virtplane_lab.xapisim", "--port", "0", "--user", USER,
            "--password-file", str(password_file), "--cert-out", str(ca_file), "--work-dir", str(run_dir)]
    pid, ready = process.launch(args, run_dir, "XenServer simulator (xapisim)", timeout)
    return XenserverInstance(url=ready["url"], member_url=ready["member_url"], control_url=ready["control"], pid=pid,
                             ca_file=str(ca_file), password_file=str(password_file))
