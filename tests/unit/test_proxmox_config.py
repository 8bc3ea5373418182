"""The pure translation between VirtualMachineSpec and PVE configuration, and update planning."""

from __future__ import annotations

import re
from typing import Any

import pytest

from virtplane.providers.base import Owner, description_marker, owner_from_description
from virtplane.providers.proxmox.config import (
    NetworkNames,
    create_config,
    disk_slots,
    network_names,
    nic_slots,
    nic_value,
    split_options,
    vm_state,
)
from virtplane.providers.proxmox.ownership import encode_tags, has_marker_tag, user_tags
from virtplane.providers.proxmox.reconfigure import NoFreeSlot, reconfigure
from virtplane.providers.proxmox.vm_reader import merge_pending
from virtplane.specs import NetworkSpec, NicSpec, VirtualMachineSpec

NAMES = NetworkNames("vmbr0", {"app": 110, "lan": 0})
FULL = {
    "cpus": 4, "sockets": 2, "memory": "2GiB", "machine": "q35",
    "disks": [{"size": 10}, {"size": 4, "bus": "sata"}, {"size": 2, "bus": "virtio-blk", "storage": "fast"}],
    "nics": [{"network": "app"}, {"network": "lan", "adapter": "e1000e"}, {"network": "vmbr1", "adapter": "e1000"}],
    "firmware": "uefi", "secure_boot": True, "guest_os": "windows", "power": "off",
    "nested_virtualization": True, "tags": ["app", "tier1"],
}


def spec(**overrides: Any) -> VirtualMachineSpec:
    return VirtualMachineSpec.model_validate({"cpus": 1, "memory": 512} | overrides)


def as_pve_stores_it(config: dict[str, Any], vmid: int = 100) -> dict[str, Any]:
    """What PVE keeps after a create: allocated volumes with sizes, NICs with MACs."""
    stored, disk = {}, 0
    for key, value in config.items():
        text = str(value)
        new = re.match(r"^([^:,]+):(\d+)(,.*)?$", text)
        if new and not key.startswith("net"):
            size = "528K" if key == "efidisk0" else f"{new.group(2)}G"
            text = f"{new.group(1)}:vm-{vmid}-disk-{disk}{new.group(3) or ''},size={size}"
            disk += 1
        elif key.startswith("net"):
            model, _, rest = text.partition(",")
            text = f"{model}=BC:24:11:00:00:0{key[3:]},{rest}"
        stored[key] = text
    return stored


def test_split_options_separates_the_leading_value_from_the_options():
    assert split_options("local-lvm:vm-100-disk-0,size=32G,ssd=1") == ("local-lvm:vm-100-disk-0",
                                                                        {"size": "32G", "ssd": "1"})
    assert split_options("cputype=host,flags=+aes") == (None, {"cputype": "host", "flags": "+aes"})


def test_every_field_translated_at_create_reads_back_equal_to_the_spec():
    wanted = VirtualMachineSpec.model_validate(FULL)
    config = create_config(wanted, ["local-lvm", "local-lvm", "fast"], "local-lvm", NAMES)
    state = vm_state(as_pve_stores_it(config), "pve2", running=False, names=NAMES)
    expected = wanted.model_dump() | {"node": "pve2"}
    expected["disks"] = [d | {"storage": s} for d, s in zip(expected["disks"], ["local-lvm", "local-lvm", "fast"],
                                                             strict=True)]
    assert state == expected


def test_create_translates_cpus_firmware_disks_and_nics_into_pve_keys():
    config = create_config(VirtualMachineSpec.model_validate(FULL), ["local-lvm", "local-lvm", "fast"], "local-lvm",
                           NAMES)
    assert config["cores"] == 2 and config["sockets"] == 2 and config["memory"] == 2048
    assert config["bios"] == "ovmf" and config["efidisk0"] == "local-lvm:1,efitype=4m,pre-enrolled-keys=1"
    assert config["ostype"] == "win11" and config["cpu"] == "host" and config["machine"] == "q35"
    assert (config["scsihw"], config["scsi0"], config["sata1"], config["virtio2"]) == (
        "virtio-scsi-single", "local-lvm:10", "local-lvm:4", "fast:2")
    assert config["net0"] == "virtio,bridge=vmbr0,tag=110"
    assert config["net1"] == "e1000e,bridge=vmbr0"  # VLAN 0: untagged
    assert config["net2"] == "e1000,bridge=vmbr1"  # an existing bridge named directly
    assert config["boot"] == "order=scsi0;net0"


def test_a_bios_vm_without_nesting_or_machine_sends_no_efi_disk_cpu_or_machine():
    config = create_config(spec(), [], None, NAMES)
    assert config["bios"] == "seabios"
    assert not {"efidisk0", "cpu", "machine", "scsihw", "boot"} & set(config)


def test_lsilogic_disks_use_the_lsi_controller_and_read_back_as_lsilogic():
    config = create_config(spec(disks=[{"size": 3, "bus": "lsilogic"}]), ["local-lvm"], None, NAMES)
    assert config["scsihw"] == "lsi"
    assert vm_state(as_pve_stores_it(config), "pve1", False, NAMES)["disks"][0]["bus"] == "lsilogic"


def test_scsi_disks_without_a_controller_setting_read_back_as_pves_default_lsilogic():
    state = vm_state({"scsi0": "local-lvm:vm-1-disk-0,size=8G"}, "pve1", False, NAMES)
    assert state["disks"][0]["bus"] == "lsilogic"


def test_disks_read_back_in_declared_order_whatever_their_buses():
    wanted = spec(disks=[{"size": 1, "bus": "sata"}, {"size": 2}, {"size": 3, "bus": "ide"},
                         {"size": 4, "bus": "sata"}])
    config = create_config(wanted, ["local-lvm"] * 4, None, NAMES)
    assert {"sata0", "scsi1", "ide2", "sata3"} <= set(config)
    state = vm_state(as_pve_stores_it(config), "pve1", False, NAMES)
    assert [(d["size"], d["bus"]) for d in state["disks"]] == [(1, "sata"), (2, "paravirtual"), (3, "ide"), (4, "sata")]


@pytest.mark.parametrize(("size", "gib"), [("32G", 32), ("1T", 1024), ("2048M", 2), ("1536M", 1), ("528K", 0),
                                           ("10737418240", 10), ("1.5T", 1536)])
def test_disk_sizes_read_back_in_whole_gib(size, gib):
    [slot] = disk_slots({"scsi0": f"local-lvm:vm-100-disk-0,size={size}"})
    assert slot.size == gib


def test_a_disk_not_yet_allocated_reads_its_size_from_storage_colon_size():
    [slot] = disk_slots({"virtio0": "local-lvm:12"})
    assert (slot.storage, slot.size) == ("local-lvm", 12)


def test_cdroms_cloud_init_efi_tpm_and_unused_volumes_are_not_disks():
    config = {"ide2": "local:iso/debian.iso,media=cdrom", "ide0": "local-lvm:vm-100-cloudinit,media=cdrom",
              "sata1": "none,media=cdrom", "efidisk0": "local-lvm:vm-100-disk-1,size=528K",
              "tpmstate0": "local-lvm:vm-100-disk-2,size=4M", "unused0": "local-lvm:vm-100-disk-3",
              "scsi0": "local-lvm:vm-100-disk-0,size=8G"}
    assert [slot.key for slot in disk_slots(config)] == ["scsi0"]


def test_nics_read_back_by_vlan_as_the_declared_network_else_as_bridge_and_tag():
    config = {"net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=110,firewall=1",
              "net2": "e1000=BC:24:11:00:00:02,bridge=vmbr0,tag=999",
              "net1": "model=e1000e,macaddr=BC:24:11:00:00:03,bridge=vmbr0",
              "net3": "vmxnet3,bridge=vmbr1"}
    assert vm_state(config, "pve1", True, NAMES)["nics"] == [
        {"network": "app", "adapter": "paravirtual"}, {"network": "lan", "adapter": "e1000e"},
        {"network": "vmbr0.999", "adapter": "e1000"}, {"network": "vmbr1", "adapter": "vmxnet3"}]


def test_a_changed_nic_keeps_its_mac_and_other_options():
    [slot] = nic_slots({"net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1,tag=110"})
    assert nic_value(NicSpec(network="lan", adapter="e1000"), NAMES, slot) == \
        "e1000=BC:24:11:00:00:01,bridge=vmbr0,firewall=1"


def test_an_empty_config_reads_back_with_pves_defaults():
    state = vm_state({}, "pve1", False, NAMES)
    assert (state["cpus"], state["sockets"], state["memory"], state["firmware"], state["guest_os"]) == (
        1, 1, 512, "bios", "other")
    assert state["machine"] is None and state["nested_virtualization"] is False and state["tags"] == []


@pytest.mark.parametrize(("config", "field", "value"), [
    ({"memory": "current=4096"}, "memory", 4096),
    ({"cpu": "cputype=host,flags=+aes"}, "nested_virtualization", True),
    ({"cpu": "x86-64-v2-AES"}, "nested_virtualization", False),
    ({"machine": "pc-q35-9.0,viommu=virtio"}, "machine", "pc-q35-9.0"),
    ({"ostype": "win10"}, "guest_os", "win10"),
    ({"ostype": "l26"}, "guest_os", "linux"),
    ({"bios": "ovmf", "efidisk0": "local-lvm:vm-1-disk-1,efitype=4m,pre-enrolled-keys=0"}, "secure_boot", False),
    ({"tags": "web;virtplane;app"}, "tags", ["app", "web"]),
])
def test_scalar_fields_read_back_from_pve_values(config, field, value):
    assert vm_state(config, "pve1", False, NAMES)[field] == value


def test_declared_networks_name_nics_by_vlan():
    names = network_names("vmbr0", {"Network": {"a": NetworkSpec(vlan=5)}, "VirtualMachine": {}})
    assert names.wiring("a") == ("vmbr0", 5) and names.wiring("vmbr7") == ("vmbr7", 0)
    assert names.name_of("vmbr0", 5) == "a"


def test_the_ownership_marker_round_trips_through_the_description_and_the_tag():
    owner = Owner("proj/dev", "web1")
    assert owner_from_description(f"notes by a person\n{description_marker(owner)}\n") == owner
    assert owner_from_description("no marker here") is None
    assert encode_tags(["web", "app"]) == "app;virtplane;web"
    assert has_marker_tag("app;virtplane") and not has_marker_tag("app")
    assert user_tags("app,virtplane web") == ["app", "web"]


def test_pending_values_and_deletes_override_the_current_configuration():
    items = [{"key": "cores", "value": 2, "pending": "4"}, {"key": "net0", "value": "virtio", "delete": 1},
             {"key": "net1", "pending": "e1000,bridge=vmbr0"}, {"key": "name", "value": "web1"}]
    assert merge_pending(items) == {"cores": "4", "net1": "e1000,bridge=vmbr0", "name": "web1"}


# ---- update planning ---------------------------------------------------------------------------------


def live(wanted: VirtualMachineSpec) -> dict[str, Any]:
    return as_pve_stores_it(create_config(wanted, ["local-lvm"] * len(wanted.disks), "local-lvm", NAMES))


def plan_for(before: VirtualMachineSpec, after: VirtualMachineSpec, *fields: str):
    return reconfigure(after, live(before), fields, NAMES, lambda i: after.disks[i].storage or "local-lvm",
                       lambda: "local-lvm")


def test_cpu_memory_os_and_tags_changes_set_their_keys():
    plan = plan_for(spec(), spec(cpus=4, sockets=2, memory=2048, guest_os="other", tags=["a"]),
                    "cpus", "memory", "guest_os", "tags")
    assert plan.settings == {"cores": 2, "sockets": 2, "memory": 2048, "ostype": "other", "tags": "a;virtplane"}
    assert not plan.delete and not plan.resize


def test_turning_nesting_off_deletes_the_cpu_type():
    assert plan_for(spec(nested_virtualization=True), spec(), "nested_virtualization").delete == ["cpu"]


def test_a_grown_disk_is_resized_to_its_absolute_size_and_an_added_disk_takes_its_positions_slot():
    before = spec(disks=[{"size": 8}])
    plan = plan_for(before, spec(disks=[{"size": 12}, {"size": 4, "bus": "sata"}]), "disks")
    assert plan.resize == [("scsi0", 12)]
    assert plan.settings == {"sata1": "local-lvm:4"}


def test_a_removed_disk_is_deleted_and_its_volume_named_for_destruction():
    plan = plan_for(spec(disks=[{"size": 8}, {"size": 4}]), spec(disks=[{"size": 8}]), "disks")
    assert plan.delete == ["scsi1"] and plan.removed_volumes == ["local-lvm:vm-100-disk-1"]


def test_a_first_scsi_disk_added_to_a_vm_without_one_sets_the_controller():
    plan = plan_for(spec(), spec(disks=[{"size": 8, "bus": "lsilogic"}]), "disks")
    assert plan.settings == {"scsi0": "local-lvm:8", "scsihw": "lsi"}


def test_an_added_disk_that_would_need_a_missing_slot_is_refused():
    before = spec(disks=[{"size": 1, "bus": "ide"}] * 4)
    with pytest.raises(NoFreeSlot, match="no ide slot"):
        plan_for(before, spec(disks=[{"size": 1, "bus": "ide"}] * 5), "disks")


def test_nics_are_rewired_in_place_added_after_the_last_and_removed():
    before = spec(nics=[{"network": "app"}, {"network": "lan"}])
    after = spec(nics=[{"network": "lan"}])
    plan = plan_for(before, after, "nics")
    assert plan.settings == {"net0": "virtio=BC:24:11:00:00:00,bridge=vmbr0"} and plan.delete == ["net1"]
    grown = plan_for(before, spec(nics=[{"network": "app"}, {"network": "lan"}, {"network": "app"}]), "nics")
    assert grown.settings == {"net2": "virtio,bridge=vmbr0,tag=110"}


def test_switching_to_uefi_adds_an_efi_disk_and_back_to_bios_removes_it():
    assert plan_for(spec(), spec(firmware="uefi"), "firmware").settings == {
        "bios": "ovmf", "efidisk0": "local-lvm:1,efitype=4m,pre-enrolled-keys=0"}
    plan = plan_for(spec(firmware="uefi"), spec(), "firmware")
    assert plan.settings == {"bios": "seabios"} and plan.delete == ["efidisk0"]
    assert plan.removed_volumes == ["local-lvm:vm-100-disk-0"]


def test_changing_secure_boot_remakes_the_efi_disk_in_two_writes():
    plan = plan_for(spec(firmware="uefi"), spec(firmware="uefi", secure_boot=True), "secure_boot")
    assert plan.first_delete == ["efidisk0"]
    assert plan.settings["efidisk0"] == "local-lvm:1,efitype=4m,pre-enrolled-keys=1"
