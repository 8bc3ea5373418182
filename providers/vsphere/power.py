"""Switching a VM off for a change: a clean guest shutdown when VMware Tools run, a hard power-off after
a timeout (or when they do not run)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pyVmomi import vim, vmodl

from virtplane.providers.vsphere.collector import retrieve_objects

TOOLS_RUNNING = "guestToolsRunning"
SHUTDOWN_TIMEOUT = 300.0  # seconds a guest gets to shut down cleanly before it is powered off hard
_FIRST_DELAY = 0.05
_MAX_DELAY = 2.0


def wait_until(done: Callable[[], bool], timeout: float, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Poll ``done`` with a growing delay until it answers True (-> True) or ``timeout`` passes (-> False)."""
    deadline = time.monotonic() + timeout
    delay = _FIRST_DELAY
    while not done():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        sleep(min(delay, remaining))
        delay = min(delay * 2, _MAX_DELAY)
    return True


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
