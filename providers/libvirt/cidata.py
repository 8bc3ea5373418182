"""Cloud-init on libvirt, pure: the NoCloud image (providers/nocloud.py) as a raw volume of the endpoint's storage pool,
held by a read-only SATA CD-ROM of the domain (https://libvirt.org/formatdomain.html#hard-drives-floppy-disks-cdroms).

The volume's name carries the domain's name, its UUID's first eight hex digits and the documents' digest
(``<vm>-<uuid8>-cidata-<sha256 hex>.iso``): reading the domain's XML back gives the digest of what the guest holds, and
tells virtplane's seed volumes (deleted with the domain) from anyone else's. The CD-ROM's target is ``sdz`` at an
explicit SATA address (controller 0, the highest unit no other SATA device of the domain holds), away from the
``sdX`` slots disks take from ``sda`` up.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from virtplane import cloudinit

TARGET = "sdz"
ALIAS = "ua-cidata"
SATA_UNITS = 6  # ports of QEMU's ICH9 AHCI controller, SATA controller 0 of a domain
_HEX = re.compile(r"^[0-9a-f]{64}$")
_ANY_SEED = re.compile(r"-[0-9a-f]{8}-cidata-[0-9a-f]{64}\.iso$")


def volume_prefix(domain: str, uuid: str) -> str:
    return f"{domain}-{uuid.replace('-', '')[:8]}-cidata-"


def volume_name(domain: str, uuid: str, digest: str) -> str:
    return f"{volume_prefix(domain, uuid)}{digest.removeprefix(cloudinit.DIGEST_PREFIX)}.iso"


def ours(volume: str, domain: str, uuid: str) -> bool:
    """True for a seed volume virtplane made for this domain."""
    prefix = volume_prefix(domain, uuid)
    return volume.startswith(prefix) and volume.endswith(".iso") and bool(_HEX.match(volume[len(prefix):-4]))


def is_seed(volume: str) -> bool:
    """True for a seed volume virtplane made for any domain (a clone does not take over its source's)."""
    return bool(_ANY_SEED.search(volume))


def drive(root: ET.Element, domain: str, uuid: str) -> ET.Element | None:
    """The domain's CD-ROM holding a seed volume of ours, or None."""
    for disk in root.findall("devices/disk"):
        source = disk.find("source")
        if disk.get("device") == "cdrom" and source is not None and ours(source.get("volume") or "", domain, uuid):
            return disk
    return None


def digest(root: ET.Element, domain: str, uuid: str) -> str | None:
    """The digest of the documents the domain's seed CD-ROM holds (what ``cloud_init`` reads back)."""
    found = drive(root, domain, uuid)
    if found is None:
        return None
    volume = found.find("source").get("volume") or ""  # type: ignore[union-attr]
    return cloudinit.DIGEST_PREFIX + volume[len(volume_prefix(domain, uuid)):-4]


def new_drive(root: ET.Element, pool: str, volume: str) -> ET.Element:
    """A read-only SATA CD-ROM holding ``volume``, at the highest SATA unit of controller 0 the domain leaves free."""
    taken = {int(address.get("unit", "0")) for disk in root.findall("devices/disk")
             if (target := disk.find("target")) is not None and target.get("bus") == "sata"
             and (address := disk.find("address")) is not None and address.get("controller", "0") == "0"}
    taken |= {index for index in range(SATA_UNITS) for disk in root.findall("devices/disk")
              if (target := disk.find("target")) is not None and target.get("bus") == "sata"
              and disk.find("address") is None and target.get("dev") == f"sd{chr(ord('a') + index)}"}
    unit = next((u for u in range(SATA_UNITS - 1, -1, -1) if u not in taken), SATA_UNITS - 1)
    element = ET.Element("disk", {"type": "volume", "device": "cdrom"})
    ET.SubElement(element, "driver", {"name": "qemu", "type": "raw"})
    ET.SubElement(element, "source", {"pool": pool, "volume": volume})
    ET.SubElement(element, "target", {"dev": TARGET, "bus": "sata"})
    ET.SubElement(element, "readonly")
    ET.SubElement(element, "alias", {"name": ALIAS})
    ET.SubElement(element, "address", {"type": "drive", "controller": "0", "bus": "0", "target": "0",
                                       "unit": str(unit)})
    return element
