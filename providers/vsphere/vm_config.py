"""The scalar part of a VM's ConfigSpec (CPUs, memory, guest, firmware, nested virtualization, cloud-init's
guestinfo keys), written only for the fields a create or an update asks for: an unset field (None) is never
written."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pyVmomi import vim

from virtplane.providers.vsphere import guestinfo
from virtplane.specs import VirtualMachineSpec

GUEST_IDS = {"linux": "otherLinux64Guest", "windows": "windows2019srv_64Guest", "other": "otherGuest64"}
NEUTRAL_GUEST = {guest_id: name for name, guest_id in GUEST_IDS.items()}
# ConfigSpec attributes this module may set: a spec with none of them set changes nothing.
CONFIG_FIELDS = ("name", "numCPUs", "numCoresPerSocket", "memoryMB", "guestId", "firmware", "bootOptions",
                 "nestedHVEnabled", "memoryReservationLockedToMax", "extraConfig")


def cores_per_socket(cpus: int | None, sockets: int | None) -> int | None:
    """Cores per virtual socket to write; None (sockets or CPUs unknown) keeps vSphere's layout."""
    return None if sockets is None or cpus is None else cpus // sockets


def sockets_of(num_cpu: int | None, cores_per_socket: int | None) -> int:
    """Virtual sockets from vSphere's total vCPUs and cores per socket (0 or unset means one core each)."""
    cores = cores_per_socket or 1
    return max(1, (num_cpu or 0) // cores)


def config_spec(spec: VirtualMachineSpec, live: dict[str, Any] | None = None,
                fields: Collection[str] | None = None) -> vim.vm.ConfigSpec:
    """A ConfigSpec carrying ``fields`` of ``spec`` (every set field when None); ``live`` is the VM's state,
    for what a field needs from another one the stack leaves unset (the CPU count sockets divide)."""
    live = live or {}

    def want(name: str) -> bool:
        return (fields is None or name in fields) and getattr(spec, name) is not None

    config = vim.vm.ConfigSpec()
    if want("cpus"):
        config.numCPUs = spec.cpus
    if want("sockets") or (want("cpus") and spec.sockets is not None):
        config.numCoresPerSocket = cores_per_socket(spec.cpus or live.get("cpus"), spec.sockets)
    if want("memory"):
        config.memoryMB = spec.memory
    if want("guest_os"):
        assert spec.guest_os is not None
        config.guestId = GUEST_IDS.get(spec.guest_os, spec.guest_os)
    if want("firmware"):
        config.firmware = "efi" if spec.firmware == "uefi" else "bios"
    if want("secure_boot") or (want("firmware") and spec.secure_boot is not None):
        config.bootOptions = vim.vm.BootOptions(efiSecureBootEnabled=spec.secure_boot)
    elif want("firmware") and spec.firmware == "bios" and spec.secure_boot is None:
        config.bootOptions = vim.vm.BootOptions(efiSecureBootEnabled=False)  # BIOS cannot boot securely
    if want("nested_virtualization"):
        config.nestedHVEnabled = spec.nested_virtualization
    if want("cloud_init"):
        assert spec.cloud_init is not None
        config.extraConfig = guestinfo.options(spec.cloud_init)
    return config


def changes_anything(config: vim.vm.ConfigSpec) -> bool:
    return any(getattr(config, name, None) not in (None, []) for name in CONFIG_FIELDS) or bool(config.deviceChange)
