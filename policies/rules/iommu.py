"""hw.iommu (mandatory): an IOMMU (Intel VT-d / AMD-Vi) on the host for any passthrough device (whole GPUs,
SR-IOV virtual functions) and for vGPUs on boards whose vGPU is SR-IOV based (NVIDIA Ampere and later: A100, A30,
A40, A10, L4, L40, H100; their vGPUs are virtual functions of the GPU).

The host-level fact ``iommu`` is used; when it is unknown but a device on the host is passthrough-capable, the
IOMMU is inferred to be on (vSphere marks no device capable without one); otherwise an advisory says it cannot be
verified.

Sources: VMware vSphere Networking "SR-IOV Support" (the host must support an IOMMU and have it enabled in the
BIOS); Proxmox VE wiki "PCI(e) Passthrough" (IOMMU on in the BIOS and kernel; "IOMMU not present" otherwise);
Microsoft Learn "Plan for deploying devices by using Discrete Device Assignment" (IOMMU / DMA remapping); NVIDIA
"Virtual GPU Software User Guide" (GPUs based on the NVIDIA Ampere architecture and later need SR-IOV and the
IOMMU enabled in the host's BIOS).

Links:
- https://docs.vmware.com/en/VMware-vSphere/6.5/com.vmware.vsphere.networking.doc/GUID-E8E8D7B2-FE67-4B4F-921F-C3D6D7223869.html
- https://pve.proxmox.com/wiki/PCI(e)_Passthrough
- https://learn.microsoft.com/en-us/windows-server/virtualization/hyper-v/plan/plan-for-deploying-devices-using-discrete-device-assignment
- https://docs.nvidia.com/grid/latest/grid-vgpu-user-guide/index.html
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.model import MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, judged
from virtplane.verdicts import IOMMU

RULE = Rule(IOMMU, MANDATORY, "IOMMU (VT-d / AMD-Vi) for passthrough devices and SR-IOV-based vGPUs",
            "Passthrough GPUs, SR-IOV virtual functions and vGPUs of NVIDIA Ampere and later boards need the host's "
            "IOMMU enabled in firmware (and, on Proxmox, in the kernel).",
            (sources.VSPHERE_SRIOV, sources.PVE_PASSTHROUGH, sources.HYPERV_DDA, sources.NVIDIA_VGPU_GUIDE),
            applies=lambda vm: bool(vm.passthrough_gpus or vm.sriov_nics or vm.vgpus))


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    return judged(vm, RULE)
