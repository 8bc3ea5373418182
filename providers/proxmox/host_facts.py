"""Proxmox VE's answers about a node turned into ``virtplane.inventory.Host`` facts: pure functions, no I/O.

``host_reader`` fetches the answers; everything here only reads them, so it is tested table-driven. Where PVE does
not say something, the fact stays None ("unknown"), never False, and ``Host.sources`` says where each fact was read
or how it was inferred:

- CPU: ``/nodes/{node}/status`` ``cpuinfo``. PVE sends ``model``, ``flags`` (the /proc/cpuinfo flags line) and
  ``hvm`` ("1" when the flags hold vmx or svm), no vendor: the vendor comes from the model name, or from vmx/svm.
- IOMMU: no flag anywhere; a device in an IOMMU group (``iommugroup`` >= 0) means the IOMMU is on, every device
  at -1 means it is off, no device listed means unknown.
- Nested virtualization: the ``nested-virt`` entry of ``/nodes/{node}/capabilities/qemu/cpu-flags?accel=kvm``
  (qemu-server >= 9.0.27) and its ``supported-on`` nodes; older releases have no such entry: unknown.
- SR-IOV: PVE lists virtual functions as PCI functions of their own and (before ``physfn``/``virtfns``) does not
  link them to their physical function. Where the link is given it is used; otherwise VFs are recognised by name
  ("Virtual Function") and the PF is the other function of the same vendor on their bus; VF counts are then only
  given when that PF is the only candidate, and ``vfs_free`` is unknown either way.
- Machine versions: ``/nodes/{node}/capabilities/qemu/machines`` lists the QEMU machine types and versions the
  node's QEMU offers (``pc-q35-9.2+pve1``); unknown when it cannot be read.
- In use: what every VM's ``hostpciN`` holds is mapped in device_use.py, from the configurations host_reader reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from virtplane.inventory import Host, PciDevice, PciMapping, SriovFunction, VgpuType

MIB = 1024 * 1024
PRODUCT = "Proxmox VE"
STATUS = "/nodes/{node}/status"
PCI = "/nodes/{node}/hardware/pci"
MDEV = "/nodes/{node}/hardware/pci/{id}/mdev"
CPU_FLAGS = "/nodes/{node}/capabilities/qemu/cpu-flags"
MACHINES = "/nodes/{node}/capabilities/qemu/machines"
MAPPINGS = "/cluster/mapping/pci"
# Which facts stay unknown when an answer is missing.
AFFECTED = {STATUS: ("cpu_model", "hardware_virtualization", "slat", "memory"),
            PCI: ("pci_devices", "iommu", "sriov"), CPU_FLAGS: ("nested",), MDEV: ("vgpu_types",),
            MAPPINGS: ("pci_mappings",), MACHINES: ("machine_types",)}

_PCI_ADDRESS = re.compile(r"(?:(?P<domain>[0-9a-f]{4,}):)?(?P<bus>[0-9a-f]{2}):(?P<slot>[0-9a-f]{2})\.(?P<fn>[0-7])")
_MAX_INSTANCE = re.compile(r"max_instance=(\d+)")
_VERSION = re.compile(r"pve-manager/(?P<version>[^/\s]+)")


@dataclass
class NodeAnswers:
    """What PVE answered about one node. ``None`` for an answer not read (offline node) or refused; the reason
    is in ``missing`` (answer path -> why)."""

    name: str
    online: bool | None
    status: Mapping[str, Any] | None = None
    pci: list[Mapping[str, Any]] | None = None
    cpu_flags: list[Mapping[str, Any]] | None = None
    machines: list[Mapping[str, Any]] | None = None
    mdev: dict[str, list[Mapping[str, Any]] | None] = field(default_factory=dict)  # device id -> its types
    missing: dict[str, str] = field(default_factory=dict)


# ---- small parsers ---------------------------------------------------------------------------------------------

def pci_address(text: str) -> str:
    """PVE's PCI id as ``domain:bus:slot.function``, lower case: "3b:00.0" -> "0000:3b:00.0"."""
    value = text.strip().lower()
    found = _PCI_ADDRESS.fullmatch(value)
    if not found:
        return value
    return f"{found['domain'] or '0000'}:{found['bus']}:{found['slot']}.{found['fn']}"


def hex_id(value: Any) -> str:
    """A PCI id or class as a lower-case ``0x`` string: "0x10DE" -> "0x10de", "10de" -> "0x10de", 4318 -> "0x10de"."""
    if isinstance(value, int):
        return f"0x{value:04x}"
    text = str(value).strip().lower()
    return text if text.startswith("0x") else "0x" + text


def truthy(value: Any) -> bool:
    """PVE's booleans: 1, "1", true; 0, "0", "" (Perl's false) are false."""
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def pve_version(status: Mapping[str, Any] | None) -> str | None:
    """The PVE release from ``pveversion`` ("pve-manager/9.0.10/abc" -> "9.0.10")."""
    found = _VERSION.search(str((status or {}).get("pveversion") or ""))
    return found["version"] if found else None


# ---- CPU -------------------------------------------------------------------------------------------------------

CpuVendor = Literal["intel", "amd", "other"]


@dataclass(frozen=True)
class CpuFacts:
    vendor: CpuVendor | None
    model: str | None
    hardware_virtualization: bool | None
    slat: bool | None
    sources: dict[str, str]


def cpu_facts(cpuinfo: Mapping[str, Any] | None) -> CpuFacts:
    """Vendor, model, VT-x/AMD-V and EPT/NPT from a node's ``cpuinfo``."""
    info = cpuinfo or {}
    where = f"{STATUS} cpuinfo"
    sources: dict[str, str] = {}
    model = str(info.get("model") or "").strip() or None
    if model == "unknown":
        model = None
    flags = set(str(info["flags"]).split()) if info.get("flags") is not None else None
    vendor: CpuVendor | None = None
    vendor_id = str(info.get("vendor") or "")
    if vendor_id:
        vendor = "intel" if "Intel" in vendor_id else "amd" if "AMD" in vendor_id else "other"
        sources["cpu_vendor"] = f"{where}.vendor"
    elif model:
        vendor = "intel" if "Intel" in model else "amd" if "AMD" in model else None
        if vendor:
            sources["cpu_vendor"] = f"{where}.model"
    if vendor is None and flags:
        vendor = "intel" if "vmx" in flags else "amd" if "svm" in flags else None
        if vendor:
            sources["cpu_vendor"] = f"{where}.flags (inferred from vmx/svm)"
    if flags is not None:
        hvm: bool | None = bool({"vmx", "svm"} & flags)
        slat: bool | None = bool({"ept", "npt"} & flags)
        sources["hardware_virtualization"] = f"{where}.flags (vmx/svm)"
        sources["slat"] = f"{where}.flags (ept/npt)"
    else:
        hvm = truthy(info["hvm"]) if "hvm" in info else None
        slat = None
        if hvm is not None:
            sources["hardware_virtualization"] = f"{where}.hvm"
    return CpuFacts(vendor, model, hvm, slat, sources)


# ---- memory ----------------------------------------------------------------------------------------------------

def memory_mib(status: Mapping[str, Any] | None) -> tuple[int | None, int | None]:
    """(total, free) MiB from ``status.memory``; free is ``available`` when sent, else ``free``."""
    memory = (status or {}).get("memory") or {}
    total = memory.get("total")
    free = memory.get("available", memory.get("free"))
    return (int(total) // MIB if total is not None else None, int(free) // MIB if free is not None else None)


# ---- PCI devices and IOMMU -------------------------------------------------------------------------------------

def iommu_group(row: Mapping[str, Any]) -> int | None:
    """The device's IOMMU group; None for -1 (no group) or when not sent."""
    group = row.get("iommugroup")
    if group is None or str(group).strip() == "":
        return None
    number = int(group)
    return number if number >= 0 else None


def pci_devices(rows: Iterable[Mapping[str, Any]]) -> list[PciDevice]:
    """The node's PCI functions. Passthrough needs only an IOMMU group on PVE (no per-device switch), so capable
    and enabled are both "in a group"; unknown when PVE sends no ``iommugroup``."""
    devices = []
    for row in rows:
        group = iommu_group(row)
        capable = None if row.get("iommugroup") is None else group is not None
        devices.append(PciDevice(
            address=pci_address(str(row["id"])), class_id=hex_id(row.get("class", "")),
            vendor_id=hex_id(row.get("vendor", "")), device_id=hex_id(row.get("device", "")),
            vendor_name=row.get("vendor_name"), device_name=row.get("device_name"), iommu_group=group,
            passthrough_capable=capable, passthrough_enabled=capable))
    return sorted(devices, key=lambda d: d.address)


def iommu_state(rows: Iterable[Mapping[str, Any]] | None) -> tuple[bool | None, str]:
    """(IOMMU on, how it was decided) from the devices' IOMMU groups."""
    if rows is None:
        return None, f"unknown: {PCI} was not read"
    groups = [row.get("iommugroup") for row in rows]
    known = [int(g) for g in groups if g is not None and str(g).strip() != ""]
    if not known:
        return None, f"unknown: {PCI} listed no device with an iommugroup"
    if any(g >= 0 for g in known):
        return True, f"inferred: {PCI} lists devices in IOMMU groups"
    return False, f"inferred: every device {PCI} lists has iommugroup -1 (no IOMMU group)"


# ---- vGPU (mdev) -----------------------------------------------------------------------------------------------

def vgpu_types(device: str, rows: Iterable[Mapping[str, Any]]) -> list[VgpuType]:
    """The mdev types of the GPU at ``device``: ``available`` as PVE counts it; ``total`` from NVIDIA's
    ``max_instance=`` in the description when it is there."""
    types = []
    for row in rows:
        description = str(row.get("description") or "").strip()
        name = row.get("name")
        limit = _MAX_INSTANCE.search(description)
        text = f"{name}: {description}" if name and description else (name or description or None)
        available = row.get("available")
        types.append(VgpuType(profile=str(row["type"]), device=device, description=text,
                              available=int(available) if available is not None else None,
                              total=int(limit[1]) if limit else None))
    return types


# ---- SR-IOV ----------------------------------------------------------------------------------------------------

def is_virtual_function(row: Mapping[str, Any]) -> bool:
    return bool(row.get("physfn")) or "virtual function" in str(row.get("device_name") or "").lower()


def _bus(address: str) -> str:
    return address.rsplit(":", 1)[0]


def sriov_functions(rows: list[Mapping[str, Any]]) -> tuple[list[SriovFunction], str | None]:
    """The node's SR-IOV physical functions and how they were found (None: no VF listed)."""
    if any("virtfns" in row or "physfn" in row for row in rows):
        return _linked_functions(rows), f"{PCI} physfn/virtfns"
    vfs = [row for row in rows if is_virtual_function(row)]
    if not vfs:
        return [], None
    names = {pci_address(str(row["id"])): row for row in rows}
    functions = []
    by_bus: dict[tuple[str, str], list[str]] = {}
    for vf in vfs:
        by_bus.setdefault((_bus(pci_address(str(vf["id"]))), hex_id(vf.get("vendor", ""))), []).append(vf["id"])
    for (bus, vendor), members in sorted(by_bus.items()):
        candidates = sorted(address for address, row in names.items() if _bus(address) == bus
                            and hex_id(row.get("vendor", "")) == vendor and not is_virtual_function(row))
        for address in candidates:
            functions.append(SriovFunction(address=address, device_name=names[address].get("device_name"),
                                           enabled=True, vfs_enabled=len(members) if len(candidates) == 1 else None))
    return functions, ("inferred: PVE does not link VFs to their PF; VFs named 'Virtual Function', PF = the other "
                       "function of their vendor on their bus")


def _linked_functions(rows: list[Mapping[str, Any]]) -> list[SriovFunction]:
    vfs_of: dict[str, set[str]] = {}
    for row in rows:
        address = pci_address(str(row["id"]))
        if row.get("physfn"):
            vfs_of.setdefault(pci_address(str(row["physfn"])), set()).add(address)
        if row.get("virtfns") is not None:
            listed = row["virtfns"] if isinstance(row["virtfns"], list) else str(row["virtfns"]).split(";")
            vfs_of.setdefault(address, set()).update(pci_address(str(vf)) for vf in listed if str(vf).strip())
    names = {pci_address(str(row["id"])): row.get("device_name") for row in rows}
    return [SriovFunction(address=pf, device_name=names.get(pf), enabled=bool(vfs), vfs_enabled=len(vfs))
            for pf, vfs in sorted(vfs_of.items())]


# ---- mappings --------------------------------------------------------------------------------------------------

def map_entry(text: str) -> dict[str, str]:
    """One ``map`` entry of a PCI mapping: "node=pve1,path=0000:3b:00.0,id=10de:20f1" -> its keys."""
    return dict(part.split("=", 1) for part in text.split(",") if "=" in part)


def pci_mappings(node: str, rows: Iterable[Mapping[str, Any]]) -> list[PciMapping]:
    """The cluster's PCI mappings that name a device on ``node``, with that node's addresses."""
    mappings = []
    for row in rows:
        entries = row.get("map") or []
        entries = entries if isinstance(entries, list) else [entries]
        addresses = [pci_address(path) for entry in entries if map_entry(str(entry)).get("node") == node
                     for path in map_entry(str(entry)).get("path", "").split(";") if path]
        if addresses:
            mappings.append(PciMapping(id=str(row["id"]), addresses=sorted(addresses), mdev=truthy(row.get("mdev", 0))))
    return sorted(mappings, key=lambda m: m.id)


# ---- nested virtualization -------------------------------------------------------------------------------------

def nested_state(node: str, rows: Iterable[Mapping[str, Any]] | None) -> tuple[bool | None, str]:
    """Whether QEMU can give guests hardware virtualization on ``node``, and how that was decided."""
    if rows is None:
        return None, f"unknown: {CPU_FLAGS}?accel=kvm could not be read"
    entry = next((row for row in rows if row.get("name") == "nested-virt"), None)
    if entry is None:
        return None, f"unknown: {CPU_FLAGS}?accel=kvm has no nested-virt entry (qemu-server < 9.0.27)"
    if entry.get("supported-on") is None:
        return None, f"unknown: the nested-virt entry of {CPU_FLAGS} names no nodes"
    return node in entry["supported-on"], f"{CPU_FLAGS}?accel=kvm nested-virt supported-on"


# ---- machine versions ------------------------------------------------------------------------------------------

def machine_types(rows: Iterable[Mapping[str, Any]] | None) -> list[str] | None:
    """The machine ids the node's QEMU offers (``pc-q35-9.2+pve1``), sorted; None when not read."""
    if rows is None:
        return None
    return sorted({str(row["id"]) for row in rows if row.get("id")})


# ---- one host --------------------------------------------------------------------------------------------------

def mdev_devices(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The PCI ids (as PVE wrote them) of the devices that can create mediated devices."""
    return [str(row["id"]) for row in rows if truthy(row.get("mdev", 0))]


def host(endpoint: str, answers: NodeAnswers, mappings: list[Mapping[str, Any]] | None) -> Host:
    """One node's facts from everything PVE answered about it."""
    cpu = cpu_facts((answers.status or {}).get("cpuinfo"))
    total, free = memory_mib(answers.status)
    sources = dict(cpu.sources)
    if total is not None:
        sources["memory"] = f"{STATUS} memory (free: available, else free)"
    devices = pci_devices(answers.pci) if answers.pci is not None else []
    iommu, sources["iommu"] = iommu_state(answers.pci)
    nested, sources["nested"] = nested_state(answers.name, answers.cpu_flags)
    sriov, how = sriov_functions(answers.pci or [])
    if how:
        sources["sriov"] = how
    vgpus = []
    for device_id, rows in sorted(answers.mdev.items()):
        if rows is not None:
            vgpus += vgpu_types(pci_address(device_id), rows)
    if answers.mdev:
        sources["vgpu_types"] = f"{MDEV} (available as PVE counts it, less the stopped VMs' instances)"
    if devices:
        sources["pci_devices"] = f"{PCI} (default class blacklist: no memory controllers, bridges, processors)"
    machines = machine_types(answers.machines)
    if machines is not None:
        sources["machine_types"] = MACHINES
    for path, why in sorted(answers.missing.items()):
        for fact in AFFECTED.get(path, ()):
            sources[fact] = f"unknown: {why}"
    return Host(name=answers.name, endpoint=endpoint, hypervisor="proxmox", product=PRODUCT,
                version=pve_version(answers.status), online=answers.online, cpu_vendor=cpu.vendor,
                cpu_model=cpu.model, hardware_virtualization=cpu.hardware_virtualization, slat=cpu.slat,
                iommu=iommu, nested=nested, memory_total_mib=total, memory_free_mib=free, pci_devices=devices,
                vgpu_types=vgpus, sriov=sriov, machine_types=machines,
                pci_mappings=pci_mappings(answers.name, mappings) if mappings is not None else [],
                sources=sources).sorted()


def cluster_identity(rows: Iterable[Mapping[str, Any]]) -> str | None:
    """The cluster's name from ``/cluster/status``, else ``node:<name>`` of a standalone node; None if neither."""
    rows = list(rows)
    cluster = next((row for row in rows if row.get("type") == "cluster" and row.get("name")), None)
    if cluster is not None:
        return str(cluster["name"])
    nodes = [row for row in rows if row.get("type") == "node" and row.get("name")]
    local = [row for row in nodes if truthy(row.get("local", 0))]
    chosen = local[0] if len(local) == 1 else nodes[0] if len(nodes) == 1 else None
    return f"node:{chosen['name']}" if chosen else None
