"""libvirt host facts for the inventory, from XML libvirt returns (pure mapping; the reads are in provider.py).

- CPU vendor and features, IOMMU: ``virConnectGetCapabilities`` (``host/cpu/vendor``, ``host/cpu/feature``,
  ``host/iommu support``; https://libvirt.org/formatcaps.html).
- What QEMU can do here: ``virConnectGetDomainCapabilities`` for ``kvm`` (KVM usable) or ``qemu`` (TCG only):
  host-passthrough CPU, UEFI loaders (OVMF) and secure boot, PCI host devices
  (https://libvirt.org/formatdomaincaps.html). Hardware virtualization is True when the ``kvm`` domain type
  is offered; nested virtualization needs that, a host-passthrough CPU, and ``vmx``/``svm`` among the host's CPU
  features.
- PCI functions, mdev types (vGPU profiles with ``availableInstances``), SR-IOV physical functions and their
  virtual functions: node devices of capability ``pci`` (https://libvirt.org/formatnode.html). A function in an
  IOMMU group is passthrough-capable (a ``managed='yes'`` hostdev has libvirt bind it to vfio-pci).
- In use: libvirt lets two domains hold one GPU (the second fails only when it starts, or never, on the test
  driver), so every domain's host devices are read and count as in use, by that domain's name.
- The test driver's capabilities are fixed by libvirt (an i686 host, its IOMMU read from the real machine's
  sysfs) and it has no domain capabilities: its CPU, IOMMU and nested facts are unknown, never its answers.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from virtplane.inventory import Host, PciDevice, SriovFunction, VgpuType
from virtplane.providers.libvirt.devices import PciFunction, PciView, address_of

MiB = 1024**2


@dataclass
class DomainCaps:
    """What ``getDomainCapabilities`` said (None: not asked or not supported, as on the test driver)."""

    domain_type: str  # kvm or qemu
    host_passthrough: bool = False
    loaders: list[str] = field(default_factory=list)  # UEFI loader images (OVMF)
    secure_boot: bool = False
    pci_hostdev: bool = False
    machines: list[str] = field(default_factory=list)


def domain_caps(xml: str) -> DomainCaps:
    root = ET.fromstring(xml)
    modes = {mode.get("name"): mode.get("supported") == "yes" for mode in root.findall("cpu/mode")}
    loader = root.find("os/loader")
    secure = [v.text for v in root.findall("os/loader/enum[@name='secure']/value")]
    subsystems = [v.text for v in root.findall("devices/hostdev/enum[@name='subsysType']/value")]
    return DomainCaps(
        domain_type=root.findtext("domain") or "qemu",
        host_passthrough=modes.get("host-passthrough", False),
        loaders=[v.text or "" for v in root.findall("os/loader/value")] if loader is not None and
        loader.get("supported") == "yes" else [],
        secure_boot="yes" in secure,
        pci_hostdev=root.find("devices/hostdev") is not None and root.find("devices/hostdev").get("supported") == "yes"
        and "pci" in subsystems,
        machines=[root.findtext("machine") or ""],
    )


@dataclass
class CpuCaps:
    uuid: str | None
    vendor: str | None  # intel | amd | other
    model: str | None
    features: set[str]
    iommu: bool | None


def capabilities(xml: str, test_driver: bool) -> CpuCaps:
    root = ET.fromstring(xml)
    vendor_text = (root.findtext("host/cpu/vendor") or "").lower()
    vendor = "intel" if "intel" in vendor_text else "amd" if "amd" in vendor_text else (
        "other" if vendor_text else None)
    iommu = root.find("host/iommu")
    return CpuCaps(uuid=root.findtext("host/uuid"), vendor=None if test_driver else vendor,
                   model=None if test_driver else root.findtext("host/cpu/model"),
                   features={f.get("name", "") for f in root.findall("host/cpu/feature")},
                   iommu=None if test_driver or iommu is None else iommu.get("support") == "yes")


@dataclass
class NodeDevice:
    address: str
    class_id: str
    vendor_id: str
    device_id: str
    vendor_name: str | None
    device_name: str | None
    iommu_group: int | None
    mdev_types: list[tuple[str, str | None, int | None]]  # (type id, name, available instances)
    vfs: list[str]  # a PF's virtual functions
    vfs_max: int | None
    pf: str | None  # a VF's physical function


def node_device(xml: str) -> NodeDevice | None:
    root = ET.fromstring(xml)
    pci = root.find("capability[@type='pci']")
    if pci is None:
        return None
    address = (f"{int(pci.findtext('domain') or 0):04x}:{int(pci.findtext('bus') or 0):02x}:"
               f"{int(pci.findtext('slot') or 0):02x}.{int(pci.findtext('function') or 0)}")
    vendor, product = pci.find("vendor"), pci.find("product")
    group = pci.find("iommuGroup")
    types = [(t.get("id", ""), t.findtext("name"), int(t.findtext("availableInstances") or 0)
              if t.findtext("availableInstances") else None)
             for t in pci.findall("capability[@type='mdev_types']/type")]
    functions = pci.find("capability[@type='virt_functions']")
    parent = pci.find("capability[@type='phys_function']/address")
    return NodeDevice(
        address=address, class_id=(pci.findtext("class") or "0x000000").lower(),
        vendor_id=(vendor.get("id") if vendor is not None else None) or "0x0000",
        device_id=(product.get("id") if product is not None else None) or "0x0000",
        vendor_name=vendor.text if vendor is not None else None,
        device_name=product.text if product is not None else None,
        iommu_group=int(group.get("number", "0")) if group is not None else None,
        mdev_types=types,
        vfs=[a for a in (address_of(e) for e in functions.findall("address")) if a] if functions is not None else [],
        vfs_max=int(functions.get("maxCount", "0")) if functions is not None and functions.get("maxCount") else None,
        pf=address_of(parent))


def pci_view(devices: list[NodeDevice]) -> PciView:
    return PciView({d.address: PciFunction(d.address, d.vendor_id, d.class_id, d.pf) for d in devices})


@dataclass
class Holdings:
    """What every domain of the host holds: PCI functions and mdevs (parent, type) by domain name."""

    pci: dict[str, list[str]] = field(default_factory=dict)  # address -> domains
    mdevs: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (parent, type) -> domains


def host(endpoint: str, name: str, *, product: str, version: str | None, cpu: CpuCaps, caps: DomainCaps | None,
         memory_total: int, memory_free: int | None, devices: list[NodeDevice], holdings: Holdings,
         test_driver: bool) -> Host:
    sources: dict[str, str] = {}
    extension = {"vmx", "svm"} & cpu.features
    if test_driver:
        hardware = nested = None
        sources["hardware_virtualization"] = "unknown: the test driver's capabilities are fixed by libvirt"
    else:
        hardware = caps is not None and caps.domain_type == "kvm"
        sources["hardware_virtualization"] = ("getDomainCapabilities: the kvm domain type is offered" if hardware
                                              else "getDomainCapabilities: only TCG (domain type qemu)")
        nested = bool(hardware and caps is not None and caps.host_passthrough and extension)
        sources["nested"] = "KVM, a host-passthrough CPU and vmx/svm among getCapabilities' host CPU features"
    if cpu.iommu is not None:
        sources["iommu"] = "getCapabilities host/iommu"
    pci_devices = [PciDevice(address=d.address, class_id=d.class_id, vendor_id=d.vendor_id, device_id=d.device_id,
                             vendor_name=d.vendor_name, device_name=d.device_name, iommu_group=d.iommu_group,
                             passthrough_capable=d.iommu_group is not None,
                             passthrough_enabled=d.iommu_group is not None,
                             in_use_by=sorted(set(holdings.pci.get(d.address, []))))
                   for d in devices if d.pf is None]
    vgpus = [VgpuType(profile=type_id, device=d.address, description=type_name, available=available,
                      in_use_by=sorted(set(holdings.mdevs.get((d.address, type_id), []))))
             for d in devices for type_id, type_name, available in d.mdev_types]
    sriov = []
    for d in devices:
        if d.vfs_max is None and not d.vfs:
            continue
        users = sorted({holder for vf in d.vfs for holder in holdings.pci.get(vf, [])})
        held = sum(1 for vf in d.vfs if holdings.pci.get(vf))
        sriov.append(SriovFunction(address=d.address, device_name=d.device_name, enabled=bool(d.vfs),
                                   vfs_max=d.vfs_max, vfs_enabled=len(d.vfs), vfs_free=len(d.vfs) - held,
                                   in_use_by=users))
    return Host(name=name, endpoint=endpoint, hypervisor="libvirt", product=product, version=version, online=True,
                cpu_vendor=cpu.vendor if cpu.vendor in ("intel", "amd", "other") else None,  # type: ignore[arg-type]
                cpu_model=cpu.model, hardware_virtualization=hardware,
                slat=None, iommu=cpu.iommu, nested=nested, memory_total_mib=memory_total,
                memory_free_mib=memory_free, pci_devices=pci_devices, vgpu_types=vgpus, sriov=sriov, sources=sources)
