"""Reading ``hostpciN`` back into GPUs and SR-IOV NICs, and writing them, with no server."""

from __future__ import annotations

from typing import Any

import pytest

from virtplane.providers.proxmox.config import NetworkNames, new_slot, vm_state
from virtplane.providers.proxmox.devices import DeviceWriter, PciView, device_config, hostpci_entries, pf_of, vfs_of
from virtplane.specs import GpuSpec, NicSpec

ROWS: list[dict[str, Any]] = [
    {"id": "0000:3b:00.0", "class": "0x030200", "vendor": "0x10de", "device_name": "GA100 [A100 PCIe 40GB]", "mdev": 1},
    {"id": "0000:5e:00.0", "class": "0x020000", "vendor": "0x8086", "device_name": "Ethernet Controller X710"},
    {"id": "0000:5e:02.0", "class": "0x020000", "vendor": "0x8086", "device_name": "Ethernet Virtual Function 700"},
    {"id": "0000:5e:02.1", "class": "0x020000", "vendor": "0x8086", "device_name": "Ethernet Virtual Function 700"},
    {"id": "0000:00:17.0", "class": "0x010601", "vendor": "0x8086", "device_name": "SATA Controller"},
]
MAPPINGS = [{"id": "a100", "map": ["node=pve1,path=0000:3b:00.0,id=10de:20f1"], "mdev": 1},
            {"id": "x710-vf", "map": ["node=pve1,path=0000:5e:02.0,id=8086:154c",
                                      "node=pve1,path=0000:5e:02.1,id=8086:154c"]}]
PCI = PciView({"pve1": ROWS}, MAPPINGS)
NAMES = NetworkNames("vmbr0", {"plain": 0})


def test_hostpci_entries_read_back_as_gpus_in_order_and_vfs_as_sriov_nics_other_devices_left_alone():
    config = {"hostpci0": "0000:3b:00.0,mdev=nvidia-471,pcie=1", "hostpci1": "mapping=a100",
              "hostpci2": "host=0000:00:17.0", "hostpci15": "0000:5e:02.1", "hostpci14": "mapping=x710-vf",
              "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0"}
    declared = [NicSpec(network="plain", adapter="sriov"), NicSpec(network="vmbr0", adapter="sriov")]
    state = vm_state(config, "pve1", False, NAMES, PCI, declared)
    assert state["gpus"] == [{"mode": "vgpu", "profile": "nvidia-471", "device": "0000:3b:00.0", "vendor": "nvidia"},
                             {"mode": "passthrough", "profile": None, "device": "a100", "vendor": "nvidia"}]
    assert [(n["slot"], n["adapter"], n["device"], n["network"]) for n in state["nics"]] == [
        ("net0", "paravirtual", None, "plain"), ("hostpci15", "sriov", "0000:5e:00.0", "plain"),
        ("hostpci14", "sriov", "x710-vf", "vmbr0")]


def test_pve_does_not_link_vfs_to_their_pf_so_the_pf_is_the_other_function_of_their_vendor_on_their_bus():
    assert pf_of("0000:5e:02.1", ROWS) == "0000:5e:00.0" and pf_of("0000:3b:00.0", ROWS) is None
    assert vfs_of("5e:00.0", ROWS) == ["0000:5e:02.0", "0000:5e:02.1"]
    assert pf_of("0000:5e:02.1", [*ROWS, {"id": "0000:5e:02.1", "physfn": "0000:5e:00.1"}][-1:]) == "0000:5e:00.1"


def test_a_new_vm_gets_sriov_nics_in_their_slots_gpus_from_hostpci0_and_balloon_0():
    writer = DeviceWriter({"a100", "x710-vf"}, pcie=True, pick_vf=lambda pf: "0000:5e:02.1")
    nics = [NicSpec(network="plain", adapter="sriov", device="0000:5e:00.0", slot="hostpci15"),
            NicSpec(network="plain", adapter="sriov", device="x710-vf", slot="hostpci14")]
    gpus = [GpuSpec(mode="vgpu", profile="nvidia-471", device="0000:3b:00.0"),
            GpuSpec(mode="passthrough", device="a100")]
    assert device_config(gpus, nics, writer) == {
        "hostpci15": "0000:5e:02.1,pcie=1", "hostpci14": "mapping=x710-vf,pcie=1",
        "hostpci0": "0000:3b:00.0,mdev=nvidia-471,pcie=1", "hostpci1": "mapping=a100,pcie=1", "balloon": 0}


def test_a_gpu_without_a_device_and_nothing_to_pick_is_refused_naming_it():
    writer = DeviceWriter(set(), pcie=False, pick_vf=lambda pf: pf)
    with pytest.raises(ValueError, match=r"gpus\[0\] names no device"):
        device_config([GpuSpec(mode="passthrough")], [], writer)


def test_sriov_nics_take_hostpci_slots_from_the_top_and_other_nics_net_slots():
    assert new_slot("nics", {"adapter": "sriov"}, {"net0", "hostpci15"}) == "hostpci14"
    assert new_slot("nics", {"adapter": "paravirtual"}, {"net0", "hostpci15"}) == "net1"


def test_a_hostpci_value_keeps_its_options_apart_from_the_device_and_mdev():
    [entry] = hostpci_entries({"hostpci3": "host=0000:3b:00.0,mdev=nvidia-472,rombar=0,x-vga=1"})
    assert (entry.device, entry.mapped, entry.mdev, entry.options) == ("0000:3b:00.0", False, "nvidia-472",
                                                                       {"rombar": "0", "x-vga": "1"})
    writer = DeviceWriter(set(), pcie=False, pick_vf=lambda pf: pf)
    assert writer.gpu(GpuSpec(mode="vgpu", profile="nvidia-471"), entry) == \
        "0000:3b:00.0,mdev=nvidia-471,rombar=0,x-vga=1"


def test_a_pf_the_stack_writes_without_its_domain_reads_back_as_written():
    config = {"hostpci15": "0000:5e:02.1"}
    declared = [NicSpec(network="plain", adapter="sriov", device="5e:00.0")]
    [nic] = vm_state(config, "pve1", False, NAMES, PCI, declared)["nics"]
    assert (nic["device"], nic["slot"]) == ("5e:00.0", "hostpci15")


def test_a_new_sriov_nic_never_takes_a_hostpci_slot_that_holds_another_device():
    from virtplane.providers.base import FieldChange
    from virtplane.providers.proxmox.reconfigure import NoFreeSlot, reconfigure
    from virtplane.specs import VirtualMachineSpec

    config = {"hostpci15": "host=0000:00:17.0", "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0"}
    nic = NicSpec(network="plain", adapter="sriov", device="0000:5e:00.0", slot="hostpci15")
    spec = VirtualMachineSpec(nics=[nic])
    change = FieldChange("nics[hostpci15]", None, nic.model_dump())
    with pytest.raises(NoFreeSlot, match=r"hostpci15 already holds another PCI device \(host=0000:00:17.0\)"):
        reconfigure(spec, config, [change], NAMES, lambda disk: "local-lvm", lambda: "local-lvm",
                    devices=DeviceWriter({"a100", "x710-vf"}, False, lambda pf: "0000:5e:02.0"), node="pve1", pci=PCI)
