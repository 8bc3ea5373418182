"""Which changes touch a VM's PCI devices (GPUs, SR-IOV NICs), and whether a VM holds any: decides when the
host's PCI facts are read and when all the VM's memory must be reserved."""

from __future__ import annotations

from typing import Any

from virtplane.providers.base import FieldChange
from virtplane.specs import GpuSpec, NicSpec, VirtualMachineSpec


def touches_sriov(change: FieldChange) -> bool:
    """True for a NIC change that adds, removes or changes an SR-IOV NIC (or the function it uses)."""
    if not change.path.startswith("nics["):
        return False
    items = [change.old, change.new]
    return (any(isinstance(item, dict) and item.get("adapter") == "sriov" for item in items)
            or change.path.endswith(".device") or (change.path.endswith(".adapter") and "sriov" in items))


def needs_host_devices(gpus: list[GpuSpec] | None, nics: list[NicSpec] | None) -> bool:
    """Whether building these devices needs the host's PCI devices (passthrough GPUs, SR-IOV NICs; a vGPU
    names only its profile)."""
    return any(gpu.mode == "passthrough" for gpu in gpus or []) or any(
        nic.adapter == "sriov" for nic in nics or [])


def holds_live_devices(live: dict[str, Any]) -> bool:
    return bool(live.get("gpus")) or any(nic.get("adapter") == "sriov" for nic in live.get("nics") or [])


def holds_devices_after(spec: VirtualMachineSpec, live: dict[str, Any]) -> bool:
    """Whether the VM holds PCI devices once ``spec`` is applied (unset lists keep the live ones)."""
    gpus = spec.gpus if spec.gpus is not None else live.get("gpus")
    adapters = ([nic.adapter for nic in spec.nics] if spec.nics is not None
                else [nic.get("adapter") for nic in live.get("nics") or []])
    return bool(gpus) or "sriov" in adapters
