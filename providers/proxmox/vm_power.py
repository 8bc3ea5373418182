"""Starting and stopping VMs and containers: ``status/start``, and ``status/shutdown`` (ACPI for a VM; for a container
``forceStop``, so PVE itself kills it when the timeout passes) falling back to ``status/stop``.

Each is a PVE task, waited on. When the request's outcome is unknown (the connection dropped after it was
sent), the VM's status is read back: if it is already where we wanted it, that is success; otherwise the
request is sent once more — except a shutdown, which may be running on PVE while the guest powers down: its task
is found and followed, and only a timeout confirmed by PVE (or by the deadline, with the guest read back running)
ever leads to a hard stop. A guest shut down for a change that is to run again is recorded as such first
(providers/marker.py), so a run killed while it is off starts it again next time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from virtplane.errors import ProviderError
from virtplane.providers.proxmox.client import PveClient
from virtplane.providers.proxmox.faults import OutcomeUnknown, PveError, TaskFailed, TaskTimeout
from virtplane.providers.proxmox.tasks import is_upid, run, wait_for_task

SHUTDOWN_SECONDS = 120  # the guest's time to power off after ACPI before PVE gives up (then: hard stop)
_TASK_MARGIN = 30.0


@dataclass
class PoweredGuest:
    """The guest a powered change works on: ``path`` is where it is (set it after a migration)."""

    path: str


class Power:
    """``noun`` names the guest in messages ("VM", "container"); ``shutdown_options`` are sent with every shutdown
    beside its timeout."""

    def __init__(self, client: PveClient, noun: str = "VM", shutdown_options: Mapping[str, int] | None = None):
        self._client = client
        self._noun = noun
        self._shutdown_options = dict(shutdown_options or {})

    def start(self, path: str, name: str) -> None:
        """A guest already running is fine (PVE says so in the task for a VM, at once for a container)."""
        try:
            self._send(path, name, "start", "running")
        except TaskFailed as failure:
            if "already running" not in failure.exitstatus:
                raise
        except PveError as error:
            if "already running" not in error.pve_text:
                raise

    @contextmanager
    def change(self, path: str, name: str, running: bool, declared: str | None, power_off: bool,
               record: Callable[[str, str | None], None] | None = None, recorded: bool = False
               ) -> Iterator[PoweredGuest]:
        """Around a change of a guest at ``path``: shut it down first when ``power_off`` and it runs; afterwards give it
        the ``declared`` power state ("on", "off"; None is not managed: one shut down for the change is started again,
        any other is left as it is). When the change fails after a shutdown, the guest is started again (if it is to
        run) before the error goes on. ``record(path, power)`` keeps the power state to restore on the guest: "on"
        before it is shut down to run again, None once it runs (``recorded``: a record an interrupted run left)."""
        want_on = declared == "on" if declared is not None else running
        shut_down = running and power_off
        if shut_down:
            if want_on and record is not None:
                record(path, "on")
                recorded = True
            self.shut_down(path, name)
            running = False
        guest = PoweredGuest(path)
        try:
            yield guest
        except Exception as error:
            if shut_down and want_on:
                self.start_again_after(error, guest.path, name)
                if record is not None:
                    record(guest.path, None)
            raise
        if want_on != running:
            if want_on:
                self.start(guest.path, name)
            else:
                self.shut_down(guest.path, name)
        if recorded and record is not None:
            record(guest.path, None)

    def start_again_after(self, error: Exception, path: str, name: str) -> None:
        """A change failed after the guest was shut down for it: start it again, so a failed update does not leave a
        guest that is to run stopped. The change's error is what is reported; a failed start is added to it."""
        try:
            self.start(path, name)
        except ProviderError as failure:
            error.args = (f"{error}; starting {self._noun} {name} again failed too: {failure}",)

    def shut_down(self, path: str, name: str) -> None:
        """ACPI shutdown; a guest that does not power off within SHUTDOWN_SECONDS is stopped hard. A shutdown task
        that failed for another reason (the VM's configuration lock held by another task, ...) is reported as it
        is: the guest never got the ACPI request, so pulling its plug would be no fallback.

        When the shutdown's answer is lost, the guest's state is read first: stopped is done; a shutdown task PVE
        runs for it is followed to its end; no such task means the request never started one, so it is sent once
        more. An outcome still unknown after that is an error, never a hard stop."""
        what = f"shut down {self._noun} {name}"
        data = {"timeout": SHUTDOWN_SECONDS, **self._shutdown_options}

        def send() -> object:
            return run(self._client, "POST", f"{path}/status/shutdown", what, data, SHUTDOWN_SECONDS + _TASK_MARGIN)

        try:
            self._confirmed(path, name, send)
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
                self._confirmed(path, name, send)
        except OutcomeUnknown as again:
            raise ProviderError(f"{again}; {self._noun} {name} is not stopped hard while whether its shutdown runs "
                                "is unknown") from None

    def _confirmed(self, path: str, name: str, shutdown: Callable[[], object]) -> None:
        """Run or follow a shutdown task; stop the guest hard only on a timeout confirmed by PVE ("quit/powerdown
        failed": it did not power off within SHUTDOWN_SECONDS) or by our deadline with it read back still running."""
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
        """The UPID of a shutdown task PVE is running for this guest, if any."""
        node, vmid = path.split("/")[2], path.rsplit("/", 1)[1]
        tasks = self._client.get(f"/nodes/{node}/tasks", f"list the tasks of {self._noun} {name}",
                                 {"vmid": vmid, "source": "active"})
        running = [task.get("upid") for task in tasks or [] if task.get("type") in ("qmshutdown", "vzshutdown")
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
        current = self._client.get(f"{path}/status/current", f"read the power state of {self._noun} {name}")
        return str(current.get("status") or "")

    def _send(self, path: str, name: str, action: str, goal: str, data: Mapping[str, int] | None = None,
              timeout: float | None = None) -> None:
        what = {"start": "power on", "shutdown": "shut down", "stop": "stop"}[action] + f" {self._noun} {name}"
        try:
            run(self._client, "POST", f"{path}/status/{action}", what, data, timeout)
        except OutcomeUnknown:
            if self.status(path, name) == goal:
                return
            run(self._client, "POST", f"{path}/status/{action}", what, data, timeout)
