"""Disks, NICs and GPUs <-> the ``<devices>`` of a libvirt domain, with no I/O.

- A disk is a volume of a storage pool (``<disk type='volume'>``): qcow2 when thin, raw allocated in full when
  ``thin=False``, named ``<vm>-<uuid8>-<slot>.qcow2|.raw`` so a delete removes exactly the volumes virtplane made
  for that domain. Its slot is
  its target device: ``sda``… on the SCSI bus (bus ``paravirtual``: a virtio-scsi controller), ``sda``… on SATA,
  ``vda``… for ``virtio-blk``, ``hda``… for IDE (machine type ``pc`` only).
- A NIC is ``<interface type='network'>`` on a libvirt network (model virtio, e1000 or e1000e), its slot the user
  alias ``ua-net0``; an SR-IOV NIC is ``<interface type='hostdev' managed='yes'>`` holding a virtual function of
  the PF named in ``device``, with the network's VLAN as ``<vlan><tag>`` (libvirt sets it on the VF).
- A GPU is ``<hostdev mode='subsystem' type='pci' managed='yes'>`` (passthrough of a whole device) or
  ``<hostdev type='mdev' model='vfio-pci'>`` (a vGPU: an mdev of the chosen type on the GPU), aliased ``ua-gpuN``.

Formats: https://libvirt.org/formatdomain.html#hard-drives-floppy-disks-cdroms,
#network-interfaces (#pci-passthrough, #vlan-tagging), #host-device-assignment (#mediated-devices-vfio).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from virtplane.specs import DiskSpec, GpuSpec, NicSpec

BUS_OF = {"paravirtual": "scsi", "sata": "sata", "virtio-blk": "virtio", "ide": "ide"}
PREFIX_OF = {"scsi": "sd", "sata": "sd", "virtio": "vd", "ide": "hd"}
ADAPTER_MODELS = {"paravirtual": "virtio", "e1000": "e1000", "e1000e": "e1000e"}
VENDORS = {"0x10de": "nvidia", "0x1002": "amd", "0x8086": "intel"}
GiB = 1024**3
_PCI = re.compile(r"^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$")


@dataclass(frozen=True)
class Volume:
    capacity: int  # bytes
    allocation: int  # bytes

    @property
    def size_gib(self) -> int:
        return -(-self.capacity // GiB)

    @property
    def thin(self) -> bool:
        return self.allocation < self.capacity


@dataclass
class NetworkNames:
    """The VLAN of each network virtplane knows (declared ones and networks carrying our marker): an SR-IOV NIC's
    VLAN tag reads back as the network it was declared on."""

    vlans: dict[str, int] = field(default_factory=dict)

    def vlan(self, network: str) -> int:
        return self.vlans.get(network, 0)


@dataclass(frozen=True)
class PciFunction:
    address: str  # 0000:3b:00.0
    vendor_id: str | None = None
    class_id: str | None = None
    parent_pf: str | None = None  # a VF's physical function


@dataclass
class PciView:
    """The host's PCI functions by address (from its node devices), for telling a GPU's vendor and a VF's PF."""

    functions: dict[str, PciFunction] = field(default_factory=dict)


def pci_address(text: str) -> tuple[str, str, str, str]:
    """``0000:3b:00.0`` or ``3b:00.0`` -> the four hex parts; ValueError when it is no PCI address."""
    found = _PCI.match(text.strip())
    if found is None:
        raise ValueError(f"{text!r} is not a PCI address such as 0000:3b:00.0")
    return (found.group(1) or "0000").lower(), found.group(2).lower(), found.group(3).lower(), found.group(4)


def address_element(address: str, tag: str = "address", with_type: bool = False) -> ET.Element:
    domain, bus, slot, function = pci_address(address)
    attributes = {"type": "pci"} if with_type else {}
    attributes |= {"domain": f"0x{domain}", "bus": f"0x{bus}", "slot": f"0x{slot}", "function": f"0x{function}"}
    return ET.Element(tag, attributes)


def address_of(element: ET.Element | None) -> str | None:
    if element is None or element.get("bus") is None:
        return None
    def part(name: str, width: int) -> str:
        return f"{int(element.get(name, '0'), 16):0{width}x}"
    return f"{part('domain', 4)}:{part('bus', 2)}:{part('slot', 2)}.{int(element.get('function', '0'), 16)}"


def volume_name(domain: str, uuid: str, slot: str, thick: bool = False) -> str:
    """``<vm>-<uuid8>-<slot>.qcow2`` (thin), or ``.raw`` for a thick disk (a raw volume allocated in full: libvirt
    preallocates only qcow2's metadata, so a thick qcow2 could not be told from a thin one)."""
    return f"{domain}-{uuid.replace('-', '')[:8]}-{slot}.{'raw' if thick else 'qcow2'}"


def is_raw(volume: str) -> bool:
    return volume.endswith(".raw")


def made_by_us(volume: str, domain: str, uuid: str) -> bool:
    return volume.startswith(f"{domain}-{uuid.replace('-', '')[:8]}-") and volume.endswith((".qcow2", ".raw"))


def new_slot(collection: str, item: Mapping[str, Any], taken: set[str]) -> str:
    if collection == "nics":
        return _next("net", taken, letters=False)
    bus = BUS_OF.get(item.get("bus") or "paravirtual", "scsi")
    return _next(PREFIX_OF[bus], taken, letters=True)


def _next(prefix: str, taken: set[str], *, letters: bool) -> str:
    index = 0
    while True:
        slot = f"{prefix}{_letters(index)}" if letters else f"{prefix}{index}"
        if slot not in taken:
            return slot
        index += 1


def _letters(index: int) -> str:
    text = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        text = chr(ord("a") + rest) + text
    return text


@dataclass
class DeviceWriter:
    """Builds device elements for one domain: ``pool`` for new volumes, ``vfs`` the virtual function chosen per
    SR-IOV NIC slot, ``gpu_sources`` per GPU index the PCI address (passthrough) or mdev (uuid, profile, parent)."""

    domain: str
    uuid: str
    pool: str
    networks: NetworkNames = field(default_factory=NetworkNames)
    vfs: dict[str, str] = field(default_factory=dict)
    gpu_sources: dict[int, dict[str, str]] = field(default_factory=dict)

    def volume(self, disk: DiskSpec) -> tuple[str, str]:
        assert disk.slot is not None
        return disk.storage or self.pool, volume_name(self.domain, self.uuid, disk.slot, thick=disk.thin is False)

    def disk(self, disk: DiskSpec) -> ET.Element:
        pool, volume = self.volume(disk)
        element = ET.Element("disk", {"type": "volume", "device": "disk"})
        ET.SubElement(element, "driver", {"name": "qemu", "type": "raw" if is_raw(volume) else "qcow2",
                                          "discard": "unmap"})
        ET.SubElement(element, "source", {"pool": pool, "volume": volume})
        ET.SubElement(element, "target", {"dev": disk.slot or "", "bus": BUS_OF[disk.bus or "paravirtual"]})
        return element

    def nic(self, nic: NicSpec) -> ET.Element:
        assert nic.slot is not None
        if nic.adapter == "sriov":
            element = ET.Element("interface", {"type": "hostdev", "managed": "yes"})
            source = ET.SubElement(element, "source")
            source.append(address_element(self.vfs[nic.slot], with_type=True))
            vlan = self.networks.vlan(nic.network)
            if vlan:
                ET.SubElement(ET.SubElement(element, "vlan"), "tag", {"id": str(vlan)})
        else:
            element = ET.Element("interface", {"type": "network"})
            ET.SubElement(element, "source", {"network": nic.network})
            ET.SubElement(element, "model", {"type": ADAPTER_MODELS[nic.adapter or "paravirtual"]})
        ET.SubElement(element, "alias", {"name": f"ua-{nic.slot}"})
        return element

    def gpu(self, index: int, gpu: GpuSpec) -> ET.Element:
        source = self.gpu_sources.get(index, {})
        if gpu.mode == "vgpu":
            element = ET.Element("hostdev", {"mode": "subsystem", "type": "mdev", "model": "vfio-pci",
                                             "display": "off"})
            ET.SubElement(ET.SubElement(element, "source"), "address", {"uuid": source["uuid"]})
        else:
            element = ET.Element("hostdev", {"mode": "subsystem", "type": "pci", "managed": "yes"})
            ET.SubElement(element, "source").append(address_element(source.get("address") or gpu.device or ""))
        ET.SubElement(element, "alias", {"name": f"ua-gpu{index}"})
        return element

    def vgpu_records(self, gpus: list[GpuSpec]) -> dict[int, dict[str, str]]:
        """What the marker keeps of each vGPU: its profile and parent (an mdev's type is the host's to tell, and
        a host without the mdev, such as the test driver, cannot)."""
        return {index: {k: v for k, v in self.gpu_sources[index].items() if k in ("profile", "parent", "uuid")}
                for index, gpu in enumerate(gpus) if gpu.mode == "vgpu" and index in self.gpu_sources}


def ensure_controllers(device_list: ET.Element) -> None:
    """A virtio-scsi controller when a disk is on the SCSI bus (libvirt would add an LSI one)."""
    on_scsi = any(target.get("bus") == "scsi" for target in device_list.findall("disk/target"))
    has = any(c.get("type") == "scsi" for c in device_list.findall("controller"))
    if on_scsi and not has:
        device_list.append(ET.Element("controller", {"type": "scsi", "index": "0", "model": "virtio-scsi"}))


# ---- reading ------------------------------------------------------------------------------------------------


def read_disks(root: ET.Element, volumes: Mapping[tuple[str, str], Volume]) -> list[dict[str, Any]]:
    scsi_models = {c.get("index", "0"): c.get("model") for c in root.findall("devices/controller")
                   if c.get("type") == "scsi"}
    found = []
    for disk in root.findall("devices/disk"):
        if disk.get("device", "disk") != "disk":
            continue
        target = disk.find("target")
        source = disk.find("source")
        if target is None:
            continue
        bus = target.get("bus") or "virtio"
        pool = source.get("pool") if source is not None else None
        volume = volumes.get((pool or "", source.get("volume") or "")) if source is not None else None
        if bus == "scsi":
            controller = disk.find("address")
            model = scsi_models.get(controller.get("controller", "0") if controller is not None else "0")
            neutral = "lsilogic" if model in ("lsilogic", "lsisas1068") else "paravirtual"
        else:
            neutral = {"sata": "sata", "virtio": "virtio-blk", "ide": "ide"}.get(bus, bus)
        found.append({"size": volume.size_gib if volume else None, "storage": pool,
                      "thin": volume.thin if volume else None, "bus": neutral, "slot": target.get("dev")})
    return sorted(found, key=lambda d: (len(d["slot"] or ""), d["slot"] or ""))


def nic_slot(interface: ET.Element) -> str | None:
    alias = interface.find("alias")
    name = alias.get("name", "") if alias is not None else ""
    return name.removeprefix("ua-") if name.startswith("ua-") else None


def read_nics(root: ET.Element, networks: NetworkNames, pci: PciView,
              declared: list[NicSpec] | None) -> list[dict[str, Any]]:
    declared_by_slot = {nic.slot: nic for nic in declared or [] if nic.slot}
    found = []
    for position, interface in enumerate(root.findall("devices/interface")):
        slot = nic_slot(interface) or f"mac-{position}"
        if interface.get("type") == "hostdev":
            vf = address_of(interface.find("source/address"))
            tag = interface.find("vlan/tag")
            vlan = int(tag.get("id", "0")) if tag is not None else 0
            want = declared_by_slot.get(slot)
            network = want.network if want is not None and networks.vlan(want.network) == vlan else (
                next((name for name, v in sorted(networks.vlans.items()) if v == vlan), f"vlan{vlan}"))
            function = pci.functions.get(vf or "")
            found.append({"network": network, "adapter": "sriov",
                          "device": function.parent_pf if function else None, "slot": slot})
            continue
        source = interface.find("source")
        network = (source.get("network") or source.get("bridge")) if source is not None else None
        model = interface.find("model")
        model_type = model.get("type") if model is not None else None
        adapter = next((name for name, value in ADAPTER_MODELS.items() if value == model_type), model_type)
        found.append({"network": network, "adapter": adapter, "device": None, "slot": slot})
    return sorted(found, key=lambda n: (len(n["slot"]), n["slot"]))


def read_gpus(root: ET.Element, vgpus: Mapping[int, dict[str, str]], pci: PciView) -> list[dict[str, Any]]:
    by_uuid = {record.get("uuid"): record for record in vgpus.values()}
    found = []
    for hostdev in root.findall("devices/hostdev"):
        if hostdev.get("type") == "mdev":
            source = hostdev.find("source/address")
            record = by_uuid.get(source.get("uuid") if source is not None else None, {})
            parent = pci.functions.get(record.get("parent", ""))
            found.append({"mode": "vgpu", "profile": record.get("profile"), "device": None,
                          "vendor": VENDORS.get(parent.vendor_id or "") if parent else None})
        elif hostdev.get("type") == "pci":
            address = address_of(hostdev.find("source/address"))
            function = pci.functions.get(address or "")
            if function is not None and function.parent_pf:
                continue  # a VF given as a plain hostdev is a NIC, not a GPU
            found.append({"mode": "passthrough", "profile": None, "device": address,
                          "vendor": VENDORS.get(function.vendor_id or "") if function else None})
    return found


def hostdev_addresses(root: ET.Element) -> list[str]:
    """Every PCI function a domain holds (GPUs, VFs as hostdevs or interfaces)."""
    found = [address_of(h.find("source/address")) for h in root.findall("devices/hostdev") if h.get("type") == "pci"]
    found += [address_of(i.find("source/address")) for i in root.findall("devices/interface")
              if i.get("type") == "hostdev"]
    return [address for address in found if address]


def mdev_uuids(root: ET.Element) -> list[str]:
    return [source.get("uuid", "") for source in root.findall("devices/hostdev/source/address")
            if source.get("uuid")]
