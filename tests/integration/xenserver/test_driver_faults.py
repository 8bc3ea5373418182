"""Faults between the XenServer provider and its pool: an answer lost after XAPI ran the call, a connection dropped
before a write or during a read, a guest slow to shut down. Each ends in one clear error or in success, and the next
run converges with no duplicate VM and no disk left without its VM."""

from __future__ import annotations

from tests.conformance.stack import Stack
from tests.integration.xenserver.conftest import calls_during
from tests.support import xenserver as xen
from virtplane import apply
from virtplane.providers.registry import provider_class


def failed(stack: Stack) -> list[str]:
    result = apply.run(stack.plan(), {"ep": stack.peer.provider}, parallel=1)
    return [str(outcome.error) for outcome in result.failed]


def attached_vdis(instance) -> tuple[list[str], list[str]]:
    """VDIs other than the seeded template's: (all of them, those a VBD holds)."""
    with xen.session(instance) as api:
        vdis = {ref: r for ref, r in api.VDI.get_all_records().items() if r["name_label"] != "debian-12-base 0"}
        return sorted(vdis), sorted(ref for ref, r in vdis.items() if r["VBDs"])


def test_a_clone_whose_answer_was_lost_is_found_by_its_pending_name_and_not_made_twice(stack, fresh_xenserver):
    stack.vm("lost", cpus=1, memory="512MiB", power="off", disks=[{"size": 1}])
    fresh_xenserver.control("fault", drop="Async.VM.clone", when="after")
    stack.apply()
    assert xen.vm_names(fresh_xenserver) == ["lost"]
    assert stack.changes() == {}


def test_a_connection_dropped_before_a_disk_is_attached_fails_in_one_sentence_and_the_next_run_converges(
        stack, fresh_xenserver):
    stack.vm("disky", cpus=1, memory="512MiB", power="off", disks=[{"size": 1}])
    stack.apply()
    stack.vm("disky", cpus=1, memory="512MiB", power="off", disks=[{"size": 1}, {"size": 2}])
    fresh_xenserver.control("fault", drop="VBD.create", when="before")
    [error] = failed(stack)
    assert "failed while trying to attach disk 1 to VM disky, so whether it happened is unknown" in error
    assert "\n" not in error
    made, held = attached_vdis(fresh_xenserver)
    assert len(made) == 2 and len(held) == 1  # the new disk exists, without its VBD
    stack.apply()
    assert attached_vdis(fresh_xenserver) == (made, made)  # the same disk, attached: none made twice
    assert stack.changes() == {}


def test_a_create_interrupted_before_its_marker_is_removed_with_its_disks_and_made_again(stack, fresh_xenserver):
    stack.vm("again", cpus=1, memory="512MiB", power="off", disks=[{"size": 1}, {"size": 2}])
    fresh_xenserver.control("fault", drop="VBD.create", when="after")
    assert failed(stack)
    stack.apply()
    assert xen.vm_names(fresh_xenserver) == ["again"]
    made, held = attached_vdis(fresh_xenserver)
    assert len(made) == 2 and made == held


def test_a_read_whose_connection_drops_is_read_again(stack, fresh_xenserver):
    stack.vm("steady", cpus=1, memory="512MiB", power="off")
    stack.apply()
    fresh_xenserver.control("fault", drop="VM.get_all_records_where", when="before")
    assert stack.changes() == {}


def test_a_guest_slower_to_shut_down_than_the_timeout_is_powered_off_hard_and_started_again(peer, fresh_xenserver):
    cls = provider_class("xenserver")
    peer.provider.close()
    peer.provider = cls.connect(cls.settings_from("ep", {"shutdown_timeout": 0.3}, fresh_xenserver.environ()))
    stack = Stack(peer, "slow").vm("slow", cpus=1, memory="512MiB")
    stack.apply()
    stack.vm("slow", cpus=2, memory="512MiB")
    fresh_xenserver.control("fault", slow="VM.clean_shutdown", seconds=5)
    calls = calls_during(fresh_xenserver, stack.apply)
    assert "Async.VM.clean_shutdown" in calls and "Async.VM.hard_shutdown" in calls
    with xen.session(fresh_xenserver) as api:
        vm = xen.vm_named(api, "slow")
        assert (api.VM.get_VCPUs_max(vm), api.VM.get_power_state(vm)) == ("2", "Running")


def test_a_vlan_network_whose_create_answer_was_lost_is_found_by_its_key_and_finished_not_made_twice(
        stack, fresh_xenserver):
    stack.network("app", vlan=160)
    fresh_xenserver.control("fault", drop="network.create", when="after")
    stack.apply()
    with xen.session(fresh_xenserver) as api:
        [network] = api.network.get_by_name_label("app")
        assert sorted(api.PIF.get_VLAN(p) for p in api.network.get_PIFs(network)) == ["160"] * 3
    assert stack.changes() == {}
