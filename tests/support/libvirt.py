"""Out-of-band changes on a libvirt host through libvirt-python itself (an administrator's virsh), never through
virtplane's driver. A config change to a running domain takes effect as an administrator makes it: defined, then
the domain restarted."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import libvirt

from virtplane.providers.base import Owner

NS = "https://virtplane.dev/xmlns/libvirt/1"  # virtplane's metadata namespace (written here by hand)


def redefine(conn: Any, name: str, edit: Any) -> None:
    domain = conn.lookupByName(name)
    root = ET.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    edit(root)
    conn.defineXML(ET.tostring(root, encoding="unicode"))
    if domain.isActive():
        domain.destroy()
        domain.create()


def set_cpus(conn: Any, name: str, cpus: int) -> None:
    def edit(root: ET.Element) -> None:
        root.find("vcpu").text = str(cpus)  # type: ignore[union-attr]
        cpu = root.find("cpu")
        if cpu is not None:
            for topology in cpu.findall("topology"):
                cpu.remove(topology)
    redefine(conn, name, edit)


def set_memory(conn: Any, name: str, mib: int) -> None:
    def edit(root: ET.Element) -> None:
        for tag in ("memory", "currentMemory"):
            element = root.find(tag)
            if element is not None:
                element.attrib = {"unit": "MiB"}
                element.text = str(mib)
    redefine(conn, name, edit)


def remove_first_nic(conn: Any, name: str) -> None:
    def edit(root: ET.Element) -> None:
        devices = root.find("devices")
        first = sorted(devices.findall("interface"),  # type: ignore[union-attr]
                       key=lambda i: i.find("alias").get("name", "") if i.find("alias") is not None else "")[0]
        devices.remove(first)  # type: ignore[union-attr]
    redefine(conn, name, edit)


def plain_domain(name: str, domain_type: str, metadata: str = "", devices: str = "") -> str:
    return (f"<domain type='{domain_type}'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
            f"<metadata>{metadata}</metadata><os><type arch='x86_64' machine='q35'>hvm</type></os>"
            f"<devices>{devices}</devices></domain>")


def half_created(owner: Owner, domain_type: str, pool: str) -> str:
    """A domain as a create killed after defining it leaves it: our marker, incomplete, naming a disk whose volume
    was never made (its size in the marker)."""
    uuid = "5e1f0c0e-0000-4000-8000-00000000abcd"
    volume = f"{owner.resource}-{uuid.replace('-', '')[:8]}-sda.qcow2"
    metadata = (f"<virtplane:owner xmlns:virtplane='{NS}' marker='{owner.encode()}' complete='no'>"
                "<virtplane:disk slot='sda' size='10'/></virtplane:owner>")  # the suite's first disk
    disk = (f"<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/><source pool='{pool}' "
            f"volume='{volume}'/><target dev='sda' bus='scsi'/></disk><controller type='scsi' model='virtio-scsi'/>")
    return plain_domain(owner.resource, domain_type, metadata, disk).replace("<name>", f"<uuid>{uuid}</uuid><name>", 1)


def empty(conn: Any, keep_networks: tuple[str, ...] = ("default",)) -> None:
    """Remove every domain, every volume of every pool and every network but ``keep_networks``."""
    for domain in conn.listAllDomains(0):
        if domain.isActive():
            domain.destroy()
        domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
    for pool in conn.listAllStoragePools(0):
        pool.refresh(0)
        for volume in pool.listAllVolumes(0):
            volume.delete(0)
    for network in conn.listAllNetworks(0):
        if network.name() not in keep_networks:
            if network.isActive():
                network.destroy()
            network.undefine()


def start_tiny_domain(uri: str, name: str) -> int:
    """Define and start a 64 MiB domain without disks on the libvirt at ``uri``; returns its QEMU's process id as
    this machine sees it (found by the domain's name in QEMU's command line)."""
    import subprocess

    conn = libvirt.open(uri)
    try:
        conn.defineXML(plain_domain(name, "qemu")).create()
    finally:
        conn.close()
    found = subprocess.run(["pgrep", "-f", f"guest={name},"], capture_output=True, text=True, check=False)
    return int(found.stdout.split()[0])


def process_exists(pid: int) -> bool:
    """Whether ``pid`` runs (a process the kernel is still killing, as a namespace ends, gets 30 s to go)."""
    from pathlib import Path

    from virtplane.providers.power import wait_until

    def gone() -> bool:
        status = Path(f"/proc/{pid}/status")
        return not status.exists() or "State:\tZ" in status.read_text()

    return not wait_until(gone, 30.0)


def domain_names(uri: str) -> list[str]:
    conn = libvirt.open(uri)
    try:
        return [domain.name() for domain in conn.listAllDomains(0)]
    finally:
        conn.close()


def add_template(conn: Any, name: str, domain_type: str, pool_name: str = "default", thick: bool = False) -> None:
    """A shut-off domain with one 4 GiB volume: thin qcow2, or raw allocated in full (``thick``)."""
    pool = conn.storagePoolLookupByName(pool_name)
    kind = "raw" if thick else "qcow2"
    allocation = "<allocation unit='GiB'>4</allocation>" if thick else ""
    pool.createXML(f"<volume><name>{name}.{kind}</name><capacity unit='GiB'>4</capacity>{allocation}"
                   f"<target><format type='{kind}'/></target></volume>", 0)
    disk = (f"<disk type='volume' device='disk'><driver name='qemu' type='{kind}'/><source pool='{pool_name}' "
            f"volume='{name}.{kind}'/><target dev='sda' bus='scsi'/></disk>"
            "<controller type='scsi' model='virtio-scsi'/>"
            "<interface type='network'><source network='default'/><model type='virtio'/></interface>")
    conn.defineXML(plain_domain(name, domain_type, devices=disk))
