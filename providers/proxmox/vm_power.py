"""Starting and stopping VMs: ``status/start``, and ``status/shutdown`` (ACPI) falling back to ``status/stop``.

Each is a PVE task, waited on. When the request's outcome is unknown (the connection dropped after it was
sent), the VM's status is read back: if it is already where we wanted it, that is success; otherwise the
request is sent once more.
"""

from __future__ import annotations

from collections.abc import Mapping

from virtplane.providers.proxmox.client import PveClient
from virtplane.providers.proxmox.faults import OutcomeUnknown, PveError, TaskFailed, TaskTimeout
from virtplane.providers.proxmox.tasks import run

SHUTDOWN_SECONDS = 120  # the guest's time to power off after ACPI before PVE gives up (then: hard stop)
_TASK_MARGIN = 30.0


class Power:
    def __init__(self, client: PveClient):
        self._client = client

    def start(self, path: str, name: str) -> None:
        try:
            self._send(path, name, "start", "running")
        except TaskFailed as failure:
            if "already running" not in failure.exitstatus:
                raise

    def shut_down(self, path: str, name: str) -> None:
        """ACPI shutdown; a guest that does not power off within SHUTDOWN_SECONDS is stopped hard. A shutdown task
        that failed for another reason (the VM's configuration lock held by another task, ...) is reported as it
        is: the guest never got the ACPI request, so pulling its plug would be no fallback."""
        try:
            self._send(path, name, "shutdown", "stopped", {"timeout": SHUTDOWN_SECONDS},
                       timeout=SHUTDOWN_SECONDS + _TASK_MARGIN)
        except PveError as error:
            if "not running" not in error.pve_text:
                raise
        except TaskFailed as failure:
            if "quit/powerdown failed" not in failure.exitstatus:
                raise
            self.stop(path, name)
        except (TaskTimeout, OutcomeUnknown):
            self.stop(path, name)

    def stop(self, path: str, name: str) -> None:
        """Hard stop (pull the plug); a VM that is not running is fine."""
        try:
            self._send(path, name, "stop", "stopped")
        except PveError as error:
            if "not running" not in error.pve_text:
                raise

    def status(self, path: str, name: str) -> str:
        current = self._client.get(f"{path}/status/current", f"read the power state of VM {name}")
        return str(current.get("status") or "")

    def _send(self, path: str, name: str, action: str, goal: str, data: Mapping[str, int] | None = None,
              timeout: float | None = None) -> None:
        what = {"start": "power on", "shutdown": "shut down", "stop": "stop"}[action] + f" VM {name}"
        try:
            run(self._client, "POST", f"{path}/status/{action}", what, data, timeout)
        except OutcomeUnknown:
            if self.status(path, name) == goal:
                return
            run(self._client, "POST", f"{path}/status/{action}", what, data, timeout)
