"""The core contract on Proxmox, through the engine against fakepve: unset fields are not managed (a clone keeps
its template's firmware, controller and disk buses), disks and NICs are matched by slot, a removed data disk is
refused without --allow-data-loss, ids are VMIDs, and placement is decided in the plan and used by the create."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.conformance.stack import ENDPOINT, Stack
from tests.integration.proxmox.helpers import declared, qemu, requests_to, vm_spec
from virtplane import apply
from virtplane.apply import DataLossRefused
from virtplane.plan import Action
from virtplane.providers.base import Owner
from virtplane.providers.proxmox.provider import ProxmoxProvider

UEFI_TEMPLATE = {"memory": 2048, "cores": 2, "bios": "ovmf", "machine": "q35", "ostype": "win11",
                 "efidisk0": "local-lvm:base-900-disk-1,efitype=4m,pre-enrolled-keys=1,size=528K",
                 "scsihw": "virtio-scsi-single", "scsi0": "local-lvm:base-900-disk-0,size=8G",
                 "net0": "virtio=BC:24:11:00:09:00,bridge=vmbr0", "tags": "golden"}
LSI_TEMPLATE = {"memory": 512, "scsihw": "lsi", "scsi0": "local-lvm:base-901-disk-0,size=8G",
                "sata1": "local-lvm:base-901-disk-1,size=4G", "net0": "e1000=BC:24:11:00:09:01,bridge=vmbr0"}


@dataclass
class Endpoint:
    """What tests.conformance.stack.Stack needs of a peer."""

    provider: ProxmoxProvider
    kind: str = "proxmox"


def stack_on(provider: ProxmoxProvider, name: str = "contract") -> Stack:
    return Stack(Endpoint(provider), name).network("app", vlan=110)


def test_a_clone_of_a_uefi_template_declaring_only_cpus_and_memory_keeps_ovmf_and_plans_nothing_next(
        provider, pve, raw):
    pve.add_vm(900, "win-tmpl", node="pve1", template=True, config=dict(UEFI_TEMPLATE))
    stack = stack_on(provider).vm("win1", clone_from="win-tmpl", cpus=4, memory=4096)
    stack.apply()
    config = qemu(raw, "win1").config.get()
    assert config["bios"] == "ovmf" and "pre-enrolled-keys=1" in config["efidisk0"]
    assert (config["ostype"], config["machine"], config["scsihw"]) == ("win11", "q35", "virtio-scsi-single")
    assert config["tags"] == "golden;virtplane"  # the template's tags stay, the marker is added
    assert stack.changes() == {}


def test_a_clone_of_an_lsi_template_with_a_sata_disk_declaring_disks_without_bus_is_not_replaced(provider, pve, raw):
    pve.add_vm(901, "lsi-tmpl", node="pve2", template=True, config=dict(LSI_TEMPLATE))
    stack = stack_on(provider).vm("old1", clone_from="lsi-tmpl", disks=[{"size": 8}, {"size": 4}],
                                  nics=[{"network": "app"}])
    plan = stack.apply()
    assert [r.action for r in plan.resources if r.name == "old1"] == [Action.CREATE]
    config = qemu(raw, "old1").config.get()
    assert config["scsihw"] == "lsi" and config["sata1"].startswith("local-lvm:") and "scsi1" not in config
    assert config["net0"].startswith("e1000=BC:24:11")  # the NIC keeps its model and MAC, rewired to app
    assert config["net0"].endswith("bridge=vmbr0,tag=110")
    assert stack.changes() == {}


def test_a_shorter_disk_list_grows_the_first_slot_and_marks_the_data_disk_removed_and_apply_refuses(
        provider, pve, raw):
    stack = stack_on(provider).vm("db1", cpus=1, memory=512, disks=[{"size": 40}, {"size": 100}], power="off")
    stack.apply()
    before = qemu(raw, "db1").config.get()
    stack.vm("db1", cpus=1, memory=512, disks=[{"size": 100}], power="off")
    plan = stack.plan()
    [item] = [r for r in plan.resources if r.name == "db1"]
    assert [(c.change.path, c.destroys_data) for c in item.changes] == [("disks[scsi0].size", False),
                                                                        ("disks[scsi1]", True)]
    writes = len([r for r in pve.requests if r[0] != "GET"])
    with pytest.raises(DataLossRefused, match=r"scsi1 \(100 GiB\)"):
        apply.run(plan, {ENDPOINT: provider})
    assert len([r for r in pve.requests if r[0] != "GET"]) == writes  # nothing was changed
    assert qemu(raw, "db1").config.get() == before
    # Naming the data disk's slot keeps it: it is matched as it is; only the boot disk is left undeclared.
    stack.vm("db1", cpus=1, memory=512, disks=[{"size": 100, "slot": "scsi1"}], power="off")
    [kept] = [r for r in stack.plan().resources if r.name == "db1"]
    assert [(c.change.path, c.destroys_data) for c in kept.changes] == [("disks[scsi0]", True)]
    stack.vm("db1", cpus=1, memory=512, disks=[{"size": 40}, {"size": 100, "slot": "scsi1"}], power="off")
    assert stack.changes() == {}


def test_an_explicit_slot_is_honoured_at_create_and_when_adding_a_disk_or_nic(provider, raw):
    stack = stack_on(provider).vm("web1", cpus=1, memory=512, power="off",
                                  disks=[{"size": 8, "slot": "scsi3"}, {"size": 2, "bus": "sata", "slot": "sata2"}],
                                  nics=[{"network": "app", "slot": "net4"}])
    stack.apply()
    config = qemu(raw, "web1").config.get()
    assert {"scsi3", "sata2", "net4"} <= set(config) and not {"scsi0", "sata0", "net0"} & set(config)
    assert config["boot"] == "order=scsi3;net4"
    stack.vm("web1", cpus=1, memory=512, power="off",
             disks=[{"size": 8, "slot": "scsi3"}, {"size": 2, "bus": "sata", "slot": "sata2"},
                    {"size": 1, "bus": "virtio-blk", "slot": "virtio5"}],
             nics=[{"network": "app", "slot": "net4"}, {"network": "vmbr0", "slot": "net1"}])
    assert stack.changes()["web1"][1] == [("disks[virtio5]", None, {"size": 1, "storage": None, "thin": None,
                                                                     "bus": "virtio-blk", "slot": "virtio5"}),
                                          ("nics[net1]", None, {"network": "vmbr0", "adapter": None, "device": None,
                                                                "slot": "net1"})]
    stack.apply()
    config = qemu(raw, "web1").config.get()
    assert config["virtio5"].startswith("local-lvm:") and config["net1"].startswith("virtio")
    assert stack.changes() == {}


def test_create_returns_the_vmid_and_the_new_vm_read_back_and_observe_ids_reads_by_vmid(provider, stack, pve):
    driver = provider.driver("VirtualMachine")
    spec = vm_spec(node="pve2", power="off").with_creation_defaults()
    created = driver.create(Owner(stack, "web1"), driver_spec := spec.model_copy(update={
        "disks": [d.model_copy(update={"slot": "scsi0"}) for d in spec.disks or []],
        "nics": [n.model_copy(update={"slot": "net0"}) for n in spec.nics or []]}))
    [vm] = [vm for vm in pve.vms if vm.name == "web1"]
    assert created.id == str(vm.vmid)
    assert created.outputs["node"] == "pve2" and created.outputs["memory"] == driver_spec.memory
    assert [d["slot"] for d in created.outputs["disks"]] == ["scsi0"]
    pve.add_vm(777, "handmade", config={"memory": 512})
    found = driver.observe_ids(stack, [created.id, "777", "99999"], declared({}))
    assert set(found) == {created.id, "777"}
    assert (found[created.id].name, found[created.id].id, found[created.id].owner) == ("web1", created.id,
                                                                                       Owner(stack, "web1"))
    assert found["777"].owner is None and found["777"].name == "handmade"


def test_placement_is_shown_in_the_plan_spreads_one_plans_vms_and_is_where_they_are_created(provider, pve):
    pve.set_node_offline("pve1")
    stack = stack_on(provider).vm("a", cpus=1, memory=1024, power="off").vm("b", cpus=1, memory=1024, power="off")
    stack.vm("c", cpus=1, memory=512, node="pve3", power="off")
    plan = stack.plan()
    placed = {r.name: r.placement for r in plan.resources if r.kind == "VirtualMachine"}
    # fakepve reports the same free memory on every node: ties go by name, and a placed VM counts against its node
    assert placed == {"a": "pve2", "b": "pve3", "c": None}
    assert not apply.run(plan, {ENDPOINT: provider}).failed
    assert {vm.name: vm.node for vm in pve.vms} == {"a": "pve2", "b": "pve3", "c": "pve3"}
    assert len(requests_to(pve, "POST", "/nodes/pve2/qemu")) == 1


def test_a_clone_without_a_node_is_not_placed_and_goes_to_its_sources_node(provider, pve):
    pve.add_vm(901, "lsi-tmpl", node="pve3", template=True, config=dict(LSI_TEMPLATE))
    stack = stack_on(provider).vm("c1", clone_from="lsi-tmpl")
    plan = stack.plan()
    assert [r.placement for r in plan.resources if r.name == "c1"] == [None]
    assert not apply.run(plan, {ENDPOINT: provider}).failed
    assert [vm.node for vm in pve.vms if vm.name == "c1"] == ["pve3"]


def test_an_update_leaves_unset_power_and_tags_alone(provider, raw):
    stack = stack_on(provider).vm("web1", cpus=1, memory=512, power="on", tags=["blue"])
    stack.apply()
    stack.vm("web1", cpus=1, memory=1024)  # power and tags no longer managed
    changes: dict[str, Any] = stack.changes()
    assert changes == {"web1": (Action.UPDATE, [("memory", 512, 1024)])}
    stack.apply()
    assert qemu(raw, "web1").status.current.get()["status"] == "running"  # shut down for memory, started again
    assert qemu(raw, "web1").config.get()["tags"] == "blue;virtplane"
    qemu(raw, "web1").status.stop.post()
    assert stack.changes() == {}  # stopped by hand: power is not managed, so it stays stopped
