"""Each rule, table-driven: host facts x VM request -> verdict, on a vSphere- and a Proxmox-shaped inventory.

Cases follow the vendor documents each rule cites (see the rule modules' docstrings)."""

import pytest

from tests.unit.policy.inventories import A100, NIC, PROXMOX, T4, VSPHERE, esx, hyperv, pve
from virtplane.inventory import Inventory
from virtplane.kinds import build_spec
from virtplane.policies.evaluate import DeclaredVm, check_vms

KINDS = {"vc": "vsphere", "pve": "proxmox", "hv": "hyperv"}
INTEL_HV = Inventory(hosts=[hyperv("hv-intel")])
AMD_HV = Inventory(hosts=[hyperv("hv-amd", cpu_vendor="amd")])
PASSTHROUGH = {"gpus": [{"mode": "passthrough"}]}
SRIOV = {"nics": [{"network": "n", "adapter": "sriov"}]}


def vm(name: str = "v", endpoint: str = "vc", **fields) -> DeclaredVm:
    return DeclaredVm(name, endpoint, build_spec("VirtualMachine", name, {"cpus": 2, "memory": 4096, **fields}))


def run(inventory: Inventory, *vms: DeclaredVm):
    return check_vms("proj/dev", list(vms), inventory, KINDS).findings


def verdict(rule: str, inventory: Inventory, *vms: DeclaredVm, resource: str | None = None) -> str:
    """'pass', or the levels of the rule's findings (about ``resource`` when given), joined."""
    levels = sorted({f.level for f in run(inventory, *vms) if f.rule == rule
                     and (resource is None or f.resource == resource)})
    return "+".join(levels) or "pass"


CASES = [
    # hw.virtualization — ESXi / PVE / Hyper-V need VT-x or AMD-V enabled
    ("hw.virtualization", VSPHERE, [vm(node="esx-gpu")], "pass"),
    ("hw.virtualization", Inventory(hosts=[esx("e", hardware_virtualization=False)]), [vm(node="e")], "mandatory"),
    ("hw.placement", Inventory(hosts=[esx("e", hardware_virtualization=False)]), [vm()], "mandatory"),
    ("hw.virtualization", VSPHERE, [vm(node="esx-unknown")], "advisory"),
    ("hw.virtualization", Inventory(hosts=[pve("p", hardware_virtualization=False)]),
     [vm(endpoint="pve", node="p")], "mandatory"),
    # hw.slat — required for nested (Microsoft: VT-x and EPT), advisory otherwise
    ("hw.slat", Inventory(hosts=[esx("e", slat=False)]), [vm(node="e", nested_virtualization=True)], "mandatory"),
    ("hw.slat", Inventory(hosts=[esx("e", slat=False)]), [vm()], "advisory"),
    ("hw.slat", PROXMOX, [vm(endpoint="pve", node="pve1")], "pass"),
    # hw.iommu — passthrough and SR-IOV need VT-d / AMD-Vi
    ("hw.iommu", VSPHERE, [vm(node="esx-gpu", **PASSTHROUGH)], "pass"),
    ("hw.iommu", VSPHERE, [vm(node="esx-noiommu", **PASSTHROUGH)], "mandatory"),
    ("hw.iommu", VSPHERE, [vm(node="esx-unknown", **SRIOV)], "advisory"),
    ("hw.iommu", PROXMOX, [vm(endpoint="pve", node="pve2", **PASSTHROUGH)], "mandatory"),
    ("hw.iommu", VSPHERE, [vm(node="esx-noiommu")], "pass"),
    # hw.nested — host support; vSphere vmx-09+
    ("hw.nested", VSPHERE, [vm(node="esx-gpu", nested_virtualization=True)], "pass"),
    ("hw.nested", VSPHERE, [vm(node="esx-noiommu", nested_virtualization=True)], "mandatory"),
    ("hw.nested", VSPHERE, [vm(node="esx-gpu", nested_virtualization=True, machine="vmx-08")], "mandatory"),
    ("hw.nested", VSPHERE, [vm(node="esx-gpu", nested_virtualization=True, machine="vmx-09")], "pass"),
    ("hw.nested", VSPHERE, [vm(node="esx-unknown", nested_virtualization=True)], "advisory"),
    ("hw.nested", PROXMOX, [vm(endpoint="pve", node="pve2", nested_virtualization=True)], "mandatory"),
    ("hw.nested", PROXMOX, [vm(endpoint="pve", node="pve3", nested_virtualization=True)], "advisory"),
    # Hyper-V: configuration version 8.0 on Intel, 9.3 on AMD (10.0 on Microsoft's current page: advisory)
    ("hw.nested", INTEL_HV, [vm(endpoint="hv", nested_virtualization=True, machine="8.0")], "pass"),
    ("hw.nested", INTEL_HV, [vm(endpoint="hv", node="hv-intel", nested_virtualization=True, machine="7.1")],
     "mandatory"),
    ("hw.nested", AMD_HV, [vm(endpoint="hv", node="hv-amd", nested_virtualization=True, machine="9.0")], "mandatory"),
    ("hw.nested", AMD_HV, [vm(endpoint="hv", nested_virtualization=True, machine="9.3")], "advisory"),
    ("hw.nested", AMD_HV, [vm(endpoint="hv", nested_virtualization=True, machine="10.0")], "pass"),
    ("hw.nested", AMD_HV, [vm(endpoint="hv", nested_virtualization=True)], "pass"),
    ("hw.slat", Inventory(hosts=[hyperv("h", slat=False)]), [vm(endpoint="hv", node="h")], "mandatory"),
    # hw.gpu-passthrough — present, capable, enabled, active, vendor match
    ("hw.gpu-passthrough", VSPHERE, [vm(node="esx-gpu", gpus=[{"mode": "passthrough", "device": A100}])], "pass"),
    ("hw.gpu-passthrough", VSPHERE, [vm(node="esx-gpu", gpus=[{"mode": "passthrough", "device": T4}])], "pass"),
    ("hw.gpu-passthrough", VSPHERE, [vm(node="esx-reboot", **PASSTHROUGH)], "mandatory"),
    # hw.device-in-use — held by a VM outside the stack, or claimed by a powered-off Dynamic DirectPath VM
    ("hw.device-in-use", VSPHERE, [vm(node="esx-gpu", gpus=[{"mode": "passthrough", "device": T4}])],
     "mandatory"),
    ("hw.device-in-use", VSPHERE, [vm(node="esx-claimed", **PASSTHROUGH)], "mandatory"),
    ("hw.device-in-use", VSPHERE, [vm(node="esx-gpu", gpus=[{"mode": "passthrough", "device": A100}])], "pass"),
    ("hw.device-in-use", PROXMOX, [vm(endpoint="pve", node="pve1", firmware="uefi",
                                      gpus=[{"mode": "passthrough", "device": "l4"}])], "advisory"),
    ("hw.gpu-passthrough", VSPHERE, [vm(node="esx-off", **PASSTHROUGH)], "mandatory"),
    ("hw.gpu-passthrough", VSPHERE, [vm(node="esx-gpu", gpus=[{"mode": "passthrough", "vendor": "amd"}])],
     "mandatory"),
    ("hw.gpu-passthrough", VSPHERE, [vm(node="esx-unknown", firmware="uefi", **PASSTHROUGH)], "mandatory"),
    ("hw.gpu-passthrough", PROXMOX, [vm(endpoint="pve", node="pve1", gpus=[{"mode": "passthrough",
                                                                           "device": "l4"}])], "pass"),
    ("hw.gpu-passthrough", PROXMOX, [vm(endpoint="pve", node="pve3", **PASSTHROUGH)], "pass"),
    # hw.device-group — a GPU sharing its IOMMU group with another endpoint cannot be passed alone
    ("hw.device-group", PROXMOX, [vm(endpoint="pve", node="pve3", **PASSTHROUGH)], "mandatory"),
    ("hw.device-group", PROXMOX, [vm(endpoint="pve", node="pve1", machine="q35", firmware="uefi", **PASSTHROUGH)],
     "pass"),
    ("hw.gpu-passthrough", PROXMOX, [vm(endpoint="pve", node="pve2", **PASSTHROUGH)], "mandatory"),
    # hw.vgpu — profile offered, instances free across the stack, no size mixing on a time-sliced GPU
    ("hw.vgpu", VSPHERE, [vm(node="esx-gpu", gpus=[{"mode": "vgpu", "profile": "grid_a100-20c"}])], "pass"),
    ("hw.vgpu", VSPHERE, [vm(node="esx-gpu", gpus=[{"mode": "vgpu", "profile": "grid_a100-8c"}])], "mandatory"),
    ("hw.vgpu", VSPHERE, [vm(node="esx-unknown", firmware="uefi", gpus=[{"mode": "vgpu",
                                                                         "profile": "grid_a100-20c"}])], "advisory"),
    ("hw.vgpu", PROXMOX, [vm(endpoint="pve", node="pve1", gpus=[{"mode": "vgpu", "profile": "nvidia-471"}])],
     "pass"),
    ("hw.vgpu", PROXMOX, [vm(endpoint="pve", node="pve1", gpus=[{"mode": "vgpu", "profile": "nvidia-472"}])],
     "mandatory"),
    # hw.sriov — PF enabled, free VFs
    ("hw.sriov", VSPHERE, [vm(node="esx-gpu", **SRIOV)], "pass"),
    ("hw.sriov", VSPHERE, [vm(node="esx-off", **SRIOV)], "mandatory"),
    ("hw.sriov", VSPHERE, [vm(node="esx-gpu", nics=[{"network": "n", "adapter": "sriov", "device": "0000:99:00.0"}])],
     "mandatory"),
    ("hw.sriov", PROXMOX, [vm(endpoint="pve", node="pve1", **SRIOV)], "advisory"),
    # hw.mmio — large-BAR GPUs need UEFI
    ("hw.mmio", VSPHERE, [vm(node="esx-gpu", firmware="bios", gpus=[{"mode": "passthrough", "device": A100}])],
     "mandatory"),
    ("hw.mmio", VSPHERE, [vm(node="esx-gpu", firmware="uefi", gpus=[{"mode": "passthrough", "device": A100}])],
     "pass"),
    ("hw.mmio", PROXMOX, [vm(endpoint="pve", node="pve1", **PASSTHROUGH)], "mandatory"),
    ("hw.mmio", VSPHERE, [vm(node="esx-gpu", firmware="bios", gpus=[{"mode": "passthrough", "device": T4}])],
     "advisory"),
    ("hw.mmio", PROXMOX, [vm(endpoint="pve", node="pve1", clone_from="tmpl", **PASSTHROUGH)], "advisory"),
    # hw.graphics-mode — vGPU needs Shared Direct on vSphere
    ("hw.graphics-mode", VSPHERE, [vm(node="esx-gpu", gpus=[{"mode": "vgpu", "profile": "grid_a100-20c"}])],
     "pass"),
    ("hw.graphics-mode", VSPHERE, [vm(node="esx-shared", gpus=[{"mode": "vgpu", "profile": "grid_a100-20c"}])],
     "mandatory"),
    ("hw.graphics-mode", VSPHERE, [vm(node="esx-unknown", firmware="uefi",
                                      gpus=[{"mode": "vgpu", "profile": "grid_a100-20c"}])], "advisory"),
    ("hw.graphics-mode", PROXMOX, [vm(endpoint="pve", node="pve1", gpus=[{"mode": "vgpu",
                                                                         "profile": "nvidia-471"}])], "pass"),
    # hw.nested-with-devices — refused by ESXi
    ("hw.nested-with-devices", VSPHERE, [vm(node="esx-gpu", nested_virtualization=True, **PASSTHROUGH)],
     "mandatory"),
    ("hw.nested-with-devices", VSPHERE, [vm(node="esx-gpu", nested_virtualization=True, **SRIOV)], "advisory"),
    ("hw.nested-with-devices", PROXMOX, [vm(endpoint="pve", node="pve1", nested_virtualization=True,
                                            **PASSTHROUGH)], "pass"),
    # hw.hardware-version — Dynamic DirectPath vmx-17, vGPU vmx-11, SR-IOV vmx-10; Proxmox q35
    ("hw.hardware-version", VSPHERE, [vm(node="esx-gpu", machine="vmx-15", **PASSTHROUGH)], "mandatory"),
    ("hw.hardware-version", VSPHERE, [vm(node="esx-gpu", machine="vmx-17", **PASSTHROUGH)], "pass"),
    ("hw.hardware-version", VSPHERE, [vm(node="esx-gpu", machine="vmx-10",
                                         gpus=[{"mode": "vgpu", "profile": "grid_a100-20c"}])], "mandatory"),
    ("hw.hardware-version", VSPHERE, [vm(node="esx-gpu", machine="vmx-09", **SRIOV)], "mandatory"),
    ("hw.hardware-version", VSPHERE, [vm(node="esx-noiommu", **PASSTHROUGH)], "mandatory"),
    ("hw.hardware-version", VSPHERE, [vm(node="esx-noiommu", machine="vmx-19")], "mandatory"),
    ("hw.hardware-version", VSPHERE, [vm(node="esx-noiommu", machine="vmx-13")], "pass"),
    ("hw.hardware-version", PROXMOX, [vm(endpoint="pve", node="pve1", **PASSTHROUGH)], "advisory"),
    ("hw.hardware-version", PROXMOX, [vm(endpoint="pve", node="pve1", machine="q35", **PASSTHROUGH)], "pass"),
    # hw.memory-reservation — device VMs reserve all memory, counted per host across the stack
    ("hw.memory-reservation", VSPHERE, [vm(node="esx-gpu", memory="64GiB", **SRIOV)], "pass"),
    ("hw.memory-reservation", VSPHERE, [vm(node="esx-noiommu", memory="64GiB", **SRIOV)], "mandatory"),
    ("hw.memory-reservation", VSPHERE, [vm(node="esx-unknown", **SRIOV)], "advisory"),
    ("hw.memory-reservation", VSPHERE, [vm(node="esx-noiommu", memory="64GiB")], "pass"),
    # hw.mobility / hw.numa — advisories only
    ("hw.mobility", VSPHERE, [vm(node="esx-gpu", **PASSTHROUGH)], "advisory"),
    ("hw.mobility", VSPHERE, [vm(node="esx-gpu")], "pass"),
    ("hw.mobility", PROXMOX, [vm(endpoint="pve", node="pve1", nested_virtualization=True)], "advisory"),
    ("hw.numa", PROXMOX, [vm(endpoint="pve", node="pve1", **SRIOV)], "advisory"),
    ("hw.numa", VSPHERE, [vm(node="esx-gpu", **PASSTHROUGH)], "advisory"),
    ("hw.numa", VSPHERE, [vm(node="esx-gpu", gpus=[{"mode": "vgpu", "profile": "grid_a100-20c"}])], "pass"),
    # hw.placement — a VM no host can serve; a node that does not exist; an endpoint with no hosts
    ("hw.placement", VSPHERE, [vm(firmware="uefi", **PASSTHROUGH)], "pass"),
    ("hw.placement", VSPHERE, [vm(**PASSTHROUGH)], "mandatory"),  # every free GPU there has a large BAR
    ("hw.placement", VSPHERE, [vm(gpus=[{"mode": "passthrough", "vendor": "amd"}])], "mandatory"),
    ("hw.placement", VSPHERE, [vm(node="esx-9")], "mandatory"),
    ("hw.placement", PROXMOX, [vm()], "advisory"),
    ("hw.placement", PROXMOX, [vm(endpoint="pve", gpus=[{"mode": "passthrough", "vendor": "amd"}])], "mandatory"),
    ("hw.placement", PROXMOX, [vm(endpoint="pve", firmware="uefi", gpus=[{"mode": "passthrough", "device": "l4"}])],
     "pass"),
    ("hw.placement", VSPHERE, [vm(node="esx-unknown")], "advisory"),
]


@pytest.mark.parametrize(("rule", "inventory", "vms", "expected"), CASES,
                         ids=[f"{c[0]}-{i}-{c[3]}" for i, c in enumerate(CASES)])
def test_each_rule_gives_the_verdict_its_vendor_documents(rule, inventory, vms, expected):
    assert verdict(rule, inventory, *vms) == expected


def test_the_vm_one_too_many_for_a_pfs_free_vfs_is_the_one_reported():
    vms = [vm(f"v{i}", node="esx-gpu", **SRIOV) for i in range(3)]
    findings = [f for f in run(VSPHERE, *vms) if f.rule == "hw.sriov"]
    assert [(f.resource, f.level) for f in findings] == [("v2", "mandatory")]
    assert f"{NIC} has no free virtual function left (2 free, 2 taken by this plan)" in findings[0].message


def test_two_vgpu_sizes_cannot_share_one_time_sliced_gpu():
    vms = [vm("a", node="esx-gpu", firmware="uefi", gpus=[{"mode": "vgpu", "profile": "grid_a100-20c"}]),
           vm("b", node="esx-gpu", firmware="uefi", gpus=[{"mode": "vgpu", "profile": "grid_a100-10c"}])]
    [finding] = [f for f in run(VSPHERE, *vms) if f.rule == "hw.vgpu-size"]
    assert finding.resource == "b" and "already hosts vGPU profile grid_a100-20c" in finding.message


def test_two_vms_cannot_both_take_the_last_vgpu_instance():
    vms = [vm(f"v{i}", endpoint="pve", node="pve1", gpus=[{"mode": "vgpu", "profile": "nvidia-471"}])
           for i in range(3)]
    assert verdict("hw.vgpu", PROXMOX, *vms, resource="v1") == "pass"
    assert verdict("hw.vgpu", PROXMOX, *vms, resource="v2") == "mandatory"


def test_device_memory_reservations_add_up_on_one_host():
    vms = [vm(f"v{i}", endpoint="pve", node="pve1", memory="100GiB", **SRIOV) for i in range(2)]
    assert verdict("hw.memory-reservation", PROXMOX, *vms, resource="v0") == "pass"
    assert verdict("hw.memory-reservation", PROXMOX, *vms, resource="v1") == "mandatory"


def test_a_vm_no_host_can_serve_lists_every_host_and_why_and_other_rules_defer():
    findings = run(VSPHERE, vm("amd", gpus=[{"mode": "passthrough", "vendor": "amd"}]))
    assert [f.rule for f in findings] == ["hw.placement"]
    message = findings[0].message
    for host in ("esx-gpu: has no amd GPU", "esx-off", "esx-noiommu", "esx-unknown"):
        assert host in message
    assert findings[0].field == "gpus"


def test_placement_chooses_a_capable_host_and_rules_evaluate_it():
    findings = run(VSPHERE, vm(gpus=[{"mode": "vgpu", "profile": "grid_a100-10c"}], machine="vmx-19", firmware="uefi"))
    assert {f.host for f in findings} == {"esx-gpu"}
    assert not [f for f in findings if f.level == "mandatory"]


def test_devices_this_stacks_running_vms_hold_are_not_counted_twice():
    held = Inventory(hosts=[esx("esx-gpu", pci_devices=VSPHERE.hosts[0].pci_devices,
                                sriov=[VSPHERE.hosts[0].sriov[0].model_copy(update={"vfs_free": 0,
                                                                                    "in_use_by": ["v"]})])])
    assert verdict("hw.sriov", held, vm("v", **SRIOV)) == "pass"
    assert verdict("hw.placement", held, vm("someone-new", **SRIOV)) == "mandatory"


def test_a_gpu_held_by_a_vm_outside_the_stack_names_that_vm():
    [finding] = [f for f in run(VSPHERE, vm(node="esx-gpu", gpus=[{"mode": "passthrough", "device": T4}]))
                 if f.rule == "hw.device-in-use"]
    assert "in use by other-team-vm" in finding.message and finding.field == "gpus[0]"


def test_a_hardware_version_the_host_cannot_run_is_not_the_remedy():
    [older] = [f for f in run(VSPHERE, vm(node="esx-noiommu", **PASSTHROUGH)) if f.rule == "hw.hardware-version"]
    assert older.remediation.startswith(
        "run the VM on a host with vmx-17 or later (host esx-noiommu runs up to vmx-13)")
    assert "device=" in older.remediation
    [raise_it] = [f for f in run(VSPHERE, vm(node="esx-gpu", machine="vmx-15", **PASSTHROUGH))
                  if f.rule == "hw.hardware-version"]
    assert raise_it.remediation == "set machine='vmx-17' or later"


def test_a_claim_of_this_stacks_own_powered_off_vm_is_given_back_before_it_is_checked_again():
    claimed = Inventory(hosts=[h for h in VSPHERE.hosts if h.name == "esx-claimed"])
    assert [c.vm for c in claimed.hosts[0].device_claims] == ["render-farm-7"]
    own = vm("render-farm-7", firmware="uefi", **PASSTHROUGH)
    assert verdict("hw.device-in-use", claimed, own) == "pass"
    assert verdict("hw.placement", claimed, vm("someone-new", firmware="uefi", **PASSTHROUGH)) == "mandatory"
