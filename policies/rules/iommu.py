"""hw.iommu (mandatory): an IOMMU (Intel VT-d / AMD-Vi) on the host for any passthrough device (whole GPUs,
SR-IOV virtual functions).

The host-level fact ``iommu`` is used; when it is unknown but a device on the host is passthrough-capable, the
IOMMU is inferred to be on (vSphere marks no device capable without one); otherwise an advisory says it cannot be
verified.

Sources: VMware vSphere Networking "SR-IOV Support" (the host must support an IOMMU and have it enabled in the
BIOS); Proxmox VE wiki "PCI(e) Passthrough" (IOMMU on in the BIOS and kernel; "IOMMU not present" otherwise);
Microsoft Learn "Plan for deploying devices by using Discrete Device Assignment" (IOMMU / DMA remapping).

Links:
- https://docs.vmware.com/en/VMware-vSphere/6.5/com.vmware.vsphere.networking.doc/GUID-E8E8D7B2-FE67-4B4F-921F-C3D6D7223869.html
- https://pve.proxmox.com/wiki/PCI(e)_Passthrough
- https://learn.microsoft.com/en-us/windows-server/virtualization/hyper-v/plan/plan-for-deploying-devices-using-discrete-device-assignment
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.model import MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, unknown

RULE = Rule("hw.iommu", MANDATORY, "IOMMU (VT-d / AMD-Vi) for passthrough devices",
            "Passthrough GPUs and SR-IOV virtual functions need the host's IOMMU enabled in firmware (and, on "
            "Proxmox, in the kernel).",
            (sources.VSPHERE_SRIOV, sources.PVE_PASSTHROUGH, sources.HYPERV_DDA),
            applies=lambda vm: bool(vm.passthrough_gpus or vm.sriov_nics))


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    assert vm.host is not None
    if not (vm.passthrough_gpus or vm.sriov_nics):
        return []
    field = f"gpus[{vm.passthrough_gpus[0]}]" if vm.passthrough_gpus else f"nics[{vm.sriov_nics[0]}]"
    if vm.host.iommu is False:
        return [vm.finding(RULE, f"host {vm.host.name} has no IOMMU (VT-d / AMD-Vi) enabled, which passthrough "
                                 "devices need", field=field,
                           remediation="enable VT-d / AMD-Vi in the host firmware (Proxmox with kernels before 6.8 "
                                       "on Intel: also intel_iommu=on)")]
    if vm.host.iommu is None and not any(d.passthrough_capable for d in vm.host.pci_devices):
        return [unknown(vm, RULE, "the IOMMU (VT-d / AMD-Vi)", field=field)]
    return []
