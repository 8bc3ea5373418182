"""What a Proxmox node's VMs hold, from every VM's hostpciN (running or stopped): pure mapping, table-driven."""

from __future__ import annotations

from virtplane.providers.proxmox.device_use import GuestConfig, node_use, with_use
from virtplane.providers.proxmox.host_facts import NodeAnswers, host, machine_types

GPU = {"id": "0000:3b:00.0", "class": "0x030200", "vendor": "0x10de", "device": "0x20f1", "iommugroup": 42, "mdev": 1,
       "device_name": "GA100 [A100 PCIe 40GB]"}
T4S = [{"id": f"0000:{bus}:00.0", "class": "0x030200", "vendor": "0x10de", "device": "0x1eb8", "iommugroup": group}
       for bus, group in (("d8", 60), ("d9", 61))]
PF = {"id": "0000:5e:00.0", "class": "0x020000", "vendor": "0x8086", "device": "0x1572", "iommugroup": 30,
      "device_name": "Ethernet Controller X710 for 10GbE SFP+"}
VFS = [{"id": f"0000:5e:02.{n}", "class": "0x020000", "vendor": "0x8086", "device": "0x154c", "iommugroup": 31 + n,
        "device_name": "Ethernet Virtual Function 700 Series"} for n in range(4)]
ROWS = [GPU, *T4S, PF, *VFS]
MAPPINGS = [{"id": "a100", "map": ["node=pve1,path=0000:3b:00.0,id=10de:20f1"], "mdev": 1},
            {"id": "t4", "map": ["node=pve1,path=0000:d8:00.0,id=10de:1eb8"]},
            {"id": "t4-pool", "map": ["node=pve1,path=0000:d8:00.0,id=10de:1eb8",
                                      "node=pve1,path=0000:d9:00.0,id=10de:1eb8", "node=pve2,path=0000:01:00.0"]},
            {"id": "x710-vf", "map": [f"node=pve1,path=0000:5e:02.{n},id=8086:154c" for n in range(4)]}]
MDEV = {"0000:3b:00.0": [{"type": "nvidia-473", "available": 2, "description": "framebuffer=20480M"},
                         {"type": "nvidia-474", "available": 1, "description": "framebuffer=40960M"}]}


def facts(*guests: GuestConfig, mappings: list | None = MAPPINGS):
    answers = NodeAnswers("pve1", online=True, pci=ROWS, mdev=MDEV)
    return with_use(host("pve", answers, mappings), node_use("pve1", guests, mappings), ROWS)


def guest(name: str, running: bool = False, node: str = "pve1", **config) -> GuestConfig:
    return GuestConfig(name, node, running, {"memory": 2048, **config})


def test_a_stopped_vm_holds_the_device_it_names_by_address_or_by_a_one_device_mapping():
    found = facts(guest("raw", hostpci0="0000:d9:00.0,pcie=1"), guest("mapped", hostpci1="mapping=t4"),
                  guest("elsewhere", node="pve2", hostpci0="0000:3b:00.0"))
    assert {d.address: d.in_use_by for d in found.pci_devices if d.in_use_by} == {
        "0000:d8:00.0": ["mapped"], "0000:d9:00.0": ["raw"]}
    assert found.devices_in_use_known is True and found.device_claims == []


def test_a_vm_naming_a_pool_mapping_claims_one_of_its_devices_on_its_node():
    found = facts(guest("pooled", running=True, hostpci0="mapping=t4-pool"))
    assert [(c.vm, c.devices) for c in found.device_claims] == [("pooled", ["0000:d8:00.0", "0000:d9:00.0"])]
    assert not any(d.in_use_by for d in found.pci_devices)


def test_a_stopped_vms_mdev_instance_is_taken_off_available_a_running_ones_is_already_counted():
    found = facts(guest("stopped-vdi", hostpci0="mapping=a100,mdev=nvidia-473"),
                  guest("running-vdi", running=True, hostpci0="0000:3b:00.0,mdev=nvidia-473"))
    twenty = next(v for v in found.vgpu_types if v.profile == "nvidia-473")
    assert (twenty.available, twenty.in_use_by) == (1, ["running-vdi", "stopped-vdi"])
    assert next(v for v in found.vgpu_types if v.profile == "nvidia-474").available == 1


def test_virtual_functions_held_or_pooled_are_taken_off_their_physical_function():
    [pf] = facts().sriov
    assert (pf.vfs_enabled, pf.vfs_free) == (4, 4)
    [pf] = facts(guest("nfv-1", hostpci15="0000:5e:02.1"), guest("nfv-2", running=True, hostpci15="mapping=x710-vf"),
                 guest("nfv-3", hostpci14="mapping=x710-vf")).sriov
    assert (pf.vfs_free, pf.in_use_by) == (1, ["nfv-1", "nfv-2", "nfv-3"])


def test_a_vm_whose_configuration_could_not_be_read_makes_use_unknown_not_free():
    found = facts(GuestConfig("secret-vm", "pve1", False, None))
    assert found.devices_in_use_known is False
    assert found.sources["devices_in_use"] == "unknown: the configuration of secret-vm could not be read"
    unmapped = facts(guest("mapped", hostpci0="mapping=t4"), mappings=None)
    assert unmapped.devices_in_use_known is False  # the mappings could not be read: what it holds is unknown


def test_the_cluster_vms_could_not_be_listed_makes_use_unknown():
    answers = NodeAnswers("pve1", online=True, pci=ROWS)
    assert with_use(host("pve", answers, MAPPINGS), None, ROWS).devices_in_use_known is False


def test_the_machine_versions_are_the_ids_qemu_offers_and_unknown_when_not_read():
    rows = [{"id": "pc-q35-9.2+pve1", "type": "q35", "version": "9.2+pve1"}, {"id": "pc-i440fx-9.2", "type": "i440fx",
                                                                            "version": "9.2"}]
    assert machine_types(rows) == ["pc-i440fx-9.2", "pc-q35-9.2+pve1"]
    assert machine_types(None) is None
