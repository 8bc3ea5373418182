"""hw.vgpu (mandatory): each vGPU / mdev / GPU-partition profile the VM asks for is offered by its host (on the GPU
or mapping it names: a Proxmox mapping is resolved to its devices before their mdev types are looked up) and has
a free instance left after the stack's other VMs.

Free instances: Proxmox's mdev ``available`` (the NVIDIA driver's count for what runs now, lowered by the stopped
VMs that create an instance when they start), Hyper-V's partition capacity, and on vSphere, which reports no
remaining capacity, the GPU's frame buffer against the profiles running on it (hw.vgpu-size); where none of these
is known an advisory says so.

Sources: NVIDIA "Virtual GPU Software User Guide"; Proxmox VE Administration Guide "PCI(e) passthrough, mediated
devices"; VMware vSphere 7.0 VM Administration "NVIDIA GRID GPU devices"; Microsoft Learn "GPU partitioning".

Links:
- https://docs.nvidia.com/grid/latest/grid-vgpu-user-guide/index.html
- https://pve.proxmox.com/pve-docs/chapter-qm.html#qm_pci_passthrough
- https://docs.vmware.com/en/VMware-vSphere/7.0/com.vmware.vsphere.vm_admin.doc/GUID-5B3CAB26-5D06-4A99-92A0-3A04C69CE64B.html
- https://learn.microsoft.com/en-us/windows-server/virtualization/hyper-v/gpu-partitioning
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.model import MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, judged
from virtplane.verdicts import VGPU

RULE = Rule(VGPU, MANDATORY, "vGPU profile offered with a free instance",
            "The host must offer the vGPU profile (on the GPU or mapping named) with a free instance left after the "
            "stack's other VMs.",
            (sources.NVIDIA_VGPU_GUIDE, sources.PVE_QM, sources.VSPHERE_PCI_DEVICES, sources.HYPERV_GPU_P),
            applies=lambda vm: bool(vm.vgpus))


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    return judged(vm, RULE, remediation="choose a profile the host offers, free an instance, or place the VM on "
                                        "another host")
