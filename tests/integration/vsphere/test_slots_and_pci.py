"""Pure mappings of the vSphere driver, no server: new disk slots, NIC slots from device keys, PCI ids and
GPU backings read back, and which host GPU a passthrough GPU gets."""

from __future__ import annotations

import pytest
from pyVmomi import vim

from virtplane.errors import VirtplaneError
from virtplane.providers.vsphere.devices import new_disk_slot, split_devices
from virtplane.providers.vsphere.pci import HostPci, gpu_state, signed16, unsigned16
from virtplane.specs import GpuSpec

P = vim.vm.device.VirtualPCIPassthrough


@pytest.mark.parametrize(("bus", "taken", "slot"), [
    (None, set(), "scsi0:0"),
    ("paravirtual", {"scsi0:0", "scsi0:1"}, "scsi0:2"),
    (None, {f"scsi0:{u}" for u in range(7)}, "scsi0:8"),  # unit 7 is the controller's own
    ("lsilogic", {"scsi0:0"}, "scsi1:0"),  # LSI Logic fills bus 1 first: one controller of each type
    ("lsilogic", {"scsi0:0", "scsi1:0"}, "scsi1:1"),
    ("sata", {"scsi0:0"}, "sata0:0"),
    ("nvme", {"nvme0:0"}, "nvme0:1"),
    ("ide", {"ide0:0", "ide0:1"}, "ide1:0"),
])
def test_a_new_disk_takes_the_first_free_slot_of_its_bus(bus, taken, slot):
    assert new_disk_slot(bus, taken) == slot


def test_a_bus_with_every_slot_taken_is_named():
    with pytest.raises(VirtplaneError, match="no free ide slot is left for another ide disk"):
        new_disk_slot("ide", {"ide0:0", "ide0:1", "ide1:0", "ide1:1"})


def test_nics_are_slotted_by_device_key_and_others_by_their_place_in_key_order():
    nics = [vim.vm.device.VirtualVmxnet3(key=key) for key in (4002, 205, 4000, 207)]
    assert {slot: nic.key for slot, nic in split_devices(nics).nics.items()} == {
        "ethernet0": 4000, "ethernet1": 205, "ethernet2": 4002, "ethernet3": 207}


@pytest.mark.parametrize(("signed", "unsigned"), [(-32634, 0x8086), (4318, 0x10DE), (-1, 0xFFFF), (0, 0)])
def test_pci_ids_convert_between_the_apis_signed_shorts_and_their_values(signed, unsigned):
    assert unsigned16(signed) == unsigned and signed16(unsigned) == signed


@pytest.mark.parametrize(("backing", "state"), [
    (P.VmiopBackingInfo(vgpu="grid_a100-20c"),
     {"mode": "vgpu", "profile": "grid_a100-20c", "device": None, "vendor": "nvidia"}),
    (P.DynamicBackingInfo(allowedDevice=[P.AllowedDevice(vendorId=0x10DE, deviceId=0x20B5)]),
     {"mode": "passthrough", "profile": None, "device": None, "vendor": "nvidia"}),
    (P.DynamicBackingInfo(allowedDevice=[P.AllowedDevice(vendorId=0x1002, deviceId=1)], assignedId="3b:00.0"),
     {"mode": "passthrough", "profile": None, "device": "0000:3b:00.0", "vendor": "amd"}),
    (P.DeviceBackingInfo(id="0000:af:00.0", deviceId="56c0", vendorId=-32634, systemId="s"),
     {"mode": "passthrough", "profile": None, "device": "0000:af:00.0", "vendor": "intel"}),
])
def test_gpu_backings_read_back_in_the_specs_shape(backing, state):
    assert gpu_state(P(key=1, backing=backing)) == state


def pci(address: str, class_id: int, vendor: int) -> vim.host.PciDevice:
    return vim.host.PciDevice(id=address, classId=class_id, vendorId=signed16(vendor), deviceId=1)


def test_a_passthrough_gpu_without_a_device_gets_an_enabled_gpu_before_the_servers_own_vga_chip():
    host = HostPci("esx1", "sys", {d.id: d for d in [pci("0000:03:00.0", 0x0300, 0x102B),  # Matrox BMC VGA
                                                     pci("0000:3b:00.0", 0x0302, 0x10DE),
                                                     pci("0000:5e:00.0", 0x0302, 0x10DE)]},
                   passthrough_enabled={"0000:5e:00.0"})
    assert host.gpu_for(GpuSpec(mode="passthrough"), "VM a").id == "0000:5e:00.0"
    assert host.gpu_for(GpuSpec(mode="passthrough", vendor="nvidia"), "VM a").id == "0000:5e:00.0"
    assert host.gpu_for(GpuSpec(mode="passthrough", device="3b:00.0"), "VM a").id == "0000:3b:00.0"
    with pytest.raises(VirtplaneError, match="VM a: host esx1 has no amd GPU"):
        host.gpu_for(GpuSpec(mode="passthrough", vendor="amd"), "VM a")


@pytest.mark.parametrize(("file_name", "ours"), [
    ("[LocalDS_0] web-1/web-1.vmdk", True), ("[LocalDS_0] web-1/web-1_3.vmdk", True),
    ("[LocalDS_0] db-7/shared-data.vmdk", False), ("[LocalDS_0] web-1.vmdk", False), (None, False),
    ("[LocalDS_1] web-1/web-1.vmdk", False), ("[LocalDS_0] web-10/web-10.vmdk", False)])
def test_only_disk_files_in_the_vms_own_folder_are_destroyed_with_it(file_name, ours):
    from virtplane.providers.vsphere.devices import in_folder, vm_folder

    folder = vm_folder("[LocalDS_0] web-1/web-1.vmx")  # the VM's files, whatever its name is now
    assert folder == "[LocalDS_0] web-1"
    assert in_folder(file_name, folder) is ours
