"""The pure mapping between Hyper-V objects and the VirtualMachine spec's shape (providers/hyperv/vm_state.py,
devices.py, vm_checks.py). Property names from Microsoft's Hyper-V cmdlet reference (Get-VM, Get-VMProcessor,
Get-VMHardDiskDrive, Get-VHD, Get-VMNetworkAdapter(Vlan), Get-VMFirmware, Get-VMAssignableDevice,
Get-VMGpuPartitionAdapter); version minimums from the nested-virtualization and GPU-partitioning pages."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from virtplane.kinds import build_spec
from virtplane.providers.base import Owner
from virtplane.providers.base import pending_name as marker_pending_name
from virtplane.providers.hyperv.client import PsObject
from virtplane.providers.hyperv.devices import matches, observed_gpus, order_like, partition_count, vendor_of
from virtplane.providers.hyperv.vm_checks import HostVersions, LiveVm, creation_version, host_versions_from, problems
from virtplane.providers.hyperv.vm_state import (
    Switches,
    notes_with,
    owner_from_notes,
    parent_adapter,
    parse_disk_slot,
    pending_name,
    pending_owner,
    tags_from_notes,
    vm_state,
)
from virtplane.specs import GpuSpec

GiB = 1024**3


def obj(type_name: str, **props: Any) -> PsObject:
    return PsObject(SimpleNamespace(types=[f"Microsoft.HyperV.PowerShell.{type_name}"], adapted_properties={},
                                    extended_properties=props))


def test_a_generation_2_vm_maps_to_the_spec_shape():
    vm = obj("VirtualMachine", VMId="id", Name="web", State="Running", Generation=2, Version="12.0",
             MemoryStartup=4 * GiB, Notes="virtplane.tags: a,b")
    processor = obj("VMProcessor", Count=4, ExposeVirtualizationExtensions=True)
    drive = obj("HardDiskDrive", ControllerType="SCSI", ControllerNumber=0, ControllerLocation=1, Path="C:\\d.vhdx")
    vhd = obj("VirtualHardDisk", Path="C:\\d.vhdx", Size=20 * GiB, VhdType="Fixed")
    adapter = obj("VMNetworkAdapter", Name="nic0", SwitchName="lab", IovWeight=100)
    vlan = obj("VMNetworkAdapterVlanSetting", OperationMode="Access", AccessVlanId=120)
    firmware = obj("VMFirmware", SecureBoot="On")
    state = vm_state(vm, processor, [(drive, [vhd])], [(adapter, vlan)], firmware, "HV1", Switches("lab", {"app": 120}))
    assert (state["cpus"], state["memory"], state["firmware"], state["secure_boot"], state["power"]) == (
        4, 4096, "uefi", True, "on")
    assert (state["machine"], state["nested_virtualization"], state["tags"], state["node"]) == (
        "12.0", True, ["a", "b"], "HV1")
    assert state["disks"] == [{"slot": "scsi0:1", "size": 20, "storage": None, "thin": False, "bus": "paravirtual"}]
    assert state["nics"] == [{"slot": "nic0", "network": "app", "adapter": "sriov", "device": None}]


def test_a_generation_1_vm_without_firmware_is_bios_off_and_its_ide_disk_has_an_ide_slot():
    vm = obj("VirtualMachine", VMId="id", Name="old", State="Saved", Generation=1, MemoryStartup=512 * 1024**2)
    drive = obj("HardDiskDrive", ControllerType="IDE", ControllerNumber=1, ControllerLocation=0, Path="p")
    adapter = obj("VMNetworkAdapter", Name="nic0", SwitchName="other", IovWeight=0)
    vlan = obj("VMNetworkAdapterVlanSetting", OperationMode="Access", AccessVlanId=7)
    state = vm_state(vm, None, [(drive, [])], [(adapter, vlan)], None, "HV1", Switches("lab"))
    assert (state["firmware"], state["secure_boot"], state["power"], state["memory"]) == ("bios", False, "off", 512)
    assert state["disks"][0]["slot"] == "ide1:0" and state["disks"][0]["bus"] == "ide"
    assert state["nics"][0]["network"] == "other.7" and state["nics"][0]["adapter"] == "paravirtual"
    assert parse_disk_slot("ide1:0") == ("IDE", 1, 0) and parse_disk_slot("scsi2:5") == ("SCSI", 2, 5)


def test_notes_keep_peoples_lines_and_replace_only_our_marker_and_tags():
    owner = Owner("proj/dev", "web", "hv")
    people = "Owner: team blue\nticket OPS-12"
    notes = notes_with(people, owner, ["b", "a"])
    assert notes.splitlines()[2:] == people.splitlines()
    assert owner_from_notes(notes) == owner and tags_from_notes(notes) == ["a", "b"]
    again = notes_with(notes, owner, None)  # tags None: the tags line stays as it is
    assert tags_from_notes(again) == ["a", "b"] and again.count("virtplane.owner") == 1
    cleared = notes_with(notes, owner, [])
    assert tags_from_notes(cleared) == [] and "team blue" in cleared


@pytest.mark.parametrize("resource", ["web-1", "o'neil;x=y", "Ünïcødé [1]", "50%", "x" * 100])
def test_a_pending_name_is_short_and_names_its_resource_through_notes_or_the_declared_names(resource):
    """Hyper-V VM names are at most 100 characters: the pending name is a short hash of stack and resource; the
    marker written with it in Notes names the owner, and without Notes a declared resource of the stack does."""
    owner = Owner("proj/dev", resource, "hv")
    name = pending_name(owner)
    assert name.startswith("virtplane-pending:#") and len(name) <= 50
    assert pending_owner(name, notes_with(None, owner, None), "other/dev", []) == owner
    assert pending_owner(name, "", "proj/dev", ["a", resource]) == Owner("proj/dev", resource)
    assert pending_owner(name, "", "proj/dev", ["a"]) is None
    assert pending_owner("web-1", "", "proj/dev", [resource]) is None
    # the whole marker in the name (providers.base.pending_name; this driver's names before they were hashed)
    assert pending_owner(marker_pending_name(owner), "", "other/dev", []) == owner


def test_a_vlan_setting_is_paired_with_its_adapter_by_parent_adapter_text_or_object():
    """VMNetworkAdapterVlanSetting has no VMId: its ParentAdapter arrives over remoting as the adapter's text
    (published Format-List output: "VMNetworkAdapter (Name = 'VM001_vnic_002', VMName = 'Base_W19_VM001') [VMId =
    '649efb9b-effe-463b-937d-df9a2fcb68a7']"), or as the object where the session serializes deeper."""
    text = ("VMNetworkAdapter (Name = 'VM001_vnic_002', VMName = 'Base_W19_VM001') "
            "[VMId = '649efb9b-effe-463b-937d-df9a2fcb68a7']")
    assert parent_adapter(obj("VMNetworkAdapterVlanSetting", ParentAdapter=text)) == (
        "649efb9b-effe-463b-937d-df9a2fcb68a7", "VM001_vnic_002")
    tricky = ("VMNetworkAdapter (Name = 'nic0', VMName = 'o'neil', VMName = 'x') "
              "[VMId = '649EFB9B-EFFE-463B-937D-DF9A2FCB68A7']")
    assert parent_adapter(obj("VMNetworkAdapterVlanSetting", ParentAdapter=tricky)) == (
        "649efb9b-effe-463b-937d-df9a2fcb68a7", "nic0")
    nested = SimpleNamespace(adapted_properties={}, extended_properties={"Name": "nic1", "VMId": "ABC"})
    assert parent_adapter(obj("VMNetworkAdapterVlanSetting", ParentAdapter=nested)) == ("abc", "nic1")
    assert parent_adapter(obj("VMNetworkAdapterVlanSetting", OperationMode="Access")) is None


def test_a_disk_with_checkpoints_reads_its_size_from_the_leaf_and_thin_from_the_base():
    """Get-VHD of a checkpointed disk: the .avhdx is VhdType Differencing with a ParentPath; the base is what
    virtplane made (Fixed here), so the plan shows no thin change."""
    vm = obj("VirtualMachine", VMId="id", Name="web", State="Off", Generation=2)
    drive = obj("HardDiskDrive", ControllerType="SCSI", ControllerNumber=0, ControllerLocation=0, Path="C:\\d_1.avhdx")
    leaf = obj("VirtualHardDisk", Path="C:\\d_1.avhdx", Size=30 * GiB, VhdType="Differencing", ParentPath="C:\\d.vhdx")
    base = obj("VirtualHardDisk", Path="C:\\d.vhdx", Size=30 * GiB, VhdType="Fixed")
    [disk] = vm_state(vm, None, [(drive, [leaf, base])], [], None, "HV1", Switches(None))["disks"]
    assert (disk["size"], disk["thin"]) == (30, False)
    [disk] = vm_state(vm, None, [(drive, [leaf])], [], None, "HV1", Switches(None))["disks"]
    assert disk["thin"] is None  # the base was not read: not compared, never a replace


def test_gpus_are_read_back_with_vendor_and_profile_and_ordered_like_the_declaration():
    assigned = [obj("VMAssignedDevice", LocationPath="PCIROOT(0)#PCI(0300)#PCI(0000)",
                    InstanceID="PCI\\VEN_10DE&DEV_2236&SUBSYS_1\\4&2")]
    gpu_name = "\\\\?\\PCI#VEN_1002&DEV_73BF#4&1"
    partitions = [obj("VMGpuPartitionAdapter", InstancePath=gpu_name)]
    gpus = observed_gpus(assigned, partitions, {gpu_name: 4})
    assert gpus == [{"mode": "passthrough", "profile": None, "device": "PCIROOT(0)#PCI(0300)#PCI(0000)",
                     "vendor": "nvidia"},
                    {"mode": "vgpu", "profile": "gpu-p/4", "device": gpu_name, "vendor": "amd"}]
    declared = [GpuSpec(mode="vgpu", profile="gpu-p/4"), GpuSpec(mode="passthrough")]
    assert [g["mode"] for g in order_like(gpus, declared)] == ["vgpu", "passthrough"]
    assert matches(gpus[1], declared[0]) and not matches(gpus[1], GpuSpec(mode="vgpu", profile="gpu-p/2"))
    assert (vendor_of("PCI\\VEN_8086&DEV_1"), vendor_of("nothing")) == ("intel", None)
    assert (partition_count("gpu-p/8"), partition_count("grid_a100-20c"), partition_count("gpu-p/0")) == (8, None, None)


INTEL = HostVersions("intel", ["8.0", "9.0", "10.0", "11.0", "12.0"], "10.0")
AMD = HostVersions("amd", ["8.0", "9.0", "9.3", "10.0"], "9.0")


def spec(**fields: Any) -> Any:
    return build_spec("VirtualMachine", "vm", fields)


def test_create_asks_for_the_lowest_version_the_features_need_only_when_the_default_is_too_low():
    assert creation_version(spec(nested_virtualization=True), INTEL) is None  # 10.0 >= 8.0
    assert creation_version(spec(gpus=[{"mode": "vgpu", "profile": "gpu-p/2"}]), INTEL) == "12.0"
    assert creation_version(spec(nested_virtualization=True), AMD) == "9.3"
    assert creation_version(spec(machine="11.0", nested_virtualization=True), AMD) == "11.0"


def test_version_rules_name_the_feature_the_version_and_the_vm():
    [(field, message)] = problems("db", spec(nested_virtualization=True), LiveVm("9.0", False, 2), AMD, {}, str)
    assert field == "nested_virtualization"
    assert message == ("nested virtualization on a host with an AMD processor needs VM configuration version 9.3 or "
                       "later, and VM db has version 9.0 (Update-VMVersion raises it, one way, with the VM off)")
    [(_, message)] = problems("db", spec(gpus=[{"mode": "vgpu", "profile": "gpu-p/2"}]), None, AMD, {}, str)
    assert message == ("GPU partitioning needs VM configuration version 12.0 or later, and this host offers versions "
                       "up to 10.0")
    assert problems("db", spec(nested_virtualization=True), LiveVm("9.3", False, 1), AMD, {}, str) == []


def test_dda_with_dynamic_memory_and_sriov_on_a_switch_without_iov_are_refused():
    dda = spec(gpus=[{"mode": "passthrough"}])
    [(field, message)] = problems("db", dda, LiveVm("12.0", True, 2), INTEL, {}, str)
    assert field == "gpus[0]" and "needs static memory and VM db uses dynamic memory" in message
    assert problems("db", dda, LiveVm("12.0", False, 2), INTEL, {}, str) == []
    sriov = spec(nics=[{"network": "lab", "adapter": "sriov"}])
    [(field, message)] = problems("db", sriov, None, INTEL, {"lab": False}, str)
    assert field == "nics[0].adapter" and "SR-IOV is chosen when a switch is created" in message
    [(field, message)] = problems("db", sriov, None, INTEL, {"other": True}, str)
    assert field == "nics[0].network"
    assert message == "the switch 'lab' does not exist on the Hyper-V host (switches: other)"
    assert problems("db", sriov, None, INTEL, {"lab": True}, str) == []


def test_amd_nested_virtualization_needs_a_windows_server_2022_build():
    """Nested virtualization on AMD: Windows Server 2022 / Windows 11 or later (Microsoft, nested virtualization)."""
    old = HostVersions("amd", ["8.0", "9.0", "9.3"], "9.0", build=17763, os_name="Windows Server 2019")
    [(field, message)] = problems("db", spec(nested_virtualization=True), None, old, {}, str)
    assert field == "nested_virtualization" and "build 20348 or later" in message and "17763" in message
    new = HostVersions("amd", ["8.0", "9.0", "9.3", "10.0"], "10.0", build=20348)
    assert problems("db", spec(nested_virtualization=True), None, new, {}, str) == []


def test_the_cpu_vendor_and_build_come_from_win32_processor_and_win32_operatingsystem():
    cim = "Microsoft.Management.Infrastructure.CimInstance#root/cimv2/"
    processor = PsObject(SimpleNamespace(types=[cim + "Win32_Processor"], adapted_properties={},
                                         extended_properties={"Manufacturer": "AuthenticAMD"}))
    system = PsObject(SimpleNamespace(types=[cim + "Win32_OperatingSystem"], adapted_properties={},
                                      extended_properties={"BuildNumber": "20348", "Caption": "Windows Server 2022"}))
    version = obj("VMHostSupportedVersion", Version="10.0", IsDefault=True)
    host = host_versions_from([processor, system, version])
    assert (host.vendor, host.build, host.default, host.supported) == ("amd", 20348, "10.0", ["10.0"])


def test_slots_sort_by_their_numbers_so_the_eleventh_disk_comes_after_the_second():
    from virtplane.providers.hyperv.vm_state import slot_order

    slots = ["scsi0:10", "scsi0:2", "scsi0:0", "scsi0:1", "scsi1:0"]
    assert sorted(slots, key=slot_order) == ["scsi0:0", "scsi0:1", "scsi0:2", "scsi0:10", "scsi1:0"]
    assert sorted(["nic10", "nic2"], key=slot_order) == ["nic2", "nic10"]


def test_an_undeclared_vlan_read_back_as_switch_dot_vlan_wires_back_to_that_switch_and_vlan():
    switches = Switches("lab")
    assert switches.name_of("lab", 120) == "lab.120"
    assert switches.wiring("lab.120") == ("lab", 120)


def test_a_bios_vm_boots_from_ide_so_its_first_disk_goes_on_ide0_0_and_the_rest_on_scsi():
    """Generation 1 boots from IDE only; IDE 1:0 holds its DVD drive ("Should I create a generation 1 or 2 virtual
    machine in Hyper-V?"). A Generation 2 VM's disks go on SCSI."""
    from virtplane.providers.hyperv.vm import _new_slot

    assert _new_slot("disks", {"bus": None}, set(), bios=True) == "ide0:0"
    assert _new_slot("disks", {"bus": None}, {"ide0:0"}, bios=True) == "scsi0:0"
    assert _new_slot("disks", {"bus": "ide"}, {"ide0:0", "ide0:1"}, bios=True) == "ide1:1"
    assert _new_slot("disks", {"bus": None}, set(), bios=False) == "scsi0:0"
    assert _new_slot("disks", {"bus": "paravirtual"}, set(), bios=True) == "scsi0:0"


def test_an_error_record_is_told_apart_by_fqid_category_and_target_never_its_text():
    """pypsrp's ErrorRecord carries fq_error, the ErrorCategory number and the target object; a localized host's
    message text differs, those do not (published: InvalidArgument, InvalidParameter,...Commands.GetVM, LABDC)."""
    from virtplane.providers.hyperv.client import HvError

    record = SimpleNamespace(fq_error="InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM", category=5,
                             target_object="LABDC")
    error = HvError.from_record(record)
    assert (error.error_id, error.command, error.category, error.target) == (
        "InvalidParameter", "GetVM", "InvalidArgument", "LABDC")
    assert error.is_("InvalidParameter", "getvm") and not error.is_("InvalidParameter", "GetVMFirmware")
    assert HvError.from_record(SimpleNamespace(fq_error="CommandNotFoundException", category=13,
                                               target_object=None, target_name="Nope")).is_("CommandNotFoundException")
