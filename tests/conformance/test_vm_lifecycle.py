"""What every provider must do with virtual machines, run against each live test peer."""

from __future__ import annotations

import pytest

from tests.conformance.stack import full_vm, lab, observed_vm
from virtplane.errors import OwnershipError
from virtplane.plan import Action
from virtplane.providers.base import Owner


def test_every_field_is_created_and_read_back_as_declared(peer, name):
    stack = lab(peer, name)
    plan = stack.apply()
    actions = {r.name: r.action for r in plan.resources}
    assert actions[f"{name}-vm0"] is Action.CREATE
    # A Proxmox or Hyper-V network is a VLAN tag its NICs carry: nothing to create.
    assert actions[f"{name}-net"] is (Action.CREATE if peer.creates_networks else Action.NOOP)
    live = observed_vm(stack, f"{name}-vm0")
    declared = stack.desired.resources[f"VirtualMachine/{name}-vm0"].spec.model_dump()
    for field, value in declared.items():
        if field in ("clone_from", "linked_clone") or value is None:
            continue
        if field in ("disks", "nics"):  # each item's declared (not None) attributes, in slot order
            assert [{k: item[k] for k in want if want[k] is not None} for item, want in zip(live[field], value,
                                                                                          strict=True)] == [
                {k: v for k, v in want.items() if v is not None} for want in value], field
        else:
            assert live[field] == value, field


def test_a_second_apply_has_nothing_to_do(peer, name):
    stack = lab(peer, name)
    stack.apply()
    assert stack.changes() == {}
    assert all(r.action is Action.NOOP for r in stack.apply().resources)


def test_changed_declarations_are_applied_and_then_in_sync(peer, name):
    stack = lab(peer, name)
    stack.apply()
    # Disk growth is tested beside each driver: fakepve accepts a resize but does not change the disk.
    stack.vm(f"{name}-vm0", **full_vm(peer, f"{name}-net", cpus=6, sockets=2, memory="3GiB",
                                      nics=[{"network": f"{name}-net"}], tags=["app", "tier2"]))
    action, changes = stack.changes()[f"{name}-vm0"]
    assert action is Action.UPDATE
    second_nic = observed_vm(stack, f"{name}-vm0")["nics"][1]["slot"]  # removed: matched by slot
    assert {path for path, *_ in changes} == {"cpus", "memory", f"nics[{second_nic}]", "tags"}
    stack.apply()
    assert stack.changes() == {}


def test_out_of_band_changes_are_detected_field_by_field_and_repaired(peer, name):
    stack = lab(peer, name, vms=3)
    stack.apply()
    peer.set_cpus(f"{name}-vm0", 1)
    peer.set_memory(f"{name}-vm1", 1024)
    peer.remove_first_nic(f"{name}-vm2")
    drift = stack.changes()
    assert set(drift) == {f"{name}-vm0", f"{name}-vm1", f"{name}-vm2"}
    assert ("cpus", 1, 4) in drift[f"{name}-vm0"][1]
    assert ("memory", 1024, 2048) in drift[f"{name}-vm1"][1]
    assert any(path.startswith("nics[") for path, *_ in drift[f"{name}-vm2"][1])
    stack.apply()
    assert stack.changes() == {}


def test_a_vm_powered_off_behind_our_back_is_powered_on_again(peer, name):
    stack = lab(peer, name)
    stack.apply()
    peer.power_off(f"{name}-vm0")
    assert ("power", "off", "on") in stack.changes()[f"{name}-vm0"][1]
    stack.apply()
    assert stack.changes() == {}


def test_a_same_named_vm_without_our_marker_stops_the_plan_and_is_never_touched(peer, name):
    peer.add_unmanaged_vm(f"{name}-vm0")
    stack = lab(peer, name)
    with pytest.raises(OwnershipError, match=f"{name}-vm0"):
        stack.plan()
    assert stack.plan(destroy=True).resources == []
    assert peer.count(f"{name}-vm0") == 1


def test_destroy_removes_only_this_stacks_vms(peer, name):
    mine, theirs = lab(peer, f"{name}a"), lab(peer, f"{name}b")
    mine.apply()
    theirs.apply()
    peer.add_unmanaged_vm(f"{name}-byhand")
    destroyed = mine.apply(destroy=True)
    assert {r.name for r in destroyed.resources if r.kind == "VirtualMachine"} == {f"{name}a-vm0"}
    assert peer.count(f"{name}a-vm0") == 0
    assert peer.count(f"{name}b-vm0") == 1 and peer.count(f"{name}-byhand") == 1
    assert theirs.changes() == {}


def test_a_vm_removed_from_the_stack_is_deleted_on_the_next_apply(peer, name):
    stack = lab(peer, name, vms=2)
    stack.apply()
    stack.drop(f"{name}-vm1")
    assert stack.changes()[f"{name}-vm1"][0] is Action.DELETE
    stack.apply(allow_data_loss=True)  # its disks go with it
    assert peer.count(f"{name}-vm1") == 0 and peer.count(f"{name}-vm0") == 1


def test_an_apply_interrupted_between_resources_converges_on_the_next_run(peer, name):
    from virtplane import apply

    stack = lab(peer, name, vms=3)

    def interrupt(event: str, payload: object) -> None:
        if event == "done":
            raise KeyboardInterrupt  # the user pressed Ctrl-C after the first resource finished

    with pytest.raises(KeyboardInterrupt):
        apply.run(stack.plan(), {"ep": peer.provider}, parallel=1, on_event=interrupt)
    stack.apply()
    assert stack.changes() == {}
    assert all(peer.count(f"{name}-vm{i}") == 1 for i in range(3))


def test_a_vm_left_half_created_is_finished_not_duplicated(peer, name):
    stack = lab(peer, name)
    peer.add_half_created_vm(Owner(stack.desired.identity, f"{name}-vm0"))
    [item] = [r for r in stack.plan().resources if r.name == f"{name}-vm0"]
    assert item.action in (Action.UPDATE, Action.REPLACE) and item.note == "finishing an interrupted create"
    stack.apply()
    assert stack.changes() == {}
    assert peer.count(f"{name}-vm0") == 1


def test_a_vm_left_half_created_and_no_longer_declared_is_deleted_and_found_by_destroy(peer, name):
    stack = lab(peer, name)
    owner = Owner(stack.desired.identity, f"{name}-gone", "ep")
    peer.add_interrupted_create(owner)
    [item] = [r for r in stack.plan().resources if r.name == f"{name}-gone"]
    assert item.action is Action.DELETE
    assert [r.name for r in stack.plan(destroy=True).resources if r.kind == "VirtualMachine"] == [f"{name}-gone"]
    stack.apply(destroy=True)
    assert not [n for n in peer.names() if f"{name}-gone" in n]


def test_fields_left_unset_are_neither_compared_nor_changed(peer, name):
    stack = lab(peer, name)
    stack.apply()
    stack.vm(f"{name}-vm0", cpus=4, memory="2GiB")  # disks, NICs, firmware, power, tags: no longer managed
    assert stack.changes() == {}
    peer.power_off(f"{name}-vm0")
    assert stack.changes() == {}
    stack.apply()
    live = observed_vm(stack, f"{name}-vm0")
    assert (live["power"], live["firmware"], len(live["disks"]), live["tags"]) == ("off", "uefi", 2, ["app", "tier1"])
