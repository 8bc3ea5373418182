"""Host facts for the inventory: every ESXi host of the endpoint's datacenter, read in one PropertyCollector
pass, mapped to ``virtplane.inventory.Host`` by pure functions (no I/O, tested table-driven).

Where each fact comes from is in /work/shared/reference/hardware-assist.md (VMware section) and in each host's
``sources``. A fact vSphere does not report stays None ("unknown"), never False. The newest hardware version
comes from one EnvironmentBrowser query per compute resource. The VMs' devices (passthrough, vGPU and SR-IOV
use) are read in a second pass only for hosts that have such hardware enabled and hold VMs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pyVmomi import vim, vmodl

from virtplane.inventory import Host, PciDevice, SriovFunction, VgpuType
from virtplane.providers.vsphere.collector import retrieve_objects, retrieve_types

HOST_PATHS = (
    "name", "runtime.connectionState", "summary.config.product", "summary.hardware",
    "summary.quickStats.overallMemoryUsage", "capability", "hardware.cpuFeature", "hardware.cpuPkg",
    "hardware.pciDevice", "config.pciPassthruInfo", "config.sharedPassthruGpuTypes", "config.graphicsInfo", "vm",
)
VM_PATHS = ("name", "config.hardware.device")
COMPUTE_PATHS = ("environmentBrowser",)

MIB = 1024 * 1024
LEAF_FEATURES = 0x00000001
LEAF_EXTENDED_FEATURES = 0x80000001
VMX_BIT = 5  # leaf 1 ECX (Intel VT-x)
SVM_BIT = 2  # leaf 0x80000001 ECX (AMD-V)
Vendor = Literal["intel", "amd", "other"]
_CPUID_VENDORS: dict[str, Vendor] = {"GenuineIntel": "intel", "AuthenticAMD": "amd"}


# --- pure mapping ------------------------------------------------------------------------------------------

def hex_id(value: int | None, digits: int = 4) -> str:
    """A PCI id as the inventory writes it ("0x10de"); the API's signed shorts are masked (-32634 is 0x8086)."""
    return f"0x{(value or 0) & 0xFFFF:0{digits}x}"


def pci_address(device_id: str) -> str:
    """The full ``domain:bus:slot.function`` address, lower case ("3B:00.0" becomes "0000:3b:00.0")."""
    address = device_id.strip().lower()
    return address if address.count(":") >= 2 else f"0000:{address}"


def cpuid_leaf(level: int) -> int:
    """The CPUID leaf number of a ``HostCpuIdInfo.level`` (a signed int: -2147483647 is 0x80000001)."""
    return level & 0xFFFFFFFF


def register_bit(register: str | None, bit: int) -> bool | None:
    """Bit ``bit`` (0 = least significant) of a CPUID register string ("0000:…:1011", most significant
    first); None when the register is absent, malformed or the bit is masked ("-")."""
    if not register:
        return None
    bits = register.replace(":", "")
    if len(bits) != 32:
        return None
    value = bits[31 - bit]
    return {"1": True, "0": False}.get(value)


def registers_by_leaf(features: Iterable[Any] | None) -> dict[int, Any]:
    """``HostCpuIdInfo`` entries keyed by their (unsigned) leaf number."""
    return {cpuid_leaf(info.level): info for info in features or []}


def cpuid_vendor(leaf0: Any) -> Vendor | None:
    """The vendor of CPUID leaf 0 ("GenuineIntel" in EBX, EDX, ECX), as the inventory names it."""
    text = ""
    for register in (leaf0.ebx, leaf0.edx, leaf0.ecx):
        bits = (register or "").replace(":", "")
        if len(bits) != 32 or set(bits) - {"0", "1"}:
            return None
        text += int(bits, 2).to_bytes(4, "little").decode("ascii", "replace")
    return _CPUID_VENDORS.get(text, "other")


def cpu_vendor(packages: Sequence[Any] | None, features: Mapping[int, Any], model: str | None
               ) -> tuple[Vendor | None, str]:
    """The CPU vendor ("intel", "amd", "other") and where it was read."""
    vendors = {(package.vendor or "").lower() for package in packages or [] if package.vendor}
    if len(vendors) == 1:
        named = vendors.pop()
        return ("intel" if named == "intel" else "amd" if named == "amd" else "other"), "hardware.cpuPkg[].vendor"
    if 0 in features and (vendor := cpuid_vendor(features[0])) is not None:
        return vendor, "hardware.cpuFeature: cpuid leaf 0 vendor string"
    lowered = (model or "").lower()
    if "intel" in lowered:
        return "intel", "summary.hardware.cpuModel"
    if "amd" in lowered:
        return "amd", "summary.hardware.cpuModel"
    return None, "unknown: neither hardware.cpuPkg nor cpuid leaf 0 names the vendor"


def hardware_virtualization(vendor: str | None, features: Mapping[int, Any]) -> tuple[bool | None, str]:
    """VT-x (VMX, leaf 1 ECX bit 5) or AMD-V (SVM, leaf 0x80000001 ECX bit 2) from the CPUID registers."""
    vmx = register_bit(getattr(features.get(LEAF_FEATURES), "ecx", None), VMX_BIT)
    svm = register_bit(getattr(features.get(LEAF_EXTENDED_FEATURES), "ecx", None), SVM_BIT)
    if vendor == "intel":
        checks = [(vmx, "cpuid leaf 1 ECX bit 5 (VMX)")]
    elif vendor == "amd":
        checks = [(svm, "cpuid leaf 0x80000001 ECX bit 2 (SVM)")]
    else:
        checks = [(vmx, "cpuid leaf 1 ECX bit 5 (VMX)"), (svm, "cpuid leaf 0x80000001 ECX bit 2 (SVM)")]
    for value, where in checks:
        if value:
            return True, f"hardware.cpuFeature: {where}"
    if checks and all(value is False for value, _ in checks):
        return False, "hardware.cpuFeature: " + " and ".join(where for _, where in checks) + " clear"
    return None, "unknown: hardware.cpuFeature has no readable " + " or ".join(where for _, where in checks)


def capability_flag(capability: Any, name: str) -> tuple[bool | None, str]:
    value = getattr(capability, name, None) if capability is not None else None
    if value is None:
        return None, f"unknown: capability.{name} not reported"
    return bool(value), f"capability.{name}"


@dataclass
class DeviceUsage:
    """What the VMs of one host hold: passthrough devices and SR-IOV physical functions by PCI address,
    vGPU profiles by name (VM names, sorted when mapped). ``unattributed_sriov`` counts SR-IOV NICs whose
    physical function is not named (their VFs cannot be charged to a PF). ``known`` is False when the VMs'
    devices were not read (use is then unknown); ``source`` says how it was found."""

    known: bool = False
    source: str = "unknown: the VMs' devices were not read"
    passthrough: dict[str, list[str]] = field(default_factory=dict)
    sriov: dict[str, list[str]] = field(default_factory=dict)
    vgpu: dict[str, list[str]] = field(default_factory=dict)
    unattributed_sriov: int = 0


def device_usage(vms: Iterable[tuple[str, Sequence[Any]]],
                 source: str = "config.hardware.device of the host's VMs (powered-off ones too)") -> DeviceUsage:
    """Collect what each VM's devices (``config.hardware.device``) hold, from (VM name, devices) pairs."""
    usage = DeviceUsage(known=True, source=source)
    for name, devices in vms:
        for device in devices or []:
            if isinstance(device, vim.vm.device.VirtualSriovEthernetCard):
                function = getattr(device.sriovBacking, "physicalFunctionBacking", None)
                if function is not None and function.id:
                    usage.sriov.setdefault(pci_address(function.id), []).append(name)
                else:
                    usage.unattributed_sriov += 1
            elif isinstance(device, vim.vm.device.VirtualPCIPassthrough):
                backing = device.backing
                if isinstance(backing, vim.vm.device.VirtualPCIPassthrough.VmiopBackingInfo) and backing.vgpu:
                    usage.vgpu.setdefault(backing.vgpu, []).append(name)
                elif isinstance(backing, vim.vm.device.VirtualPCIPassthrough.DeviceBackingInfo) and backing.id:
                    usage.passthrough.setdefault(pci_address(backing.id), []).append(name)
    return usage


def pci_devices(devices: Sequence[Any] | None, passthru: Sequence[Any] | None, usage: DeviceUsage
                ) -> list[PciDevice]:
    """``hardware.pciDevice`` joined with ``config.pciPassthruInfo`` by address; a device the passthrough
    list does not name has unknown (None) passthrough state."""
    states = {pci_address(info.id): info for info in passthru or [] if info.id}
    found = []
    for device in devices or []:
        address = pci_address(device.id)
        state = states.get(address)
        found.append(PciDevice(
            address=address, class_id=hex_id(device.classId), vendor_id=hex_id(device.vendorId),
            device_id=hex_id(device.deviceId), vendor_name=device.vendorName or None,
            device_name=device.deviceName or None,
            passthrough_capable=None if state is None else bool(state.passthruCapable),
            passthrough_enabled=None if state is None else bool(state.passthruEnabled),
            in_use_by=sorted(usage.passthrough.get(address, []))))
    return sorted(found, key=lambda d: d.address)


def sriov_functions(passthru: Sequence[Any] | None, devices: Sequence[Any] | None, usage: DeviceUsage
                    ) -> list[SriovFunction]:
    """The SR-IOV physical functions (``HostSriovInfo`` entries): VFs enabled and free (enabled minus the
    VMs' SR-IOV NICs on the PF; None when VM devices were not read or a NIC names no PF)."""
    names = {pci_address(device.id): device.deviceName or None for device in devices or []}
    functions = []
    for info in passthru or []:
        if not isinstance(info, vim.host.SriovInfo) or not (info.sriovCapable or info.sriovEnabled):
            continue
        address = pci_address(info.id)
        enabled = int(info.numVirtualFunction or 0) if info.sriovEnabled else 0
        holders = sorted(usage.sriov.get(address, []))
        free = max(enabled - len(holders), 0) if usage.known and not usage.unattributed_sriov else None
        functions.append(SriovFunction(
            address=address, device_name=names.get(address), enabled=bool(info.sriovEnabled),
            vfs_max=info.maxVirtualFunctionSupported, vfs_enabled=enabled, vfs_free=free, in_use_by=holders))
    return sorted(functions, key=lambda f: f.address)


def vgpu_types(profiles: Sequence[str] | None, usage: DeviceUsage) -> list[VgpuType]:
    """``config.sharedPassthruGpuTypes``: host-wide profile names; vSphere reports no remaining capacity,
    so ``available`` and ``total`` stay None."""
    return sorted((VgpuType(profile=profile, in_use_by=sorted(usage.vgpu.get(profile, [])))
                   for profile in dict.fromkeys(profiles or [])), key=lambda v: v.profile)


def graphics_mode(graphics: Sequence[Any] | None) -> tuple[str | None, str]:
    """The host's graphics type from ``config.graphicsInfo[].graphicsType`` (the first GPU's when they
    differ)."""
    entries = sorted((info for info in graphics or [] if info.graphicsType), key=lambda info: info.pciId or "")
    if not entries:
        return None, "unknown: config.graphicsInfo lists no graphics device"
    kinds = sorted({info.graphicsType for info in entries})
    if len(kinds) == 1:
        return kinds[0], "config.graphicsInfo[].graphicsType"
    return entries[0].graphicsType, (f"config.graphicsInfo[].graphicsType of {entries[0].pciId} "
                                     f"(GPUs differ: {', '.join(kinds)})")


def hardware_version_number(key: str) -> int | None:
    """The number of a hardware version key ("vmx-19" is 19)."""
    prefix, _, number = key.partition("-")
    return int(number) if prefix == "vmx" and number.isdigit() else None


def max_hardware_versions(descriptors: Iterable[Any]) -> dict[str, str]:
    """Host moId -> the newest hardware version a VM can be created with there, from a compute resource's
    ``EnvironmentBrowser.QueryConfigOptionDescriptor()`` (each descriptor names the hosts supporting it)."""
    newest: dict[str, tuple[int, str]] = {}
    for descriptor in descriptors:
        number = hardware_version_number(descriptor.key or "")
        if number is None or not descriptor.createSupported:
            continue
        for host in descriptor.host or []:
            if host._moId not in newest or number > newest[host._moId][0]:
                newest[host._moId] = (number, descriptor.key)
    return {host: key for host, (_, key) in newest.items()}


def host_from_properties(props: Mapping[str, Any], endpoint: str, usage: DeviceUsage | None = None,
                         max_hardware_version: str | None = None) -> Host:
    """One host's retrieved properties (``HOST_PATHS``) as an inventory Host; ``max_hardware_version`` is
    read apart (``max_hardware_versions``)."""
    usage = usage or DeviceUsage()
    sources: dict[str, str] = {}
    summary = props.get("summary.hardware")
    capability = props.get("capability")
    features = registers_by_leaf(props.get("hardware.cpuFeature"))
    packages = props.get("hardware.cpuPkg") or []
    if not features:
        features = registers_by_leaf(packages[0].cpuFeature if packages else None)
    model = " ".join((getattr(summary, "cpuModel", None) or (packages[0].description if packages else "")
                      or "").split()) or None

    vendor, sources["cpu_vendor"] = cpu_vendor(packages, features, model)
    virtualization, sources["hardware_virtualization"] = hardware_virtualization(vendor, features)
    slat, sources["slat"] = capability_flag(capability, "cpuHwMmuSupported")
    nested, sources["nested"] = capability_flag(capability, "nestedHVSupported")
    mode, sources["graphics_mode"] = graphics_mode(props.get("config.graphicsInfo"))

    passthru = props.get("config.pciPassthruInfo")
    devices = props.get("hardware.pciDevice")
    iommu = True if any(info.passthruCapable for info in passthru or []) else None
    sources["iommu"] = ("inferred: a device in config.pciPassthruInfo is passthruCapable" if iommu else
                        "unknown: no device in config.pciPassthruInfo is passthruCapable (IOMMU off, or "
                        "no capable device)")

    total = getattr(summary, "memorySize", None)
    total_mib = total // MIB if total else None
    used = props.get("summary.quickStats.overallMemoryUsage")
    free_mib = max(total_mib - used, 0) if total_mib is not None and used is not None else None
    sources["memory_total_mib"] = "summary.hardware.memorySize"
    sources["memory_free_mib"] = "summary.hardware.memorySize minus summary.quickStats.overallMemoryUsage"

    state = props.get("runtime.connectionState")
    product = props.get("summary.config.product")
    sources["online"] = "runtime.connectionState"
    sources["product"] = "summary.config.product"
    sources["max_hardware_version"] = (
        "environmentBrowser.QueryConfigOptionDescriptor() of its compute resource (createSupported)"
        if max_hardware_version else "unknown: no hardware version descriptor names this host")
    sources["vgpu_types"] = ("config.sharedPassthruGpuTypes; available/total unknown: vSphere reports no "
                             "remaining vGPU capacity")
    sources["in_use_by"] = usage.source
    if not usage.known:
        sources["sriov.vfs_free"] = "unknown: the VMs' devices were not read"
    elif usage.unattributed_sriov:
        sources["sriov.vfs_free"] = "unknown: an SR-IOV NIC of a VM here names no physical function"
    else:
        sources["sriov.vfs_free"] = "numVirtualFunction minus the VMs' SR-IOV NICs on that function"

    return Host(
        name=props["name"], endpoint=endpoint, hypervisor="vsphere",
        product=getattr(product, "name", None) or None, version=getattr(product, "version", None) or None,
        online=None if state is None else state == "connected",
        cpu_vendor=vendor, cpu_model=model,
        hardware_virtualization=virtualization, slat=slat, iommu=iommu, nested=nested,
        memory_total_mib=total_mib, memory_free_mib=free_mib, graphics_mode=mode,
        max_hardware_version=max_hardware_version,
        pci_devices=pci_devices(devices, passthru, usage),
        vgpu_types=vgpu_types(props.get("config.sharedPassthruGpuTypes"), usage),
        sriov=sriov_functions(passthru, devices, usage), sources=sources)


def holds_passthrough_hardware(props: Mapping[str, Any]) -> bool:
    """True when the host has VMs and something they could hold: a passthrough-enabled device, an
    SR-IOV-enabled function or vGPU profiles (only then are its VMs' devices worth reading)."""
    if not props.get("vm"):
        return False
    passthru = props.get("config.pciPassthruInfo") or []
    return (any(info.passthruEnabled for info in passthru)
            or any(isinstance(info, vim.host.SriovInfo) and info.sriovEnabled for info in passthru)
            or bool(props.get("config.sharedPassthruGpuTypes")))


# --- reading -------------------------------------------------------------------------------------------------

def read_hosts(content: Any, datacenter: Any, endpoint: str, stream: bool = True) -> list[Host]:
    """Every host under ``datacenter`` with its facts: one retrieval for all hosts (and their compute
    resources), one hardware-version query per compute resource (cluster or standalone host), and one more
    retrieval for the devices of the VMs on hosts with passthrough hardware, when there are any (through the
    streaming reader unless ``stream`` is False: there may be thousands)."""
    everything = retrieve_types(content, datacenter, {vim.HostSystem: HOST_PATHS, vim.ComputeResource: COMPUTE_PATHS})
    rows = [(obj, props) for obj, props in everything if isinstance(obj, vim.HostSystem)]
    versions = _hardware_versions(props.get("environmentBrowser") for obj, props in everything
                                  if isinstance(obj, vim.ComputeResource))
    wanted = [(host._moId, vm) for host, props in rows if holds_passthrough_hardware(props)
              for vm in props.get("vm") or []]
    vm_devices: dict[str, list[tuple[str, Sequence[Any]]]] = {}
    if wanted:
        host_of = {vm._moId: host for host, vm in wanted}
        for vm, props in retrieve_objects(content, [vm for _, vm in wanted], vim.VirtualMachine, VM_PATHS,
                                          stream=stream):
            vm_devices.setdefault(host_of[vm._moId], []).append(
                (props.get("name", vm._moId), props.get("config.hardware.device") or []))
    hosts = []
    for host, props in rows:
        if "name" not in props:
            continue  # removed while being read
        if holds_passthrough_hardware(props):
            usage = device_usage(vm_devices.get(host._moId, []))
        else:
            usage = device_usage([], "nothing held: no VMs here, or no passthrough device, SR-IOV function "
                                     "or vGPU profile enabled")
        hosts.append(host_from_properties(props, endpoint, usage, versions.get(host._moId)))
    return sorted(hosts, key=lambda h: h.name)


def _hardware_versions(browsers: Iterable[Any]) -> dict[str, str]:
    versions: dict[str, str] = {}
    for browser in browsers:
        if browser is None:
            continue
        try:
            descriptors = browser.QueryConfigOptionDescriptor()
        except vmodl.MethodFault:
            continue  # the hosts' max_hardware_version stays unknown; the rest of the inventory stands
        versions.update(max_hardware_versions(descriptors or []))
    return versions
