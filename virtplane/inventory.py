"""Typed facts about the hosts behind every endpoint: one schema for all hypervisors (``virtplane.inventory/1``).

A host fact that the hypervisor does not report is ``None`` ("unknown"), never ``False``: placement and the
policy layer treat unknown as "cannot verify", not as "no". Lists are sorted and the JSON carries no
timestamps, so an inventory written with ``virtplane inventory --out`` can be committed and diffed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA = "virtplane.inventory/1"
GPU_CLASSES = ("0x0300", "0x0302", "0x0380")  # VGA, 3D controller, other display controller


class Fact(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PciDevice(Fact):
    """One PCI function of a host. ``address`` is the full ``domain:bus:slot.function`` ("0000:3b:00.0");
    ids are lower-case hex strings with ``0x`` ("0x10de"). ``in_use_by`` names the VMs holding the whole
    device (passthrough); ``iommu_group`` is None where the hypervisor has no such notion or does not say.

    ``passthrough_active`` is False for a device enabled for passthrough that the host cannot give until it
    reboots (vSphere ``passthruActive``). ``dependent_device`` is the device that must be released by the host
    together with this one (vSphere ``dependentDevice``, often a bridge): devices naming the same one go together.
    For GPUs: ``graphics_type`` (vSphere basic, shared, direct, sharedDirect), ``vgpu_mode`` (sameSize,
    mixedSize: how the GPU's time-sliced vGPUs may differ in size; None = not reported, equal-size is the
    default) and ``memory_mib`` (its frame buffer)."""

    address: str
    class_id: str
    vendor_id: str
    device_id: str
    vendor_name: str | None = None
    device_name: str | None = None
    iommu_group: int | None = None
    passthrough_capable: bool | None = None
    passthrough_enabled: bool | None = None
    passthrough_active: bool | None = None
    dependent_device: str | None = None
    graphics_type: str | None = None
    vgpu_mode: str | None = None
    memory_mib: int | None = None
    in_use_by: list[str] = Field(default_factory=list)

    @property
    def is_gpu(self) -> bool:
        return self.class_id.lower()[:6] in GPU_CLASSES


class VgpuType(Fact):
    """A vGPU / mdev / GPU-partition profile a host offers: ``profile`` is the hypervisor's own name
    (vSphere ``grid_a100-20c``, Proxmox mdev type ``nvidia-471``, Hyper-V partition count ``gpu-p/4``).
    ``device`` is the GPU's PCI address when known. ``available`` is how many more instances can be made
    now (None: unknown or, where ``size_mib`` and the GPU's ``memory_mib`` are known, derived from them);
    ``in_use_by`` the VMs holding an instance; ``size_mib`` the frame buffer of one instance."""

    profile: str
    device: str | None = None
    description: str | None = None
    available: int | None = None
    total: int | None = None
    size_mib: int | None = None
    in_use_by: list[str] = Field(default_factory=list)


class SriovFunction(Fact):
    """An SR-IOV physical function: ``vfs_free`` is enabled minus in use (by any VM, running or stopped), None
    where it cannot be read."""

    address: str
    device_name: str | None = None
    enabled: bool | None = None
    vfs_max: int | None = None
    vfs_enabled: int | None = None
    vfs_free: int | None = None
    in_use_by: list[str] = Field(default_factory=list)


class PciMapping(Fact):
    """A cluster-wide resource mapping naming a device per node (Proxmox ``/cluster/mapping/pci``)."""

    id: str
    addresses: list[str] = Field(default_factory=list)
    mdev: bool | None = None


class DeviceClaim(Fact):
    """A VM that holds no particular device yet but takes one of ``devices`` when it starts: a powered-off
    vSphere VM with a Dynamic DirectPath I/O device (vSphere picks a free device of its ``allowedDevice`` at
    power-on), or a stopped Proxmox VM whose ``hostpciN`` names a mapping of several devices."""

    vm: str
    devices: list[str] = Field(default_factory=list)


class Host(Fact):
    """One hypervisor host (an ESXi host, a Proxmox node, a Hyper-V host, a XenServer pool's host, a libvirt
    host) as its endpoint reports it."""

    name: str
    endpoint: str
    hypervisor: Literal["vsphere", "proxmox", "hyperv", "xenserver", "libvirt"]
    product: str | None = None
    version: str | None = None
    online: bool | None = None
    cpu_vendor: Literal["intel", "amd", "other"] | None = None
    cpu_model: str | None = None
    hardware_virtualization: bool | None = None  # VT-x / AMD-V present and enabled
    slat: bool | None = None  # EPT / NPT (RVI)
    iommu: bool | None = None  # VT-d / AMD-Vi usable for passthrough
    nested: bool | None = None  # the hypervisor can expose hardware virtualization to guests
    memory_total_mib: int | None = None
    memory_free_mib: int | None = None  # memory VMs can still reserve (vSphere: unreserved, as admission control)
    graphics_mode: str | None = None  # vSphere host graphics type: basic, shared, direct, sharedDirect
    max_hardware_version: str | None = None  # vSphere vmx-N, Hyper-V configuration version
    machine_types: list[str] | None = None  # Proxmox: the QEMU machine versions the node offers (None: unknown)
    devices_in_use_known: bool | None = None  # in_use_by, claims and free counts cover every VM's devices
    pci_devices: list[PciDevice] = Field(default_factory=list)
    vgpu_types: list[VgpuType] = Field(default_factory=list)
    sriov: list[SriovFunction] = Field(default_factory=list)
    pci_mappings: list[PciMapping] = Field(default_factory=list)
    device_claims: list[DeviceClaim] = Field(default_factory=list)
    sources: dict[str, str] = Field(default_factory=dict)  # fact -> where it was read or how it was inferred

    def sorted(self) -> Host:
        return self.model_copy(update={
            "pci_devices": sorted(self.pci_devices, key=lambda d: d.address),
            "vgpu_types": sorted(self.vgpu_types, key=lambda v: (v.device or "", v.profile)),
            "sriov": sorted(self.sriov, key=lambda s: s.address),
            "pci_mappings": sorted(self.pci_mappings, key=lambda m: m.id),
            "device_claims": sorted(self.device_claims, key=lambda c: c.vm),
        })

    def gpus(self) -> list[PciDevice]:
        return [device for device in self.pci_devices if device.is_gpu]

    def released(self, vm: str) -> Host:
        """This host as it will be once VM ``vm`` is deleted (a replace): the devices, vGPU instances and
        virtual functions it holds are free again."""
        def without(users: list[str]) -> list[str]:
            return [user for user in users if user != vm]

        return self.model_copy(update={
            "pci_devices": [d.model_copy(update={"in_use_by": without(d.in_use_by)}) for d in self.pci_devices],
            "vgpu_types": [v.model_copy(update={
                "in_use_by": without(v.in_use_by),
                "available": None if v.available is None else v.available + v.in_use_by.count(vm)})
                for v in self.vgpu_types],
            "sriov": [f.model_copy(update={
                "in_use_by": without(f.in_use_by),
                "vfs_free": None if f.vfs_free is None else f.vfs_free + f.in_use_by.count(vm)})
                for f in self.sriov],
        })


class Inventory(Fact):
    schema_: str = Field(default=SCHEMA, alias="schema")
    hosts: list[Host] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def by_endpoint(self, endpoint: str) -> list[Host]:
        return [host for host in self.hosts if host.endpoint == endpoint]

    def to_json(self) -> str:
        hosts = sorted((host.sorted() for host in self.hosts), key=lambda h: (h.endpoint, h.name))
        document = {"schema": SCHEMA, "hosts": [host.model_dump(mode="json") for host in hosts]}
        return json.dumps(document, indent=2, sort_keys=True) + "\n"

    @classmethod
    def load(cls, path: Path) -> Inventory:
        return cls.model_validate_json(path.read_text())
