"""The libvirt cloud-init seed, pure: its volume's name carries the domain and the digest, its CD-ROM takes a SATA unit
no disk holds and is not one of the VM's disks, and a clone does not take over its source's seed."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tests.unit.test_libvirt_mapping import OWNER, UUID, built, read, spec
from virtplane.providers.libvirt import cidata, rewrite

DIGEST = "sha256:" + "ab" * 32


def with_seed(root: ET.Element) -> ET.Element:
    volume = cidata.volume_name("db", UUID, DIGEST)
    root.find("devices").append(cidata.new_drive(root, "default", volume))
    return root


def test_the_seed_volume_names_the_domain_and_the_digest_and_reads_back_as_it():
    root = with_seed(built(spec(disks=[{"size": 10}])))
    assert cidata.volume_name("db", UUID, DIGEST) == f"db-0f8b4a9e-cidata-{'ab' * 32}.iso"
    assert cidata.digest(root, "db", UUID) == DIGEST
    assert cidata.digest(root, "db", "1" + UUID[1:]) is None  # another domain's of that name: not this one's


def test_the_cdrom_is_not_one_of_the_vms_disks():
    root = with_seed(built(spec(disks=[{"size": 10}])))
    assert [disk["slot"] for disk in read(root)["disks"]] == ["sda"]


def test_the_cdrom_takes_the_highest_sata_unit_the_sata_disks_leave_free():
    root = built(spec(disks=[{"size": 1, "bus": "sata"}] * 6))
    assert [d.find("target").get("dev") for d in root.findall("devices/disk")] == [f"sd{c}" for c in "abcdef"]
    root = built(spec(disks=[{"size": 1, "bus": "sata"}] * 5))
    assert cidata.new_drive(root, "default", "x").find("address").get("unit") == "5"
    root = built(spec(disks=[{"size": 1, "bus": "sata"}] * 6))
    root.find("devices").remove(root.findall("devices/disk")[2])
    assert cidata.new_drive(root, "default", "x").find("address").get("unit") == "2"


def test_a_clone_leaves_its_sources_seed_behind_and_keeps_other_cdroms():
    root = with_seed(built(spec(disks=[{"size": 10}])))
    other = ET.SubElement(root.find("devices"), "disk", {"type": "file", "device": "cdrom"})
    ET.SubElement(other, "source", {"file": "/isos/debian.iso"})
    ET.SubElement(other, "target", {"dev": "sdc", "bus": "sata"})
    rewrite.as_clone(root, "copy", "2" + UUID[1:], OWNER, None)
    cdroms = [d for d in root.findall("devices/disk") if d.get("device") == "cdrom"]
    assert [d.find("source").attrib for d in cdroms] == [{"file": "/isos/debian.iso"}]
