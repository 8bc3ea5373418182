"""GPUs (Discrete Device Assignment, GPU partitioning), SR-IOV NICs and nested virtualization through the Hyper-V
driver, against simulated hosts of this module's own (device state is not shared with other tests).

Microsoft pages the behaviour follows:
- DDA: https://learn.microsoft.com/windows-server/virtualization/hyper-v/deploy/deploying-graphics-devices-using-dda
- GPU partitioning: https://learn.microsoft.com/windows-server/virtualization/hyper-v/gpu-partitioning
- Nested virtualization: https://learn.microsoft.com/virtualization/hyper-v-on-windows/user-guide/nested-virtualization
- Cmdlets: https://learn.microsoft.com/powershell/module/hyper-v/ (Add-VMAssignableDevice, ...)"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.integration.hyperv.test_driver import converge, provider, stack, vms_named
from virtplane import apply
from virtplane.engine import build_plan
from virtplane.errors import SpecError
from virtplane.kinds import build_spec
from virtplane.placement import PlacementError
from virtplane.plan import Action
from virtplane.providers.base import Owner, Rule
from virtplane.providers.hyperv.client import Cmd, pipe, vm_by_id
from virtplane_lab import hyperv
from virtplane_lab.hypervsim import hostfile

GPU_LOCATION = "PCIROOT(0)#PCI(0300)#PCI(0000)"  # the gpu host's NVIDIA A2 (hosts/gpu.yaml)
GiB = 1024**3
MiB = 1024**2
_numbers = itertools.count()


@pytest.fixture(scope="module")
def hv_gpu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[hyperv.HypervInstance]:
    """An Intel host with a DDA GPU and a partitionable GPU whose default configuration version is 10.0 while it
    supports 12.0 (a host upgraded to Windows Server 2025 keeps older defaults in this test)."""
    work = tmp_path_factory.mktemp("hvdev")
    description = yaml.safe_load(hostfile.builtin("gpu").read_text())
    description["versions"]["default"] = "10.0"
    (work / "gpu10.json").write_text(json.dumps(description))
    instance = hyperv.start(work, host_name="HV-DEV", profile=str(work / "gpu10.json"), name="dev")
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def hv_amd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[hyperv.HypervInstance]:
    instance = hyperv.start(tmp_path_factory.mktemp("hvamd"), host_name="HV-AMD", profile="sriov", tls=True,
                            name="amd")
    yield instance
    instance.stop()


def vm_of(hv: Any, name: str) -> Any:
    [vm] = vms_named(hv, name)
    return vm


def read(hv: Any, *statements: Any) -> list[Any]:
    return hv.client.run(list(statements), "read").objects


def assigned(hv: Any, name: str) -> list[str]:
    vm_id = str(vm_of(hv, name).get("VMId"))
    return [o.text("LocationPath") for o in read(hv, pipe(vm_by_id(vm_id), Cmd("Get-VMAssignableDevice")))]


def dismounted(hv: Any) -> list[str]:
    return [o.text("LocationPath") for o in read(hv, pipe(Cmd("Get-VMHostAssignableDevice")))]


def vm_item(hv: Any, desired: Any) -> Any:
    [item] = [r for r in build_plan(desired, {"hv": hv}).resources if r.kind == "VirtualMachine"]
    return item


def gpu_state(instance: hyperv.HypervInstance, location: str = GPU_LOCATION) -> str:
    return next(d["state"] for d in instance.control("state")["hardware"]["pci_devices"]
                if d["location_path"] == location)


def test_a_passthrough_gpu_is_assigned_with_the_dda_settings_read_back_repaired_and_given_back(hv_gpu):
    """DDA page: the VM needs AutomaticStopAction TurnOff, GuestControlledCacheTypes, 3 GB low MMIO and high MMIO
    for the GPU's BARs plus the 512 MB default (an A2 maps 16 GiB); Add-VMAssignableDevice -LocationPath; undo
    with Remove-VMAssignableDevice and Mount-VMHostAssignableDevice (cmdlet references of the same names)."""
    hv = provider(hv_gpu)
    hyperv.dismount_devices(hv_gpu, [GPU_LOCATION])  # DDA page: disable, then dismount the device
    name = f"dda-{next(_numbers)}"
    desired = stack(f"dda{next(_numbers)}", {name: {"cpus": 2, "memory": "2GiB", "power": "on",
                                                    "gpus": [{"mode": "passthrough", "vendor": "nvidia"}]}})
    plan = build_plan(desired, {"hv": hv})
    [item] = [r for r in plan.resources if r.kind == "VirtualMachine"]
    assert item.assignment.gpu_devices == [GPU_LOCATION]
    converge(desired, hv)
    vm = vm_of(hv, name)
    assert (str(vm.get("AutomaticStopAction")), vm.flag("GuestControlledCacheTypes")) == ("TurnOff", True)
    assert (vm.number("LowMemoryMappedIoSpace"), vm.number("HighMemoryMappedIoSpace")) == (3 * GiB, 16896 * MiB)
    assert assigned(hv, name) == [GPU_LOCATION]
    item = vm_item(hv, desired)
    assert item.action is Action.NOOP, [c.change for c in item.changes]
    assert item.observed.state["gpus"] == [{"mode": "passthrough", "profile": None, "device": GPU_LOCATION,
                                            "vendor": "nvidia"}]

    vm_id = str(vm.get("VMId"))  # someone takes the GPU away by hand
    hv.client.run([pipe(vm_by_id(vm_id), Cmd("Stop-VM", {"TurnOff": True, "Force": True})),
                   pipe(vm_by_id(vm_id), Cmd("Remove-VMAssignableDevice", {"LocationPath": GPU_LOCATION})),
                   pipe(vm_by_id(vm_id), Cmd("Start-VM"))], "take the GPU away")
    item = vm_item(hv, desired)
    assert [(c.change.path, c.rule) for c in item.changes] == [("gpus[0]", Rule.POWER_OFF)]
    converge(desired, hv)
    assert assigned(hv, name) == [GPU_LOCATION]
    assert str(vm_of(hv, name).get("State")) == "Running"

    # the inventory shows who holds it; placement will not give it twice
    [device] = [d for d in hv.hosts()[0].pci_devices if d.address == GPU_LOCATION]
    assert (device.vendor_id, device.class_id, device.in_use_by) == ("0x10de", "0x0302", [name])
    with pytest.raises(PlacementError, match=f"{re.escape(GPU_LOCATION)} is in use by {name}"):
        build_plan(stack(desired.project, {name: {"gpus": [{"mode": "passthrough"}]},
                                           "second": {"gpus": [{"mode": "passthrough"}]}}), {"hv": hv})

    assert not apply.run(build_plan(stack(desired.project, {}), {"hv": hv}, destroy=True), {"hv": hv}).failed
    assert vms_named(hv, name) == []
    assert gpu_state(hv_gpu) == "host"  # mounted back on the host


def test_a_placed_gpu_still_mounted_on_the_host_is_dismounted_before_it_is_assigned(hv_gpu):
    """Dismount-VMHostAssignableDevice -LocationPath -Force (cmdlet reference; -Force when the vendor ships no
    security mitigation driver, DDA page), then Add-VMAssignableDevice."""
    hv = provider(hv_gpu)
    assert GPU_LOCATION not in dismounted(hv)
    name = f"dda-{next(_numbers)}"
    spec = build_spec("VirtualMachine", name, {"memory": 1024, "power": "off", "gpus": [
        {"mode": "passthrough", "device": GPU_LOCATION}]})
    driver = hv.driver("VirtualMachine")
    driver.create(Owner("mounted/dev", name, "hv"), spec.with_creation_defaults())
    assert assigned(hv, name) == [GPU_LOCATION]
    sent = [c["command"] for entry in hv_gpu.commands() for c in entry["commands"]]
    assert sent.index("Disable-PnpDevice") < sent.index("Dismount-VMHostAssignableDevice")
    [observed] = [o for o in driver.observe("mounted/dev", {}).owned.values() if o.name == name]
    driver.delete(observed)
    assert gpu_state(hv_gpu) == "host"


def test_a_vm_with_dynamic_memory_is_refused_a_passthrough_gpu_in_one_sentence(hv_gpu):
    """DDA page: dynamic memory is not available to a VM with an assigned device."""
    hv = provider(hv_gpu)
    name = f"dyn-{next(_numbers)}"
    project = f"dyn{next(_numbers)}"
    converge(stack(project, {name: {"memory": 1024, "power": "off"}}), hv)
    vm_id = str(vm_of(hv, name).get("VMId"))
    hv.client.run([pipe(vm_by_id(vm_id), Cmd("Set-VMMemory", {"DynamicMemoryEnabled": True}))], "dynamic memory")
    with pytest.raises(SpecError, match=f"Discrete Device Assignment needs static memory and VM {name} uses "
                                        "dynamic memory") as caught:
        build_plan(stack(project, {name: {"memory": 1024, "power": "off", "gpus": [{"mode": "passthrough"}]}}),
                   {"hv": hv})
    assert "\n" not in str(caught.value)


def test_a_gpu_partition_splits_the_gpu_as_asked_and_is_read_back_and_repaired(hv_gpu):
    """GPU partitioning page and Set-VMHostPartitionableGpu -PartitionCount / Add-VMGpuPartitionAdapter
    references: the count is one of ValidPartitionCounts, set while no partition is assigned; version 12.0."""
    hv = provider(hv_gpu)
    name = f"gpup-{next(_numbers)}"
    desired = stack(f"gpup{next(_numbers)}", {name: {"memory": 1024, "power": "off",
                                                     "gpus": [{"mode": "vgpu", "profile": "gpu-p/2"}]}})
    converge(desired, hv)
    vm = vm_of(hv, name)
    assert vm.text("Version") == "12.0"  # the host's default is 10.0: created with -Version 12.0
    [gpu] = read(hv, pipe(Cmd("Get-VMHostPartitionableGpu")))
    assert gpu.number("PartitionCount") == 2
    item = vm_item(hv, desired)
    assert item.action is Action.NOOP, [c.change for c in item.changes]
    assert item.observed.state["gpus"] == [{"mode": "vgpu", "profile": "gpu-p/2", "device": gpu.text("Name"),
                                            "vendor": "nvidia"}]

    vm_id = str(vm.get("VMId"))
    hv.client.run([pipe(vm_by_id(vm_id), Cmd("Remove-VMGpuPartitionAdapter"))], "take the partition away")
    assert [c.change.path for c in vm_item(hv, desired).changes] == ["gpus[0]"]
    converge(desired, hv)
    assert len(read(hv, pipe(vm_by_id(vm_id), Cmd("Get-VMGpuPartitionAdapter")))) == 1
    assert not apply.run(build_plan(stack(desired.project, {}), {"hv": hv}, destroy=True), {"hv": hv}).failed


def test_gpu_partitioning_on_a_vm_below_version_12_is_refused_naming_its_version(hv_gpu):
    """GPU partitioning page: VM configuration version 12.0 or later (Update-VMVersion is one way)."""
    hv = provider(hv_gpu)
    name = f"old-{next(_numbers)}"
    project = f"old{next(_numbers)}"
    converge(stack(project, {name: {"memory": 512, "power": "off", "machine": "10.0"}}), hv)
    with pytest.raises(SpecError, match=f"GPU partitioning needs VM configuration version 12.0 or later, and VM "
                                        f"{name} has version 10.0"):
        build_plan(stack(project, {name: {"memory": 512, "power": "off",
                                          "gpus": [{"mode": "vgpu", "profile": "gpu-p/4"}]}}), {"hv": hv})
    with pytest.raises(SpecError, match=re.escape("and machine is 10.0")):
        build_plan(stack(project, {"other": {"machine": "10.0", "gpus": [{"mode": "vgpu", "profile": "gpu-p/4"}]}}),
                   {"hv": hv})


def test_nested_virtualization_on_amd_needs_version_9_3_and_is_refused_at_plan_time(hv_amd):
    """Nested virtualization page: AMD EPYC/Ryzen hosts need VM configuration version 9.3 or later
    (Set-VMProcessor -ExposeVirtualizationExtensions reference)."""
    hv = provider(hv_amd)
    project = f"nest{next(_numbers)}"
    with pytest.raises(PlacementError, match=re.escape("nested virtualization on AMD needs configuration version 9.3 "
                                                       "or later; the VM's is 9.0")):  # placement checks it per host
        build_plan(stack(project, {"n-old": {"nested_virtualization": True, "machine": "9.0"}}), {"hv": hv})
    converge(stack(project, {"n-1": {"memory": 512, "power": "off", "machine": "9.0"},
                             "n-2": {"memory": 512, "power": "off", "nested_virtualization": True}}), hv)
    assert vm_of(hv, "n-2").text("Version") == "12.0"
    with pytest.raises(SpecError, match=re.escape("and VM n-1 has version 9.0")):
        build_plan(stack(project, {"n-1": {"memory": 512, "nested_virtualization": True},
                                   "n-2": {"memory": 512, "nested_virtualization": True}}), {"hv": hv})


def test_an_sriov_nic_gets_iov_weight_on_an_iov_switch_and_is_refused_on_a_switch_without_iov(hv_amd):
    """New-VMSwitch -EnableIov (SR-IOV is chosen when a switch is created; Set-VMSwitch has no such parameter) and
    Set-VMNetworkAdapter -IovWeight 1..100 (cmdlet references)."""
    plain = provider(hv_amd)
    if "iov-switch" not in {o.text("Name") for o in read(plain, pipe(Cmd("Get-VMSwitch")))}:
        plain.client.run([pipe(Cmd("New-VMSwitch", {"Name": "iov-switch", "NetAdapterName": "SLOT 3",
                                                    "EnableIov": True}))], "make an IOV switch")
    with pytest.raises(SpecError, match="switch 'lab-switch' was created without SR-IOV, and SR-IOV is chosen when "
                                        "a switch is created"):
        build_plan(stack(f"iov{next(_numbers)}", {"v-0": {"nics": [{"network": "app", "adapter": "sriov"}]}}),
                   {"hv": plain})
    hv = provider(hv_amd, HYPERV_SWITCH="iov-switch")
    desired = stack(f"iov{next(_numbers)}", {"v-1": {"memory": 512, "power": "off",
                                                     "nics": [{"network": "app", "adapter": "sriov"}]}})
    converge(desired, hv)
    vm_id = str(vm_of(hv, "v-1").get("VMId"))
    [adapter] = read(hv, pipe(vm_by_id(vm_id), Cmd("Get-VMNetworkAdapter")))
    assert (adapter.text("SwitchName"), adapter.number("IovWeight")) == ("iov-switch", 100)
    item = vm_item(hv, desired)
    assert item.action is Action.NOOP and item.observed.state["nics"][0]["adapter"] == "sriov"


def test_a_gpu_no_longer_declared_is_removed_and_given_back_to_the_host(hv_gpu):
    """Remove-VMAssignableDevice, then Mount-VMHostAssignableDevice (DDA page, "undo"); the VM is off meanwhile."""
    hv = provider(hv_gpu)
    driver = hv.driver("VirtualMachine")
    name = f"undo-{next(_numbers)}"
    project = f"undo{next(_numbers)}"
    spec = build_spec("VirtualMachine", name, {"memory": 1024, "power": "on", "gpus": [
        {"mode": "passthrough", "device": GPU_LOCATION}]})
    driver.create(Owner(f"{project}/dev", name, "hv"), spec.with_creation_defaults())  # as placement fills it
    assert assigned(hv, name) == [GPU_LOCATION]
    desired = stack(project, {name: {"memory": 1024, "gpus": []}})
    item = vm_item(hv, desired)
    assert [(c.change.path, c.rule) for c in item.changes] == [("gpus[0]", Rule.POWER_OFF)]
    converge(desired, hv)
    assert assigned(hv, name) == [] and str(vm_of(hv, name).get("State")) == "Running"
    assert gpu_state(hv_gpu) == "host"
    assert vm_item(hv, desired).action is Action.NOOP
    assert not apply.run(build_plan(stack(project, {}), {"hv": hv}, destroy=True), {"hv": hv},
                         allow_data_loss=True).failed


def test_a_new_partition_profile_replaces_the_vms_partition_and_splits_the_gpu_again(hv_gpu):
    """Set-VMHostPartitionableGpu -PartitionCount is refused while partitions are assigned (cmdlet reference):
    the VM's own partition is removed first, in the same pipeline, then the GPU is split anew."""
    hv = provider(hv_gpu)
    name = f"resplit-{next(_numbers)}"
    project = f"resplit{next(_numbers)}"
    converge(stack(project, {name: {"memory": 1024, "power": "off",
                                    "gpus": [{"mode": "vgpu", "profile": "gpu-p/2"}]}}), hv)
    desired = stack(project, {name: {"memory": 1024, "power": "off", "gpus": [{"mode": "vgpu", "profile": "gpu-p/8"}]}})
    assert [c.change.path for c in vm_item(hv, desired).changes] == ["gpus[0].profile"]
    converge(desired, hv)
    [gpu] = read(hv, pipe(Cmd("Get-VMHostPartitionableGpu")))
    assert gpu.number("PartitionCount") == 8
    item = vm_item(hv, desired)
    assert item.action is Action.NOOP and item.observed.state["gpus"][0]["profile"] == "gpu-p/8"
    assert not apply.run(build_plan(stack(project, {}), {"hv": hv}, destroy=True), {"hv": hv},
                         allow_data_loss=True).failed
