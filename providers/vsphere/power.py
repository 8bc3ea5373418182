"""Switching a VM off for a change: a clean guest shutdown when VMware Tools run, a hard power-off after
a timeout (or when they do not run)."""

from __future__ import annotations

from typing import Any

from pyVmomi import vim, vmodl

from virtplane.providers.power import wait_until  # the shared protocol's polling (re-exported for callers here)
from virtplane.providers.vsphere.collector import retrieve_objects

TOOLS_RUNNING = "guestToolsRunning"
SHUTDOWN_TIMEOUT = 300.0  # seconds a guest gets to shut down cleanly before it is powered off hard


def shut_down_guest(content: Any, ref: Any, timeout: float) -> bool:
    """Ask the guest OS to shut down and wait for the VM to be off; False when VMware Tools do not run,
    the guest refuses, or it is still on after ``timeout`` seconds (the caller then powers it off)."""
    if _read(content, ref, "guest.toolsRunningStatus") != TOOLS_RUNNING:
        return False
    try:
        ref.ShutdownGuest()
    except vim.fault.InvalidPowerState:
        return True  # off already
    except vmodl.MethodFault:
        return False  # e.g. ToolsUnavailable: fall back to a hard power-off
    return wait_until(lambda: _read(content, ref, "runtime.powerState") == "poweredOff", timeout)


def _read(content: Any, ref: Any, path: str) -> Any:
    rows = retrieve_objects(content, [ref], vim.VirtualMachine, [path])
    return rows[0][1].get(path) if rows else None
