"""Cloud-init on libvirt: a NoCloud seed volume (label cidata) written with virStorageVolUpload into the endpoint's
pool and held by a read-only SATA CD-ROM, read back with virStorageVolDownload on the lab's real libvirtd; swapped
live when the template changes; deleted with the domain. The test driver cannot write a volume's content: refused at
plan there."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from tests.conformance.stack import Stack
from virtplane.errors import SpecError
from virtplane.providers import nocloud
from virtplane.providers.base import Rule
from virtplane.providers.libvirt import cidata, seed
from virtplane.providers.registry import provider_class
from virtplane.specs import CloudInitSpec

USER = "#cloud-config\nhostname: kvm\npackages: [nginx]\n"
NETWORK = "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n"


def cloud_init(user: str = USER) -> dict[str, Any]:
    return {"user_data": user, "meta_data": "instance-id: kvm-1\nlocal-hostname: kvm\n", "network_config": NETWORK}


def small(**fields: Any) -> dict[str, Any]:
    return {"cpus": 1, "memory": "256MiB", "power": "on", "disks": [{"size": 1}], **fields}


def cdroms(peer: Any, name: str) -> list[ET.Element]:
    root = ET.fromstring(peer.conn.lookupByName(name).XMLDesc(0))
    return [disk for disk in root.findall("devices/disk") if disk.get("device") == "cdrom"]


def seed_volumes(peer: Any) -> list[str]:
    pool = peer.conn.storagePoolLookupByName("default")
    pool.refresh(0)
    return sorted(volume.name() for volume in pool.listAllVolumes(0) if volume.name().endswith(".iso"))


def guest_sees(peer: Any, volume_name: str) -> dict[str, bytes]:
    """The files a guest reads from the CD-ROM: the volume's bytes through virStorageVolDownload."""
    volume = peer.conn.storagePoolLookupByName("default").storageVolLookupByName(volume_name)
    size = volume.info()[1]
    stream = peer.conn.newStream(0)
    volume.download(stream, 0, size, 0)
    data = b""
    while chunk := stream.recv(256 * 1024):
        data += chunk
    stream.finish()
    return nocloud.files(data)


def test_a_new_vm_gets_a_seed_cdrom_the_guest_reads_and_plans_clean(qemu_host):
    stack = Stack(qemu_host, "ci").vm("ci-kvm", **small(cloud_init=cloud_init()))
    stack.apply()
    [drive] = cdroms(qemu_host, "ci-kvm")
    uuid = qemu_host.conn.lookupByName("ci-kvm").UUIDString()
    digest = CloudInitSpec.model_validate(cloud_init()).digest
    volume = drive.find("source").get("volume")
    assert volume == cidata.volume_name("ci-kvm", uuid, digest) and seed_volumes(qemu_host) == [volume]
    assert drive.find("readonly") is not None and drive.find("target").attrib == {"dev": "sdz", "bus": "sata"}
    files = guest_sees(qemu_host, volume)
    assert files["user-data"].decode() == USER and b"instance-id: kvm-1" in files["meta-data"]
    assert b"dhcp4: true" in files["network-config"]
    assert stack.changes() == {}  # the CD-ROM is not one of the VM's disks
    stack.apply(destroy=True)
    assert seed_volumes(qemu_host) == []


def test_a_changed_template_swaps_the_seed_live_and_deletes_the_old_volume(qemu_host):
    stack = Stack(qemu_host, "ci").vm("ci-live", **small(cloud_init=cloud_init()))
    stack.apply()
    domain = qemu_host.conn.lookupByName("ci-live")
    running_as, [old] = domain.ID(), seed_volumes(qemu_host)
    stack.vm("ci-live", **small(cloud_init=cloud_init(USER + "runcmd: [reboot]\n")))
    [item] = [r for r in stack.plan().resources if r.name == "ci-live"]
    assert [(c.change.path, c.rule) for c in item.changes] == [("cloud_init", Rule.IN_PLACE)]
    stack.apply()
    [new] = seed_volumes(qemu_host)
    [drive] = cdroms(qemu_host, "ci-live")  # the live XML: the running guest's drive holds the new media
    assert new != old and drive.find("source").get("volume") == new
    assert qemu_host.conn.lookupByName("ci-live").ID() == running_as  # never restarted
    assert guest_sees(qemu_host, new)["user-data"].decode().endswith("runcmd: [reboot]\n")
    assert stack.changes() == {}


def test_a_first_delivery_to_an_existing_vm_adds_the_drive_with_the_vm_off_and_starts_it_again(qemu_host):
    stack = Stack(qemu_host, "ci").vm("ci-late", **small())
    stack.apply()
    stack.vm("ci-late", **small(cloud_init=cloud_init()))
    [item] = [r for r in stack.plan().resources if r.name == "ci-late"]
    assert [(c.change.path, c.rule) for c in item.changes] == [("cloud_init", Rule.POWER_OFF)]
    stack.apply()
    assert qemu_host.conn.lookupByName("ci-late").isActive()
    [drive] = cdroms(qemu_host, "ci-late")
    assert guest_sees(qemu_host, drive.find("source").get("volume"))["user-data"].decode() == USER
    assert stack.changes() == {}


def test_a_seed_volume_an_interrupted_apply_left_unattached_is_deleted_with_the_vm(qemu_host):
    stack = Stack(qemu_host, "ci").vm("ci-orphan", **small(power="off", cloud_init=cloud_init()))
    stack.apply()
    uuid = qemu_host.conn.lookupByName("ci-orphan").UUIDString()
    stray = cidata.volume_name("ci-orphan", uuid, "sha256:" + "0" * 64)  # made, never attached, then killed
    qemu_host.conn.storagePoolLookupByName("default").createXML(
        f"<volume><name>{stray}</name><capacity>2048</capacity><target><format type='raw'/></target></volume>", 0)
    qemu_host.conn.storagePoolLookupByName("default").createXML(
        "<volume><name>someone-else.iso</name><capacity>2048</capacity></volume>", 0)
    stack.apply(destroy=True)
    assert seed_volumes(qemu_host) == ["someone-else.iso"]  # ours gone, another's left alone


def test_a_clone_of_a_vm_with_cloud_init_gets_its_own_seed_not_its_sources(qemu_host):
    stack = Stack(qemu_host, "ci").vm("ci-gold", **small(power="off", cloud_init=cloud_init()))
    stack.apply()
    stack.vm("ci-copy", cpus=1, memory="256MiB", power="off", clone_from="ci-gold",
             cloud_init=cloud_init(USER + "runcmd: [true]\n"))
    stack.apply()
    [gold], [copy] = cdroms(qemu_host, "ci-gold"), cdroms(qemu_host, "ci-copy")
    copy_uuid = qemu_host.conn.lookupByName("ci-copy").UUIDString()
    assert cidata.ours(copy.find("source").get("volume"), "ci-copy", copy_uuid)
    assert gold.find("source").get("volume") != copy.find("source").get("volume")
    assert stack.changes() == {}
    stack.drop("ci-gold")
    stack.apply(allow_data_loss=True)
    assert len(seed_volumes(qemu_host)) == 1  # the copy's, which outlives its source


def test_the_test_driver_refuses_cloud_init_at_plan_in_one_sentence(test_host):
    stack = Stack(test_host, "ci").vm("ci-test", **small(cloud_init=cloud_init()))
    with pytest.raises(SpecError) as caught:
        stack.plan()
    assert str(caught.value) == ("VirtualMachine 'ci-test': field 'cloud_init': libvirt's test driver cannot write a "
                                 "volume's content (it does not support virStorageVolUpload), so it cannot hold a "
                                 "cloud-init seed; use a QEMU host")
    assert "ci-test" not in test_host.names()



class Killed(BaseException):
    """The apply's process dying at this point (not an Exception: nothing of ours catches it)."""


def test_a_create_killed_before_its_seed_was_written_is_finished_by_the_next_apply(qemu_host, monkeypatch):
    def die(*args: Any, **kwargs: Any) -> None:
        raise Killed()

    stack = Stack(qemu_host, "ci").vm("ci-killed", **small(cloud_init=cloud_init()))
    with monkeypatch.context() as patched:
        patched.setattr(seed, "write", die)
        with pytest.raises(Killed):
            stack.apply()
    assert seed_volumes(qemu_host) == [] and not qemu_host.conn.lookupByName("ci-killed").isActive()
    stack.apply()
    [drive] = cdroms(qemu_host, "ci-killed")
    assert guest_sees(qemu_host, drive.find("source").get("volume"))["user-data"].decode() == USER
    assert qemu_host.conn.lookupByName("ci-killed").isActive() and qemu_host.count("ci-killed") == 1
    assert stack.changes() == {}


def test_cloud_init_with_an_endpoint_pool_that_does_not_exist_is_refused_at_plan(qemu_host, fresh_libvirtd):
    libvirt_provider, kept = provider_class("libvirt"), qemu_host.provider
    qemu_host.provider = libvirt_provider.connect(libvirt_provider.settings_from(
        "conformance", {"uri": fresh_libvirtd.uri, "storage_pool": "seeds"}, {}))
    try:
        stack = Stack(qemu_host, "ci").vm("ci-nopool", cpus=1, memory="256MiB", cloud_init=cloud_init())
        with pytest.raises(SpecError) as caught:
            stack.plan()
    finally:
        qemu_host.provider.close()
        qemu_host.provider = kept
    assert str(caught.value) == ("VirtualMachine 'ci-nopool': field 'cloud_init': the cloud-init seed volume goes to "
                                 "the endpoint's storage pool 'seeds', which does not exist on libvirt endpoint "
                                 "'conformance'")
