"""Changing a defined domain's XML field by field (no I/O): what an update defines again under the same UUID, and
the device elements to hot-plug, detach or update on the running domain.

Only the changed fields are touched; everything else in the persistent XML stays as it is, the NVRAM path and
TPM device included, so an update never loses the guest's firmware variables or its TPM state. Fields the stack
leaves unset keep their live values when a field they share an element with changes (``sockets`` with ``cpus``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from virtplane.providers.base import FieldChange, Owner
from virtplane.providers.libvirt import cidata, devices, domain_xml, marker
from virtplane.providers.libvirt.devices import DeviceWriter, nic_slot
from virtplane.providers.libvirt.domain_xml import LIBOSINFO_NS, Target
from virtplane.providers.vm_rules import top_field
from virtplane.specs import DiskSpec, VirtualMachineSpec


@dataclass
class Rewrite:
    new_disks: list[DiskSpec] = field(default_factory=list)
    grown: dict[str, int] = field(default_factory=dict)  # slot -> GiB
    removed_volumes: list[tuple[str, str]] = field(default_factory=list)  # (pool, volume)
    attached: list[ET.Element] = field(default_factory=list)
    detached: list[ET.Element] = field(default_factory=list)
    changed: list[ET.Element] = field(default_factory=list)
    metadata: dict[tuple[str, str], ET.Element] = field(default_factory=dict)  # (prefix, namespace) -> element


def _slot_of(path: str) -> str:
    return path[path.index("[") + 1:path.index("]")]


def rewrite(root: ET.Element, spec: VirtualMachineSpec, changes: list[FieldChange], target: Target,
            writer: DeviceWriter) -> Rewrite:
    plan = Rewrite()
    fields = {top_field(change.path) for change in changes}
    device_list = root.find("devices")
    if device_list is None:
        device_list = ET.SubElement(root, "devices")
    if {"cpus", "sockets", "nested_virtualization"} & fields:
        cpus = spec.cpus or int(root.findtext("vcpu") or "1")
        topology = root.find("cpu/topology")
        sockets = spec.sockets if spec.sockets is not None else (
            int(topology.get("sockets", "1")) if topology is not None else None)
        if sockets is not None and cpus % sockets:
            sockets = None if spec.sockets is None else sockets
        nested = spec.nested_virtualization if spec.nested_virtualization is not None else domain_xml.is_nested(root)
        domain_xml.set_vcpus(root, cpus)
        domain_xml.set_cpu(root, cpus, sockets, nested, target.cpu_vendor)
    if "memory" in fields and spec.memory is not None:
        domain_xml.set_memory(root, spec.memory)
    if "machine" in fields and spec.machine is not None:
        domain_xml.set_machine(root, spec.machine)
    if {"firmware", "secure_boot"} & fields:
        uefi = spec.firmware == "uefi" if spec.firmware is not None else domain_xml.is_uefi(root)
        secure = spec.secure_boot if spec.secure_boot is not None else domain_xml.is_secure_boot(root)
        domain_xml.set_firmware(root, uefi, bool(secure) and uefi)
    if "guest_os" in fields and spec.guest_os is not None:
        domain_xml.set_guest_os(root, spec.guest_os)
        info = root.find(f"metadata/{{{LIBOSINFO_NS}}}libosinfo")
        if info is not None:
            plan.metadata[("libosinfo", LIBOSINFO_NS)] = info
    found = marker.read(root)
    if found is not None and ("tags" in fields or "gpus" in fields):
        if "tags" in fields and spec.tags is not None:
            found.tags = list(spec.tags)
        if "gpus" in fields:
            found.vgpus = writer.vgpu_records(spec.gpus or [])
        marker.write(root, found)
        plan.metadata[(marker.PREFIX, marker.NS)] = found.element()
    _disks(device_list, spec, changes, writer, plan)
    _nics(device_list, spec, changes, writer, plan)
    if "gpus" in fields and spec.gpus is not None:
        for hostdev in _gpu_hostdevs(device_list):
            device_list.remove(hostdev)
        for index, gpu in enumerate(spec.gpus):
            device_list.append(writer.gpu(index, gpu))
    devices.ensure_controllers(device_list)
    return plan


def _disks(device_list: ET.Element, spec: VirtualMachineSpec, changes: list[FieldChange], writer: DeviceWriter,
           plan: Rewrite) -> None:
    declared = {disk.slot: disk for disk in spec.disks or []}
    by_slot = {d.find("target").get("dev"): d for d in device_list.findall("disk")  # type: ignore[union-attr]
               if d.find("target") is not None}
    for change in changes:
        if not change.path.startswith("disks["):
            continue
        slot = _slot_of(change.path)
        whole = change.path == f"disks[{slot}]"
        if whole and change.old is None and slot in declared:
            element = writer.disk(declared[slot])
            device_list.append(element)
            plan.new_disks.append(declared[slot])
            plan.attached.append(element)
        elif whole and change.new is None and slot in by_slot:
            element = by_slot[slot]
            device_list.remove(element)
            source = element.find("source")
            if source is not None and source.get("pool") and source.get("volume"):
                plan.removed_volumes.append((source.get("pool") or "", source.get("volume") or ""))
            plan.detached.append(element)
        elif change.path.endswith(".size") and change.new is not None:
            plan.grown[slot] = int(change.new)


def _nics(device_list: ET.Element, spec: VirtualMachineSpec, changes: list[FieldChange], writer: DeviceWriter,
          plan: Rewrite) -> None:
    declared = {nic.slot: nic for nic in spec.nics or []}
    by_slot = {nic_slot(i): i for i in device_list.findall("interface")}
    for change in changes:
        if not change.path.startswith("nics["):
            continue
        slot = _slot_of(change.path)
        existing = by_slot.get(slot)
        whole = change.path == f"nics[{slot}]"
        if whole and change.old is None and slot in declared:
            element = writer.nic(declared[slot])
            device_list.append(element)
            plan.attached.append(element)
        elif whole and change.new is None and existing is not None:
            device_list.remove(existing)
            plan.detached.append(existing)
        elif existing is not None and slot in declared and change.path.endswith(".network") \
                and existing.get("type") == "network":
            source = existing.find("source")
            if source is not None:
                source.set("network", declared[slot].network)
            plan.changed.append(existing)
        elif existing is not None and slot in declared:  # adapter or device: a new element (the domain is off)
            index = list(device_list).index(existing)
            device_list.remove(existing)
            replacement = writer.nic(declared[slot])
            mac = existing.find("mac")
            if mac is not None and declared[slot].adapter != "sriov":
                replacement.insert(0, mac)
            device_list.insert(index, replacement)


def _gpu_hostdevs(device_list: ET.Element) -> list[ET.Element]:
    found = []
    for hostdev in device_list.findall("hostdev"):
        alias = hostdev.find("alias")
        if hostdev.get("type") == "mdev" or (alias is not None and alias.get("name", "").startswith("ua-gpu")):
            found.append(hostdev)
    return found


def as_clone(root: ET.Element, name: str, uuid: str, owner: Owner, tags: list[str] | None,
             thick: frozenset[str] = frozenset()) -> dict[str, tuple[str, str]]:
    """Turn a source domain's inactive XML into its clone's: new name and UUID, no MAC addresses (libvirt makes
    new ones), no NVRAM path (the clone gets its own variables from the template), our marker (incomplete) instead
    of the source's, no cloud-init CD-ROM of the source's (its seed volume goes with the source), and each volume
    disk pointed at a new volume (raw, allocated in full, for the slots in ``thick``; qcow2 otherwise). Returns
    slot -> (pool, source volume)."""
    root.find("name").text = name  # type: ignore[union-attr]
    uuid_element = root.find("uuid")
    if uuid_element is None:
        uuid_element = ET.SubElement(root, "uuid")
    uuid_element.text = uuid
    os_element = root.find("os")
    if os_element is not None:
        for nvram in os_element.findall("nvram"):
            os_element.remove(nvram)
    for interface in root.findall("devices/interface"):
        for mac in interface.findall("mac"):
            interface.remove(mac)
    previous = marker.read(root)
    marker.write(root, marker.Marker(owner, complete=False,
                                     tags=list(tags if tags is not None else previous.tags if previous else [])))
    sources = {}
    device_list = root.find("devices")
    for disk in root.findall("devices/disk"):
        source, target = disk.find("source"), disk.find("target")
        if disk.get("device") == "cdrom" and source is not None and cidata.is_seed(source.get("volume") or ""):
            device_list.remove(disk)  # type: ignore[union-attr]  # the source's cloud-init: deleted with the source
            continue
        if disk.get("device", "disk") != "disk" or source is None or target is None:
            continue
        if source.get("pool") and source.get("volume"):
            slot = target.get("dev") or ""
            sources[slot] = (source.get("pool") or "", source.get("volume") or "")
            source.set("volume", devices.volume_name(name, uuid, slot, thick=slot in thick))
    return sources
