"""What the VMs of one Proxmox VE node hold, from every VM's ``hostpciN`` (running or stopped): pure mapping, no I/O.

- A ``hostpciN`` naming a device by address (``0000:3b:00.0``, or functions ``a;b``) holds it, running or not.
- One naming a resource mapping holds the mapping's device on its node when the mapping names one there; when it
  names several (a pool), PVE picks a free one when the VM starts: the VM claims one (``DeviceClaim``), running or
  not (a running VM does not say which it got).
- One with ``mdev=<type>`` is a mediated device (vGPU) of that type on the device: PVE creates the instance when
  the VM starts, so the node's ``available`` count already holds running VMs' instances; a stopped VM's instance is
  made at its start and is taken off ``available`` here.
- A virtual function passed through (by address, or from a mapping pool of VFs) is taken off its physical
  function's free VFs.

Sources: Proxmox VE Administration Guide "PCI(e) Passthrough" and "Resource Mapping" (a mapping with several
devices is a pool; mdev instances are created at VM start); qemu-server's hostpci format.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from virtplane.inventory import DeviceClaim, Host
from virtplane.providers.proxmox.devices import hostpci_entries, vfs_of
from virtplane.providers.proxmox.host_facts import map_entry, pci_address


@dataclass(frozen=True)
class GuestConfig:
    """One VM of the cluster with its configuration (None: it could not be read)."""

    name: str
    node: str
    running: bool
    config: Mapping[str, Any] | None


@dataclass
class NodeUse:
    """What the VMs on one node hold: whole devices (address -> VMs), claims on pools, mdev instances by (device,
    type) with the VMs that run one and those whose instance is made when they start, and VMs whose configuration
    could not be read (``unread``: use is then not known)."""

    holders: dict[str, list[str]] = field(default_factory=dict)
    claims: list[DeviceClaim] = field(default_factory=list)
    mdev_running: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    mdev_stopped: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    unread: list[str] = field(default_factory=list)


def mapping_paths(mappings: Iterable[Mapping[str, Any]], mapping: str, node: str) -> list[list[str]]:
    """The devices a mapping names on ``node``: one list of addresses per device (a multifunction path ``a;b``)."""
    found = []
    for row in mappings:
        if str(row.get("id")) != mapping:
            continue
        entries = row.get("map") or []
        for entry in entries if isinstance(entries, list) else [entries]:
            keys = map_entry(str(entry))
            if keys.get("node") == node and keys.get("path"):
                found.append([pci_address(part) for part in keys["path"].split(";") if part])
    return found


def node_use(node: str, guests: Iterable[GuestConfig], mappings: Iterable[Mapping[str, Any]] | None) -> NodeUse:
    """What the VMs on ``node`` hold; ``mappings`` None: the cluster's mappings could not be read, so a VM that
    names one holds something unknown."""
    use = NodeUse()
    for guest in guests:
        if guest.node != node:
            continue
        entries = hostpci_entries(guest.config) if guest.config is not None else []
        if guest.config is None or (mappings is None and any(entry.mapped for entry in entries)):
            use.unread.append(guest.name)
            continue
        for entry in entries:
            devices = mapping_paths(mappings or [], entry.device, node) if entry.mapped else [
                [pci_address(part) for part in entry.device.split(";") if part]]
            devices = [device for device in devices if device]
            if not devices:
                continue
            if entry.mdev:
                table = use.mdev_running if guest.running else use.mdev_stopped
                for device in devices:  # a pool: PVE takes any of them; counted on each (never more room)
                    table.setdefault((device[0], entry.mdev), []).append(guest.name)
            elif len(devices) == 1:
                for address in devices[0]:
                    use.holders.setdefault(address, []).append(guest.name)
            else:
                use.claims.append(DeviceClaim(vm=guest.name, devices=sorted(device[0] for device in devices)))
    return use


def with_use(host: Host, use: NodeUse | None, pci_rows: list[Mapping[str, Any]] | None) -> Host:
    """The node's facts with what its VMs hold: ``in_use_by``, claims, mdev instances and free VFs. ``use`` None:
    the VMs could not be listed, and what they hold stays unknown."""
    sources = dict(host.sources)
    if use is None:
        sources["devices_in_use"] = "unknown: the cluster's VMs could not be listed"
        return host.model_copy(update={"devices_in_use_known": False, "sources": sources})
    devices = [d.model_copy(update={"in_use_by": sorted(use.holders.get(d.address, []))}) for d in host.pci_devices]
    vgpus = []
    for vgpu in host.vgpu_types:
        key = (vgpu.device or "", vgpu.profile)
        running, stopped = use.mdev_running.get(key, []), use.mdev_stopped.get(key, [])
        available = None if vgpu.available is None else max(vgpu.available - len(stopped), 0)
        vgpus.append(vgpu.model_copy(update={"in_use_by": sorted({*running, *stopped}), "available": available}))
    functions = []
    for function in host.sriov:
        vfs = set(vfs_of(function.address, pci_rows or []))
        if not vfs:
            functions.append(function)
            continue
        held = {vm for vf in vfs for vm in use.holders.get(vf, [])}
        taken = sum(len(use.holders.get(vf, [])) for vf in vfs)
        pooled = [claim.vm for claim in use.claims if claim.devices and set(claim.devices) <= vfs]
        functions.append(function.model_copy(update={
            "vfs_free": max(len(vfs) - taken - len(pooled), 0), "in_use_by": sorted({*held, *pooled})}))
    sources["devices_in_use"] = ("every VM's hostpciN (running or stopped) on the node, mdev instances of stopped VMs "
                                 "taken off available, VFs held taken off their PF")
    if use.unread:
        sources["devices_in_use"] = f"unknown: the configuration of {', '.join(sorted(use.unread))} could not be read"
    return host.model_copy(update={"pci_devices": devices, "vgpu_types": vgpus, "sriov": functions,
                                   "device_claims": sorted(use.claims, key=lambda c: c.vm),
                                   "devices_in_use_known": not use.unread, "sources": sources})
