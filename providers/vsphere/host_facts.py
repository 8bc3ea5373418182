"""Host facts for the inventory: every ESXi host of the endpoint's datacenter, read in one PropertyCollector
pass, mapped to ``virtplane.inventory.Host`` by pure functions (no I/O, tested table-driven).

Where each fact comes from is in /work/shared/reference/hardware-assist.md (VMware section) and in each host's
``sources``. A fact vSphere does not report stays None ("unknown"), never False. The newest hardware version
comes from one EnvironmentBrowser query per compute resource (else from the ESXi release). The VMs' power state and
memory reservations come in the same pass as the hosts (unreserved memory is what admission control counts); their
devices (passthrough, vGPU and SR-IOV use, device_use.py) are read in a second pass only for hosts that have such
hardware enabled and hold VMs. GPUs' graphics facts and per-GPU vGPU profiles are mapped in gpu_facts.py.

VT-x / AMD-V disabled in the BIOS still shows VMX / SVM in CPUID: ESXi says so in
``capability.ftCompatibilityIssues`` / ``smpFtCompatibilityIssues`` (``cpuHvDisabled``, ``cpuHvUnsupported``;
``cpuHwmmuUnsupported`` for EPT / RVI), read before the CPUID bits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pyVmomi import vim, vmodl

from virtplane.inventory import DeviceClaim, Host, PciDevice, SriovFunction
from virtplane.providers.vsphere.collector import retrieve_objects, retrieve_types
from virtplane.providers.vsphere.device_use import (
    DeviceUsage,
    bindings_by_vm,
    device_usage,
    pci_address,
    reservation_mib,
    unreserved_mib,
)
from virtplane.providers.vsphere.gpu_facts import graphics_by_address, graphics_mode, vgpu_types, with_graphics

__all__ = ["DeviceUsage", "device_usage", "graphics_mode", "pci_address"]

HOST_PATHS = (
    "name", "runtime.connectionState", "summary.config.product", "summary.hardware", "capability",
    "hardware.cpuFeature", "hardware.cpuPkg", "hardware.pciDevice", "config.pciPassthruInfo",
    "config.sharedPassthruGpuTypes", "config.graphicsInfo", "config.assignableHardwareBinding", "systemResources",
    "vm",
)
VM_PATHS = ("name", "runtime.host", "runtime.powerState", "config.memoryReservationLockedToMax",
            "config.hardware.memoryMB", "config.memoryAllocation")
DEVICE_PATHS = ("config.hardware.device",)
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


def ft_issues(capability: Any) -> set[str]:
    """The reasons ``capability.ftCompatibilityIssues`` and ``smpFtCompatibilityIssues`` give."""
    if capability is None:
        return set()
    return {*(getattr(capability, "ftCompatibilityIssues", None) or []),
            *(getattr(capability, "smpFtCompatibilityIssues", None) or [])}


def virtualization_disabled(capability: Any) -> tuple[bool, str] | None:
    """(False, source) when the host says VT-x / AMD-V is disabled in the BIOS or unsupported; else None."""
    issues = ft_issues(capability)
    for issue, meaning in (("cpuHvDisabled", "disabled in the BIOS"), ("cpuHvUnsupported", "not supported")):
        if issue in issues:
            return False, f"capability.ftCompatibilityIssues: {issue} (hardware virtualization {meaning})"
    return None


def capability_flag(capability: Any, name: str) -> tuple[bool | None, str]:
    value = getattr(capability, name, None) if capability is not None else None
    if value is None:
        return None, f"unknown: capability.{name} not reported"
    return bool(value), f"capability.{name}"


def pci_devices(devices: Sequence[Any] | None, passthru: Sequence[Any] | None, usage: DeviceUsage,
                graphics: Mapping[str, Any] | None = None) -> list[PciDevice]:
    """``hardware.pciDevice`` joined with ``config.pciPassthruInfo`` (capable, enabled, active, dependent device)
    and ``config.graphicsInfo`` by address; a device the passthrough list does not name has unknown (None)
    passthrough state."""
    states = {pci_address(info.id): info for info in passthru or [] if info.id}
    graphics = graphics or {}
    found = []
    for device in devices or []:
        address = pci_address(device.id)
        state = states.get(address)
        dependent = pci_address(state.dependentDevice) if state is not None and state.dependentDevice else None
        found.append(with_graphics(PciDevice(
            address=address, class_id=hex_id(device.classId), vendor_id=hex_id(device.vendorId),
            device_id=hex_id(device.deviceId), vendor_name=device.vendorName or None,
            device_name=device.deviceName or None,
            passthrough_capable=None if state is None else bool(state.passthruCapable),
            passthrough_enabled=None if state is None else bool(state.passthruEnabled),
            passthrough_active=None if state is None else bool(state.passthruActive),
            dependent_device=dependent if dependent != address else None,
            in_use_by=sorted(usage.passthrough.get(address, []))), graphics.get(address)))
    return sorted(found, key=lambda d: d.address)


def device_claims(usage: DeviceUsage, devices: Sequence[PciDevice]) -> list[DeviceClaim]:
    """Powered-off Dynamic DirectPath VMs and the devices of their ``allowedDevice`` ids enabled here, one of which
    each takes at power-on."""
    claims = []
    for vm, allowed in sorted(usage.claims.items()):
        wanted = {(f"0x{vendor:04x}", f"0x{device:04x}") for vendor, device in allowed}
        matching = sorted(d.address for d in devices if (d.vendor_id, d.device_id) in wanted
                          and d.passthrough_enabled is not False)
        claims.append(DeviceClaim(vm=vm, devices=matching))
    return claims


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


# The newest hardware version each ESXi release creates (VMware KB 1003746): (major, minor, update) -> vmx.
RELEASE_VMX = {(8, 0, 2): 21, (8, 0, 0): 20, (7, 0, 2): 19, (7, 0, 1): 18, (7, 0, 0): 17, (6, 7, 2): 15,
               (6, 7, 0): 14, (6, 5, 0): 13, (6, 0, 0): 11, (5, 5, 0): 10, (5, 1, 0): 9}
ESXI_67_U2_BUILD = 13006603  # ESXi 6.7 reports version 6.7.0 for every update: Update 2 starts at this build


def release_hardware_version(product: Any) -> str | None:
    """The newest hardware version of an ESXi release (``summary.config.product``): for hosts no descriptor names.
    8.0 U2 and later 8.0 updates: vmx-21; a release newer than this table knows: None."""
    try:
        parts = [int(part) for part in str(getattr(product, "version", "") or "").split(".")[:3]]
    except ValueError:
        return None
    if len(parts) < 2 or parts[0] > 8:
        return None
    major, minor, update = (*parts, 0, 0)[:3]
    if (major, minor) == (6, 7) and int(getattr(product, "build", 0) or 0) >= ESXI_67_U2_BUILD:
        update = 2
    known = [(release, vmx) for release, vmx in RELEASE_VMX.items() if release <= (major, minor, update)]
    return f"vmx-{max(known)[1]:02d}" if known else None


def host_from_properties(props: Mapping[str, Any], endpoint: str, usage: DeviceUsage | None = None,
                         max_hardware_version: str | None = None,
                         vms: Sequence[tuple[bool, int | None]] | None = None) -> Host:
    """One host's retrieved properties (``HOST_PATHS``) as an inventory Host; ``max_hardware_version`` is
    read apart (``max_hardware_versions``), ``vms`` are its VMs' (running, memory reserved in MiB)."""
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
    virtualization, sources["hardware_virtualization"] = (
        virtualization_disabled(capability) or hardware_virtualization(vendor, features))
    slat, sources["slat"] = capability_flag(capability, "cpuHwMmuSupported")
    if "cpuHwmmuUnsupported" in ft_issues(capability):
        slat, sources["slat"] = False, "capability.ftCompatibilityIssues: cpuHwmmuUnsupported"
    nested, sources["nested"] = capability_flag(capability, "nestedHVSupported")
    graphics_info = props.get("config.graphicsInfo")
    mode, sources["graphics_mode"] = graphics_mode(graphics_info)

    passthru = props.get("config.pciPassthruInfo")
    devices = props.get("hardware.pciDevice")
    iommu = True if any(info.passthruCapable for info in passthru or []) else None
    sources["iommu"] = ("inferred: a device in config.pciPassthruInfo is passthruCapable" if iommu else
                        "unknown: no device in config.pciPassthruInfo is passthruCapable (IOMMU off, or "
                        "no capable device)")

    total = getattr(summary, "memorySize", None)
    total_mib = total // MIB if total else None
    system = getattr(getattr(getattr(props.get("systemResources"), "config", None), "memoryAllocation", None),
                     "reservation", None) or 0
    free_mib = unreserved_mib(total_mib, vms or [], int(system)) if vms is not None else None
    sources["memory_total_mib"] = "summary.hardware.memorySize"
    sources["memory_free_mib"] = (
        "unreserved, as admission control counts: summary.hardware.memorySize minus systemResources' reservation "
        "and the memory reservations of the VMs running here" if vms is not None
        else "unknown: the host's VMs were not read")

    state = props.get("runtime.connectionState")
    product = props.get("summary.config.product")
    sources["online"] = "runtime.connectionState"
    sources["product"] = "summary.config.product"
    if max_hardware_version:
        sources["max_hardware_version"] = (
            "environmentBrowser.QueryConfigOptionDescriptor() of its compute resource (createSupported)")
    elif (max_hardware_version := release_hardware_version(product)) is not None:
        sources["max_hardware_version"] = "inferred from the ESXi release (summary.config.product), KB 1003746"
    else:
        sources["max_hardware_version"] = "unknown: no hardware version descriptor names this host"
    sources["in_use_by"] = usage.source
    if not usage.known:
        sources["sriov.vfs_free"] = "unknown: the VMs' devices were not read"
    elif usage.unattributed_sriov:
        sources["sriov.vfs_free"] = "unknown: an SR-IOV NIC of a VM here names no physical function"
    else:
        sources["sriov.vfs_free"] = "numVirtualFunction minus the VMs' SR-IOV NICs on that function"

    graphics = graphics_by_address(graphics_info)
    found = pci_devices(devices, passthru, usage, graphics)
    vgpus = vgpu_types(props.get("config.sharedPassthruGpuTypes"), [d for d in found if d.is_gpu], graphics, usage)
    sources["vgpu_types"] = ("config.sharedPassthruGpuTypes, per GPU whose board the profile names, with the vGPUs "
                             "config.graphicsInfo[].vm runs there; free instances from the GPU's frame buffer "
                             "(memorySizeInKB): vSphere reports no remaining vGPU capacity")
    if usage.claims:
        sources["device_claims"] = ("powered-off VMs with a Dynamic DirectPath I/O device: each takes a free device "
                                    "of its allowedDevice at power-on")
    return Host(
        name=props["name"], endpoint=endpoint, hypervisor="vsphere",
        product=getattr(product, "name", None) or None, version=getattr(product, "version", None) or None,
        online=None if state is None else state == "connected",
        cpu_vendor=vendor, cpu_model=model,
        hardware_virtualization=virtualization, slat=slat, iommu=iommu, nested=nested,
        memory_total_mib=total_mib, memory_free_mib=free_mib, graphics_mode=mode,
        max_hardware_version=max_hardware_version, pci_devices=found, vgpu_types=vgpus,
        sriov=sriov_functions(passthru, devices, usage), device_claims=device_claims(usage, found),
        devices_in_use_known=usage.known, sources=sources)


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
    """Every host under ``datacenter`` with its facts: one retrieval for all hosts, their compute resources and
    their VMs' power state and reservations, one hardware-version query per compute resource (cluster or
    standalone host), and one more retrieval for the devices of the VMs on hosts with passthrough hardware, when
    there are any (through the streaming reader unless ``stream`` is False: there may be thousands)."""
    everything = retrieve_types(content, datacenter, {vim.HostSystem: HOST_PATHS, vim.ComputeResource: COMPUTE_PATHS,
                                                      vim.VirtualMachine: VM_PATHS})
    rows = [(obj, props) for obj, props in everything if isinstance(obj, vim.HostSystem)]
    vm_rows = {obj._moId: props for obj, props in everything if isinstance(obj, vim.VirtualMachine)}
    names = {moid: props.get("name", moid) for moid, props in vm_rows.items()}
    running = {names[moid]: props.get("runtime.powerState") == "poweredOn" for moid, props in vm_rows.items()}
    reservations: dict[str, list[tuple[bool, int | None]]] = {}
    for props in vm_rows.values():
        host = props.get("runtime.host")
        if host is not None:
            reservations.setdefault(host._moId, []).append(
                (props.get("runtime.powerState") == "poweredOn", reservation_mib(props)))
    versions = _hardware_versions(props.get("environmentBrowser") for obj, props in everything
                                  if isinstance(obj, vim.ComputeResource))
    wanted = [(host._moId, vm) for host, props in rows if holds_passthrough_hardware(props)
              for vm in props.get("vm") or []]
    vm_devices: dict[str, list[tuple[str, Sequence[Any]]]] = {}
    if wanted:
        host_of = {vm._moId: host for host, vm in wanted}
        for vm, props in retrieve_objects(content, [vm for _, vm in wanted], vim.VirtualMachine, DEVICE_PATHS,
                                          stream=stream):
            vm_devices.setdefault(host_of[vm._moId], []).append(
                (names.get(vm._moId, vm._moId), props.get("config.hardware.device") or []))
    hosts = []
    for host, props in rows:
        if "name" not in props:
            continue  # removed while being read
        if holds_passthrough_hardware(props):
            usage = device_usage(vm_devices.get(host._moId, []), powered_on=running,
                                 bindings=bindings_by_vm(props.get("config.assignableHardwareBinding"), names))
        else:
            usage = device_usage([], "nothing held: no VMs here, or no passthrough device, SR-IOV function "
                                     "or vGPU profile enabled")
        usage.vm_names = names
        hosts.append(host_from_properties(props, endpoint, usage, versions.get(host._moId),
                                          reservations.get(host._moId, [])))
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
