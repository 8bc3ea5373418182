"""A VirtualMachine spec <-> libvirt domain XML, both ways, with no I/O (https://libvirt.org/formatdomain.html).

- CPUs: ``<vcpu>`` with ``<cpu><topology sockets cores threads>`` when ``sockets`` is set; nested virtualization is
  ``<cpu mode='host-passthrough'>`` requiring ``vmx`` (Intel) or ``svm`` (AMD).
- Memory: ``<memory>`` and ``<currentMemory>`` (MiB).
- ``machine``: the QEMU machine type of ``<os><type machine=…>`` (``q35``, ``pc-q35-7.2``); libvirt expands ``q35``
  and ``pc`` to the newest versioned type, which reads back as the alias declared.
- Firmware: BIOS, or UEFI by firmware autoselection (``<os firmware='efi'>``); secure boot turns the
  ``secure-boot`` and ``enrolled-keys`` firmware features on (off without it) and adds ``<loader secure='yes'/>``
  and SMM. An NVRAM element libvirt wrote is kept on every rewrite, so the guest's variables survive updates.
- Disks (devices.py): volumes of a storage pool, slot = the target device (``sda``, ``vdb``); NICs: slot = the
  user alias (``ua-net0`` -> ``net0``); GPUs: PCI and mdev host devices.
- ``guest_os``: the libosinfo id in the metadata, as virt-install and virt-manager record it.
- Tags and the ownership marker: virtplane's metadata element (marker.py).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from virtplane.providers.base import Owner
from virtplane.providers.libvirt import devices, marker
from virtplane.specs import VirtualMachineSpec

LIBOSINFO_NS = "http://libosinfo.org/xmlns/libvirt/domain/1.0"
ET.register_namespace("libosinfo", LIBOSINFO_NS)
GUEST_OS = {"linux": "http://libosinfo.org/linux/2022", "windows": "http://microsoft.com/win/11",
            "other": "http://libosinfo.org/unknown"}
MACHINE_ALIASES = {"q35": "pc-q35-", "pc": "pc-i440fx-"}
DEFAULT_MACHINE = "q35"
SPARE_ROOT_PORTS = 6  # free PCIe root ports a new q35 domain gets, so disks and NICs can be hot-plugged
RUNNING_STATES = {1, 2, 3, 4, 7}  # running, blocked, paused, shutting down, PM-suspended (virDomainState)
NESTED_FEATURES = {"intel": "vmx", "amd": "svm"}


@dataclass(frozen=True)
class Target:
    """What a new domain is built for: ``domain_type`` ``kvm``, ``qemu`` (TCG) or ``test``; the host's CPU vendor
    (nested virtualization requires its extension); the storage pool new volumes go to."""

    domain_type: str
    pool: str
    cpu_vendor: str | None = None
    arch: str = "x86_64"
    spare_root_ports: int = SPARE_ROOT_PORTS


@dataclass
class DomainFacts:
    """What reading a domain needs besides its XML: its state, its host, the pools' volumes and the names the
    stack gives networks."""

    running: bool
    node: str
    volumes: Mapping[tuple[str, str], devices.Volume] = field(default_factory=dict)
    networks: devices.NetworkNames = field(default_factory=devices.NetworkNames)
    pci: devices.PciView = field(default_factory=devices.PciView)


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml)


def to_xml(root: ET.Element) -> str:
    return ET.tostring(root, encoding="unicode")


# ---- building -----------------------------------------------------------------------------------------------


def new_domain(name: str, uuid: str, owner: Owner, spec: VirtualMachineSpec, target: Target,
               devices_for: devices.DeviceWriter) -> ET.Element:
    """A new domain's XML for ``spec`` (creation defaults applied), marked incomplete until its volumes exist."""
    root = ET.Element("domain", {"type": target.domain_type})
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "uuid").text = uuid
    marker.write(root, marker.Marker(owner, complete=False, tags=list(spec.tags or []),
                                     vgpus=devices_for.vgpu_records(spec.gpus or []),
                                     sizes={disk.slot or "": disk.size for disk in spec.disks or []}))
    set_guest_os(root, spec.guest_os)
    set_memory(root, spec.memory or 1024)
    set_vcpus(root, spec.cpus or 1)
    os_element = ET.SubElement(root, "os")
    ET.SubElement(os_element, "type", {"arch": target.arch, "machine": spec.machine or DEFAULT_MACHINE}).text = "hvm"
    features = ET.SubElement(root, "features")
    ET.SubElement(features, "acpi")
    ET.SubElement(features, "apic")
    set_firmware(root, spec.firmware == "uefi", bool(spec.secure_boot))
    set_cpu(root, spec.cpus or 1, spec.sockets, bool(spec.nested_virtualization), target.cpu_vendor)
    ET.SubElement(root, "on_poweroff").text = "destroy"
    ET.SubElement(root, "on_reboot").text = "restart"
    ET.SubElement(root, "on_crash").text = "destroy"
    device_list = ET.SubElement(root, "devices")
    for disk in spec.disks or []:
        device_list.append(devices_for.disk(disk))
    for nic in spec.nics or []:
        device_list.append(devices_for.nic(nic))
    for index, gpu in enumerate(spec.gpus or []):
        device_list.append(devices_for.gpu(index, gpu))
    devices.ensure_controllers(device_list)
    if target.domain_type != "test" and is_q35(spec.machine or DEFAULT_MACHINE):
        ET.SubElement(device_list, "controller", {"type": "pci", "index": "0", "model": "pcie-root"})
        for _ in range(target.spare_root_ports):
            ET.SubElement(device_list, "controller", {"type": "pci", "model": "pcie-root-port"})
    return root


def is_q35(machine: str | None) -> bool:
    return bool(machine) and ("q35" in machine)


def set_memory(root: ET.Element, mib: int) -> None:
    for tag in ("memory", "currentMemory"):
        element = _child(root, tag, after=("name", "uuid", "metadata"))
        element.attrib = {"unit": "KiB"}
        element.text = str(mib * 1024)


def set_vcpus(root: ET.Element, cpus: int) -> None:
    element = _child(root, "vcpu", after=("name", "uuid", "metadata", "memory", "currentMemory"))
    element.attrib = {"placement": "static"}
    element.text = str(cpus)


def set_guest_os(root: ET.Element, guest_os: str | None) -> None:
    if guest_os is None:
        return
    metadata = _child(root, "metadata", after=("name", "uuid", "title", "description"))
    for old in metadata.findall(f"{{{LIBOSINFO_NS}}}libosinfo"):
        metadata.remove(old)
    info = ET.SubElement(metadata, f"{{{LIBOSINFO_NS}}}libosinfo")
    ET.SubElement(info, f"{{{LIBOSINFO_NS}}}os", {"id": GUEST_OS.get(guest_os, guest_os)})


def set_machine(root: ET.Element, machine: str) -> None:
    os_type = root.find("os/type")
    if os_type is not None:
        os_type.set("machine", machine)


def set_firmware(root: ET.Element, uefi: bool, secure_boot: bool) -> None:
    """BIOS or UEFI (with or without secure boot); an existing ``<nvram>`` is kept as it is."""
    os_element = root.find("os")
    assert os_element is not None
    for tag in ("firmware", "loader"):
        for old in os_element.findall(tag):
            os_element.remove(old)
    features = _child(root, "features", after=("os",))
    for old in features.findall("smm"):
        features.remove(old)
    if not uefi:
        os_element.attrib.pop("firmware", None)
        return
    os_element.set("firmware", "efi")
    if features.find("acpi") is None:
        features.insert(0, ET.Element("acpi"))  # libvirt: "UEFI requires ACPI on this architecture"
    position = 1 if os_element.find("type") is not None else 0
    chosen = ET.Element("firmware")
    for name in ("enrolled-keys", "secure-boot"):
        ET.SubElement(chosen, "feature", {"enabled": "yes" if secure_boot else "no", "name": name})
    os_element.insert(position, chosen)
    if secure_boot:
        # libvirt 9 refuses ``<loader secure='no'/>`` beside firmware autoselection ("loader attribute 'secure'
        # cannot be specified when firmware autoselection is enabled"): the firmware features alone say "no".
        os_element.insert(position + 1, ET.Element("loader", {"secure": "yes"}))
        ET.SubElement(features, "smm", {"state": "on"})


def set_cpu(root: ET.Element, cpus: int, sockets: int | None, nested: bool, vendor: str | None) -> None:
    """The ``<cpu>`` element: topology when ``sockets`` is set, host-passthrough with the vendor's virtualization
    extension required when ``nested``."""
    old = root.find("cpu")
    if old is not None:
        root.remove(old)
    if not nested and sockets is None:
        return
    cpu = ET.Element("cpu", {"mode": "host-passthrough", "check": "none"} if nested else {})
    if sockets is not None:
        ET.SubElement(cpu, "topology", {"sockets": str(sockets), "dies": "1", "cores": str(cpus // sockets),
                                        "threads": "1"})
    if nested and vendor in NESTED_FEATURES:
        ET.SubElement(cpu, "feature", {"policy": "require", "name": NESTED_FEATURES[vendor]})
    root.insert(_index_after(root, ("name", "uuid", "metadata", "memory", "currentMemory", "vcpu", "os",
                                    "features")), cpu)


def _child(root: ET.Element, tag: str, after: tuple[str, ...]) -> ET.Element:
    found = root.find(tag)
    if found is None:
        found = ET.Element(tag)
        root.insert(_index_after(root, after), found)
    return found


def _index_after(root: ET.Element, tags: tuple[str, ...]) -> int:
    index = 0
    for position, child in enumerate(root):
        if child.tag in tags:
            index = position + 1
    return index


# ---- reading ------------------------------------------------------------------------------------------------


def vm_state(root: ET.Element, facts: DomainFacts, declared: VirtualMachineSpec | None = None) -> dict[str, Any]:
    """The domain in spec shape (``spec.model_dump()``); ``declared`` names what libvirt cannot tell (an alias
    for the machine type it expanded, the network of an SR-IOV NIC)."""
    found = marker.read(root)
    vcpu = root.find("vcpu")
    cpus = int(vcpu.get("current") or vcpu.text or "1") if vcpu is not None else 1
    topology = root.find("cpu/topology")
    machine = root.find("os/type")
    live_machine = machine.get("machine") if machine is not None else None
    return {
        "cpus": cpus,
        "sockets": int(topology.get("sockets", "1")) if topology is not None else cpus,
        "memory": _kib(root.find("memory")) // 1024,
        "node": facts.node,
        "machine": machine_as_declared(live_machine, declared.machine if declared else None),
        "disks": devices.read_disks(root, facts.volumes),
        "nics": devices.read_nics(root, facts.networks, facts.pci, declared.nics if declared else None),
        "gpus": devices.read_gpus(root, found.vgpus if found else {}, facts.pci),
        "firmware": "uefi" if is_uefi(root) else "bios",
        "secure_boot": is_secure_boot(root),
        "guest_os": guest_os(root),
        "power": "on" if facts.running else "off",
        "nested_virtualization": is_nested(root),
        "clone_from": None,
        "linked_clone": False,
        "tags": found.tags if found else [],
    }


def machine_as_declared(live: str | None, declared: str | None) -> str | None:
    """libvirt stores ``q35`` as ``pc-q35-7.2``: that is what the stack declared, so it reads back as ``q35``."""
    if live and declared in MACHINE_ALIASES and live.startswith(MACHINE_ALIASES[declared]):
        return declared
    return live


def is_uefi(root: ET.Element) -> bool:
    loader = root.find("os/loader")
    return (root.find("os") is not None and root.find("os").get("firmware") == "efi") or (
        loader is not None and loader.get("type") == "pflash")


def is_secure_boot(root: ET.Element) -> bool:
    loader = root.find("os/loader")
    if loader is not None and loader.get("secure") == "yes":
        return True
    return any(feature.get("name") == "secure-boot" and feature.get("enabled") == "yes"
               for feature in root.findall("os/firmware/feature"))


def is_nested(root: ET.Element) -> bool:
    cpu = root.find("cpu")
    if cpu is None:
        return False
    policies = {feature.get("name"): feature.get("policy") for feature in cpu.findall("feature")}
    if any(policies.get(name) in ("disable", "forbid") for name in NESTED_FEATURES.values()):
        return False
    if cpu.get("mode") in ("host-passthrough", "maximum"):
        return True
    return any(policies.get(name) in ("require", "force") for name in NESTED_FEATURES.values())


def guest_os(root: ET.Element) -> str | None:
    found = root.find(f"metadata/{{{LIBOSINFO_NS}}}libosinfo/{{{LIBOSINFO_NS}}}os")
    if found is None:
        return None
    os_id = found.get("id", "")
    return next((name for name, value in GUEST_OS.items() if value == os_id), os_id)


def nvram_path(root: ET.Element) -> str | None:
    return root.findtext("os/nvram")


def _kib(element: ET.Element | None) -> int:
    if element is None or not element.text:
        return 0
    value = int(element.text)
    unit = (element.get("unit") or "KiB").lower()
    factor = {"b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "kb": 1000 / 1024, "m": 1024, "mib": 1024,
              "mb": 1000**2 / 1024, "g": 1024**2, "gib": 1024**2, "gb": 1000**3 / 1024}.get(unit, 1)
    return int(value * factor)
