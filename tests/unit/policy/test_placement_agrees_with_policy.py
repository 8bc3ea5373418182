"""Placement and the policy layer agree on every host and every request: a host placement accepts is one no
mandatory rule refuses, a host it refuses is one a mandatory rule names, and the host placement picks among many is
never refused while another qualifies. Hosts carry every fact the rules check, on vSphere, Proxmox VE and Hyper-V
(the Hyper-V facts that exist today: CPU vendor, SLAT, IOMMU, nested, configuration versions, DDA devices, GPU-P;
and XenServer's)."""

from __future__ import annotations

import pytest

from tests.unit.placement_agreement import HOST_INDEPENDENT, blocking
from tests.unit.policy.inventories import PROXMOX, VSPHERE, esx, gpu, hyperv, pve
from virtplane.inventory import DeviceClaim, Host, PciDevice, PciMapping, VgpuType
from virtplane.kinds import build_spec
from virtplane.placement import Usage, judge
from virtplane.policies.evaluate import DeclaredVm, check_vms

A100_80 = "0000:3b:00.0"
VGPU_HOST = esx("esx-vgpu", pci_devices=[gpu(A100_80, "GA100 [A100 PCIe 80GB]", memory_mib=81920,
                                             graphics_type="sharedDirect")],
                vgpu_types=[VgpuType(profile="grid_a100-20c", device=A100_80, size_mib=20480, in_use_by=["vdi-3"]),
                            VgpuType(profile="grid_a100-40c", device=A100_80, size_mib=40960)])
EXTRA = [
    VGPU_HOST,
    esx("esx-67u3", max_hardware_version="vmx-15", pci_devices=[gpu("0000:3c:00.0", "GA102GL [A40]")]),
    esx("esx-vtx-off", hardware_virtualization=False, pci_devices=[gpu("0000:3c:00.0", "TU104GL [Tesla T4]")]),
    esx("esx-dependent", pci_devices=[
        gpu("0000:3c:00.0", "TU104GL [Tesla T4]", dependent_device="0000:3a:00.0"),
        gpu("0000:3d:00.0", "TU104GL [Tesla T4]", dependent_device="0000:3a:00.0", used=("other-vm",))]),
    pve("pve-machines", machine_types=["pc-i440fx-8.1", "pc-q35-8.1+pve0"], devices_in_use_known=True,
        pci_devices=[gpu("0000:01:00.0", "TU104GL [Tesla T4]", group=3),
                     gpu("0000:02:00.0", "TU104GL [Tesla T4]", group=4)],
        pci_mappings=[PciMapping(id="t4", addresses=["0000:01:00.0", "0000:02:00.0"])],
        device_claims=[DeviceClaim(vm="stopped-render", devices=["0000:01:00.0", "0000:02:00.0"])]),
    hyperv("hv-intel", pci_devices=[PciDevice(address="PCIROOT(0)#PCI(0300)#PCI(0000)", class_id="0x0302",
                                              vendor_id="0x10de", device_id="0x25b6", passthrough_capable=True,
                                              passthrough_enabled=True)],
           vgpu_types=[VgpuType(profile="gpu-p/4", device="NVIDIA A2", available=4, total=4)]),
    hyperv("hv-amd-2019", cpu_vendor="amd", max_hardware_version="9.0"),
    hyperv("hv-noiommu", iommu=False, slat=False),
    Host(name="xen-1", endpoint="xen", hypervisor="xenserver", online=True, cpu_vendor="intel",
         hardware_virtualization=True, iommu=True, nested=False, memory_free_mib=65536,
         pci_devices=[gpu("0000:3c:00.0", "TU104GL [Tesla T4]")],
         vgpu_types=[VgpuType(profile="GRID T4-4Q", device="0000:3c:00.0", available=4)]),
    Host(name="xen-2", endpoint="xen", hypervisor="xenserver", online=True, hardware_virtualization=False),
]
HOSTS: list[Host] = [*VSPHERE.hosts, *PROXMOX.hosts, *EXTRA]
KINDS = {"vc": "vsphere", "pve": "proxmox", "hv": "hyperv", "xen": "xenserver"}

REQUESTS: dict[str, dict] = {
    "plain": {},
    "nested": {"nested_virtualization": True},
    "nested on old hardware": {"nested_virtualization": True, "machine": "vmx-08"},
    "nested, Hyper-V 9.0": {"nested_virtualization": True, "machine": "9.0"},
    "passthrough, BIOS": {"gpus": [{"mode": "passthrough"}]},
    "passthrough, UEFI": {"firmware": "uefi", "gpus": [{"mode": "passthrough"}]},
    "passthrough by mapping": {"firmware": "uefi", "gpus": [{"mode": "passthrough", "device": "t4"}]},
    "two passthrough GPUs": {"firmware": "uefi", "gpus": [{"mode": "passthrough"}, {"mode": "passthrough"}]},
    "passthrough at vmx-19": {"firmware": "uefi", "machine": "vmx-19", "gpus": [{"mode": "passthrough",
                                                                                "vendor": "nvidia"}]},
    "vGPU 20 GB": {"firmware": "uefi", "gpus": [{"mode": "vgpu", "profile": "grid_a100-20c"}]},
    "vGPU 40 GB": {"firmware": "uefi", "gpus": [{"mode": "vgpu", "profile": "grid_a100-40c"}]},
    "vGPU 20 GB, BIOS": {"gpus": [{"mode": "vgpu", "profile": "grid_a100-20c"}]},
    "mdev": {"machine": "q35", "gpus": [{"mode": "vgpu", "profile": "nvidia-471"}]},
    "mdev by mapping": {"gpus": [{"mode": "vgpu", "profile": "nvidia-471", "device": "l4"}]},
    "GPU partition": {"gpus": [{"mode": "vgpu", "profile": "gpu-p/4"}]},
    "XenServer vGPU": {"gpus": [{"mode": "vgpu", "profile": "GRID T4-4Q"}]},
    "SR-IOV": {"nics": [{"network": "n", "adapter": "sriov"}]},
    "three SR-IOV NICs": {"nics": [{"network": "n", "adapter": "sriov"}] * 3},
    "big device VM": {"memory": "200GiB", "nics": [{"network": "n", "adapter": "sriov"}]},
    "new QEMU machine": {"machine": "pc-q35-9.2+pve1"},
    "vmx-21": {"machine": "vmx-21"},
}


def spec(request: dict, **more):
    return build_spec("VirtualMachine", "v", {"cpus": 2, "memory": 4096, **request, **more})


CASES = [pytest.param(host, name, id=f"{host.name}-{name}") for host in HOSTS for name in REQUESTS]


@pytest.mark.parametrize(("host", "request_name"), CASES)
def test_a_host_placement_accepts_is_one_no_mandatory_rule_refuses_and_the_other_way_round(host, request_name):
    pinned = spec(REQUESTS[request_name], node=host.name)
    assignment, judgement = judge(pinned.with_creation_defaults(), host, Usage())
    refused = blocking([DeclaredVm("v", host.endpoint, pinned)], [host])
    if assignment is not None:
        assert refused == [], f"placement accepts {host.name}, the policy refuses"
    else:
        why = [r.why for r in judgement.refusals] + [u.fact for u in judgement.unknowns if u.level == "mandatory"]
        assert refused, f"placement refuses {host.name} ({why}), no mandatory rule says so"


@pytest.mark.parametrize("request_name", list(REQUESTS))
@pytest.mark.parametrize("endpoint", sorted(KINDS))
def test_the_host_placement_picks_is_never_refused_by_a_mandatory_rule(endpoint, request_name):
    hosts = [h for h in HOSTS if h.endpoint == endpoint]
    report = check_vms("agreement/test", [DeclaredVm("v", endpoint, spec(REQUESTS[request_name]))],
                       _inventory(hosts), KINDS)
    chosen = {f.host for f in report.findings if f.rule != "hw.placement"}
    refusing = [f for f in report.blocking if f.rule not in HOST_INDEPENDENT | {"hw.placement"}]
    assert refusing == [], f"placement picked {chosen}, the policy refuses it"
    if any(f.rule == "hw.placement" for f in report.blocking):
        for host in hosts:  # no host qualified: each is refused by a rule when the VM is pinned to it
            assert blocking([DeclaredVm("v", endpoint, spec(REQUESTS[request_name], node=host.name))], [host])


def test_a_sequence_of_vms_on_shared_hosts_agrees_too():
    vms = [DeclaredVm(f"v{i}", "vc", spec(request)) for i, request in enumerate([
        REQUESTS["vGPU 20 GB"], REQUESTS["vGPU 40 GB"], REQUESTS["vGPU 40 GB"], REQUESTS["passthrough, UEFI"],
        REQUESTS["passthrough, UEFI"], REQUESTS["SR-IOV"], REQUESTS["SR-IOV"], REQUESTS["SR-IOV"]])]
    hosts = [h for h in HOSTS if h.endpoint == "vc"]
    report = check_vms("agreement/test", vms, _inventory(hosts), KINDS)
    placed = {f.resource: f.host for f in report.findings if f.rule != "hw.placement" and f.host}
    pinned = [vm.__class__(vm.name, vm.endpoint, vm.spec.model_copy(update={"node": placed[vm.name]}))
              for vm in vms if vm.name in placed]
    assert [f for f in report.blocking if f.rule != "hw.placement"] == []
    assert blocking(pinned, hosts) == []


def _inventory(hosts):
    from virtplane.inventory import Inventory

    return Inventory(hosts=hosts)
