"""The VirtualMachine driver against fakepve: create, read back, update, drift, ownership, VMIDs and placement."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.proxmox.conftest import connect
from tests.integration.proxmox.helpers import (
    changes_to,
    converge,
    count,
    create,
    declared,
    observe,
    qemu,
    requests_to,
    vm_spec,
)
from virtplane.diff import diff
from virtplane.errors import OwnershipError, ProviderError
from virtplane.providers.base import FieldChange, Owner, RefusedChange, Rule
from virtplane.specs import VirtualMachineSpec

FULL = {
    "cpus": 4, "sockets": 2, "memory": "2GiB", "node": "pve2", "machine": "q35",
    "disks": [{"size": 10, "storage": "local-lvm"}, {"size": 4, "storage": "local-lvm", "bus": "sata"},
              {"size": 2, "storage": "local-lvm", "bus": "virtio-blk"}],
    "nics": [{"network": "app"}, {"network": "lan", "adapter": "e1000e"}, {"network": "vmbr0", "adapter": "e1000"}],
    "firmware": "uefi", "secure_boot": True, "guest_os": "windows", "power": "on",
    "nested_virtualization": True, "tags": ["app", "tier1"],
}


def test_every_field_is_created_and_read_back_equal_to_the_spec(provider, stack, raw):
    spec = VirtualMachineSpec.model_validate(FULL)
    observed = create(provider, stack, "web1", spec)
    assert changes_to(provider, stack, "web1", spec.model_copy(update={"nics": None})) == {}
    assert [(n["slot"], n["network"], n["adapter"]) for n in observed.state["nics"]] == [
        ("net0", "app", "paravirtual"), ("net1", "lan", "e1000e"),
        ("net2", "lan", "e1000")]  # the untagged bridge is the declared VLAN-0 network "lan"
    assert [(d["slot"], d["size"], d["bus"]) for d in observed.state["disks"]] == [
        ("scsi0", 10, "paravirtual"), ("sata0", 4, "sata"), ("virtio0", 2, "virtio-blk")]
    assert observed.id is not None and observed.owner == Owner(stack, "web1") and observed.marker_complete
    config = qemu(raw, "web1").config.get()
    assert config["tags"] == "app;tier1;virtplane"
    assert config["description"] == f"virtplane.owner: stack={stack};resource=web1"


def test_a_minimal_vm_reads_back_equal_and_the_next_observe_finds_nothing_to_change(provider, stack):
    spec = vm_spec(power="off", guest_os="other", tags=[])
    state = create(provider, stack, "tiny", spec).state
    assert (state["node"], state["sockets"], state["firmware"], state["nested_virtualization"]) == (
        "pve1", 1, "bios", False)
    assert state["disks"] == [{"size": 8, "storage": "local-lvm", "thin": True, "bus": "paravirtual", "slot": "scsi0"}]
    assert changes_to(provider, stack, "tiny", spec) == {}


def test_a_raw_pve_ostype_is_written_and_read_back_as_it_is(provider, stack):
    assert create(provider, stack, "w10", vm_spec(guest_os="win10")).state["guest_os"] == "win10"


def test_tags_power_disk_add_and_nic_changes_are_applied_in_place(provider, stack):
    create(provider, stack, "web1", vm_spec(power="off"))
    wanted = vm_spec(power="off", tags=["blue"], disks=[{"size": 8}, {"size": 3, "bus": "sata"}],
                     nics=[{"network": "lan"}, {"network": "app", "adapter": "e1000"}])
    rules = {path: provider.driver("VirtualMachine").rule(FieldChange(path, old, new))
             for path, (old, new) in changes_to(provider, stack, "web1", wanted).items()}
    assert rules == {"tags": Rule.IN_PLACE, "disks[sata0]": Rule.IN_PLACE, "nics[net0].network": Rule.IN_PLACE,
                     "nics[net1]": Rule.IN_PLACE}
    after = converge(provider, stack, "web1", wanted)
    assert changes_to(provider, stack, "web1", wanted) == {}
    assert [d["bus"] for d in after.state["disks"]] == ["paravirtual", "sata"]
    assert after.state["power"] == "off"
    powered = converge(provider, stack, "web1", vm_spec(**{**wanted.model_dump(), "power": "on"}))
    assert powered.state["power"] == "on"


def test_cpu_memory_firmware_os_and_nesting_changes_power_the_vm_off_and_on_again(provider, stack, pve):
    create(provider, stack, "web1", vm_spec())
    wanted = vm_spec(cpus=4, sockets=2, memory=2048, firmware="uefi", secure_boot=True, guest_os="windows",
                     nested_virtualization=True, machine="q35")
    changes = changes_to(provider, stack, "web1", wanted)
    driver = provider.driver("VirtualMachine")
    assert {driver.rule(FieldChange(p, *values)) for p, values in changes.items()} == {Rule.POWER_OFF}
    after = converge(provider, stack, "web1", wanted)
    assert changes_to(provider, stack, "web1", wanted) == {}
    assert after.state["power"] == "on"
    assert requests_to(pve, "POST", "/status/shutdown") and len(requests_to(pve, "POST", "/status/start")) == 2


def test_a_vm_shut_down_for_a_change_that_then_fails_is_started_again_and_the_error_reported(provider, stack, pve):
    create(provider, stack, "web1", vm_spec())
    pve.fail("POST", "/config", error="config_lock_timeout")
    with pytest.raises(ProviderError, match=r"^Proxmox could not reconfigure VM web1: can't lock file .* got timeout"):
        converge(provider, stack, "web1", vm_spec(memory=1024))
    assert requests_to(pve, "POST", "/status/shutdown")
    [vm] = [vm for vm in pve.vms if vm.name == "web1"]
    assert vm.status == "running"
    pve.failures.clear()
    assert converge(provider, stack, "web1", vm_spec(memory=1024)).state["memory"] == 1024


def test_when_starting_again_after_a_failed_change_fails_too_both_are_reported_in_one_sentence(provider, stack,
                                                                                            pve):
    create(provider, stack, "web1", vm_spec())
    pve.fail("POST", "/config", error="config_lock_timeout")
    pve.fail("POST", "/status/start", error="qemu_exited_code")
    with pytest.raises(ProviderError) as raised:
        converge(provider, stack, "web1", vm_spec(memory=1024))
    message = str(raised.value)
    assert message.startswith("Proxmox could not reconfigure VM web1: can't lock file")
    assert message.endswith("; starting VM web1 again failed too: Proxmox could not power on VM web1: TASK ERROR: "
                            "QEMU exited with code 1")
    assert "\n" not in message


def test_a_failed_change_to_a_vm_that_is_to_be_off_leaves_it_off(provider, stack, pve):
    create(provider, stack, "web1", vm_spec())
    pve.fail("POST", "/config", error="config_lock_timeout")
    with pytest.raises(ProviderError, match="reconfigure VM web1"):
        converge(provider, stack, "web1", vm_spec(memory=1024, power="off"))
    assert not requests_to(pve, "POST", "/status/start")[1:]  # only the create's start
    [vm] = [vm for vm in pve.vms if vm.name == "web1"]
    assert vm.status == "stopped"


def test_turning_secure_boot_off_remakes_the_efi_disk_and_back_to_bios_keeps_it(provider, stack, raw):
    create(provider, stack, "uefi", vm_spec(power="off", firmware="uefi", secure_boot=True))
    assert converge(provider, stack, "uefi", vm_spec(power="off", firmware="uefi", secure_boot=False)).state[
        "secure_boot"] is False
    efidisk = qemu(raw, "uefi").config.get()["efidisk0"]
    assert "pre-enrolled-keys=0" in efidisk
    assert not [k for k in qemu(raw, "uefi").config.get() if k.startswith("unused")]  # the old one destroyed
    converge(provider, stack, "uefi", vm_spec(power="off", firmware="bios"))
    config = qemu(raw, "uefi").config.get()
    assert config["bios"] == "seabios" and config["efidisk0"] == efidisk


def test_removing_a_disk_and_a_nic_deletes_them(provider, stack):
    create(provider, stack, "web1", vm_spec(power="off", disks=[{"size": 8}, {"size": 2}],
                                            nics=[{"network": "app"}, {"network": "lan"}]))
    after = converge(provider, stack, "web1", vm_spec(power="off"))
    assert [d["slot"] for d in after.state["disks"]] == ["scsi0"]
    assert [(n["slot"], n["network"]) for n in after.state["nics"]] == [("net0", "app")]


def test_a_grown_disk_is_resized_to_its_new_absolute_size(provider, stack, pve):
    create(provider, stack, "web1", vm_spec())
    wanted = vm_spec(disks=[{"size": 12}])
    assert provider.driver("VirtualMachine").rule(FieldChange("disks[scsi0].size", 8, 12)) is Rule.IN_PLACE
    converge(provider, stack, "web1", wanted)
    # fakepve answers resize with a task but does not model it (the size stays), so check what was asked.
    assert requests_to(pve, "PUT", "/resize") == [b"disk=scsi0&size=12G"]
    assert not requests_to(pve, "POST", "/status/shutdown")  # grown while running


def test_shrinking_a_disk_is_refused_with_one_sentence(provider):
    with pytest.raises(RefusedChange) as refused:
        provider.driver("VirtualMachine").rule(FieldChange("disks[0].size", 40, 20))
    assert str(refused.value) == ("shrinking a disk from 40 GiB to 20 GiB is not possible on Proxmox; grow it or "
                                  "replace the VM")


@pytest.mark.parametrize(("change", "path", "live"), [
    ({"cores": 3}, "cpus", 6),
    ({"sockets": 1, "cores": 2}, "sockets", 1),
    ({"memory": 1024}, "memory", 1024),
    ({"ostype": "win11"}, "guest_os", "windows"),
    ({"delete": "cpu"}, "nested_virtualization", False),
    ({"machine": "pc"}, "machine", "pc"),
    ({"tags": "virtplane;other"}, "tags", ["other"]),
    ({"net0": "virtio=BC:24:11:00:00:09,bridge=vmbr0,tag=42"}, "nics[net0].network", "vmbr0.42"),
    ({"net0": "e1000=BC:24:11:00:00:09,bridge=vmbr0,tag=110"}, "nics[net0].adapter", "e1000"),
    ({"delete": "net0"}, "nics[net0]", None),
])
def test_an_out_of_band_change_is_detected_as_drift_in_its_field(provider, stack, raw, change, path, live):
    spec = vm_spec(cpus=2, sockets=2, memory=512, machine="q35", nested_virtualization=True, tags=["web"],
                   guest_os="linux", nics=[{"network": "app", "adapter": "paravirtual"}])
    create(provider, stack, "web1", spec)
    qemu(raw, "web1").config.put(**change)  # the VM runs: PVE keeps it pending, as `qm config` shows it
    drift = changes_to(provider, stack, "web1", spec)
    assert set(drift) == {path} and drift[path][0] == live
    converge(provider, stack, "web1", spec)
    assert changes_to(provider, stack, "web1", spec) == {}


def test_a_vm_powered_off_behind_our_back_is_powered_on_again(provider, stack, raw):
    create(provider, stack, "web1", vm_spec())
    qemu(raw, "web1").status.stop.post()
    assert changes_to(provider, stack, "web1", vm_spec()) == {}  # power unset: not managed
    assert changes_to(provider, stack, "web1", vm_spec(power="on")) == {"power": ("off", "on")}
    assert converge(provider, stack, "web1", vm_spec(power="on")).state["power"] == "on"


def test_a_same_named_vm_without_our_marker_is_foreign_and_never_modified_or_deleted(provider, stack, pve, raw):
    pve.add_vm(150, "web1", status="running", config={"memory": 512, "description": "made by hand"})
    pve.add_vm(151, "web2", config={"memory": 512, "tags": "virtplane",
                                    "description": "virtplane.owner: stack=other/prod;resource=web2"})
    result = observe(provider, stack, {"web1": vm_spec(), "web2": vm_spec()})
    assert result.owned == {} and set(result.foreign) == {"web1", "web2"}
    assert result.foreign["web2"].owner == Owner("other/prod", "web2")
    driver = provider.driver("VirtualMachine")
    for name, observed in result.foreign.items():
        with pytest.raises(OwnershipError, match=f"refusing to update VM {name}"):
            driver.update(observed, vm_spec(cpus=8), [FieldChange("cpus", 1, 8)])
        with pytest.raises(OwnershipError, match=f"refusing to delete VM {name}"):
            driver.delete(observed)
    assert count(raw, "web1") == 1 and count(raw, "web2") == 1
    assert not [path for method, path, _ in pve.requests if method != "GET" and "/qemu/15" in path]


def test_another_stacks_vms_are_neither_owned_nor_deleted_when_destroying(provider, stack, environ):
    create(provider, stack, "web1", vm_spec(power="off"))
    assert observe(provider, "other/stack", {}).owned == {}
    assert set(observe(provider, stack, {}).owned) == {"web1"}  # destroying: found by the marker alone


def test_a_vm_with_our_description_but_not_our_tag_is_finished_by_the_update(provider, stack, raw):
    vmid = int(raw.cluster.nextid.get())
    raw.nodes("pve1").qemu.post(vmid=vmid, name="half", memory=512,
                                description=f"virtplane.owner: stack={stack};resource=half")
    live = observe(provider, stack, {"half": vm_spec()}).owned["half"]
    assert live.marker_complete is False
    spec = vm_spec(power="off", disks=[], nics=[], guest_os="other", tags=["x"])
    provider.driver("VirtualMachine").update(live, spec, diff(spec.model_dump(), live.state))
    again = observe(provider, stack, {"half": spec}).owned["half"]
    assert again.marker_complete and again.state["tags"] == ["x"]
    assert qemu(raw, "half").config.get()["tags"] == "virtplane;x"


def test_the_vmid_is_allocated_again_when_another_client_takes_it_first(provider, stack, pve, raw):
    pve.fail("POST", "/nodes/pve1/qemu", 500, "unable to create VM 100 - VM 100 already exists on node 'pve1'",
             times=1)
    create(provider, stack, "web1", vm_spec(node="pve1"))
    assert count(raw, "web1") == 1
    assert len(requests_to(pve, "GET", "/cluster/nextid")) == 2


def test_a_clash_on_every_offered_vmid_gives_up_with_one_sentence(provider, stack, pve):
    pve.fail("POST", "/nodes/pve1/qemu", 500, "unable to create VM 100 - VM 100 already exists on node 'pve1'")
    with pytest.raises(ProviderError, match="already exists"):
        provider.driver("VirtualMachine").create(Owner(stack, "web1"), vm_spec(node="pve1"))


def test_a_full_clone_of_a_template_gets_the_rest_of_the_spec(provider, stack, pve, raw):
    pve.add_vm(900, "tmpl", node="pve1", template=True, config={
        "memory": 512, "scsihw": "virtio-scsi-single", "scsi0": "local-lvm:base-900-disk-0,size=8G",
        "ide2": "none,media=cdrom", "net0": "virtio=BC:24:11:00:09:00,bridge=vmbr0", "tags": "golden"})
    spec = vm_spec(clone_from="tmpl", cpus=2, memory=1024, tags=["web"],
                   nics=[{"network": "app"}, {"network": "lan", "adapter": "e1000"}])
    observed = create(provider, stack, "web1", spec)
    assert changes_to(provider, stack, "web1", spec) == {}
    assert observed.state["node"] == "pve1" and observed.marker_complete
    assert b"full=1" in requests_to(pve, "POST", "/qemu/900/clone")[0]
    assert qemu(raw, "tmpl").config.get()["tags"] == "golden"  # the source is untouched


def test_a_linked_clone_is_made_from_a_template_and_refused_from_a_vm(provider, stack, pve):
    pve.add_vm(900, "tmpl", template=True, config={"memory": 512, "scsi0": "local-lvm:base-900-disk-0,size=8G",
                                                   "scsihw": "virtio-scsi-single"})
    pve.add_vm(901, "plain", config={"memory": 512, "scsi0": "local-lvm:vm-901-disk-0,size=8G"})
    linked = vm_spec(clone_from="tmpl", linked_clone=True, nics=[])
    assert create(provider, stack, "thin1", linked).state["disks"][0]["size"] == 8
    assert b"full=0" in requests_to(pve, "POST", "/qemu/900/clone")[0]
    from_vm = vm_spec(clone_from="plain", linked_clone=True)
    problems = provider.driver("VirtualMachine").check(from_vm, declared({"thin2": from_vm}))
    assert ("linked_clone", "a linked clone needs a template, and 'plain' (VMID 901) is a VM: convert it to a "
                            "template or set linked_clone=False") in problems
    with pytest.raises(ProviderError, match="not a template"):
        provider.driver("VirtualMachine").create(Owner(stack, "thin2"), from_vm)


def test_vms_without_a_node_go_to_the_online_node_with_most_free_memory_and_one_apply_spreads_them(
        provider, stack, pve):
    pve.set_node_offline("pve1")
    specs = {"a": vm_spec(memory=1024, power="off"), "b": vm_spec(memory=1024, power="off")}
    driver = provider.driver("VirtualMachine")
    observe(provider, stack, specs)  # the plan; the apply then creates both
    for name, spec in specs.items():
        driver.create(Owner(stack, name), spec)
    placed = {name: live.state["node"] for name, live in observe(provider, stack, specs).owned.items()}
    # fakepve reports the same free memory on every node: ties go by name, and a placed VM counts against its node.
    assert placed == {"a": "pve2", "b": "pve3"}


def test_the_endpoints_node_setting_places_vms_that_name_none(environ, stack):
    provider = connect(environ, node="pve3")
    assert create(provider, stack, "web1", vm_spec(power="off")).state["node"] == "pve3"
    wrong = connect(environ, node="pve7")
    problems = dict(wrong.driver("VirtualMachine").check(vm_spec(), declared({"web2": vm_spec()})))
    assert problems["node"].startswith("the endpoint's node 'pve7' is not in the cluster")
    provider.close()
    wrong.close()


def test_moving_a_vm_to_another_node_migrates_it_offline(provider, stack, pve):
    create(provider, stack, "web1", vm_spec(node="pve1"))
    assert provider.driver("VirtualMachine").rule(FieldChange("node", "pve1", "pve3")) is Rule.POWER_OFF
    converge(provider, stack, "web1", vm_spec(node="pve3"))
    # fakepve answers migrate with a task but does not move the VM; check what was asked, and in what order.
    posts = [path.rsplit("/", 2)[-2:] for method, path, _ in pve.requests if method == "POST" and "/qemu/1" in path]
    assert posts[-3:] == [["status", "shutdown"], ["100", "migrate"], ["status", "start"]]
    assert requests_to(pve, "POST", "/migrate") == [b"target=pve3"]


@pytest.mark.parametrize(("fields", "field", "fragment"), [
    ({"node": "pve9"}, "node", "node 'pve9' is not in the cluster (choices: pve1, pve2, pve3)"),
    ({"disks": [{"size": 8, "storage": "nope"}]}, "disks[0].storage",
     "storage 'nope' does not exist on node pve1 (choices: local-lvm)"),
    ({"disks": [{"size": 8, "storage": "local"}]}, "disks[0].storage", "storage 'local' does not hold VM disks"),
    ({"nics": [{"network": "vmbr9"}]}, "nics[0].network",
     "network 'vmbr9' is neither declared in the stack nor a bridge on the cluster's nodes (choices: app, lan, vmbr0)"),
    ({"disks": [{"size": 8, "bus": "nvme"}]}, "disks[0].bus", "NVMe disks do not exist on Proxmox VE"),
    ({"disks": [{"size": 8, "thin": False}]}, "disks[0].thin", "thin provisioning on Proxmox follows the storage"),
    ({"disks": [{"size": 8}, {"size": 8, "bus": "lsilogic"}]}, "disks", "one SCSI controller"),
    ({"tags": ["Web"]}, "tags", "Proxmox keeps tags in lower case; write 'web'"),
    ({"tags": ["a:b"]}, "tags", "'a:b' is not a valid Proxmox tag"),
    ({"tags": ["virtplane"]}, "tags", "ownership tag"),
    ({"guest_os": "beos"}, "guest_os", "'beos' is neither linux, windows or other nor a Proxmox ostype"),
    ({"clone_from": "nothing"}, "clone_from", "no VM or template named 'nothing'"),
    ({"disks": [{"size": 1, "bus": "sata", "slot": "sata6"}]}, "disks[0].slot",
     "slot 'sata6' does not exist: PVE has sata0 to sata5"),
    ({"disks": [{"size": 1, "bus": "sata", "slot": "scsi1"}]}, "disks[0].slot",
     "slot 'scsi1' is on the scsi bus, but the disk's bus is sata"),
    ({"nics": [{"network": "app", "slot": "eth0"}]}, "nics[0].slot", "not a Proxmox network device key"),
])
def test_what_the_cluster_cannot_honour_is_reported_by_check_naming_the_field(provider, fields, field, fragment):
    spec = vm_spec(**fields)
    problems = dict(provider.driver("VirtualMachine").check(spec, declared({"web1": spec})))
    assert field in problems and fragment in problems[field], problems


def test_an_offline_node_is_refused_by_check(provider, pve):
    pve.set_node_offline("pve3")
    spec = vm_spec(node="pve3")
    provider.driver("VirtualMachine").observe("s/t", declared({}))  # each plan reads the cluster again
    problems = dict(provider.driver("VirtualMachine").check(spec, declared({"web1": spec})))
    assert problems["node"] == "node 'pve3' is offline (online nodes: pve1, pve2)"


def test_several_disk_storages_without_a_default_are_listed_and_a_default_picks_one(pve, environ):
    pve.storages["fast"] = {"type": "lvmthin", "active": 1, "content": "images", "files": set(),
                            "vgname": "fast", "thinpool": "data"}
    spec = vm_spec()
    unset, chosen = connect(environ), connect(environ, storage="fast")
    problems = dict(unset.driver("VirtualMachine").check(spec, declared({"web1": spec})))
    assert "several that hold VM disks (choices: fast, local-lvm)" in problems["disks[0].storage"]
    assert chosen.driver("VirtualMachine").check(spec, declared({"web1": spec})) == []
    unset.close()
    chosen.close()


def test_pves_own_refusal_is_one_sentence_saying_what_virtplane_was_doing(provider, stack):
    with pytest.raises(ProviderError) as refused:
        provider.driver("VirtualMachine").create(Owner(stack, "web1"), vm_spec(node="pve1", memory=8))
    message = str(refused.value)
    assert message.startswith("Proxmox refused to create VM web1 with VMID 100 on node pve1: parameter verification "
                              "failed: memory: ")
    assert "minimum value of 16" in message and "\n" not in message


def test_a_vm_locked_by_a_backup_gives_one_clear_sentence(provider, stack, pve):
    create(provider, stack, "web1", vm_spec(power="off"))
    pve.snapshot_lock(100, "backup")
    live = observe(provider, stack, {"web1": vm_spec()}).owned["web1"]
    with pytest.raises(ProviderError) as locked:
        provider.driver("VirtualMachine").update(live, vm_spec(memory=1024, power="off"),
                                                 [FieldChange("memory", 512, 1024)])
    assert "VM is locked (backup)" in str(locked.value) and "retry when it has finished" in str(locked.value)


def test_delete_stops_and_destroys_our_vm_and_tolerates_it_being_gone(provider, stack, raw, pve):
    create(provider, stack, "web1", vm_spec())
    live = observe(provider, stack, {}).owned["web1"]
    provider.driver("VirtualMachine").delete(live)
    assert count(raw, "web1") == 0
    assert requests_to(pve, "DELETE", "/qemu/100")
    provider.driver("VirtualMachine").delete(live)  # gone already: fine


def test_two_vms_with_one_resources_marker_are_reported(provider, stack, pve):
    marker: dict[str, Any] = {"memory": 512, "tags": "virtplane",
                              "description": f"virtplane.owner: stack={stack};resource=web1"}
    pve.add_vm(300, "web1", config=dict(marker))
    pve.add_vm(301, "web1", config=dict(marker))
    with pytest.raises(ProviderError, match="VMIDs 300 and 301"):
        observe(provider, stack, {"web1": vm_spec()})
