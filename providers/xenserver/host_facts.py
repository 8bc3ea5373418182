"""XenServer / XCP-ng host facts for the inventory (pure mapping; the reads are in pool_reader.py).

- Hardware virtualization: ``host.capabilities`` lists ``hvm-3.0-x86_64`` when Xen can run HVM guests, which
  needs VT-x / AMD-V enabled (Xen's capabilities; XenAPI reference, class host).
- Nested virtualization: ``cpu_info:features_hvm_host`` is the featureset Xen offers HVM guests at most
  (ocaml/xapi/create_misc.ml writes it; dash-separated 32-bit words): VMX (word 1, bit 5) or SVM (word 3, bit 2)
  there means guests can be given hardware virtualization; absent, they cannot. *Inferred*, not verified on a real
  pool: ``sources`` says so.
- IOMMU: ``host.chipset_info:iommu`` (xenopsd's ``iommu``, from Xen's ``CAP_DirectIO``).
- SLAT (EPT/NPT): XAPI does not report it; unknown.
- GPUs: each PGPU's PCI device; passthrough capable when its ``supported_VGPU_types`` hold the passthrough type,
  enabled when its ``enabled_VGPU_types`` do; vGPU profiles are its enabled types other than passthrough
  (``model_name``), with ``PGPU.get_remaining_capacity`` as what is free and ``supported_VGPU_max_capacities`` as
  the total. XAPI's PCI records carry names, not ids: the class id comes from the PCI class name and the vendor id
  from the vendor name where they are known ones; the device id is unknown (``0x0000``).
- SR-IOV: PIFs with the ``sriov`` capability; enabled when a network_sriov uses them, with
  ``network_sriov.get_remaining_capacity`` free virtual functions (the total is not in XAPI's records).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from virtplane.inventory import Host, PciDevice, SriovFunction, VgpuType
from virtplane.providers.xenserver.records import NULL, MiB, PoolView

CLASS_IDS = {"vga compatible controller": "0x0300", "3d controller": "0x0302", "display controller": "0x0380",
             "ethernet controller": "0x0200", "network controller": "0x0280"}
VENDOR_IDS = {"nvidia": "0x10de", "intel": "0x8086", "advanced micro devices": "0x1002", "matrox": "0x102b",
              "mellanox": "0x15b3", "broadcom": "0x14e4"}
_VMX = (1, 5)  # featureset word, bit: CPUID.1:ECX.VMX
_SVM = (3, 2)  # CPUID.0x80000001:ECX.SVM


@dataclass
class HostReadings:
    """What was read about the pool besides its records: capacities asked one by one."""

    free_memory: dict[str, int] = field(default_factory=dict)  # host ref -> bytes
    vgpu_free: dict[tuple[str, str], int] = field(default_factory=dict)  # (PGPU ref, VGPU_type ref) -> instances
    vfs_free: dict[str, int] = field(default_factory=dict)  # network_sriov ref -> virtual functions
    vm_names: dict[str, str] = field(default_factory=dict)  # VM ref -> name (for in_use_by)
    vm_hosts: dict[str, str] = field(default_factory=dict)  # VM ref -> the host it runs on
    metrics: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # host_metrics ref -> record


def host_facts(endpoint: str, ref: str, host: Mapping[str, Any], view: PoolView, readings: HostReadings) -> Host:
    sources: dict[str, str] = {}
    capabilities = list(host.get("capabilities") or [])
    hvm = any(cap.startswith("hvm-") for cap in capabilities) if capabilities else None
    if hvm is not None:
        sources["hardware_virtualization"] = "host.capabilities (hvm-3.0-* when Xen runs HVM guests)"
    cpu_info = host.get("cpu_info") or {}
    vendor_text = str(cpu_info.get("vendor", "")).lower()
    vendor = "intel" if "intel" in vendor_text else "amd" if "amd" in vendor_text else ("other" if vendor_text
                                                                                      else None)
    nested = _nested(cpu_info.get("features_hvm_host"), vendor)
    if nested is not None:
        sources["nested"] = ("inferred from cpu_info:features_hvm_host (VMX/SVM offered to HVM guests); not verified "
                             "on a real pool")
    iommu_text = (host.get("chipset_info") or {}).get("iommu")
    iommu = {"true": True, "false": False}.get(str(iommu_text).lower()) if iommu_text is not None else None
    if iommu is not None:
        sources["iommu"] = "host.chipset_info:iommu"
    metrics = readings.metrics.get(str(host.get("metrics")), {})
    software = host.get("software_version") or {}
    total = int(metrics["memory_total"]) // MiB if metrics.get("memory_total") else None
    free = readings.free_memory.get(ref)
    return Host(
        name=str(host["name_label"]), endpoint=endpoint, hypervisor="xenserver",
        product=software.get("product_brand") or "XenServer", version=software.get("product_version"),
        online=bool(host.get("enabled")) and bool(metrics.get("live", True)), cpu_vendor=vendor,
        cpu_model=cpu_info.get("modelname"), hardware_virtualization=hvm, slat=None, iommu=iommu, nested=nested,
        memory_total_mib=total, memory_free_mib=free // MiB if free is not None else None,
        pci_devices=_pci_devices(ref, view, readings), vgpu_types=_vgpu_types(ref, view, readings),
        sriov=_sriov(ref, view, readings), sources=sources)


def _nested(featureset: str | None, vendor: str | None) -> bool | None:
    if not featureset or vendor not in ("intel", "amd"):
        return None
    try:
        words = [int(word, 16) for word in featureset.split("-")]
    except ValueError:
        return None
    word, bit = _VMX if vendor == "intel" else _SVM
    return len(words) > word and bool(words[word] >> bit & 1)


def _known(table: Mapping[str, str], name: str | None, default: str) -> str:
    text = (name or "").lower()
    return next((value for key, value in table.items() if key in text), default)


def _pgpus_on(host: str, view: PoolView) -> list[tuple[str, Mapping[str, Any]]]:
    return [(ref, pgpu) for ref, pgpu in view.pgpus.items() if pgpu.get("host") == host]


def _passthrough_types(view: PoolView) -> set[str]:
    return {ref for ref, t in view.vgpu_types.items() if t.get("implementation") == "passthrough"}


def _holders(view: PoolView, readings: HostReadings, pgpu: str, vgpu_type: str | None = None) -> list[str]:
    return sorted({readings.vm_names.get(v["VM"], v["VM"]) for v in view.vgpus.values()
                   if v.get("resident_on") == pgpu and (vgpu_type is None or v.get("type") == vgpu_type)})


def _pci_devices(host: str, view: PoolView, readings: HostReadings) -> list[PciDevice]:
    passthrough = _passthrough_types(view)
    gpus = {pgpu["PCI"]: (ref, pgpu) for ref, pgpu in _pgpus_on(host, view)}
    devices = []
    for ref, pci in view.pcis.items():
        if pci.get("host") != host:
            continue
        capable = enabled = None
        holders: list[str] = []
        if ref in gpus:
            pgpu_ref, pgpu = gpus[ref]
            capable = bool(passthrough & set(pgpu.get("supported_VGPU_types") or []))
            enabled = bool(passthrough & set(pgpu.get("enabled_VGPU_types") or []))
            holders = _holders(view, readings, pgpu_ref)
        devices.append(PciDevice(
            address=str(pci["pci_id"]), class_id=_known(CLASS_IDS, pci.get("class_name"), "0x0000"),
            vendor_id=_known(VENDOR_IDS, pci.get("vendor_name"), "0x0000"), device_id="0x0000",
            vendor_name=pci.get("vendor_name"), device_name=pci.get("device_name"), passthrough_capable=capable,
            passthrough_enabled=enabled, in_use_by=holders))
    return devices


def _vgpu_types(host: str, view: PoolView, readings: HostReadings) -> list[VgpuType]:
    passthrough = _passthrough_types(view)
    offered = []
    for pgpu_ref, pgpu in _pgpus_on(host, view):
        pci = view.pcis.get(str(pgpu.get("PCI", NULL)), {})
        capacities = pgpu.get("supported_VGPU_max_capacities") or {}
        for type_ref in pgpu.get("enabled_VGPU_types") or []:
            vgpu_type = view.vgpu_types.get(type_ref)
            if vgpu_type is None or type_ref in passthrough:
                continue
            size = int(vgpu_type.get("framebuffer_size") or 0)
            total = capacities.get(type_ref)
            offered.append(VgpuType(
                profile=str(vgpu_type["model_name"]), device=pci.get("pci_id"),
                description=f"{vgpu_type.get('vendor_name') or ''} {size // 1024**3} GiB frame buffer".strip(),
                available=readings.vgpu_free.get((pgpu_ref, type_ref)), total=int(total) if total else None,
                in_use_by=_holders(view, readings, pgpu_ref, type_ref)))
    return offered


def _sriov(host: str, view: PoolView, readings: HostReadings) -> list[SriovFunction]:
    functions = []
    for pif_ref, pif in view.pifs.items():
        if pif.get("host") != host or "sriov" not in (pif.get("capabilities") or []):
            continue
        pci = view.pcis.get(str(pif.get("PCI", NULL)), {})
        sriov = next((ref for ref, record in view.sriovs.items() if record.get("physical_PIF") == pif_ref), None)
        logical = view.pifs.get(view.sriovs[sriov]["logical_PIF"], {}) if sriov else {}
        users = sorted({readings.vm_names.get(vif["VM"], vif["VM"]) for vif in view.vifs.values()
                        if logical and vif.get("network") == logical.get("network") and vif.get("currently_attached")
                        and readings.vm_hosts.get(vif["VM"]) == host})
        functions.append(SriovFunction(
            address=str(pci.get("pci_id") or pif.get("device")), device_name=pci.get("device_name"),
            enabled=sriov is not None, vfs_free=readings.vfs_free.get(sriov) if sriov else None, in_use_by=users))
    return functions
