"""The pure mapping from vSphere host properties to inventory facts, table-driven (no server)."""

from __future__ import annotations

import pytest
from pyVmomi import vim

from virtplane.providers.vsphere.device_use import reservation_mib
from virtplane.providers.vsphere.host_facts import (
    DeviceUsage,
    cpu_vendor,
    cpuid_leaf,
    cpuid_vendor,
    device_usage,
    graphics_mode,
    hardware_virtualization,
    hex_id,
    host_from_properties,
    max_hardware_versions,
    pci_address,
    pci_devices,
    register_bit,
    registers_by_leaf,
    release_hardware_version,
    sriov_functions,
)

Passthrough = vim.vm.device.VirtualPCIPassthrough
VMX_ON = "0111:1111:1111:1110:1111:1011:1111:1111"  # leaf 1 ECX of a Xeon: bit 5 set
VMX_OFF = "0111:1111:1111:1110:1111:1011:1101:1111"  # the same with bit 5 clear
SVM_ON = "0111:0101:1100:0010:0011:0111:1111:1111"  # leaf 0x80000001 ECX of an EPYC: bit 2 set
SVM_OFF = "0000:0000:0000:0000:0000:0001:0010:0001"  # an Intel part's leaf 0x80000001 ECX: bit 2 clear


def leaf(level: int, ecx: str | None = None, **registers: str) -> vim.host.CpuIdInfo:
    return vim.host.CpuIdInfo(level=level, ecx=ecx, **registers)


def ascii_register(text: str) -> str:
    bits = f"{int.from_bytes(text.encode(), 'little'):032b}"
    return ":".join(bits[i:i + 4] for i in range(0, 32, 4))


@pytest.mark.parametrize(("value", "expected"), [
    (0x10de, "0x10de"), (-32634, "0x8086"), (-22492, "0xa824"), (770, "0x0302"), (0x0200, "0x0200"), (0, "0x0000"),
])
def test_signed_short_ids_read_as_unsigned_hex(value, expected):
    assert hex_id(value) == expected


@pytest.mark.parametrize(("given", "expected"), [
    ("0000:3b:00.0", "0000:3b:00.0"), ("3B:00.0", "0000:3b:00.0"), ("0001:AF:1f.7", "0001:af:1f.7"),
])
def test_pci_addresses_carry_a_domain_and_are_lower_case(given, expected):
    assert pci_address(given) == expected


@pytest.mark.parametrize(("level", "expected"), [
    (0, 0), (1, 1), (-2147483648, 0x80000000), (-2147483647, 0x80000001), (-2147483640, 0x80000008),
])
def test_signed_leaf_numbers_become_cpuid_leaves(level, expected):
    assert cpuid_leaf(level) == expected


@pytest.mark.parametrize(("register", "bit", "expected"), [
    (VMX_ON, 5, True), (VMX_OFF, 5, False), (VMX_ON.replace(":", ""), 5, True),
    (SVM_ON, 2, True), (SVM_OFF, 2, False), ("0" * 31 + "1", 0, True), ("1" + "0" * 31, 31, True),
    ("----:----:----:----:----:----:--1-:----", 5, True), ("----:----:----:----:----:----:----:----", 5, None),
    ("0101", 2, None), ("", 5, None), (None, 5, None),
])
def test_register_bits_count_from_the_least_significant_end(register, bit, expected):
    assert register_bit(register, bit) is expected


@pytest.mark.parametrize(("vendor", "leaves", "expected"), [
    ("intel", [leaf(1, VMX_ON), leaf(-2147483647, SVM_OFF)], True),
    ("intel", [leaf(1, VMX_OFF), leaf(-2147483647, SVM_OFF)], False),
    ("amd", [leaf(1, "0111:1110:1111:1000:0011:0010:0000:1011"), leaf(-2147483647, SVM_ON)], True),
    ("amd", [leaf(1, VMX_ON), leaf(-2147483647, SVM_OFF)], False),  # an AMD part is judged by SVM alone
    ("amd", [leaf(1, VMX_ON)], None),  # the extended leaf is missing
    ("intel", [], None),
    (None, [leaf(1, VMX_OFF), leaf(-2147483647, SVM_ON)], True),
    (None, [leaf(1, VMX_OFF), leaf(-2147483647, SVM_OFF)], False),
    (None, [leaf(1, VMX_OFF)], None),
    ("intel", [leaf(1, "----:----:----:----:----:----:----:----")], None),
])
def test_hardware_virtualization_is_the_vendors_cpuid_bit(vendor, leaves, expected):
    value, source = hardware_virtualization(vendor, registers_by_leaf(leaves))
    assert value is expected
    assert source.startswith("unknown") == (expected is None)


@pytest.mark.parametrize(("text", "expected"), [
    ("GenuineIntel", "intel"), ("AuthenticAMD", "amd"), ("HygonGenuine", "other"),
])
def test_leaf_0_spells_the_vendor_in_ebx_edx_ecx(text, expected):
    registers = {"ebx": ascii_register(text[0:4]), "edx": ascii_register(text[4:8]), "ecx": ascii_register(text[8:12])}
    assert cpuid_vendor(vim.host.CpuIdInfo(level=0, **registers)) == expected


@pytest.mark.parametrize(("packages", "leaves", "model", "expected"), [
    ([vim.host.CpuPackage(vendor="amd"), vim.host.CpuPackage(vendor="amd")], [], None,
     ("amd", "hardware.cpuPkg[].vendor")),
    ([vim.host.CpuPackage(vendor="hygon")], [], None, ("other", "hardware.cpuPkg[].vendor")),
    ([], [vim.host.CpuIdInfo(level=0, ebx=ascii_register("Genu"), edx=ascii_register("ineI"),
                             ecx=ascii_register("ntel"))], None,
     ("intel", "hardware.cpuFeature: cpuid leaf 0 vendor string")),
    ([], [], "AMD EPYC 7763 64-Core Processor", ("amd", "summary.hardware.cpuModel")),
    ([], [], None, (None, "unknown: neither hardware.cpuPkg nor cpuid leaf 0 names the vendor")),
])
def test_the_cpu_vendor_comes_from_the_packages_then_cpuid_then_the_model(packages, leaves, model, expected):
    assert cpu_vendor(packages, registers_by_leaf(leaves), model) == expected


def gpu() -> vim.host.PciDevice:
    return vim.host.PciDevice(id="0000:3b:00.0", classId=0x0302, vendorId=0x10de, deviceId=0x20b5,
                              vendorName="NVIDIA Corporation", deviceName="GA100 [A100 PCIe 80GB]")


def test_a_device_missing_from_the_passthrough_list_has_unknown_passthrough_state():
    nic = vim.host.PciDevice(id="0000:5e:00.0", classId=0x0200, vendorId=-32634, deviceId=0x1572)
    infos = [vim.host.PciPassthruInfo(id="0000:3b:00.0", passthruCapable=True, passthruEnabled=False)]
    found = {d.address: d for d in pci_devices([gpu(), nic], infos, DeviceUsage())}
    assert (found["0000:3b:00.0"].passthrough_capable, found["0000:3b:00.0"].passthrough_enabled) == (True, False)
    assert (found["0000:5e:00.0"].passthrough_capable, found["0000:5e:00.0"].passthrough_enabled) == (None, None)
    assert (found["0000:5e:00.0"].vendor_id, found["0000:3b:00.0"].class_id) == ("0x8086", "0x0302")
    assert found["0000:3b:00.0"].is_gpu and not found["0000:5e:00.0"].is_gpu


def sriov_info(enabled: bool, vfs: int) -> vim.host.SriovInfo:
    return vim.host.SriovInfo(id="0000:5e:00.0", passthruCapable=True, passthruEnabled=False, sriovCapable=True,
                              sriovEnabled=enabled, numVirtualFunction=vfs, maxVirtualFunctionSupported=64)


@pytest.mark.parametrize(("info", "usage", "expected"), [
    (sriov_info(True, 8), DeviceUsage(known=True), (8, 8)),
    (sriov_info(True, 8), DeviceUsage(known=True, sriov={"0000:5e:00.0": ["b", "a"]}), (8, 6)),
    (sriov_info(True, 2), DeviceUsage(known=True, sriov={"0000:5e:00.0": ["a", "b", "c"]}), (2, 0)),
    (sriov_info(False, 0), DeviceUsage(known=True), (0, 0)),
    (sriov_info(True, 8), DeviceUsage(), (8, None)),  # the VMs' devices were not read
    (sriov_info(True, 8), DeviceUsage(known=True, unattributed_sriov=1), (8, None)),
])
def test_free_virtual_functions_are_the_enabled_ones_minus_the_vms_sriov_nics(info, usage, expected):
    (function,) = sriov_functions([info], [], usage)
    assert (function.vfs_enabled, function.vfs_free) == expected
    assert function.vfs_max == 64


def test_plain_passthrough_entries_are_not_sriov_functions():
    assert sriov_functions([vim.host.PciPassthruInfo(id="0000:3b:00.0", passthruCapable=True)], [], DeviceUsage()) == []


def test_vm_devices_are_charged_to_the_device_profile_and_function_they_hold():
    sriov = vim.vm.device.VirtualSriovEthernetCard(sriovBacking=vim.vm.device.VirtualSriovEthernetCard.SriovBackingInfo(
        physicalFunctionBacking=Passthrough.DeviceBackingInfo(id="5E:00.0")))
    unnamed = vim.vm.device.VirtualSriovEthernetCard()
    usage = device_usage([
        ("gpu-vm", [Passthrough(backing=Passthrough.DeviceBackingInfo(id="0000:3b:00.0")),
                    vim.vm.device.VirtualE1000()]),
        ("vgpu-vm", [Passthrough(backing=Passthrough.VmiopBackingInfo(vgpu="grid_a100-10c"))]),
        ("net-vm", [sriov, unnamed]),
    ])
    assert usage.passthrough == {"0000:3b:00.0": ["gpu-vm"]}
    assert usage.vgpu == {"grid_a100-10c": ["vgpu-vm"]}
    assert usage.sriov == {"0000:5e:00.0": ["net-vm"]}
    assert usage.unattributed_sriov == 1


@pytest.mark.parametrize(("types", "expected"), [
    ([], None), (["sharedDirect"], "sharedDirect"), (["shared", "shared"], "shared"),
])
def test_the_graphics_mode_is_the_gpus_graphics_type(types, expected):
    infos = [vim.host.GraphicsInfo(pciId=f"0000:{i:02x}:00.0", graphicsType=t) for i, t in enumerate(types)]
    assert graphics_mode(infos)[0] == expected


def test_gpus_in_different_graphics_modes_give_no_host_mode_and_each_gpu_its_own():
    infos = [vim.host.GraphicsInfo(pciId="0000:af:00.0", graphicsType="shared", memorySizeInKB=24 << 20),
             vim.host.GraphicsInfo(pciId="0000:3b:00.0", graphicsType="sharedDirect", memorySizeInKB=80 << 20)]
    mode, source = graphics_mode(infos)
    assert mode is None
    assert "GPUs differ (shared, sharedDirect)" in source
    l4 = vim.host.PciDevice(id="0000:af:00.0", classId=0x0302, vendorId=0x10de, deviceId=0x27b8, deviceName="L4")
    host = host_from_properties({"name": "esx-1", "hardware.pciDevice": [gpu(), l4], "config.graphicsInfo": infos},
                                "vc")
    assert [(d.address, d.graphics_type, d.memory_mib) for d in host.gpus()] == [
        ("0000:3b:00.0", "sharedDirect", 81920), ("0000:af:00.0", "shared", 24576)]


def test_a_host_that_reports_nothing_has_every_fact_unknown_and_says_why():
    host = host_from_properties({"name": "esx-1"}, "vc.example:443")
    facts = host.model_dump()
    unknown = ["product", "version", "online", "cpu_vendor", "cpu_model", "hardware_virtualization", "slat", "iommu",
               "nested", "memory_total_mib", "memory_free_mib", "graphics_mode", "max_hardware_version"]
    assert {name: facts[name] for name in unknown} == dict.fromkeys(unknown)
    assert (host.pci_devices, host.sriov, host.vgpu_types) == ([], [], [])
    for fact in ("hardware_virtualization", "slat", "iommu", "graphics_mode", "max_hardware_version"):
        assert host.sources[fact].startswith("unknown"), fact


def test_iommu_is_inferred_from_a_passthrough_capable_device_and_never_denied():
    def iommu(*capable: bool) -> bool | None:
        infos = [vim.host.PciPassthruInfo(id=f"0000:{i:02x}:00.0", passthruCapable=c) for i, c in enumerate(capable)]
        return host_from_properties({"name": "esx-1", "config.pciPassthruInfo": infos}, "vc").iommu

    assert iommu(False, True) is True
    assert iommu(False, False) is None
    assert iommu() is None


def test_free_memory_is_what_is_left_unreserved_not_what_is_left_unconsumed():
    props = {"name": "esx-1", "summary.hardware": vim.host.Summary.HardwareSummary(memorySize=512 << 30),
             "systemResources": vim.host.SystemResourceInfo(config=vim.ResourceConfigSpec(
                 memoryAllocation=vim.ResourceAllocationInfo(reservation=4096)))}
    vms = [(True, 65536), (True, 0), (False, 131072)]  # a running device VM, a running VM, a powered-off one
    host = host_from_properties(props, "vc", vms=vms)
    assert (host.memory_total_mib, host.memory_free_mib) == (524288, 524288 - 4096 - 65536)
    assert host.sources["memory_free_mib"].startswith("unreserved, as admission control counts")
    assert host_from_properties(props, "vc").memory_free_mib is None  # the VMs were not read


def test_a_device_vm_reserves_all_its_memory_others_their_reservation():
    locked = {"config.memoryReservationLockedToMax": True, "config.hardware.memoryMB": 16384,
              "config.memoryAllocation": vim.ResourceAllocationInfo(reservation=0)}
    partly = {"config.hardware.memoryMB": 16384,
              "config.memoryAllocation": vim.ResourceAllocationInfo(reservation=2048)}
    assert (reservation_mib(locked), reservation_mib(partly), reservation_mib({})) == (16384, 2048, 0)


def test_registers_of_the_first_package_stand_in_when_the_host_has_none():
    package = vim.host.CpuPackage(vendor="intel", description="Intel(R)  Xeon(R)   Gold 6338",
                                  cpuFeature=[leaf(1, VMX_ON)])
    host = host_from_properties({"name": "esx-1", "hardware.cpuPkg": [package]}, "vc")
    assert (host.cpu_vendor, host.cpu_model, host.hardware_virtualization) == ("intel", "Intel(R) Xeon(R) Gold 6338",
                                                                               True)


def test_the_newest_creatable_hardware_version_is_taken_per_host():
    first, second = vim.HostSystem("host-1"), vim.HostSystem("host-2")
    descriptors = [
        vim.vm.ConfigOptionDescriptor(key="vmx-13", createSupported=True, host=[first, second]),
        vim.vm.ConfigOptionDescriptor(key="vmx-19", createSupported=True, host=[first]),
        vim.vm.ConfigOptionDescriptor(key="vmx-21", createSupported=False, host=[first, second]),
        vim.vm.ConfigOptionDescriptor(key="vmx-9", createSupported=True, host=[second]),
        vim.vm.ConfigOptionDescriptor(key="future", createSupported=True, host=[second]),
    ]
    assert max_hardware_versions(descriptors) == {"host-1": "vmx-19", "host-2": "vmx-13"}


def test_vt_x_disabled_in_the_bios_is_read_from_the_ft_issues_though_cpuid_shows_vmx():
    features = [leaf(1, VMX_ON), leaf(-2147483647, SVM_OFF)]
    for issue, where in (("cpuHvDisabled", "disabled in the BIOS"), ("cpuHvUnsupported", "not supported")):
        capability = vim.host.Capability(ftCompatibilityIssues=["haAgentIssue", issue], cpuHwMmuSupported=True)
        host = host_from_properties({"name": "esx-1", "hardware.cpuFeature": features, "capability": capability},
                                    "vc")
        assert host.hardware_virtualization is False
        assert host.sources["hardware_virtualization"] == (
            f"capability.ftCompatibilityIssues: {issue} (hardware virtualization {where})")
    fine = host_from_properties({"name": "esx-1", "hardware.cpuFeature": features,
                                 "capability": vim.host.Capability(ftCompatibilityIssues=["haAgentIssue"])}, "vc")
    assert fine.hardware_virtualization is True


def test_an_smp_ft_issue_without_hardware_mmu_means_no_slat():
    capability = vim.host.Capability(smpFtCompatibilityIssues=["cpuHwmmuUnsupported"], cpuHwMmuSupported=True)
    host = host_from_properties({"name": "esx-1", "capability": capability}, "vc")
    assert (host.slat, host.sources["slat"]) == (False, "capability.ftCompatibilityIssues: cpuHwmmuUnsupported")


def test_passthrough_enabled_but_not_active_until_a_reboot_and_the_dependent_device_are_read():
    infos = [vim.host.PciPassthruInfo(id="0000:3b:00.0", passthruCapable=True, passthruEnabled=True,
                                      passthruActive=False, dependentDevice="0000:3a:00.0"),
             vim.host.PciPassthruInfo(id="0000:af:00.0", passthruCapable=True, passthruEnabled=True,
                                      passthruActive=True, dependentDevice="0000:af:00.0")]
    l4 = vim.host.PciDevice(id="0000:af:00.0", classId=0x0302, vendorId=0x10de, deviceId=0x27b8)
    found = {d.address: d for d in pci_devices([gpu(), l4], infos, DeviceUsage())}
    assert (found["0000:3b:00.0"].passthrough_active, found["0000:3b:00.0"].dependent_device) == (False,
                                                                                                   "0000:3a:00.0")
    assert (found["0000:af:00.0"].passthrough_active, found["0000:af:00.0"].dependent_device) == (True, None)


def dynamic(*allowed: tuple[int, int], assigned: str | None = None) -> Passthrough:
    return Passthrough(backing=Passthrough.DynamicBackingInfo(
        assignedId=assigned, allowedDevice=[Passthrough.AllowedDevice(vendorId=v, deviceId=d) for v, d in allowed]))


def test_a_dynamic_directpath_vm_holds_its_assigned_device_when_on_and_claims_one_when_off():
    usage = device_usage([("running", [dynamic((0x10de, 0x27b8), assigned="0000:af:00.0")]),
                          ("bound", [dynamic((0x10de, 0x27b8))]),
                          ("stopped", [dynamic((0x10de, 0x27b8), assigned="0000:af:00.0")])],
                         powered_on={"running": True, "bound": True}, bindings={"bound": ["0000:b1:00.0"]})
    assert usage.passthrough == {"0000:af:00.0": ["running"], "0000:b1:00.0": ["bound"]}
    assert usage.claims == {"stopped": [(0x10de, 0x27b8)]}
    l4s = [vim.host.PciDevice(id=f"0000:{bus}:00.0", classId=0x0302, vendorId=0x10de, deviceId=0x27b8)
           for bus in ("af", "b1", "b2")]
    infos = [vim.host.PciPassthruInfo(id=f"0000:{bus}:00.0", passthruCapable=True, passthruEnabled=bus != "b2",
                                      passthruActive=True) for bus in ("af", "b1", "b2")]
    host = host_from_properties({"name": "esx-1", "hardware.pciDevice": [gpu(), *l4s], "config.pciPassthruInfo": infos},
                                "vc", usage)
    assert [(c.vm, c.devices) for c in host.device_claims] == [("stopped", ["0000:af:00.0", "0000:b1:00.0"])]
    assert host.devices_in_use_known is True


def test_vgpus_run_on_the_gpu_graphics_info_names_and_profiles_serve_the_gpus_of_their_board():
    vdi = vim.VirtualMachine("vm-1")
    l4 = vim.host.PciDevice(id="0000:af:00.0", classId=0x0302, vendorId=0x10de, deviceId=0x27b8,
                            deviceName="AD104GL [L4]")
    graphics = [vim.host.GraphicsInfo(pciId="0000:3b:00.0", graphicsType="sharedDirect", memorySizeInKB=80 << 20,
                                      vm=[vdi]),
                vim.host.GraphicsInfo(pciId="0000:af:00.0", graphicsType="shared", memorySizeInKB=24 << 20)]
    usage = device_usage([("vdi-3", [Passthrough(backing=Passthrough.VmiopBackingInfo(vgpu="grid_a100-20c"))]),
                          ("off-vdi", [Passthrough(backing=Passthrough.VmiopBackingInfo(vgpu="grid_a100-20c"))])],
                         powered_on={"vdi-3": True})
    usage.vm_names = {"vm-1": "vdi-3"}
    host = host_from_properties({"name": "esx-1", "hardware.pciDevice": [gpu(), l4], "config.graphicsInfo": graphics,
                                 "config.sharedPassthruGpuTypes": ["grid_a100-20c", "grid_a100-40c", "grid_l4-24q",
                                                                   "grid_t4-16q"]}, "vc", usage)
    assert [(v.profile, v.device, v.size_mib, v.total, v.in_use_by) for v in host.vgpu_types] == [
        ("grid_t4-16q", None, None, None, []),  # no T4 here: host-wide, as the host lists it
        ("grid_a100-20c", "0000:3b:00.0", 20480, 4, ["off-vdi", "vdi-3"]),
        ("grid_a100-40c", "0000:3b:00.0", 40960, 2, []),
        ("grid_l4-24q", "0000:af:00.0", 24576, 1, [])]
    assert all(v.available is None for v in host.vgpu_types)


@pytest.mark.parametrize(("version", "build", "expected"), [
    ("6.5.0", 0, "vmx-13"), ("6.7.0", 10302608, "vmx-14"), ("6.7.0", 14320388, "vmx-15"), ("7.0.0", 0, "vmx-17"),
    ("7.0.1", 0, "vmx-18"), ("7.0.2", 0, "vmx-19"), ("7.0.3", 0, "vmx-19"), ("8.0.0", 0, "vmx-20"),
    ("8.0.1", 0, "vmx-20"), ("8.0.2", 0, "vmx-21"), ("8.0.3", 0, "vmx-21"), ("9.0.0", 0, None), ("", 0, None),
])
def test_a_host_no_descriptor_names_runs_its_releases_newest_hardware_version(version, build, expected):
    assert release_hardware_version(vim.AboutInfo(version=version, build=str(build))) == expected
