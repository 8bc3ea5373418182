"""Small readings of a VM's request and a host's facts that several rules share (versions, devices)."""

from __future__ import annotations

from virtplane.device_choice import device_at
from virtplane.host_checks import config_version, vmx
from virtplane.inventory import PciDevice
from virtplane.policies.model import VmUnderCheck

__all__ = ["chosen_gpu", "config_version", "vmx"]


def chosen_gpu(vm: VmUnderCheck, index: int) -> PciDevice | None:
    """The whole GPU placement gave the VM's ``gpus[index]`` on its host, if any."""
    if vm.host is None or vm.assignment is None:
        return None
    return device_at(vm.host, vm.assignment.gpu_devices[index])
