"""What VMware Tools tell of a VM's guest, for deciding whether a desktop is in use: one PropertyCollector pass.

- ``guest.toolsRunningStatus``: ``guestToolsRunning`` when the Tools in the guest answer; only then is the rest
  of ``guest`` current.
- ``guest.interactiveGuestOperationsReady``: whether guest operations that need an interactive session can run,
  i.e. a user is logged in to the guest's console session (vSphere API 5.0 and later).
- ``guest.ipAddress``: the guest's primary IP address as the Tools report it.

Without running Tools nothing tells whether someone works on the desktop, so ``users`` stays None (counted as in
use). Sources: vSphere Web Services API reference, "GuestInfo" (toolsRunningStatus, interactiveGuestOperationsReady,
ipAddress) and "VirtualMachineToolsRunningStatus".
"""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from virtplane.providers.base import GuestState, Observed
from virtplane.providers.vsphere.collector import retrieve_objects

PATHS = ["runtime.powerState", "guest.toolsRunningStatus", "guest.interactiveGuestOperationsReady",
         "guest.ipAddress"]
TOOLS_RUNNING = "guestToolsRunning"


def guest_state(props: dict[str, Any]) -> GuestState:
    """A VM's guest state from the properties of PATHS (pure mapping)."""
    if props.get("runtime.powerState") != "poweredOn":
        return GuestState("off")
    address = props.get("guest.ipAddress") or None
    if props.get("guest.toolsRunningStatus") != TOOLS_RUNNING:
        return GuestState("on", None, address, "VMware Tools are not running")
    interactive = props.get("guest.interactiveGuestOperationsReady")
    if interactive is None:
        return GuestState("on", None, address, "VMware Tools do not report interactive sessions")
    return GuestState("on", ("an interactive user",) if interactive else (), address, "VMware Tools")


def read_guest_states(content: Any, observed: list[Observed]) -> dict[str, GuestState]:
    """The guest state of each VM (by ``Observed.name``), read in one pass."""
    refs = {live.handle.ref._moId: live.name for live in observed}
    rows = retrieve_objects(content, [live.handle.ref for live in observed], vim.VirtualMachine, PATHS)
    return {refs[ref._moId]: guest_state(props) for ref, props in rows if ref._moId in refs}
