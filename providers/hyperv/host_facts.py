"""Hyper-V host facts for the inventory, from one pipeline (pure mapping here; the reads are in provider.py).

- A Hyper-V host that answers runs the hypervisor, which Windows cannot start without VT-x/AMD-V and SLAT
  (Hyper-V system requirements), so both are True by that inference (``sources`` says so).
- IOMMU / DDA: ``Get-VMHost`` IovSupport (the signal Microsoft's DDA survey script uses), with its reasons.
- CPU vendor: ``Get-CimInstance Win32_Processor`` Manufacturer (GenuineIntel, AuthenticAMD): Get-VMHost has no
  processor vendor.
- Memory: ``Get-VMHost`` MemoryCapacity; free memory is the NUMA nodes' MemoryAvailable (``Get-VMHostNumaNode``,
  MB), which Get-VMHost does not report either.
- Nested virtualization: supported when the host offers a configuration version of at least 8.0 (Intel) or
  9.3 (AMD) — Microsoft's nested virtualization page — and, on AMD, runs Windows Server 2022 / Windows 11 or
  later (``Win32_OperatingSystem`` BuildNumber 20348 or more); unknown when the CPU vendor is not reported.
- Devices: assignable (dismounted) devices from ``Get-VMHostAssignableDevice`` are passthrough devices, and
  so are the devices VMs hold (``Get-VM | Get-VMAssignableDevice``, ``in_use_by`` their VM); vendor and
  device ids come from the ``VEN_xxxx&DEV_xxxx`` of the instance path, the class from ``Get-PnpDevice``
  (Display: a GPU, 0x0302; SCSIAdapter: an NVMe controller, 0x0108; Net: 0x0200). A device whose class the host
  does not report is listed with class 0x0000, never as a GPU. A device still mounted on the host is not listed;
  partitionable GPUs from ``Get-VMHostPartitionableGpu`` offer one profile per valid partition count
  (``gpu-p/<count>``), with ``Available…`` capacity turned into free instances where it can be (for the current
  count; for every count when no partition is assigned, AvailableVRAM = TotalVRAM: the count can then be changed,
  Set-VMHostPartitionableGpu), and the VMs
  holding partitions (``Get-VM | Get-VMGpuPartitionAdapter``: VMName) as ``in_use_by`` of the profile of the GPU's
  current count, so a check after an apply does not count them twice. A VMGpuPartitionAdapter does not name its
  GPU (Microsoft Learn, "Get-VMGpuPartitionAdapter": Name, Id, VMId, VMName and the partition sizes): on a host
  with one partitionable GPU every partition is that GPU's; with several, none is attributed (the stack's own
  partitions then count as taken, never as free).
- SR-IOV: switches created with IOV enabled, with their virtual function counts.
"""

from __future__ import annotations

from typing import Any

from virtplane.inventory import Host, PciDevice, SriovFunction, VgpuType
from virtplane.providers.hyperv.devices import partition_gpu, pci_ids
from virtplane.providers.hyperv.vm_checks import AMD_NESTED_BUILD, vendor_of

MiB = 1024**2
# How GPUs are found, which placement shows where a host has none for a passthrough VM.
GPU_SOURCE = ("Hyper-V lists only GPUs dismounted from the host (Get-VMHostAssignableDevice): a GPU still mounted on "
              "the host must be given up first, as Microsoft's DDA steps do: `Disable-PnpDevice -InstanceId <its "
              "instance id> -Confirm:$false`, then "
              "`Dismount-VMHostAssignableDevice -LocationPath <its location path> -Force`")


def _version(text: str | None) -> tuple[int, int]:
    try:
        major, _, minor = str(text or "0.0").partition(".")
        return int(major), int(minor or 0)
    except ValueError:
        return (0, 0)


PNP_CLASS_IDS = {"display": "0x0302", "scsiadapter": "0x0108", "net": "0x0200"}


def _pci_device(device: Any, iov: bool | None, holders: list[str], pnp: dict[str, Any]) -> PciDevice:
    instance = device.text("InstanceID") or ""
    vendor_id, device_id = pci_ids(instance)
    entry = pnp.get(instance.lower())
    pnp_class = str(entry.get("Class") or "").lower() if entry is not None else ""
    return PciDevice(address=str(device.text("LocationPath") or instance),
                     class_id=PNP_CLASS_IDS.get(pnp_class, "0x0000"),
                     vendor_id=vendor_id or "0x0000", device_id=device_id or "0x0000",
                     device_name=entry.text("FriendlyName") if entry is not None else None,
                     passthrough_capable=bool(iov) if iov is not None else None, passthrough_enabled=True,
                     in_use_by=holders)


def host_facts(endpoint: str, vmhost: Any, versions: list[Any], assignable: list[Any], gpus: list[Any],
               switches: list[Any], assigned: list[Any] | None = None, *, processors: list[Any] | None = None,
               system: Any = None, numa: list[Any] | None = None, pnp: list[Any] | None = None,
               partitions: list[Any] | None = None) -> Host:
    sources: dict[str, str] = {}
    devices_by_id = {(d.text("InstanceId") or "").lower(): d for d in pnp or []}
    iov = vmhost.flag("IovSupport")
    reasons = vmhost.get("IovSupportReasons")
    if iov is not None:
        sources["iommu"] = "Get-VMHost IovSupport" + (f" (reasons: {reasons})" if reasons and not iov else "")
    vendor = next((v for p in processors or [] if (v := vendor_of(p.text("Manufacturer")))), None)
    build = system.number("BuildNumber") if system is not None else None
    highest = max((_version(v.text("Version")) for v in versions), default=(0, 0))
    nested: bool | None = None
    if vendor == "intel":
        nested = highest >= (8, 0)
    elif vendor == "amd":
        nested = highest >= (9, 3) and build is not None and build >= AMD_NESTED_BUILD
    sources["cpu_vendor"] = "Win32_Processor Manufacturer"
    sources["nested"] = ("configuration versions offered vs Microsoft's minimums (8.0 Intel, 9.3 AMD), and for AMD "
                         f"a Windows Server 2022 / Windows 11 build ({AMD_NESTED_BUILD}+; Win32_OperatingSystem)"
                         if vendor else "unknown: the host does not report its CPU vendor")
    sources["hardware_virtualization"] = sources["slat"] = "inferred: the Hyper-V hypervisor runs on this host"
    sources["gpus"] = GPU_SOURCE
    devices = [_pci_device(d, iov, [], devices_by_id) for d in assignable]
    listed = {device.address.lower() for device in devices}
    for held in assigned or []:
        address = str(held.text("LocationPath") or "").lower()
        if address and address not in listed:
            listed.add(address)
            devices.append(_pci_device(held, iov, [held.text("VMName") or str(held.get("VMId"))], devices_by_id))
    vgpu_types = []
    gpu_names = [gpu.text("Name") or "" for gpu in gpus]
    for gpu in gpus:
        name = gpu.text("Name") or ""
        counts = gpu.get("ValidPartitionCounts") or []
        total = gpu.number("TotalVRAM")
        available = gpu.number("AvailableVRAM")
        current = gpu.number("PartitionCount") or 0
        # No partition on the GPU (all its VRAM available): Set-VMHostPartitionableGpu may split it anew, as the
        # driver does before its first partition, so every valid count is free in full.
        idle = bool(total) and available == total and not any(
            name and partition_gpu(p, gpu_names).lower() == name.lower() for p in partitions or [])
        for count in counts:
            count = int(count)
            free = None
            if total and available is not None and count == current:
                free = int(available * count // total)
            elif idle:
                free = count
            holders = [p.text("VMName") or str(p.get("VMId")) for p in partitions or []
                       if count == current and name and partition_gpu(p, gpu_names).lower() == name.lower()]
            vgpu_types.append(VgpuType(profile=f"gpu-p/{count}", device=name, available=free, total=count,
                                       in_use_by=holders))
    sriov = [SriovFunction(address=s.text("Name") or "", device_name=s.text("NetAdapterInterfaceDescription"),
                           enabled=s.flag("IovEnabled"), vfs_max=s.number("IovVirtualFunctionCount"),
                           vfs_enabled=s.number("IovVirtualFunctionCount"),
                           vfs_free=_free(s.number("IovVirtualFunctionCount"), s.number("IovVirtualFunctionsInUse")))
             for s in switches if s.flag("IovEnabled")]
    memory = vmhost.number("MemoryCapacity")
    free = sum(node.number("MemoryAvailable") or 0 for node in numa) if numa else None
    if free is not None:
        sources["memory_free"] = "Get-VMHostNumaNode MemoryAvailable"
    return Host(name=vmhost.text("ComputerName") or vmhost.text("Name") or endpoint, endpoint=endpoint,
                hypervisor="hyperv", product="Hyper-V", version=vmhost.text("Version"), online=True,
                cpu_vendor=vendor, hardware_virtualization=True, slat=True, iommu=iov, nested=nested,
                memory_total_mib=None if memory is None else memory // MiB,
                memory_free_mib=free,
                max_hardware_version=f"{highest[0]}.{highest[1]}" if highest > (0, 0) else None,
                pci_devices=devices, vgpu_types=vgpu_types, sriov=sriov, sources=sources,
                devices_in_use_known=assigned is not None)  # every VM's Get-VMAssignableDevice was read


def _free(total: int | None, used: int | None) -> int | None:
    return None if total is None or used is None else max(0, total - used)
