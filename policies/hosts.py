"""The hosts the rules see: each endpoint's hosts with what the stack's own VMs already hold given back.

An inventory read after an apply shows the stack's VMs in ``in_use_by`` of the GPUs, vGPU profiles and SR-IOV
functions they hold (and the free counts lowered by them), or in ``device_claims`` (powered off with a Dynamic
DirectPath device, or naming a Proxmox pool mapping). Checking the same stack again must not count them twice,
so their holdings are released (``available`` and ``vfs_free`` raised, memory given back) and each such VM is
evaluated on the host it already runs on."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from virtplane.inventory import Host, Inventory


def release(inventory: Inventory, names: frozenset[str], memory_mib: Mapping[str, int | None]
            ) -> tuple[dict[str, list[Host]], dict[str, str]]:
    """(endpoint -> hosts with the stack's holdings released, VM -> host it already holds devices on)."""
    by_endpoint: dict[str, list[Host]] = {}
    running_on: dict[str, str] = {}
    for host in inventory.hosts:
        holders = _holders(host, names)
        if holders:
            for name in holders:
                running_on.setdefault(name, host.name)
            host = _released(host, holders, memory_mib)
        by_endpoint.setdefault(host.endpoint, []).append(host)
    return by_endpoint, running_on


def _holders(host: Host, names: frozenset[str]) -> set[str]:
    held: set[str] = set()
    for items in (host.pci_devices, host.vgpu_types, host.sriov):
        for item in items:
            if item.in_use_by:
                held.update(name for name in item.in_use_by if name in names)
    held.update(claim.vm for claim in host.device_claims if claim.vm in names)
    return held


def _keep(users: Iterable[str], holders: set[str]) -> list[str]:
    return [name for name in users if name not in holders]


def _released(host: Host, holders: set[str], memory_mib: Mapping[str, int | None]) -> Host:
    devices = [d.model_copy(update={"in_use_by": _keep(d.in_use_by, holders)}) if d.in_use_by else d
               for d in host.pci_devices]
    vgpus = []
    for vgpu in host.vgpu_types:
        freed = len(vgpu.in_use_by) - len(kept := _keep(vgpu.in_use_by, holders))
        vgpus.append(vgpu.model_copy(update={
            "in_use_by": kept, "available": None if vgpu.available is None else vgpu.available + freed}))
    functions = []
    for function in host.sriov:
        freed = len(function.in_use_by) - len(kept := _keep(function.in_use_by, holders))
        functions.append(function.model_copy(update={
            "in_use_by": kept, "vfs_free": None if function.vfs_free is None else function.vfs_free + freed}))
    memory = host.memory_free_mib
    if memory is not None:
        memory += sum(memory_mib.get(name) or 0 for name in holders)
    claims = [claim for claim in host.device_claims if claim.vm not in holders]
    return host.model_copy(update={"pci_devices": devices, "vgpu_types": vgpus, "sriov": functions,
                                   "memory_free_mib": memory, "device_claims": claims})
