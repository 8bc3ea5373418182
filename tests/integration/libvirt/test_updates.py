"""Updates on a real libvirtd with QEMU (the lab's, TCG): in place where QEMU can (hot-plugged disks and NICs, disks
grown live), otherwise the same domain (same UUID) defined again and restarted; never destroyed and recreated, and
never losing its NVRAM."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from tests.conformance.stack import Stack
from virtplane.plan import Action
from virtplane.providers.base import Rule

GiB = 1024**3


def small(**fields):
    return {"cpus": 1, "memory": "256MiB", "power": "on", "disks": [{"size": 1}], "nics": [{"network": "default"}],
            **fields}


def live(peer, name: str) -> tuple[int, str, ET.Element]:
    domain = peer.conn.lookupByName(name)
    return domain.ID(), domain.UUIDString(), ET.fromstring(domain.XMLDesc(0))


def test_a_disk_and_a_nic_are_hot_plugged_into_the_running_domain_without_a_restart(qemu_host):
    stack = Stack(qemu_host, "hot").vm("web", **small())
    stack.apply()
    before, uuid, _ = live(qemu_host, "web")
    stack.vm("web", **small(disks=[{"size": 1}, {"size": 2}], nics=[{"network": "default"}, {"network": "default"}]))
    [item] = [r for r in stack.plan().resources if r.name == "web"]
    assert {c.change.path: c.rule for c in item.changes} == {"disks[sdb]": Rule.IN_PLACE, "nics[net1]": Rule.IN_PLACE}
    stack.apply()
    after, same_uuid, root = live(qemu_host, "web")
    assert (after, same_uuid) == (before, uuid)  # the same QEMU process: never restarted
    assert [t.get("dev") for t in root.findall("devices/disk/target")] == ["sda", "sdb"]
    assert len(root.findall("devices/interface")) == 2
    assert stack.changes() == {}


def test_a_disk_grows_live_and_a_removed_one_takes_its_volume_with_it(qemu_host):
    stack = Stack(qemu_host, "grow").vm("web", **small(disks=[{"size": 1}, {"size": 1}]))
    stack.apply()
    before, _, _ = live(qemu_host, "web")
    stack.vm("web", **small(disks=[{"size": 3}]))
    stack.apply(allow_data_loss=True)
    after, _, root = live(qemu_host, "web")
    assert after == before
    pool = qemu_host.conn.storagePoolLookupByName("default")
    pool.refresh(0)
    volumes = {v.name(): v.info()[1] for v in pool.listAllVolumes(0)}
    [(name, capacity)] = volumes.items()  # the second disk's volume is gone
    assert capacity == 3 * GiB and root.find("devices/disk/source").get("volume") == name
    assert stack.changes() == {}


def test_memory_is_changed_by_redefining_the_same_domain_and_restarting_it(qemu_host):
    stack = Stack(qemu_host, "mem").vm("db", **small())
    stack.apply()
    before, uuid, _ = live(qemu_host, "db")
    stack.vm("db", **small(memory="512MiB"))
    action, changes = stack.changes()["db"]
    assert action is Action.UPDATE and changes == [("memory", 256, 512)]
    stack.apply()
    after, same_uuid, root = live(qemu_host, "db")
    assert same_uuid == uuid and after != before  # the same domain, started again
    assert int(root.findtext("memory")) == 512 * 1024
    assert stack.changes() == {}


def test_uefi_without_secure_boot_is_defined_and_secure_boot_switches_on_and_off_in_sync(qemu_host):
    stack = Stack(qemu_host, "efi-plain").vm("plain", **small(firmware="uefi", power="off"))
    stack.apply()
    assert stack.changes() == {}
    for secure_boot in (True, False):
        stack.vm("plain", **small(firmware="uefi", secure_boot=secure_boot, power="off"))
        stack.apply()
        assert stack.changes() == {}
        loader = live(qemu_host, "plain")[2].find("os/loader")
        assert (loader is not None and loader.get("secure") == "yes") is secure_boot


def test_an_update_keeps_a_uefi_domains_nvram_and_a_delete_removes_it(qemu_host, fresh_libvirtd):
    stack = Stack(qemu_host, "efi").vm("desk", **small(firmware="uefi", secure_boot=True))
    stack.apply()
    _, _, root = live(qemu_host, "desk")
    nvram = root.findtext("os/nvram")
    assert nvram and nvram.startswith("/var/lib/libvirt/qemu/nvram/")
    on_disk = Path(fresh_libvirtd.run_dir) / "lib" / nvram.removeprefix("/var/lib/libvirt/")
    on_disk.write_bytes(on_disk.read_bytes()[:-4] + b"vars")  # the guest's own variables
    stack.vm("desk", **small(firmware="uefi", secure_boot=True, cpus=2, tags=["x"]))
    stack.apply()
    _, _, root = live(qemu_host, "desk")
    assert root.findtext("os/nvram") == nvram and on_disk.read_bytes().endswith(b"vars")
    stack.apply(destroy=True)
    assert not on_disk.exists() and qemu_host.count("desk") == 0
    pool = qemu_host.conn.storagePoolLookupByName("default")
    pool.refresh(0)
    assert pool.listAllVolumes(0) == []


def test_a_thick_disk_is_allocated_in_full_and_reads_back_thick(qemu_host):
    stack = Stack(qemu_host, "thick").vm("db", **small(power="off", disks=[{"size": 1, "thin": False},
                                                                          {"size": 1, "thin": True}]))
    stack.apply()
    pool = qemu_host.conn.storagePoolLookupByName("default")
    pool.refresh(0)
    allocated = sorted(v.info()[2] >= GiB for v in pool.listAllVolumes(0))
    assert allocated == [False, True]
    assert stack.changes() == {}
