"""The power-change protocol every provider follows, written once.

A change that needs a VM off (a rule ``power-off``) shuts the guest down cleanly, waits up to a timeout for it
to be off, and only then pulls the plug. If the change then fails, the VM is started again before the error is
reported, so a failed update never leaves a VM that is to run stopped. Afterwards the declared power state is
applied; an unset one (not managed) leaves the VM as it was before the change.

A provider supplies its four calls as a ``PowerSwitch`` and calls ``change_with_power``. A VM switched off that
is to run again is first recorded as such (``record("on")``, where the provider keeps the record of
providers/marker.py), so a run killed while it is off restores it next time; the record is cleared once it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, Protocol

from virtplane.errors import ProviderError

SHUTDOWN_TIMEOUT = 120.0  # seconds a guest gets to shut down cleanly before it is powered off hard
_FIRST_DELAY = 0.05
_MAX_DELAY = 2.0


class PowerSwitch(Protocol):
    """One VM's power, in the hypervisor's own calls."""

    name: str  # the VM's name, for messages

    def start(self) -> None:
        """Power on; a VM already running is fine."""

    def request_shutdown(self) -> bool:
        """Ask the guest to shut down (ACPI, guest tools); False when it cannot be asked."""

    def is_off(self) -> bool:
        """Whether the VM is off now."""

    def force_off(self) -> None:
        """Pull the plug; a VM already off is fine."""


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


def switch_off(switch: PowerSwitch, timeout: float = SHUTDOWN_TIMEOUT) -> None:
    """A clean shutdown; the plug is pulled when the guest cannot be asked or is still on after ``timeout``."""
    if not (switch.request_shutdown() and wait_until(switch.is_off, timeout)):
        switch.force_off()


def change_with_power(switch: PowerSwitch, *, running: bool, wanted: Literal["on", "off"] | None, needs_off: bool,
                      change: Callable[[], None], timeout: float = SHUTDOWN_TIMEOUT,
                      record: Callable[[str | None], None] | None = None, recorded: bool = False) -> None:
    """Apply ``change`` to a VM that is ``running`` or not: switched off first when ``needs_off``, started again
    when the change fails, and left in the ``wanted`` power state (None: as it was before). ``record`` keeps the
    power state to restore on the VM (``recorded``: a record an earlier, interrupted run left), cleared at the end."""
    switched_off = running and needs_off
    want_on = wanted == "on" if wanted is not None else running
    if switched_off and want_on and record is not None:
        record("on")
        recorded = True
    if switched_off:
        switch_off(switch, timeout)
    try:
        change()
    except BaseException as failure:
        if switched_off:
            try:
                switch.start()
            except Exception as again:
                raise ProviderError(f"{failure}; VM {switch.name} stays powered off, as starting it again failed "
                                    f"too: {again}") from failure
        raise
    is_on = running and not switched_off
    if want_on and not is_on:
        switch.start()
    elif not want_on and is_on:
        switch_off(switch, timeout)
    if recorded and record is not None:
        record(None)
