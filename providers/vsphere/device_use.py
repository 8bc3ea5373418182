"""What the VMs of one ESXi host hold: pure mapping of their devices (``config.hardware.device``) and power state.

- A ``VirtualPCIPassthrough`` with a fixed ``DeviceBackingInfo`` holds that device, powered on or off.
- One with a ``DynamicBackingInfo`` (Dynamic DirectPath I/O) holds its ``assignedId`` while it runs (or the device
  ``config.assignableHardwareBinding`` binds to it). Powered off it holds no particular device, but vSphere gives it
  a free device of its ``allowedDevice`` at power-on: it *claims* one (``DeviceClaim``).
- One with a ``VmiopBackingInfo`` is a vGPU of its profile; the GPU it runs on is the one whose
  ``config.graphicsInfo[].vm`` names it (host_facts.py attributes it).
- A ``VirtualSriovEthernetCard`` takes a virtual function of the physical function its backing names (vSphere has
  no "VFs in use" counter: the VMs' SR-IOV NICs are counted).

Sources: vSphere API "VirtualPCIPassthroughDynamicBackingInfo" (allowedDevice, assignedId),
"HostAssignableHardwareBinding", "HostGraphicsInfo" (vm); VMware vSphere 7.0 VM Administration "PCI devices"
(Dynamic DirectPath I/O assigns an available device at power-on).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyVmomi import vim

_P = vim.vm.device.VirtualPCIPassthrough


def pci_address(device_id: str) -> str:
    """The full ``domain:bus:slot.function`` address, lower case ("3B:00.0" becomes "0000:3b:00.0")."""
    address = device_id.strip().lower()
    return address if address.count(":") >= 2 else f"0000:{address}"


@dataclass
class DeviceUsage:
    """What the VMs of one host hold: passthrough devices and SR-IOV physical functions by PCI address, vGPU
    profiles by name, and the allowed (vendor, device) ids of powered-off Dynamic DirectPath VMs (``claims``). VM
    names are sorted when mapped. ``unattributed_sriov`` counts SR-IOV NICs whose physical function is not named
    (their VFs cannot be charged to a PF). ``known`` is False when the VMs' devices were not read (use is then
    unknown); ``source`` says how it was found; ``vm_names`` maps VM moIds to names (for ``graphicsInfo[].vm``)."""

    known: bool = False
    source: str = "unknown: the VMs' devices were not read"
    passthrough: dict[str, list[str]] = field(default_factory=dict)
    sriov: dict[str, list[str]] = field(default_factory=dict)
    vgpu: dict[str, list[str]] = field(default_factory=dict)
    claims: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    unattributed_sriov: int = 0
    vm_names: dict[str, str] = field(default_factory=dict)


def _unsigned(value: int | None) -> int:
    return (value or 0) & 0xFFFF


def device_usage(vms: Iterable[Sequence[Any]],
                 source: str = "config.hardware.device of the host's VMs (powered-off ones too)",
                 powered_on: Mapping[str, bool] | None = None,
                 bindings: Mapping[str, list[str]] | None = None) -> DeviceUsage:
    """Collect what each VM's devices hold, from (VM name, devices) pairs; ``powered_on`` says which VMs run (a VM
    not named there is taken as powered off), ``bindings`` the devices ``assignableHardwareBinding`` gives a VM."""
    usage = DeviceUsage(known=True, source=source)
    powered_on = powered_on or {}
    bindings = bindings or {}
    for name, devices in ((vm[0], vm[1]) for vm in vms):
        for device in devices or []:
            if isinstance(device, vim.vm.device.VirtualSriovEthernetCard):
                function = getattr(device.sriovBacking, "physicalFunctionBacking", None)
                if function is not None and function.id:
                    usage.sriov.setdefault(pci_address(function.id), []).append(name)
                else:
                    usage.unattributed_sriov += 1
            elif isinstance(device, _P):
                _passthrough(usage, name, device.backing, powered_on.get(name, False), bindings.get(name, []))
    return usage


def _passthrough(usage: DeviceUsage, name: str, backing: Any, running: bool, bound: list[str]) -> None:
    if isinstance(backing, _P.VmiopBackingInfo) and backing.vgpu:
        usage.vgpu.setdefault(backing.vgpu, []).append(name)
    elif isinstance(backing, _P.DynamicBackingInfo):
        assigned = getattr(backing, "assignedId", None)
        if running and (assigned or bound):
            for address in [assigned] if assigned else bound:
                usage.passthrough.setdefault(pci_address(address), []).append(name)
        else:
            allowed = [(_unsigned(a.vendorId), _unsigned(a.deviceId)) for a in backing.allowedDevice or []]
            usage.claims.setdefault(name, []).extend(allowed)
    elif isinstance(backing, _P.DeviceBackingInfo) and backing.id:
        usage.passthrough.setdefault(pci_address(backing.id), []).append(name)


def bindings_by_vm(bindings: Sequence[Any] | None, vm_names: Mapping[str, str]) -> dict[str, list[str]]:
    """VM name -> the PCI addresses ``config.assignableHardwareBinding`` binds to it (instance ids that are
    addresses; others are not PCI devices)."""
    found: dict[str, list[str]] = {}
    for binding in bindings or []:
        vm = getattr(binding, "vm", None)
        instance = str(getattr(binding, "instanceId", "") or "")
        if vm is not None and instance.count(":") >= 1 and "." in instance:
            found.setdefault(vm_names.get(vm._moId, vm._moId), []).append(pci_address(instance))
    return found


def unreserved_mib(total_mib: int | None, vms: Iterable[tuple[bool, int | None]], system_mib: int = 0) -> int | None:
    """Memory a VM can still reserve on the host: its memory minus the VMkernel's reservation and the reservations
    of the VMs running there (admission control counts reservations, not current consumption)."""
    if total_mib is None:
        return None
    return max(total_mib - system_mib - sum(reserved or 0 for running, reserved in vms if running), 0)


def reservation_mib(props: Mapping[str, Any]) -> int:
    """A VM's memory reservation in MiB: all its memory when ``memoryReservationLockedToMax`` (device VMs), else
    ``config.memoryAllocation.reservation``."""
    if props.get("config.memoryReservationLockedToMax"):
        return int(props.get("config.hardware.memoryMB") or 0)
    return int(getattr(props.get("config.memoryAllocation"), "reservation", None) or 0)
