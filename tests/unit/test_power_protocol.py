"""The power-change protocol (providers/power.py): a VM switched off for a change that is to run again is recorded
as such before it is switched off, and the record is cleared once it runs; a record an interrupted run left is
cleared too."""

from __future__ import annotations

from virtplane.providers.power import change_with_power


class Switch:
    name = "vm"

    def __init__(self, on: bool) -> None:
        self.on = on
        self.events: list[str] = []

    def start(self) -> None:
        self.events.append("start")
        self.on = True

    def request_shutdown(self) -> bool:
        self.events.append("shutdown")
        self.on = False
        return True

    def is_off(self) -> bool:
        return not self.on

    def force_off(self) -> None:
        self.events.append("force off")
        self.on = False


def run(switch: Switch, *, wanted=None, needs_off=True, recorded=False) -> list[str]:
    change_with_power(switch, running=switch.on, wanted=wanted, needs_off=needs_off, recorded=recorded,
                      change=lambda: switch.events.append("change"),
                      record=lambda power: switch.events.append(f"record {power}"))
    return switch.events


def test_a_vm_switched_off_for_a_change_is_recorded_before_and_cleared_once_it_runs_again():
    assert run(Switch(on=True)) == ["record on", "shutdown", "change", "start", "record None"]


def test_a_vm_that_is_to_stay_off_is_never_recorded():
    assert run(Switch(on=True), wanted="off") == ["shutdown", "change"]


def test_a_record_left_by_an_interrupted_run_is_cleared_once_the_vm_runs():
    assert run(Switch(on=False), wanted="on", needs_off=False, recorded=True) == ["change", "start", "record None"]
