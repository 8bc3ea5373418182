"""Clones on a real libvirtd with QEMU: a full clone copies each volume of the source domain (``createXMLFrom``), a
linked clone makes qcow2 overlays backed by them; the clone takes the declared fields and reads back in sync, and
its delete removes its own volumes, never the source's."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.conformance.stack import Stack


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
