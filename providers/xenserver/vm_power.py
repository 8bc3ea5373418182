"""One VM's power in XAPI's calls, for the shared power protocol (providers/power.py): ``VM.start_on`` the VM's
host (or ``VM.start``, where XAPI chooses one), ``VM.clean_shutdown`` as a task (the guest is asked; XAPI waits for
it), and ``VM.hard_shutdown`` to pull the plug — on a guest that is still running when the protocol's time is up,
or at once when XAPI refused the clean shutdown (a guest without PV drivers: VM_LACKS_FEATURE)."""

from __future__ import annotations

from virtplane.providers.xenserver.client import XapiClient, XapiFailure


class XapiPower:
    def __init__(self, client: XapiClient, ref: str, name: str, host: str | None) -> None:
        self._client = client
        self.ref = ref
        self.name = name
        self._host = host
        self._task: str | None = None

    def _state(self) -> str:
        return str(self._client.get("VM.get_power_state", self.ref, what=f"read the power state of VM {self.name}"))

    def start(self) -> None:
        if self._state() in ("Running", "Paused"):
            return
        what = f"power on VM {self.name}"
        if self._host is not None:
            self._client.run("VM.start_on", self.ref, self._host, False, False, what=what)
        else:
            self._client.run("VM.start", self.ref, False, False, what=what)

    def request_shutdown(self) -> bool:
        if self._state() == "Halted":
            return True
        self._task = self._client.call("Async.VM.clean_shutdown", self.ref, what=f"shut down VM {self.name}")
        return True

    def is_off(self) -> bool:
        if self._state() == "Halted":
            self._forget()
            return True
        if self._task is not None:
            status = self._client.get("task.get_status", self._task, what=f"follow the shutdown of VM {self.name}")
            if status == "failure":  # XAPI could not ask the guest: pull the plug now, not after the timeout
                self.force_off()
                return True
        return False

    def force_off(self) -> None:
        try:
            if self._state() != "Halted":
                self._client.run("VM.hard_shutdown", self.ref, what=f"power off VM {self.name}")
        except XapiFailure as failure:
            if failure.code != "VM_BAD_POWER_STATE":  # it went off meanwhile
                raise
        self._forget()

    def _forget(self) -> None:
        if self._task is not None:
            self._client.forget(self._task)
            self._task = None
