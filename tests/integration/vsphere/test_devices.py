"""GPUs (passthrough, vGPU) and SR-IOV NICs on vSphere: created, read back in the spec's shape, their
out-of-band removal or change seen as drift and repaired, and removed.

The driver is called as apply calls it: ``observe`` with the stack's declaration first (it tells a device
the stack names from one placement chose), then ``create`` with the spec placement filled in."""

from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import vim

from tests.integration.vsphere.helpers import find_host, find_vm, mark_as_template, reconfigure
from tests.integration.vsphere.test_vm import converge, observe_one, resolved
from virtplane.diff import diff
from virtplane.providers.base import FieldChange, Owner, Rule
from virtplane.providers.vsphere.provider import API_VERSION
from virtplane.specs import CREATE_ONLY, VirtualMachineSpec

P = vim.vm.device.VirtualPCIPassthrough
HOST = "DC0_C0_H0"


def host_pci(raw_si: Any) -> list[Any]:
    return list(find_host(raw_si, HOST).hardware.pciDevice)


def a_gpu(raw_si: Any) -> Any:
    """The host's first display device (the simulator's SVGA adapter, or the lab's seeded GPU)."""
    return next(d for d in host_pci(raw_si) if (d.classId & 0xFF00) == 0x0300)


def a_function(raw_si: Any) -> Any:
    """A PCI device to stand for an SR-IOV physical function (the simulator checks no SR-IOV state)."""
    return next(d for d in host_pci(raw_si) if (d.classId & 0xFF00) == 0x0200 or d.id.endswith(":00.0"))


def vm(**fields: Any) -> VirtualMachineSpec:
    return VirtualMachineSpec.model_validate({"cpus": 1, "memory": 512, "nics": []} | fields)


def declare_and_create(provider: Any, stack: str, name: str, declared: VirtualMachineSpec,
                       planned: VirtualMachineSpec) -> Any:
    """Plan-time observe with ``declared``, then create ``planned`` (the spec after placement)."""
    driver = provider.driver("VirtualMachine")
    driver.observe(stack, {"VirtualMachine": {name: declared}})
    return driver.create(Owner(stack, name), planned)


def passthrough_devices(raw_si: Any, name: str) -> list[Any]:
    return sorted((d for d in find_vm(raw_si, name).config.hardware.device if isinstance(d, P)), key=lambda d: d.key)


def remove_out_of_band(raw_si: Any, name: str, device_type: type) -> None:
    vm_ref = find_vm(raw_si, name)
    device = next(d for d in vm_ref.config.hardware.device if isinstance(d, device_type))
    reconfigure(vm_ref, deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="remove", device=device)])


def changes(provider: Any, stack: str, name: str, spec: VirtualMachineSpec) -> list[tuple[str, Rule]]:
    observed = observe_one(provider, stack, name)
    wanted = resolved(provider, spec, observed.state)
    driver = provider.driver("VirtualMachine")
    return [(c.path, driver.rule(c)) for c in diff(wanted.model_dump(), observed.state, CREATE_ONLY["VirtualMachine"])]


def test_virtplane_speaks_the_api_version_dynamic_directpath_needs(provider):
    assert API_VERSION == "vim.version.v7_0"
    assert "7.0" in provider.si._stub.versionId


def test_a_passthrough_gpu_placement_chose_gets_a_dynamic_directpath_backing_that_survives_a_read(
        provider, raw_si, stack, name):
    gpu = a_gpu(raw_si)
    declared = vm(gpus=[{"mode": "passthrough"}])
    planned = vm(node=HOST, gpus=[{"mode": "passthrough", "device": gpu.id}])
    created = declare_and_create(provider, stack, name, declared, planned)
    [device] = passthrough_devices(raw_si, name)
    assert isinstance(device.backing, P.DynamicBackingInfo)
    assert [(a.vendorId, a.deviceId) for a in device.backing.allowedDevice] == [
        (gpu.vendorId & 0xFFFF, gpu.deviceId & 0xFFFF)]
    assert find_vm(raw_si, name).config.memoryReservationLockedToMax is True
    assert created.outputs["memory_reservation_locked_to_max"] is True
    [state] = observe_one(provider, stack, name).state["gpus"]
    assert (state["mode"], state["profile"], state["device"]) == ("passthrough", None, None)
    assert changes(provider, stack, name, declared) == []


def test_a_gpu_the_stack_names_gets_a_fixed_backing_for_that_address(provider, raw_si, stack, name):
    gpu = a_gpu(raw_si)
    spec = vm(node=HOST, gpus=[{"mode": "passthrough", "device": gpu.id}])
    declare_and_create(provider, stack, name, spec, spec)
    [device] = passthrough_devices(raw_si, name)
    assert isinstance(device.backing, P.DeviceBackingInfo)
    assert (device.backing.id, device.backing.deviceId) == (gpu.id, f"{gpu.deviceId & 0xFFFF:x}")
    assert device.backing.vendorId == gpu.vendorId
    host = find_vm(raw_si, name).runtime.host
    assert device.backing.systemId == host.hardware.systemInfo.uuid
    assert observe_one(provider, stack, name).state["gpus"][0]["device"] == gpu.id
    assert changes(provider, stack, name, spec) == []


def test_a_vgpu_gets_a_vmiop_backing_and_a_profile_changed_behind_our_back_is_repaired_powered_off(
        provider, raw_si, stack, name):
    spec = vm(node=HOST, power="on", gpus=[{"mode": "vgpu", "profile": "grid_a100-10c"}])
    declare_and_create(provider, stack, name, spec, spec)
    [device] = passthrough_devices(raw_si, name)
    assert device.backing.vgpu == "grid_a100-10c"
    assert observe_one(provider, stack, name).state["gpus"] == [
        {"mode": "vgpu", "profile": "grid_a100-10c", "device": None, "vendor": "nvidia"}]
    device.backing.vgpu = "grid_a100-20c"
    reconfigure(find_vm(raw_si, name), deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="edit",
                                                                                     device=device)])
    assert changes(provider, stack, name, spec) == [("gpus[0].profile", Rule.POWER_OFF)]
    after = converge(provider, stack, name, spec)
    assert after.state["gpus"][0]["profile"] == "grid_a100-10c" and after.state["power"] == "on"


def test_a_gpu_removed_behind_our_back_is_drift_and_added_again(provider, raw_si, stack, name):
    declared = vm(gpus=[{"mode": "passthrough"}, {"mode": "vgpu", "profile": "grid_a100-4c"}])
    planned = vm(node=HOST, gpus=[{"mode": "passthrough", "device": a_gpu(raw_si).id},
                                  {"mode": "vgpu", "profile": "grid_a100-4c"}])
    declare_and_create(provider, stack, name, declared, planned)
    remove_out_of_band(raw_si, name, P)  # the first GPU, by key
    assert changes(provider, stack, name, declared) == [("gpus[0].mode", Rule.POWER_OFF),
                                                          ("gpus[1]", Rule.POWER_OFF)]
    state = converge(provider, stack, name, declared).state
    assert [(g["mode"], g["profile"]) for g in state["gpus"]] == [("passthrough", None), ("vgpu", "grid_a100-4c")]
    assert isinstance(passthrough_devices(raw_si, name)[0].backing, P.DynamicBackingInfo)
    assert changes(provider, stack, name, declared) == []


def test_gpus_no_longer_declared_are_removed_with_the_vm_off(provider, raw_si, stack, name):
    spec = vm(node=HOST, power="on", gpus=[{"mode": "vgpu", "profile": "grid_a100-4c"}])
    declare_and_create(provider, stack, name, spec, spec)
    assert changes(provider, stack, name, vm(gpus=[])) == [("gpus[0]", Rule.POWER_OFF)]
    after = converge(provider, stack, name, vm(gpus=[]))
    assert after.state["gpus"] == [] and passthrough_devices(raw_si, name) == []
    assert after.state["power"] == "on"


def test_an_sriov_nic_is_a_virtual_function_of_the_chosen_physical_function(provider, raw_si, stack, name):
    function = a_function(raw_si)
    declared = vm(nics=[{"network": "VM Network", "adapter": "sriov"}])
    planned = vm(node=HOST, nics=[{"network": "VM Network", "adapter": "sriov", "device": function.id}])
    created = declare_and_create(provider, stack, name, declared, planned)
    [nic] = [d for d in find_vm(raw_si, name).config.hardware.device
             if isinstance(d, vim.vm.device.VirtualSriovEthernetCard)]
    assert nic.sriovBacking.physicalFunctionBacking.id == function.id
    assert nic.backing.deviceName == "VM Network"
    assert find_vm(raw_si, name).config.memoryReservationLockedToMax is True
    assert created.outputs["nics"] == [{"network": "VM Network", "adapter": "sriov", "device": function.id,
                                        "slot": "ethernet0"}]
    assert changes(provider, stack, name, declared) == []


def test_an_sriov_nic_removed_behind_our_back_is_drift_by_slot_and_added_again_then_removed(
        provider, raw_si, stack, name):
    function = a_function(raw_si)
    spec = vm(node=HOST, nics=[{"network": "VM Network", "adapter": "sriov", "device": function.id}])
    declare_and_create(provider, stack, name, spec, spec)
    remove_out_of_band(raw_si, name, vim.vm.device.VirtualSriovEthernetCard)
    assert changes(provider, stack, name, spec) == [("nics[ethernet0]", Rule.POWER_OFF)]
    assert converge(provider, stack, name, spec).state["nics"] == [
        {"network": "VM Network", "adapter": "sriov", "device": function.id, "slot": "ethernet0"}]
    assert converge(provider, stack, name, vm(nics=[])).state["nics"] == []


def test_adding_a_gpu_to_a_running_vm_locks_its_memory_and_restores_power(provider, raw_si, stack, name):
    provider.driver("VirtualMachine").create(Owner(stack, name), vm(node=HOST, power="on"))
    assert find_vm(raw_si, name).config.memoryReservationLockedToMax is not True
    wanted = vm(gpus=[{"mode": "vgpu", "profile": "grid_a100-4c"}])
    assert changes(provider, stack, name, wanted) == [("gpus[0]", Rule.POWER_OFF)]
    after = converge(provider, stack, name, wanted)
    assert (len(after.state["gpus"]), after.state["power"]) == (1, "on")
    assert find_vm(raw_si, name).config.memoryReservationLockedToMax is True


@pytest.mark.parametrize(("path", "old", "new"), [("nics[ethernet0].device", "0000:5e:00.0", "0000:5e:00.1"),
                                                  ("gpus[0].profile", "grid_a100-4c", "grid_a100-10c")])
def test_device_changes_need_the_vm_off(provider, path, old, new):
    assert provider.driver("VirtualMachine").rule(FieldChange(path, old, new)) is Rule.POWER_OFF


def test_a_clone_given_a_gpu_by_placement_gets_dynamic_directpath_too(provider, raw_si, stack, name):
    provider.driver("VirtualMachine").create(Owner("templates", f"{name}-tpl"), vm(power="off"))
    mark_as_template(raw_si, f"{name}-tpl")
    declared = VirtualMachineSpec(clone_from=f"{name}-tpl", gpus=[{"mode": "passthrough"}])
    planned = declared.model_copy(update={"node": HOST, "gpus": [
        declared.gpus[0].model_copy(update={"device": a_gpu(raw_si).id})]})
    declare_and_create(provider, stack, name, declared, planned)
    [device] = passthrough_devices(raw_si, name)
    assert isinstance(device.backing, P.DynamicBackingInfo)
    assert find_vm(raw_si, name).config.memoryReservationLockedToMax is True


def test_a_vgpu_names_only_its_profile_so_a_vm_without_a_host_gets_one(provider, raw_si, stack, name):
    provider.driver("VirtualMachine").create(Owner(stack, name), vm(gpus=[{"mode": "vgpu", "profile": "grid_a100-4c"}]))
    assert [d.backing.vgpu for d in passthrough_devices(raw_si, name)] == ["grid_a100-4c"]
    assert find_vm(raw_si, name).config.memoryReservationLockedToMax is True
