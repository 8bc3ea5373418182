"""The streaming reader of PropertyCollector pages (providers/vsphere/stream.py) against pyVmomi's own reader, on one
inventory: VMs with every kind of disk bus, NIC adapter and network, GPUs of the three backings, an SR-IOV NIC,
tags (custom values), a VM whose marker is only in its extraConfig (an interrupted create) and a foreign VM holding
a declared name, beside the simulator's own VMs. Both readers must give the same observed state, field by field,
and the same host inventory; and a change to a VM read by the streaming reader edits pyVmomi's own objects."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pyVmomi import VmomiSupport, vim, vmodl

from tests.integration.vsphere.helpers import create_raw_vm, find_host, find_vm
from virtplane.diff import diff
from virtplane.providers.base import Observed, ObserveResult, Owner
from virtplane.providers.vsphere.collector import retrieve
from virtplane.providers.vsphere.stream import FIELDS, Reader, Record
from virtplane.providers.vsphere.vm import PATHS
from virtplane.specs import CREATE_ONLY, VirtualMachineSpec

HOST = "DC0_C0_H0"


def vm(**fields: Any) -> VirtualMachineSpec:
    return VirtualMachineSpec.model_validate({"cpus": 2, "memory": 512, "nics": []} | fields)


@pytest.fixture(scope="module")
def inventory(provider, raw_si) -> Iterator[dict[str, Any]]:
    """A stack of VMs with devices of every kind, one interrupted create and one foreign VM, made once."""
    stack = "stack-stream-reader"
    driver = provider.driver("VirtualMachine")
    pci = list(find_host(raw_si, HOST).hardware.pciDevice)
    gpu = next(d for d in pci if (d.classId & 0xFF00) == 0x0300)
    function = next(d for d in pci if (d.classId & 0xFF00) == 0x0200 or d.id.endswith(":00.0"))
    specs = {
        "sr-buses": vm(sockets=2, power="on", tags=["web", "prod"], firmware="uefi", secure_boot=True,
                       nested_virtualization=True, guest_os="linux",
                       disks=[{"size": 8, "storage": "LocalDS_0", "bus": "paravirtual", "thin": True},
                              {"size": 4, "bus": "lsilogic", "thin": False}, {"size": 2, "bus": "sata"},
                              {"size": 1, "bus": "nvme"}],
                       nics=[{"network": "DC0_DVPG0"}, {"network": "VM Network", "adapter": "e1000"},
                             {"network": "VM Network", "adapter": "e1000e"}]),
        "sr-devices": vm(node=HOST, gpus=[{"mode": "passthrough", "device": gpu.id},
                                          {"mode": "vgpu", "profile": "grid_a100-10c"}],
                         nics=[{"network": "VM Network", "adapter": "sriov", "device": function.id}]),
        "sr-dynamic": vm(node=HOST, gpus=[{"mode": "passthrough", "device": gpu.id}]),
    }
    declared = {name: spec for name, spec in specs.items() if name != "sr-dynamic"}
    declared["sr-dynamic"] = vm(gpus=[{"mode": "passthrough"}])  # placement chose the device: Dynamic DirectPath
    driver.observe(stack, {"VirtualMachine": declared})
    for name, spec in specs.items():
        driver.create(Owner(stack, name), spec)
    create_raw_vm(raw_si, "sr-interrupted", marker=Owner(stack, "sr-interrupted").encode())
    serial = vim.vm.device.VirtualSerialPort(key=-1, backing=vim.vm.device.VirtualSerialPort.FileBackingInfo(
        fileName="[LocalDS_0] sr-foreign/serial.log"))
    floppy = vim.vm.device.VirtualFloppy(key=-2, backing=vim.vm.device.VirtualFloppy.ImageBackingInfo(
        fileName="[LocalDS_0] sr-foreign/boot.flp"))
    create_raw_vm(raw_si, "sr-foreign", devices=[serial, floppy])
    declared |= {"sr-interrupted": vm(), "sr-foreign": vm()}
    yield {"stack": stack, "declared": {"VirtualMachine": declared}}


def observe(provider, inventory, stream: bool) -> ObserveResult:
    driver = provider.driver("VirtualMachine")
    driver.stream_reads = stream
    try:
        return driver.observe(inventory["stack"], inventory["declared"])
    finally:
        driver.stream_reads = True


def summary(observed: Observed) -> dict[str, Any]:
    handle = observed.handle
    return {"name": observed.name, "id": observed.id, "owner": observed.owner,
            "marker_complete": observed.marker_complete, "state": observed.state, "moref": handle.ref._moId,
            "memory_locked": handle.memory_locked, "disk_slots": list(handle.hardware.disks),
            "nic_slots": list(handle.hardware.nics), "gpu_keys": [g.key for g in handle.hardware.gpus],
            "controllers": handle.hardware.controllers, "units": handle.hardware.units,
            "keys": handle.hardware.keys, "unexpressed": observed.unexpressed}


def test_both_readers_give_the_same_observed_state_devices_extra_config_and_custom_values_included(
        provider, inventory):
    streamed, whole = observe(provider, inventory, True), observe(provider, inventory, False)
    assert sorted(streamed.owned) == sorted(whole.owned) == ["sr-buses", "sr-devices", "sr-dynamic",
                                                             "sr-interrupted"]
    assert sorted(streamed.foreign) == sorted(whole.foreign) == ["sr-foreign"]
    for name in whole.owned:
        assert summary(streamed.owned[name]) == summary(whole.owned[name]), name
    assert summary(streamed.foreign["sr-foreign"]) == summary(whole.foreign["sr-foreign"])
    assert all(o.handle.streamed for o in streamed.owned.values())
    assert not any(o.handle.streamed for o in whole.owned.values())


def test_the_streamed_state_holds_what_the_stack_made(provider, inventory):
    """Explicit values, so the comparison above cannot pass on two equally wrong readers."""
    owned = observe(provider, inventory, True).owned
    buses = owned["sr-buses"].state
    assert [(d["slot"], d["bus"], d["size"], d["thin"]) for d in buses["disks"]] == [
        ("scsi0:0", "paravirtual", 8, True), ("scsi1:0", "lsilogic", 4, False), ("sata0:0", "sata", 2, True),
        ("nvme0:0", "nvme", 1, True)]
    assert [(n["slot"], n["network"], n["adapter"]) for n in buses["nics"]] == [
        ("ethernet0", "DC0_DVPG0", "paravirtual"), ("ethernet1", "VM Network", "e1000"),
        ("ethernet2", "VM Network", "e1000e")]
    assert (buses["cpus"], buses["sockets"], buses["firmware"], buses["secure_boot"], buses["power"],
            buses["nested_virtualization"], buses["tags"]) == (2, 2, "uefi", True, "on", True, ["prod", "web"])
    devices = owned["sr-devices"].state
    assert [(g["mode"], g["profile"]) for g in devices["gpus"]] == [("passthrough", None), ("vgpu", "grid_a100-10c")]
    assert devices["nics"][0]["adapter"] == "sriov" and devices["nics"][0]["device"]
    assert owned["sr-dynamic"].state["gpus"][0]["mode"] == "passthrough"
    assert owned["sr-interrupted"].marker_complete is False
    foreign = observe(provider, inventory, True).foreign["sr-foreign"]
    assert [words.split(" (")[1] for words in foreign.unexpressed] == ["a serial port)", "a floppy drive)"]
    assert all(not words.startswith("device ") for words in foreign.unexpressed)  # the labels vSphere gave them


def same_fields(record: Any, original: Any, path: str) -> None:
    """Every field the record holds equals pyVmomi's, recursively."""
    if isinstance(original, list):
        assert isinstance(record, list) and len(record) == len(original), path
        for index, (mine, theirs) in enumerate(zip(record, original, strict=True)):
            same_fields(mine, theirs, f"{path}[{index}]")
    elif isinstance(original, VmomiSupport.ManagedObject):
        assert (type(record), record._moId) == (type(original), original._moId), path
    elif isinstance(original, VmomiSupport.DataObject):
        assert isinstance(record, Record) and record.__class__ is type(original), path
        for field in FIELDS & {p.name for p in type(original)._GetPropertyList()}:
            same_fields(getattr(record, field), getattr(original, field), f"{path}.{field}")
    else:
        assert record == original, path


def test_every_field_the_reader_keeps_equals_pyvmomis_for_every_vm_of_the_simulator(provider, inventory):
    content = provider.si.RetrieveContent()
    folder = provider.inventory.placement.vm_folder
    paths = [*PATHS, "config.extraConfig"]
    streamed = {ref._moId: props for ref, props in retrieve(content, folder, vim.VirtualMachine, paths, stream=True)}
    whole = {ref._moId: props for ref, props in retrieve(content, folder, vim.VirtualMachine, paths)}
    assert streamed.keys() == whole.keys() and len(whole) >= 5
    for moid, props in whole.items():
        assert streamed[moid].keys() == props.keys(), moid
        for path, value in props.items():
            same_fields(streamed[moid][path], value, f"{moid} {path}")


def test_both_readers_give_the_same_host_inventory(provider, inventory):
    provider.stream_reads = False
    try:
        whole = provider.hosts()
    finally:
        provider.stream_reads = True
    streamed = provider.hosts()
    assert streamed == whole
    held = {address for host in streamed for device in host.pci_devices for address in [device.address]
            if device.in_use_by}
    assert held, "the inventory's VMs hold passthrough devices, so the VMs' devices were read"


def test_a_record_is_read_only_and_names_a_field_it_does_not_read(provider, inventory):
    record = observe(provider, inventory, True).owned["sr-buses"].handle.hardware.disks["scsi0:0"]
    assert isinstance(record, vim.vm.device.VirtualDisk)
    with pytest.raises(TypeError, match="read-only"):
        record.capacityInKB = 1
    with pytest.raises(AttributeError, match="without field 'connectable'"):
        _ = record.connectable


def test_changing_a_vm_read_by_the_streaming_reader_edits_pyvmomis_objects(provider, raw_si, inventory):
    observed = observe(provider, inventory, True).owned["sr-buses"]
    spec = VirtualMachineSpec.model_validate(observed.state | {"disks": [
        d | {"size": 9} if d["slot"] == "scsi0:0" else d for d in observed.state["disks"]]})
    changes = diff(spec.model_dump(), observed.state, CREATE_ONLY["VirtualMachine"])
    assert [(c.path, c.old, c.new) for c in changes] == [("disks[scsi0:0].size", 8, 9)]
    provider.driver("VirtualMachine").update(observed, spec, changes)
    disk = next(d for d in find_vm(raw_si, "sr-buses").config.hardware.device
                if isinstance(d, vim.vm.device.VirtualDisk) and d.unitNumber == 0 and d.controllerKey ==
                observed.handle.hardware.disks["scsi0:0"].controllerKey)
    assert disk.capacityInKB == 9 * 1024 * 1024
    assert disk.backing.diskMode == "persistent", "the edit sent pyVmomi's whole disk, not the partial record"


def test_a_fault_is_raised_as_the_same_method_fault_through_both_readers(provider):
    collector = provider.si.RetrieveContent().propertyCollector
    continue_method = vmodl.query.PropertyCollector._GetMethodInfo("ContinueRetrievePropertiesEx")
    with pytest.raises(vmodl.MethodFault) as through_pyvmomi:
        collector.ContinueRetrievePropertiesEx(token="no-such-token")
    with pytest.raises(vmodl.MethodFault) as streamed:
        Reader(collector._stub).page(collector, continue_method, ["no-such-token"], [])
    assert type(streamed.value) is type(through_pyvmomi.value)
    assert streamed.value.msg == through_pyvmomi.value.msg
