"""virtplane's ownership marker on libvirt: one element in the domain's (or network's) ``<metadata>``, in
virtplane's own XML namespace, as libvirt's metadata documentation asks of applications
(https://libvirt.org/formatdomain.html#general-metadata):

    <metadata>
      <virtplane:owner xmlns:virtplane="https://virtplane.dev/xmlns/libvirt/1"
                       marker="stack=…;endpoint=…;resource=…" complete="yes">
        <virtplane:tag>web</virtplane:tag>
        <virtplane:vgpu slot="0" profile="nvidia-471" parent="0000:3b:00.0"/>
        <virtplane:vlan>110</virtplane:vlan>
        <virtplane:disk slot="sda" size="10"/>
        <virtplane:restore power="on"/>
      </virtplane:owner>
    </metadata>

``marker`` is the shared format (``Owner.encode``). A create defines the domain with ``complete="no"`` before it
makes any volume, and marks it complete once every volume exists: a domain found incomplete is an interrupted
create, finished by the next apply, and a volume is never made that no domain of ours refers to. Tags (libvirt
has none), the vGPU profile an mdev was made with, a network's VLAN id and, until a create is complete, the
sizes of the volumes it still has to make are kept here too, and so is the power record of providers/marker.py
(``restore``: the power state of a domain virtplane shut down for a change, to restore should the run be killed
before it starts the domain again).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from virtplane.providers.base import Owner

NS = "https://virtplane.dev/xmlns/libvirt/1"
PREFIX = "virtplane"
ET.register_namespace(PREFIX, NS)
ELEMENT = f"{{{NS}}}owner"


@dataclass
class Marker:
    owner: Owner
    complete: bool = True
    tags: list[str] = field(default_factory=list)
    vgpus: dict[int, dict[str, str]] = field(default_factory=dict)  # GPU index -> profile, parent, uuid
    vlan: int | None = None
    sizes: dict[str, int] = field(default_factory=dict)  # slot -> GiB of volumes still to make (complete="no")
    restore: str | None = None  # the power state to restore (providers/marker.py)

    def element(self) -> ET.Element:
        root = ET.Element(ELEMENT, {"marker": self.owner.encode(), "complete": "yes" if self.complete else "no"})
        for tag in sorted(self.tags):
            ET.SubElement(root, f"{{{NS}}}tag").text = tag
        for index, vgpu in sorted(self.vgpus.items()):
            ET.SubElement(root, f"{{{NS}}}vgpu", {"slot": str(index), **vgpu})
        if self.vlan is not None:
            ET.SubElement(root, f"{{{NS}}}vlan").text = str(self.vlan)
        for slot, size in sorted(self.sizes.items()) if not self.complete else ():
            ET.SubElement(root, f"{{{NS}}}disk", {"slot": slot, "size": str(size)})
        if self.restore is not None:
            ET.SubElement(root, f"{{{NS}}}restore", {"power": self.restore})
        return root

    def xml(self) -> str:
        """The element alone, as ``virDomainSetMetadata`` takes it: without a namespace (libvirt puts it and every
        child in the namespace it is given)."""
        return without_namespace(self.element())


def without_namespace(element: ET.Element) -> str:
    plain = ET.Element(element.tag.rsplit("}", 1)[-1], dict(element.attrib))
    plain.text = element.text
    for child in element:
        plain.append(ET.fromstring(without_namespace(child)))
    return ET.tostring(plain, encoding="unicode")


def read(root: ET.Element) -> Marker | None:
    """The marker in a domain's or network's XML, or None."""
    found = root.find(f"metadata/{ELEMENT}")
    if found is None:
        return None
    owner = Owner.decode(found.get("marker"))
    if owner is None:
        return None
    vlan = found.findtext(f"{{{NS}}}vlan")
    restore = found.find(f"{{{NS}}}restore")
    return Marker(owner, complete=found.get("complete") != "no",
                  tags=sorted(t.text or "" for t in found.findall(f"{{{NS}}}tag")),
                  vgpus={int(v.get("slot", "0")): {k: val for k, val in v.attrib.items() if k != "slot"}
                         for v in found.findall(f"{{{NS}}}vgpu")},
                  vlan=int(vlan) if vlan and vlan.isdigit() else None,
                  sizes={d.get("slot", ""): int(d.get("size", "0")) for d in found.findall(f"{{{NS}}}disk")},
                  restore=restore.get("power") or None if restore is not None else None)


def write(root: ET.Element, marker: Marker) -> None:
    """Put ``marker`` into ``root``'s metadata, replacing ours (other applications' elements stay)."""
    metadata = root.find("metadata")
    if metadata is None:
        metadata = ET.Element("metadata")
        root.insert(_after_identity(root), metadata)
    for old in metadata.findall(ELEMENT):
        metadata.remove(old)
    metadata.append(marker.element())


def _after_identity(root: ET.Element) -> int:
    """Where ``<metadata>`` goes: after name, uuid, title and description (libvirt's own order)."""
    index = 0
    for position, child in enumerate(root):
        if child.tag in ("name", "uuid", "title", "description", "genid"):
            index = position + 1
    return index
