"""The lab's vSphere hosts differ in hardware, and VsphereProvider.hosts() reads it back in one pass."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pyVmomi import vim

from tests.conftest import BIN_CACHE
from virtplane.inventory import Host
from virtplane.providers.vsphere.provider import VsphereProvider
from virtplane.providers.vsphere.tasks import wait_for_task
from virtplane_lab import vcsim

Passthrough = vim.vm.device.VirtualPCIPassthrough


@pytest.fixture(scope="module")
def lab_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Host]]:
    """The lab's three hosts as `virtplane lab up` starts them, on a simulator no other test adds VMs to."""
    instance = vcsim.start(tmp_path_factory.mktemp("vcsim-lab"), hosts=3, bin_dir=BIN_CACHE)
    try:
        connected = VsphereProvider.connect(VsphereProvider.settings_from("lab", {}, instance.environ()))
        try:
            yield {host.name: host for host in connected.hosts()}
        finally:
            connected.close()
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def four_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VsphereProvider]:
    """A simulator of its own with four hosts (one of each profile) and no VMs."""
    instance = vcsim.start(tmp_path_factory.mktemp("vcsim4"), hosts=4, bin_dir=BIN_CACHE, device_vms=False)
    connected = VsphereProvider.connect(VsphereProvider.settings_from("lab", {}, instance.environ()))
    yield connected
    connected.close()
    instance.stop()


def devices(host: Host) -> dict[str, tuple[str, bool | None, bool | None]]:
    return {d.address: (f"{d.vendor_id}:{d.device_id}", d.passthrough_capable, d.passthrough_enabled)
            for d in host.pci_devices}


def test_the_lab_has_a_gpu_host_a_host_with_its_gpu_not_enabled_and_a_plain_host(lab_hosts):
    assert sorted(lab_hosts) == ["DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2"]
    gpus = {name: [(d.address, d.passthrough_capable, d.passthrough_enabled) for d in host.gpus()]
            for name, host in lab_hosts.items()}
    assert gpus == {"DC0_C0_H0": [("0000:3b:00.0", True, True), ("0000:af:00.0", True, True),
                                  ("0000:d8:00.0", True, True)],
                    "DC0_C0_H1": [("0000:41:00.0", True, False), ("0000:61:00.0", True, True),
                                  ("0000:a1:00.0", True, True)],
                    "DC0_C0_H2": []}
    # H1's A30 is enabled for passthrough but not active until the host reboots.
    assert [(d.address, d.passthrough_active) for d in lab_hosts["DC0_C0_H1"].gpus()] == [
        ("0000:41:00.0", False), ("0000:61:00.0", True), ("0000:a1:00.0", False)]
    sriov = {name: [(f.address, f.enabled, f.vfs_enabled, f.vfs_max) for f in host.sriov]
             for name, host in lab_hosts.items()}
    assert sriov == {"DC0_C0_H0": [("0000:5e:00.0", True, 8, 64)],
                     "DC0_C0_H1": [("0000:c1:00.0", False, 0, 127)],
                     "DC0_C0_H2": []}
    nesting = {name: (h.hardware_virtualization, h.slat, h.nested) for name, h in lab_hosts.items()}
    assert nesting == {"DC0_C0_H0": (True, True, True), "DC0_C0_H1": (True, True, True),
                       "DC0_C0_H2": (False, False, False)}


def test_a_host_with_vt_x_disabled_in_the_bios_reads_as_without_it_though_cpuid_shows_vmx(lab_hosts, raw_si):
    content = raw_si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
    try:
        h2 = next(host for host in view.view if host.name == "DC0_C0_H2")
        leaf1 = next(leaf for leaf in h2.hardware.cpuFeature if leaf.level == 1)
        assert leaf1.ecx.replace(":", "")[31 - 5] == "1"  # VMX is set in CPUID
        assert "cpuHvDisabled" in h2.capability.ftCompatibilityIssues
    finally:
        view.Destroy()
    plain = lab_hosts["DC0_C0_H2"]
    assert plain.hardware_virtualization is False
    assert plain.sources["hardware_virtualization"] == (
        "capability.ftCompatibilityIssues: cpuHvDisabled (hardware virtualization disabled in the BIOS)")


def test_cpu_memory_and_product_facts_match_the_seeded_hardware(lab_hosts):
    cpus = {name: (h.cpu_vendor, h.cpu_model) for name, h in lab_hosts.items()}
    assert cpus == {"DC0_C0_H0": ("intel", "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"),
                    "DC0_C0_H1": ("amd", "AMD EPYC 7763 64-Core Processor"),
                    "DC0_C0_H2": ("intel", "Intel(R) Xeon(R) Silver 4210R CPU @ 2.40GHz")}
    assert lab_hosts["DC0_C0_H1"].sources["hardware_virtualization"].endswith("(SVM)")
    memory = {name: (h.memory_total_mib, h.memory_free_mib) for name, h in lab_hosts.items()}
    # Unreserved memory: vdi-pool-3 and vdi-pool-4 run on H0 with 8 GiB reserved each; render-farm-7 on H1 is off.
    assert memory == {"DC0_C0_H0": (524288, 507904), "DC0_C0_H1": (1048576, 1048576), "DC0_C0_H2": (131072, 131072)}
    releases = {name: (h.version, h.max_hardware_version) for name, h in lab_hosts.items()}
    assert releases == {"DC0_C0_H0": ("8.0.2", "vmx-21"), "DC0_C0_H1": ("7.0.2", "vmx-19"),
                        "DC0_C0_H2": ("6.7.0", "vmx-15")}
    for host in lab_hosts.values():
        assert (host.hypervisor, host.product, host.online) == ("vsphere", "VMware ESXi", True)
        assert host.sources["max_hardware_version"].startswith("environmentBrowser.QueryConfigOptionDescriptor()")
        assert host.endpoint.startswith("127.0.0.1:")


def test_pci_devices_read_with_unsigned_ids_and_their_passthrough_state(lab_hosts):
    first = devices(lab_hosts["DC0_C0_H0"])
    assert len(first) == 8
    assert first["0000:3b:00.0"] == ("0x10de:0x20b5", True, True)
    assert first["0000:5e:00.0"] == ("0x8086:0x1572", True, False)
    assert first["0000:00:17.0"] == ("0x8086:0xa182", False, False)
    assert devices(lab_hosts["DC0_C0_H1"])["0000:c1:00.0"] == ("0x15b3:0x101d", True, False)
    plain = devices(lab_hosts["DC0_C0_H2"])
    assert len(plain) == 8 and not any(capable for _, capable, _ in plain.values())


def test_vgpu_profiles_and_graphics_types_are_read_per_gpu(lab_hosts):
    profiles = {name: [(v.profile, v.device, v.total, v.in_use_by) for v in h.vgpu_types]
                for name, h in lab_hosts.items()}
    a100, second_a100, a100_40 = "0000:3b:00.0", "0000:d8:00.0", "0000:41:00.0"
    assert profiles == {  # H0's A100s (80 GB) run vdi-pool-3's and vdi-pool-4's 20 GB vGPUs; H1's are MIG-backed
        "DC0_C0_H0": [("grid_a100-10c", a100, 8, []), ("grid_a100-20c", a100, 4, ["vdi-pool-3"]),
                      ("grid_a100-40c", a100, 2, []), ("grid_a100-4c", a100, 20, []),
                      ("grid_a100-10c", second_a100, 8, []), ("grid_a100-20c", second_a100, 4, ["vdi-pool-4"]),
                      ("grid_a100-40c", second_a100, 2, []), ("grid_a100-4c", second_a100, 20, [])],
        "DC0_C0_H1": [("grid_a100-1-5c", a100_40, None, []), ("grid_a100-2-10c", a100_40, None, []),
                      ("grid_a100-3-20c", a100_40, None, []), ("grid_a100-7-40c", a100_40, None, [])],
        "DC0_C0_H2": []}
    assert all(v.available is None for h in lab_hosts.values() for v in h.vgpu_types)
    graphics = {name: [(d.address, d.graphics_type, d.memory_mib) for d in h.gpus()] for name, h in lab_hosts.items()}
    assert graphics == {"DC0_C0_H0": [(a100, "sharedDirect", 81920), ("0000:af:00.0", "direct", 24576),
                                      (second_a100, "sharedDirect", 81920)],
                        "DC0_C0_H1": [(a100_40, "shared", 40960), ("0000:61:00.0", "direct", 24576),
                                      ("0000:a1:00.0", "direct", 24576)],
                        "DC0_C0_H2": []}
    assert {name: h.graphics_mode for name, h in lab_hosts.items()} == {  # the GPUs differ: no host-wide type
        "DC0_C0_H0": None, "DC0_C0_H1": None, "DC0_C0_H2": None}


def test_a_powered_off_dynamic_directpath_vm_claims_a_gpu_of_its_model(lab_hosts):
    assert [(c.vm, c.devices) for c in lab_hosts["DC0_C0_H1"].device_claims] == [("render-farm-7", ["0000:61:00.0"])]
    assert all(not d.in_use_by for d in lab_hosts["DC0_C0_H1"].pci_devices)
    assert lab_hosts["DC0_C0_H0"].device_claims == [] and lab_hosts["DC0_C0_H1"].devices_in_use_known


def test_iommu_is_true_where_a_device_is_passthrough_capable_and_unknown_elsewhere(lab_hosts):
    assert {name: h.iommu for name, h in lab_hosts.items()} == {
        "DC0_C0_H0": True, "DC0_C0_H1": True, "DC0_C0_H2": None}
    assert lab_hosts["DC0_C0_H2"].sources["iommu"].startswith("unknown")


def test_a_host_without_cpuid_registers_or_slat_flag_reads_them_as_unknown(four_hosts):
    hosts = {host.name: host for host in four_hosts.hosts()}
    fourth = hosts["DC0_C0_H3"]
    assert (fourth.cpu_vendor, fourth.hardware_virtualization, fourth.slat, fourth.nested) == ("amd", None, None, True)
    assert fourth.sources["hardware_virtualization"].startswith("unknown")
    assert fourth.sources["slat"] == "unknown: capability.cpuHwMmuSupported not reported"
    assert [(f.address, f.enabled, f.vfs_enabled, f.vfs_free, f.vfs_max) for f in fourth.sriov] == [
        ("0000:98:00.0", True, 32, 32, 256)]
    assert fourth.gpus() == [] and fourth.graphics_mode is None


def test_all_hosts_are_read_in_one_retrieval(four_hosts, soap_calls):
    hosts = four_hosts.hosts()
    assert len(hosts) == 4
    assert soap_calls == ["RetrieveContent", "CreateContainerView", "RetrievePropertiesEx", "Destroy",
                          "QueryConfigOptionDescriptor"]  # the hardware versions, once for the cluster


def test_the_identity_is_the_vcenter_instance_uuid(provider, raw_si):
    uuid = raw_si.RetrieveContent().about.instanceUuid
    assert uuid
    assert provider.identity() == uuid


def test_vms_holding_a_gpu_a_vgpu_and_a_virtual_function_are_named_and_counted(fresh_vcsim: vcsim.VcsimInstance,
                                                                              soap_calls: list[str]):
    connected = VsphereProvider.connect(VsphereProvider.settings_from("lab", {}, fresh_vcsim.environ()))
    try:
        create_vm_holding(connected, "gpu-user", "DC0_C0_H0", [
            Passthrough(key=-1, backing=Passthrough.DeviceBackingInfo(
                id="0000:3b:00.0", deviceId="20b5", systemId="lab", vendorId=0x10de)),
            Passthrough(key=-2, backing=Passthrough.VmiopBackingInfo(vgpu="grid_a100-10c")),
            sriov_nic(-3, "0000:5e:00.0")])
        create_vm_holding(connected, "vf-user", "DC0_C0_H0", [sriov_nic(-1, "0000:5e:00.0")])
        create_vm_holding(connected, "bystander", "DC0_C0_H2", [])
        soap_calls.clear()
        host = {h.name: h for h in connected.hosts()}["DC0_C0_H0"]
    finally:
        connected.close()
    assert {d.address: d.in_use_by for d in host.pci_devices if d.in_use_by} == {"0000:3b:00.0": ["gpu-user"]}
    # No GPU's graphicsInfo[].vm lists gpu-user's vGPU, so it counts on both A100s (never more room than there is).
    assert [(v.profile, v.device, v.in_use_by) for v in host.vgpu_types if v.in_use_by] == [
        ("grid_a100-10c", "0000:3b:00.0", ["gpu-user"]), ("grid_a100-20c", "0000:3b:00.0", ["vdi-pool-3"]),
        ("grid_a100-10c", "0000:d8:00.0", ["gpu-user"]), ("grid_a100-20c", "0000:d8:00.0", ["vdi-pool-4"])]
    assert [(f.vfs_enabled, f.vfs_free, f.in_use_by) for f in host.sriov] == [(8, 6, ["gpu-user", "vf-user"])]
    assert soap_calls.count("RetrievePropertiesEx") == 2  # the hosts, then the devices of the VMs on DC0_C0_H0


def sriov_nic(key: int, function: str) -> vim.vm.device.VirtualSriovEthernetCard:
    backing = vim.vm.device.VirtualSriovEthernetCard.SriovBackingInfo(
        physicalFunctionBacking=Passthrough.DeviceBackingInfo(id=function, deviceId="1572", systemId="lab",
                                                              vendorId=-32634))
    return vim.vm.device.VirtualSriovEthernetCard(
        key=key, sriovBacking=backing, backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
            deviceName="VM Network"))


def create_vm_holding(provider: VsphereProvider, name: str, host: str, held: list[vim.vm.device.VirtualDevice]
                      ) -> None:
    """A VM made with plain pyVmomi on ``host`` with the given devices, as another tool would make it."""
    placement = provider.inventory.placement
    config = vim.vm.ConfigSpec(
        name=name, numCPUs=1, memoryMB=256, guestId="otherLinux64Guest",
        files=vim.vm.FileInfo(vmPathName="[LocalDS_0]"),
        deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="add", device=device) for device in held])
    host_ref, pool = provider.inventory.host_and_pool(host)
    wait_for_task(placement.vm_folder.CreateVM_Task(config=config, pool=pool, host=host_ref), what=f"create VM {name}")


def test_the_launcher_passes_the_number_of_pci_devices_per_host(tmp_path: Path):
    instance = vcsim.start(tmp_path / "vcsim", hosts=1, pci_per_host=12, bin_dir=BIN_CACHE)
    try:
        connected = VsphereProvider.connect(VsphereProvider.settings_from("lab", {}, instance.environ()))
        try:
            (host,) = connected.hosts()
        finally:
            connected.close()
    finally:
        instance.stop()
    assert len(host.pci_devices) == 12
    assert len({d.address for d in host.pci_devices}) == 12
