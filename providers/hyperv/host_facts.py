"""Hyper-V host facts for the inventory, from one pipeline (pure mapping here; the reads are in provider.py).

- A Hyper-V host that answers runs the hypervisor, which Windows cannot start without VT-x/AMD-V and SLAT
  (Hyper-V system requirements), so both are True by that inference (``sources`` says so).
- IOMMU / DDA: ``Get-VMHost`` IovSupport (the signal Microsoft's DDA survey script uses), with its reasons.
- Nested virtualization: supported when the host offers a configuration version of at least 8.0 (Intel) or
  9.3 (AMD) — Microsoft's nested virtualization page; unknown when the CPU vendor is not reported.
- GPUs: assignable (dismounted) devices from ``Get-VMHostAssignableDevice`` are passthrough devices, and
  so are the devices VMs hold (``Get-VM | Get-VMAssignableDevice``, ``in_use_by`` their VM); vendor and
  device ids come from the ``VEN_xxxx&DEV_xxxx`` of the instance path. A device still mounted on the host is
  not listed (finding it needs Get-PnpDevice and its location-path property);
  partitionable GPUs from ``Get-VMHostPartitionableGpu`` offer one profile per valid partition count
  (``gpu-p/<count>``), with ``Available…`` capacity turned into free instances where it can be.
- SR-IOV: switches created with IOV enabled, with their virtual function counts.
"""

from __future__ import annotations

from typing import Any

from virtplane.inventory import Host, PciDevice, SriovFunction, VgpuType
from virtplane.providers.hyperv.devices import pci_ids

MiB = 1024**2
# How GPUs are found, which placement shows where a host has none for a passthrough VM.
GPU_SOURCE = ("Hyper-V lists only GPUs dismounted from the host (Get-VMHostAssignableDevice): a GPU still mounted on "
              "the host must be dismounted first with "
              "`Dismount-VMHostAssignableDevice -LocationPath <its location path> -Force`")


def _version(text: str | None) -> tuple[int, int]:
    try:
        major, _, minor = str(text or "0.0").partition(".")
        return int(major), int(minor or 0)
    except ValueError:
        return (0, 0)


def _pci_device(device: Any, iov: bool | None, holders: list[str]) -> PciDevice:
    vendor_id, device_id = pci_ids(device.text("InstanceID"))
    return PciDevice(address=str(device.text("LocationPath") or device.text("InstanceID") or ""),
                     class_id=str(device.get("ClassId") or "0x0302"),
                     vendor_id=str(device.get("VendorId") or vendor_id or "0x0000"),
                     device_id=str(device.get("DeviceId") or device_id or "0x0000"), device_name=device.text("Name"),
                     passthrough_capable=bool(iov) if iov is not None else None, passthrough_enabled=True,
                     in_use_by=holders)


def host_facts(endpoint: str, vmhost: Any, versions: list[Any], assignable: list[Any], gpus: list[Any],
               switches: list[Any], assigned: list[Any] | None = None) -> Host:
    sources: dict[str, str] = {}
    iov = vmhost.flag("IovSupport")
    reasons = vmhost.get("IovSupportReasons")
    if iov is not None:
        sources["iommu"] = "Get-VMHost IovSupport" + (f" (reasons: {reasons})" if reasons and not iov else "")
    vendor_text = str(vmhost.get("ProcessorVendor") or vmhost.get("CpuVendor") or "").lower()
    vendor = "intel" if "intel" in vendor_text else "amd" if "amd" in vendor_text else None
    highest = max((_version(v.text("Version")) for v in versions), default=(0, 0))
    nested: bool | None = None
    if vendor == "intel":
        nested = highest >= (8, 0)
    elif vendor == "amd":
        nested = highest >= (9, 3)
    sources["nested"] = ("configuration versions offered vs Microsoft's minimums (8.0 Intel, 9.3 AMD)"
                         if vendor else "unknown: the host does not report its CPU vendor")
    sources["hardware_virtualization"] = sources["slat"] = "inferred: the Hyper-V hypervisor runs on this host"
    sources["gpus"] = GPU_SOURCE
    devices = [_pci_device(d, iov, [str(v) for v in (d.get("VMNames") or [])]) for d in assignable]
    listed = {device.address.lower() for device in devices}
    for held in assigned or []:
        address = str(held.text("LocationPath") or "").lower()
        if address and address not in listed:
            listed.add(address)
            devices.append(_pci_device(held, iov, [held.text("VMName") or str(held.get("VMId"))]))
    vgpu_types = []
    for gpu in gpus:
        name = gpu.text("Name") or ""
        counts = gpu.get("ValidPartitionCounts") or []
        total = gpu.number("TotalVRAM")
        available = gpu.number("AvailableVRAM")
        current = gpu.number("PartitionCount") or 0
        for count in counts:
            count = int(count)
            free = None
            if total and available is not None and count == current:
                free = int(available * count // total)
            vgpu_types.append(VgpuType(profile=f"gpu-p/{count}", device=name, available=free, total=count))
    sriov = [SriovFunction(address=s.text("Name") or "", device_name=s.text("NetAdapterInterfaceDescription"),
                           enabled=s.flag("IovEnabled"), vfs_max=s.number("IovVirtualFunctionCount"),
                           vfs_enabled=s.number("IovVirtualFunctionCount"),
                           vfs_free=_free(s.number("IovVirtualFunctionCount"), s.number("IovVirtualFunctionsInUse")))
             for s in switches if s.flag("IovEnabled")]
    memory = vmhost.number("MemoryCapacity")
    return Host(name=vmhost.text("ComputerName") or vmhost.text("Name") or endpoint, endpoint=endpoint,
                hypervisor="hyperv", product="Hyper-V", version=vmhost.text("Version"), online=True,
                cpu_vendor=vendor, hardware_virtualization=True, slat=True, iommu=iov, nested=nested,
                memory_total_mib=None if memory is None else memory // MiB,
                memory_free_mib=(vmhost.number("MemoryAvailable") or 0) // MiB if vmhost.get("MemoryAvailable")
                is not None else None,
                max_hardware_version=f"{highest[0]}.{highest[1]}" if highest > (0, 0) else None,
                pci_devices=devices, vgpu_types=vgpu_types, sriov=sriov, sources=sources)


def _free(total: int | None, used: int | None) -> int | None:
    return None if total is None or used is None else max(0, total - used)
