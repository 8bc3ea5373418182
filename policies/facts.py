"""Small readings of a VM's request and a host's facts that several rules share (versions, firmware, devices)."""

from __future__ import annotations

import re

from virtplane.inventory import Host, PciDevice
from virtplane.placement import _gpu_matches, normalize_address
from virtplane.policies.model import VmUnderCheck
from virtplane.specs import GpuSpec

_VMX = re.compile(r"^vmx-(\d+)$")
_CONFIG_VERSION = re.compile(r"^(\d+)\.(\d+)$")


def vmx(version: str | None) -> int | None:
    """``vmx-19`` -> 19; anything else (a Proxmox machine type, unset) -> None."""
    match = _VMX.match((version or "").strip().lower())
    return int(match.group(1)) if match else None


def config_version(version: str | None) -> tuple[int, int] | None:
    """A Hyper-V VM configuration version ``9.3`` -> (9, 3)."""
    match = _CONFIG_VERSION.match((version or "").strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def firmware(vm: VmUnderCheck) -> str | None:
    """The VM's firmware: declared, else the creation default; None for a clone that does not declare it."""
    return vm.spec.firmware


def is_dynamic_directpath(vm: VmUnderCheck, gpu: GpuSpec) -> bool:
    """On vSphere a passthrough GPU named by vendor or not at all (no device address) is Dynamic DirectPath I/O:
    the VM lists allowed vendor/device ids and the host picks a free device at power-on."""
    return vm.hypervisor == "vsphere" and gpu.mode == "passthrough" and not gpu.device


def matching_gpus(host: Host, gpu: GpuSpec) -> list[PciDevice]:
    return [device for device in host.gpus() if _gpu_matches(device, gpu, host)]


def device(host: Host, address: str | None) -> PciDevice | None:
    if not address:
        return None
    wanted = normalize_address(address)
    return next((d for d in host.pci_devices if normalize_address(d.address) == wanted), None)


def chosen_gpu(vm: VmUnderCheck, index: int) -> PciDevice | None:
    """The whole GPU placement gave the VM's ``gpus[index]`` on its host, if any."""
    if vm.host is None or vm.assignment is None:
        return None
    return device(vm.host, vm.assignment.gpu_devices[index])
