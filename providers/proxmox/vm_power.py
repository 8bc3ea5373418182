"""Starting and stopping VMs: ``status/start``, and ``status/shutdown`` (ACPI) falling back to ``status/stop``.

Each is a PVE task, waited on. When the request's outcome is unknown (the connection dropped after it was
sent), the VM's status is read back: if it is already where we wanted it, that is success; otherwise the
request is sent once more — except a shutdown, which may be running on PVE while the guest powers down: its task
is found and followed, and only a timeout confirmed by PVE (or by the deadline, with the VM read back running)
ever leads to a hard stop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from virtplane.errors import ProviderError
from virtplane.providers.proxmox.client import PveClient
from virtplane.providers.proxmox.faults import OutcomeUnknown, PveError, TaskFailed, TaskTimeout
from virtplane.providers.proxmox.tasks import is_upid, run, wait_for_task

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
        is: the guest never got the ACPI request, so pulling its plug would be no fallback.

        When the shutdown's answer is lost, the VM's state is read first: stopped is done; a shutdown task PVE runs
        for it is followed to its end; no such task means the request never started one, so it is sent once more.
        An outcome still unknown after that is an error, never a hard stop."""
        what = f"shut down VM {name}"
        try:
            self._confirmed(path, name, lambda: run(self._client, "POST", f"{path}/status/shutdown", what,
                                                     {"timeout": SHUTDOWN_SECONDS},
                                                     SHUTDOWN_SECONDS + _TASK_MARGIN))
            return
        except OutcomeUnknown:
            if self.status(path, name) == "stopped":
                return
        upid = self._running_shutdown(path, name)
        try:
            if upid is not None:
                self._confirmed(path, name, lambda: wait_for_task(self._client, upid, what,
                                                                  SHUTDOWN_SECONDS + _TASK_MARGIN))
            else:
                self._confirmed(path, name, lambda: run(self._client, "POST", f"{path}/status/shutdown", what,
                                                         {"timeout": SHUTDOWN_SECONDS},
                                                         SHUTDOWN_SECONDS + _TASK_MARGIN))
        except OutcomeUnknown as again:
            raise ProviderError(f"{again}; VM {name} is not stopped hard while whether its shutdown runs is "
                                "unknown") from None

    def _confirmed(self, path: str, name: str, shutdown: Callable[[], object]) -> None:
        """Run or follow a shutdown task; stop the VM hard only on a timeout confirmed by PVE ("quit/powerdown
        failed": the guest did not power off within SHUTDOWN_SECONDS) or by our deadline with the VM read back
        still running."""
        try:
            shutdown()
        except PveError as error:
            if "not running" not in error.pve_text:
                raise
        except TaskFailed as failure:
            if "quit/powerdown failed" not in failure.exitstatus:
                raise
            self.stop(path, name)
        except TaskTimeout:
            if self.status(path, name) != "stopped":
                self.stop(path, name)

    def _running_shutdown(self, path: str, name: str) -> str | None:
        """The UPID of a shutdown task PVE is running for this VM, if any."""
        node, vmid = path.split("/")[2], path.rsplit("/", 1)[1]
        tasks = self._client.get(f"/nodes/{node}/tasks", f"list the tasks of VM {name}",
                                 {"vmid": vmid, "source": "active", "typefilter": "qmshutdown"})
        running = [task.get("upid") for task in tasks or [] if task.get("type") == "qmshutdown"
                   and not task.get("endtime") and not task.get("status") and is_upid(task.get("upid"))]
        return running[0] if running else None

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
