"""Clones on a real libvirtd with QEMU: a full clone copies each volume of the source domain (``createXMLFrom``), a
linked clone makes qcow2 overlays backed by them; the clone takes the declared fields and reads back in sync, and
its delete removes its own volumes, never the source's."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.conformance.stack import Stack
from virtplane.errors import SpecError


@pytest.mark.parametrize("linked", [False, True])
def test_a_clone_copies_or_overlays_the_source_volumes_and_converges_in_one_apply(qemu_host, linked):
    qemu_host.add_template("golden")
    stack = Stack(qemu_host, "clones").vm("app", clone_from="golden", linked_clone=linked, cpus=2, memory="512MiB",
                                          power="off", tags=["clone"])
    stack.apply()
    assert stack.changes() == {}
    pool = qemu_host.conn.storagePoolLookupByName("default")
    pool.refresh(0)
    [source] = [ET.fromstring(qemu_host.conn.lookupByName("app").XMLDesc(0)).find("devices/disk/source")]
    volume = ET.fromstring(pool.storageVolLookupByName(source.get("volume")).XMLDesc(0))
    backing = volume.findtext("backingStore/path")
    assert (backing or "").endswith("/golden.qcow2") if linked else backing is None
    assert volume.find("capacity").text == str(4 * 1024**3)
    [item] = [r for r in stack.plan().resources if r.name == "app"]
    live = item.observed.state
    assert (live["cpus"], live["memory"], live["tags"], len(live["nics"])) == (2, 512, ["clone"], 1)
    stack.apply(destroy=True)
    pool.refresh(0)
    assert [v.name() for v in pool.listAllVolumes(0)] == ["golden.qcow2"] and qemu_host.names() == ["golden"]



@pytest.mark.parametrize("host", ["test_host", "qemu_host"])
def test_a_full_clone_of_a_thick_template_is_thick_and_converges_in_one_apply(request, host):
    peer = request.getfixturevalue(host)
    peer.add_template("golden", thick=True)
    stack = Stack(peer, "thick").vm("app", clone_from="golden", cpus=1, memory="256MiB", power="off",
                                    disks=[{"size": 4, "thin": False}])
    stack.apply()
    assert stack.changes() == {}
    [item] = [r for r in stack.plan().resources if r.name == "app"]
    assert [(d["size"], d["thin"]) for d in item.observed.state["disks"]] == [(4, False)]
    stack.apply(destroy=True)


@pytest.mark.parametrize("linked", [False, True])
def test_a_clone_whose_disk_its_clone_call_cannot_make_is_refused_at_plan_naming_the_field(qemu_host, linked):
    qemu_host.add_template("golden")  # one thin 4 GiB disk
    stack = Stack(qemu_host, "refused").vm("app", clone_from="golden", linked_clone=linked, cpus=1,
                                           memory="256MiB", disks=[{"size": 2, "thin": False}])
    with pytest.raises(SpecError) as refused:
        stack.plan()
    message = str(refused.value)
    assert "disks[0].size" in message and "never shrink" in message
    assert "disks[0].thin" in message and "clone of 'golden' keeps its disk sda's thin (True)" in message
    assert qemu_host.names() == ["golden"]
