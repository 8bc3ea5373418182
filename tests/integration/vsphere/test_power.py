"""Switching a VM off for a change: a clean guest shutdown, a hard power-off fallback, power restored."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from pyVmomi import vim

from tests.integration.vsphere.helpers import find_vm, reconfigure
from tests.integration.vsphere.test_vm import converge, vm_spec
from virtplane.errors import ProviderError
from virtplane.providers.base import FieldChange, Owner, Rule
from virtplane.providers.power import wait_until
from virtplane.providers.vsphere.vm_rules import machine_rule


def start_vmware_tools(vm: Any) -> None:
    """The simulator's way of reporting VMware Tools as running in the guest."""
    reconfigure(vm, extraConfig=[vim.option.OptionValue(key="SET.guest.toolsRunningStatus",
                                                        value="guestToolsRunning")])
    assert vm.guest.toolsRunningStatus == "guestToolsRunning"


def test_a_guest_with_vmware_tools_is_shut_down_cleanly_for_a_power_off_change(
        provider, raw_si, stack, name, soap_methods):
    provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec())
    start_vmware_tools(find_vm(raw_si, name))
    soap_methods.clear()
    after = converge(provider, stack, name, vm_spec(guest_os="other"))
    assert "ShutdownGuest" in soap_methods and "PowerOffVM_Task" not in soap_methods
    assert (after.state["guest_os"], after.state["power"]) == ("other", "on")


def test_a_guest_without_vmware_tools_is_powered_off_hard(provider, stack, name, soap_methods):
    provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec())
    soap_methods.clear()
    after = converge(provider, stack, name, vm_spec(guest_os="other"))
    assert "PowerOffVM_Task" in soap_methods and "ShutdownGuest" not in soap_methods
    assert after.state["power"] == "on"


def test_a_vm_declared_off_is_shut_down_cleanly_when_vmware_tools_run(provider, raw_si, stack, name, soap_methods):
    provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec())
    start_vmware_tools(find_vm(raw_si, name))
    soap_methods.clear()
    assert converge(provider, stack, name, vm_spec(power="off")).state["power"] == "off"
    assert "ShutdownGuest" in soap_methods and "PowerOffVM_Task" not in soap_methods


def test_power_is_restored_when_the_reconfigure_is_refused(provider, raw_si, stack, name):
    provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec())
    with pytest.raises(ProviderError, match=f"could not reconfigure VM {name}: .*guestId"):
        converge(provider, stack, name, vm_spec(guest_os="noSuchGuest"))
    assert find_vm(raw_si, name).runtime.powerState == "poweredOn"


def test_a_vm_powered_off_on_purpose_stays_off_when_the_reconfigure_is_refused(provider, raw_si, stack, name):
    provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec(power="off"))
    with pytest.raises(ProviderError):
        converge(provider, stack, name, vm_spec(guest_os="noSuchGuest", power="off"))
    assert find_vm(raw_si, name).runtime.powerState == "poweredOff"


def test_waiting_for_a_guest_that_never_stops_gives_up_after_the_timeout():
    clock = itertools.count()
    assert wait_until(lambda: False, timeout=0.0, sleep=lambda _: next(clock)) is False
    answers = iter([False, False, True])
    assert wait_until(lambda: next(answers), timeout=60.0, sleep=lambda _: None) is True


# ---- machine (hardware version) --------------------------------------------------------------------------

@pytest.mark.parametrize(("old", "new", "rule"), [
    ("vmx-13", "vmx-19", Rule.POWER_OFF), ("vmx-10", "vmx-13", Rule.POWER_OFF),
    ("vmx-19", "vmx-13", Rule.REPLACE), ("vmx-9", "vmx-10", Rule.POWER_OFF), ("vmx-10", "vmx-9", Rule.REPLACE),
    (None, "vmx-19", Rule.REPLACE)])
def test_a_hardware_version_is_upgraded_powered_off_and_lowered_by_replacing(old, new, rule):
    assert machine_rule(old, new) is rule


def test_a_hardware_version_upgrade_is_made_in_place_and_power_is_restored(provider, raw_si, stack, name,
                                                                           soap_methods):
    provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec(machine="vmx-10"))
    ref = find_vm(raw_si, name)
    rule = provider.driver("VirtualMachine").rule(FieldChange("machine", "vmx-10", "vmx-13"))
    assert rule is Rule.POWER_OFF
    soap_methods.clear()
    after = converge(provider, stack, name, vm_spec(machine="vmx-13"))
    assert "UpgradeVM_Task" in soap_methods and soap_methods.args["UpgradeVM_Task"] == ["vmx-13"]
    assert (after.state["machine"], after.state["power"]) == ("vmx-13", "on")
    assert find_vm(raw_si, name)._moId == ref._moId
