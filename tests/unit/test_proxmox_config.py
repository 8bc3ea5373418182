"""The pure translation between VirtualMachineSpec and PVE configuration, and update planning."""

from __future__ import annotations

import re
from typing import Any

import pytest

from virtplane.diff import diff
from virtplane.providers.base import Owner, description_marker, owner_from_description
from virtplane.providers.proxmox.config import (
    NetworkNames,
    create_config,
    disk_slots,
    network_names,
    new_slot,
    nic_slots,
    nic_value,
    split_options,
    vm_state,
)
from virtplane.providers.proxmox.ownership import encode_tags, has_marker_tag, user_tags
from virtplane.providers.proxmox.reconfigure import NoFreeSlot, reconfigure
from virtplane.providers.proxmox.vm_reader import merge_pending
from virtplane.slots import resolve_vm
from virtplane.specs import CREATE_ONLY, NetworkSpec, NicSpec, VirtualMachineSpec

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


def planned(wanted: VirtualMachineSpec, live_state: dict[str, Any] | None = None) -> VirtualMachineSpec:
    """What a create gets from the engine: slots resolved, creation defaults filled in."""
    resolved = resolve_vm(wanted, live_state, new_slot)
    return resolved if live_state is not None else resolved.with_creation_defaults()


def made(wanted: VirtualMachineSpec, storages: list[str] | None = None) -> dict[str, Any]:
    """The configuration of a VM created from ``wanted``, as PVE stores it."""
    full = planned(wanted)
    return as_pve_stores_it(create_config(full, storages or ["local-lvm"] * len(full.disks or []), "local-lvm",
                                          NAMES))


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


def test_every_field_translated_at_create_reads_back_with_nothing_to_change():
    wanted = planned(VirtualMachineSpec.model_validate(FULL))
    config = create_config(wanted, ["local-lvm", "local-lvm", "fast"], "local-lvm", NAMES)
    state = vm_state(as_pve_stores_it(config), "pve2", running=False, names=NAMES)
    assert diff(wanted.model_dump(), state, CREATE_ONLY["VirtualMachine"]) == []
    assert [d["slot"] for d in state["disks"]] == ["scsi0", "sata0", "virtio0"]
    assert [n["slot"] for n in state["nics"]] == ["net0", "net1", "net2"]


def test_create_translates_cpus_firmware_disks_and_nics_into_pve_keys():
    config = create_config(planned(VirtualMachineSpec.model_validate(FULL)), ["local-lvm", "local-lvm", "fast"],
                           "local-lvm", NAMES)
    assert config["cores"] == 2 and config["sockets"] == 2 and config["memory"] == 2048
    assert config["bios"] == "ovmf" and config["efidisk0"] == "local-lvm:1,efitype=4m,pre-enrolled-keys=1"
    assert config["ostype"] == "win11" and config["cpu"] == "host" and config["machine"] == "q35"
    assert (config["scsihw"], config["scsi0"], config["sata0"], config["virtio0"]) == (
        "virtio-scsi-single", "local-lvm:10", "local-lvm:4", "fast:2")
    assert config["net0"] == "virtio,bridge=vmbr0,tag=110"
    assert config["net1"] == "e1000e,bridge=vmbr0"  # VLAN 0: untagged
    assert config["net2"] == "e1000,bridge=vmbr1"  # an existing bridge named directly
    assert config["boot"] == "order=scsi0;net0"


def test_a_bios_vm_without_nesting_or_machine_sends_no_efi_disk_cpu_or_machine():
    config = create_config(planned(spec()), [], None, NAMES)
    assert config["bios"] == "seabios"
    assert not {"efidisk0", "cpu", "machine", "scsihw", "boot"} & set(config)


def test_lsilogic_disks_use_the_lsi_controller_and_read_back_as_lsilogic():
    config = made(spec(disks=[{"size": 3, "bus": "lsilogic"}]))
    assert config["scsihw"] == "lsi"
    assert vm_state(config, "pve1", False, NAMES)["disks"][0]["bus"] == "lsilogic"


def test_scsi_disks_without_a_controller_setting_read_back_as_pves_default_lsilogic():
    state = vm_state({"scsi0": "local-lvm:vm-1-disk-0,size=8G"}, "pve1", False, NAMES)
    assert state["disks"][0]["bus"] == "lsilogic"


def test_new_disks_take_the_lowest_free_number_of_their_buses_prefix_and_read_back_with_that_slot():
    wanted = spec(disks=[{"size": 1, "bus": "sata"}, {"size": 2}, {"size": 3, "bus": "ide"},
                         {"size": 4, "bus": "sata"}, {"size": 5, "bus": "lsilogic", "slot": "scsi3"},
                         {"size": 6, "bus": "virtio-blk"}])
    config = made(wanted)
    assert {"sata0", "scsi0", "ide0", "sata1", "scsi3", "virtio0"} <= set(config)
    state = vm_state(config, "pve1", False, NAMES)
    assert {d["slot"]: d["size"] for d in state["disks"]} == {"sata0": 1, "scsi0": 2, "ide0": 3, "sata1": 4,
                                                              "scsi3": 5, "virtio0": 6}


def test_disks_read_back_sorted_by_number_then_bus_so_position_n_slots_keep_their_order():
    config = {"sata0": "local-lvm:vm-1-disk-0,size=1G", "scsi1": "local-lvm:vm-1-disk-1,size=2G",
              "ide2": "local-lvm:vm-1-disk-2,size=3G", "scsi0": "local-lvm:vm-1-disk-3,size=4G"}
    assert [d["slot"] for d in vm_state(config, "pve1", False, NAMES)["disks"]] == ["scsi0", "sata0", "scsi1", "ide2"]


def test_an_explicit_slot_is_used_as_the_config_key_at_create():
    config = made(spec(disks=[{"size": 8, "slot": "scsi2"}, {"size": 4}], nics=[{"network": "app", "slot": "net3"}]))
    assert config["scsi2"].startswith("local-lvm:") and config["scsi0"].startswith("local-lvm:")
    assert "net3" in config and "net0" not in config
    assert config["boot"] == "order=scsi2;net3"


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
    assert [(n["slot"], n["network"], n["adapter"]) for n in vm_state(config, "pve1", True, NAMES)["nics"]] == [
        ("net0", "app", "paravirtual"), ("net1", "lan", "e1000e"), ("net2", "vmbr0.999", "e1000"),
        ("net3", "vmbr1", "vmxnet3")]


def test_a_changed_nic_keeps_its_mac_and_other_options():
    [slot] = nic_slots({"net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1,tag=110"})
    assert nic_value(NicSpec(network="lan", adapter="e1000"), NAMES, slot) == \
        "e1000=BC:24:11:00:00:01,bridge=vmbr0,firewall=1"
    assert nic_value(NicSpec(network="lan"), NAMES, slot) == "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1"


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


def plan_for(before: VirtualMachineSpec, after: VirtualMachineSpec, finish_marker: str | None = None):
    """Reconfiguration planned as the engine would: ``after`` resolved against the VM made from ``before``, diffed."""
    config = made(before)
    state = vm_state(config, "pve1", False, NAMES)
    wanted = planned(after, state)
    changes = diff(wanted.model_dump(), state, CREATE_ONLY["VirtualMachine"])
    return reconfigure(wanted, config, changes, NAMES, lambda disk: disk.storage or "local-lvm", lambda: "local-lvm",
                       finish_marker)


def test_cpu_memory_os_and_tags_changes_set_their_keys():
    plan = plan_for(spec(), spec(cpus=4, sockets=2, memory=2048, guest_os="other", tags=["a"]))
    assert plan.settings == {"cores": 2, "sockets": 2, "memory": 2048, "ostype": "other", "tags": "a;virtplane"}
    assert not plan.delete and not plan.resize


def test_unset_fields_are_never_written():
    before = spec(cpus=2, firmware="uefi", secure_boot=True, nested_virtualization=True, tags=["x"],
                  disks=[{"size": 8}, {"size": 4}], nics=[{"network": "app"}])
    plan = plan_for(before, VirtualMachineSpec(memory=2048))
    assert plan.settings == {"memory": 2048} and not plan.delete and not plan.first_delete and not plan.resize


def test_finishing_the_marker_of_a_vm_whose_tags_are_unset_keeps_its_tags():
    assert plan_for(spec(tags=["x"]), VirtualMachineSpec(), finish_marker="web").settings == {"tags": "virtplane;x",
                                                                                              "name": "web"}


def test_finishing_the_marker_of_a_clone_under_its_pending_name_renames_it_in_the_same_write():
    config = {**made(spec(tags=["x"])), "name": "web.virtplane-pending"}
    state = vm_state(config, "pve1", False, NAMES)
    plan = reconfigure(planned(VirtualMachineSpec(), state), config, [], NAMES, lambda disk: "local-lvm",
                       lambda: "local-lvm", "web")
    assert plan.settings == {"tags": "virtplane;x", "name": "web"}


def test_secure_boot_declared_without_firmware_keeps_a_uefi_vm_uefi():
    plan = plan_for(spec(firmware="uefi"), VirtualMachineSpec(secure_boot=True))
    assert "bios" not in plan.settings and plan.settings["efidisk0"].endswith("pre-enrolled-keys=1")


def test_cpus_declared_without_sockets_keep_the_vms_socket_layout():
    assert plan_for(spec(cpus=4, sockets=2), VirtualMachineSpec(cpus=8)).settings == {"cores": 4, "sockets": 2}


def test_turning_nesting_off_deletes_the_cpu_type():
    assert plan_for(spec(nested_virtualization=True), spec(nested_virtualization=False)).delete == ["cpu"]


def test_a_grown_disk_is_resized_to_its_absolute_size_and_an_added_disk_takes_a_free_slot_of_its_bus():
    before = spec(disks=[{"size": 8}])
    plan = plan_for(before, spec(disks=[{"size": 12}, {"size": 4, "bus": "sata"}]))
    assert plan.resize == [("scsi0", 12)]
    assert plan.settings == {"sata0": "local-lvm:4"}


def test_disks_are_reconciled_by_slot_never_by_position():
    before = spec(disks=[{"size": 40}, {"size": 100}])  # scsi0 and scsi1
    kept = plan_for(before, spec(disks=[{"size": 100, "slot": "scsi1"}]))
    assert kept.delete == ["scsi0"] and not kept.resize
    grown = plan_for(before, spec(disks=[{"size": 100}]))  # takes scsi0: grows it, removes the data disk
    assert grown.resize == [("scsi0", 100)] and grown.delete == ["scsi1"]


def test_a_removed_disk_is_deleted_and_its_volume_named_for_destruction():
    plan = plan_for(spec(disks=[{"size": 8}, {"size": 4}]), spec(disks=[{"size": 8}]))
    assert plan.delete == ["scsi1"] and plan.removed_volumes == ["local-lvm:vm-100-disk-1"]


def test_a_first_scsi_disk_added_to_a_vm_without_one_sets_the_controller():
    plan = plan_for(spec(), spec(disks=[{"size": 8, "bus": "lsilogic"}]))
    assert plan.settings == {"scsi0": "local-lvm:8", "scsihw": "lsi"}


def test_an_added_disk_whose_slot_does_not_exist_is_refused():
    before = spec(disks=[{"size": 1, "bus": "ide"}] * 4)
    with pytest.raises(NoFreeSlot, match="ide0 to ide3"):
        plan_for(before, spec(disks=[{"size": 1, "bus": "ide"}] * 5))


def test_an_added_disk_is_never_written_over_a_cdrom_in_its_slot():
    config = {"ide2": "local:iso/debian.iso,media=cdrom"}
    wanted = spec(disks=[{"size": 1, "bus": "ide", "slot": "ide2"}])
    changes = diff(wanted.model_dump(), vm_state(config, "pve1", False, NAMES))
    with pytest.raises(NoFreeSlot, match="CD-ROM"):
        reconfigure(wanted, config, changes, NAMES, lambda disk: "local-lvm", lambda: "local-lvm")


def test_nics_are_rewired_by_slot_added_in_a_free_slot_and_removed():
    before = spec(nics=[{"network": "app"}, {"network": "lan"}])
    plan = plan_for(before, spec(nics=[{"network": "lan"}]))
    assert plan.settings == {"net0": "virtio=BC:24:11:00:00:00,bridge=vmbr0"} and plan.delete == ["net1"]
    kept = plan_for(before, spec(nics=[{"network": "lan", "slot": "net1"}]))
    assert kept.settings == {} and kept.delete == ["net0"]
    grown = plan_for(before, spec(nics=[{"network": "app"}, {"network": "lan"}, {"network": "app"}]))
    assert grown.settings == {"net2": "virtio,bridge=vmbr0,tag=110"}


def test_switching_to_uefi_adds_an_efi_disk_and_back_to_bios_keeps_it_for_the_way_back():
    assert plan_for(spec(), spec(firmware="uefi")).settings == {
        "bios": "ovmf", "efidisk0": "local-lvm:1,efitype=4m,pre-enrolled-keys=0"}
    plan = plan_for(spec(firmware="uefi"), spec(firmware="bios"))
    assert plan.settings == {"bios": "seabios"} and not plan.delete and not plan.removed_volumes


def test_back_to_uefi_finds_the_efi_disk_it_kept_and_reads_its_secure_boot_again():
    config = {**made(spec(firmware="uefi", secure_boot=True)), "bios": "seabios"}
    assert vm_state(config, "pve1", False, NAMES)["secure_boot"] is False  # SeaBIOS has no secure boot
    state = vm_state(config, "pve1", False, NAMES)
    wanted = planned(VirtualMachineSpec(firmware="uefi"), state)
    plan = reconfigure(wanted, config, diff(wanted.model_dump(), state, CREATE_ONLY["VirtualMachine"]), NAMES,
                       lambda disk: "local-lvm", lambda: "local-lvm")
    assert plan.settings == {"bios": "ovmf"} and not plan.first_delete
    assert vm_state({**config, "bios": "ovmf"}, "pve1", False, NAMES)["secure_boot"] is True


def test_changing_secure_boot_remakes_the_efi_disk_in_two_writes():
    plan = plan_for(spec(firmware="uefi"), spec(firmware="uefi", secure_boot=True))
    assert plan.first_delete == ["efidisk0"]
    assert plan.settings["efidisk0"] == "local-lvm:1,efitype=4m,pre-enrolled-keys=1"


def test_new_slots_follow_the_bus_prefix():
    assert new_slot("disks", {"bus": None}, {"scsi0", "sata0"}) == "scsi1"
    assert new_slot("disks", {"bus": "lsilogic"}, set()) == "scsi0"
    assert new_slot("disks", {"bus": "virtio-blk"}, {"virtio0"}) == "virtio1"
    assert new_slot("disks", {"bus": "ide"}, {"ide0", "ide1", "ide2", "ide3"}) == "ide4"  # check() names it
    assert new_slot("nics", {}, {"net0", "net2"}) == "net1"


def test_an_undeclared_vlan_read_back_as_bridge_dot_vlan_wires_back_to_that_bridge_and_vlan():
    names = network_names("vmbr0", {"Network": {}})
    assert names.name_of("vmbr0", 120) == "vmbr0.120"
    assert names.wiring("vmbr0.120") == ("vmbr0", 120)
    assert names.wiring("vmbr1.3") == ("vmbr1.3", 0)  # not the endpoint's bridge: a bridge of that name
