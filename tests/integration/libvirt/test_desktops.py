"""Desktop pools on libvirt: desktops are qcow2 overlays of the golden image's volume unless the pool says
otherwise, a running desktop without a QEMU guest agent to ask counts as in use, and vGPU desktops are placed
against the mdev instances the host's GPU has left."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.conformance.stack import Stack
from virtplane.apply import DataLossRefused, refuse_data_loss
from virtplane.errors import SpecError
from virtplane.placement import PlacementError
from virtplane.plan import Action


def backing_of(peer, domain: str) -> str | None:
    pool = peer.conn.storagePoolLookupByName("default")
    pool.refresh(0)
    source = ET.fromstring(peer.conn.lookupByName(domain).XMLDesc(0)).find("devices/disk/source")
    return ET.fromstring(pool.storageVolLookupByName(source.get("volume")).XMLDesc(0)).findtext("backingStore/path")


@pytest.mark.parametrize(("linked_clone", "overlay"), [({}, True), ({"linked_clone": False}, False)])
def test_a_pools_desktops_overlay_the_golden_images_volume_unless_the_pool_asks_for_copies(qemu_host, linked_clone,
                                                                                          overlay):
    qemu_host.add_golden("golden")
    stack = Stack(qemu_host, "vdi").pool("vdi", "golden", 2, memory="256MiB", power="off", **linked_clone)
    stack.apply()
    assert stack.changes() == {}
    backings = {backing_of(qemu_host, f"vdi-00{n}") for n in (1, 2)}
    assert backings == ({qemu_host.conn.storagePoolLookupByName("default").storageVolLookupByName(
        "golden.qcow2").path()} if overlay else {None})


def test_a_running_desktop_whose_domain_has_no_guest_agent_counts_as_in_use_and_blocks_a_shrink(qemu_host):
    qemu_host.add_golden("golden")
    stack = Stack(qemu_host, "vdi").pool("vdi", "golden", 2, memory="256MiB")
    stack.apply()
    stack.pool("vdi", "golden", 1, memory="256MiB")
    plan = stack.plan()
    [shrink] = [r for r in plan.pending if r.action is Action.DELETE]
    assert shrink.name == "vdi-002" and shrink.guest is not None and shrink.guest.in_use
    assert "QEMU guest agent" in shrink.guest.told_by and "not configured" in shrink.guest.told_by
    with pytest.raises(DataLossRefused, match=r"vdi-002 .*QEMU guest agent"):
        refuse_data_loss(plan)
    assert qemu_host.count("vdi-002") == 1


def test_vgpu_desktops_take_the_gpus_free_mdev_instances_and_a_larger_pool_is_refused_whole(test_host):
    test_host.add_golden("golden")
    vgpu = {"gpus": [{"mode": "vgpu", "profile": "nvidia-471"}], "memory": "1GiB", "power": "off"}
    free = next(v.available for v in test_host.provider.hosts()[0].vgpu_types if v.profile == "nvidia-471")
    stack = Stack(test_host, "vdi").pool("vdi", "golden", free + 1, **vgpu)
    with pytest.raises(PlacementError, match=rf"DesktopPool 'vdi': {free + 1} new desktops .*can take only {free} "):
        stack.plan()
    assert not any(n.startswith("vdi-") for n in test_host.names())  # nothing made
    stack.pool("vdi", "golden", free, **vgpu)
    stack.apply()
    assert stack.changes() == {}
    live = {r.name: r.observed.state["gpus"] for r in stack.plan().resources}
    assert {g[0]["profile"] for g in live.values()} == {"nvidia-471"} and len(live) == free


def test_a_golden_image_that_does_not_exist_is_refused_at_plan_once_for_the_whole_pool(test_host):
    with pytest.raises(SpecError) as refused:
        Stack(test_host, "vdi").pool("vdi", "win11-gold", 3, memory="1GiB").plan()
    assert str(refused.value) == ("DesktopPool 'vdi': field 'template': no domain named 'win11-gold' exists on "
                                  "libvirt endpoint 'conformance'")
    assert not any(n.startswith("vdi-") for n in test_host.names())
