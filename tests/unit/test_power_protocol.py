"""The shared power-change protocol (providers/power.py), against a recorded switch: clean shutdown before the
change, the plug pulled only after the timeout, the VM started again when the change fails, the declared power
state at the end."""

from __future__ import annotations

import pytest

from virtplane.errors import ProviderError
from virtplane.providers.power import change_with_power, switch_off


class Switch:
    """A VM whose guest shuts down when asked (``obeys``) or ignores it; records every call."""

    name = "vm1"

    def __init__(self, on: bool, obeys: bool = True, start_fails: bool = False) -> None:
        self.on, self.obeys, self.start_fails = on, obeys, start_fails
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")
        if self.start_fails:
            raise ProviderError("no room on the host")
        self.on = True

    def request_shutdown(self) -> bool:
        self.calls.append("shutdown")
        if self.obeys:
            self.on = False
        return True

    def is_off(self) -> bool:
        return not self.on

    def force_off(self) -> None:
        self.calls.append("force-off")
        self.on = False


def test_a_change_that_needs_the_vm_off_shuts_it_down_cleanly_and_starts_it_again():
    switch = Switch(on=True)
    change_with_power(switch, running=True, wanted=None, needs_off=True, change=lambda: switch.calls.append("change"))
    assert switch.calls == ["shutdown", "change", "start"] and switch.on


def test_a_guest_that_ignores_the_shutdown_is_powered_off_after_the_timeout():
    switch = Switch(on=True, obeys=False)
    switch_off(switch, timeout=0.01)
    assert switch.calls == ["shutdown", "force-off"] and not switch.on


def test_a_failed_change_starts_the_vm_again_and_reports_the_change():
    switch = Switch(on=True)

    def fail() -> None:
        raise ProviderError("the disk is locked")

    with pytest.raises(ProviderError, match="the disk is locked"):
        change_with_power(switch, running=True, wanted="on", needs_off=True, change=fail)
    assert switch.calls == ["shutdown", "start"] and switch.on


def test_a_failed_change_whose_restart_fails_too_says_both():
    switch = Switch(on=True, start_fails=True)

    def fail() -> None:
        raise ProviderError("the disk is locked")

    with pytest.raises(ProviderError, match="the disk is locked; VM vm1 stays powered off, as starting it again "
                                            "failed too: no room on the host"):
        change_with_power(switch, running=True, wanted="on", needs_off=True, change=fail)


@pytest.mark.parametrize(("running", "wanted", "needs_off", "calls", "on"), [
    (False, "on", False, ["change", "start"], True),
    (True, "off", False, ["change", "shutdown"], False),
    (True, None, False, ["change"], True),
    (False, None, True, ["change"], False),  # off already: nothing to switch, and unset power keeps it off
    (True, "off", True, ["shutdown", "change"], False),
])
def test_the_declared_power_state_is_applied_after_the_change_and_unset_keeps_the_vm_as_it_was(
        running, wanted, needs_off, calls, on):
    switch = Switch(on=running)
    change_with_power(switch, running=running, wanted=wanted, needs_off=needs_off,
                      change=lambda: switch.calls.append("change"))
    assert (switch.calls, switch.on) == (calls, on)


def recorded_run(switch: Switch, *, wanted=None, needs_off=True, recorded=False) -> list[str]:
    change_with_power(switch, running=switch.on, wanted=wanted, needs_off=needs_off, recorded=recorded,
                      change=lambda: switch.calls.append("change"),
                      record=lambda power: switch.calls.append(f"record {power}"))
    return switch.calls


def test_a_vm_switched_off_for_a_change_is_recorded_before_and_cleared_once_it_runs_again():
    assert recorded_run(Switch(on=True)) == ["record on", "shutdown", "change", "start", "record None"]


def test_a_vm_that_is_to_stay_off_is_never_recorded():
    assert recorded_run(Switch(on=True), wanted="off") == ["shutdown", "change"]


def test_a_record_left_by_an_interrupted_run_is_cleared_once_the_vm_runs():
    assert recorded_run(Switch(on=False), wanted="on", needs_off=False, recorded=True) == [
        "change", "start", "record None"]
