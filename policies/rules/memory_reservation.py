"""hw.memory-reservation (mandatory): a VM with passthrough GPUs, vGPUs or SR-IOV NICs has all its memory
reserved (pinned for device DMA), and its host has that much free memory left after the stack's other device
VMs reserved theirs.

vSphere reserves the whole memory size when a PCI device is added (and SR-IOV needs "Reserve all guest memory");
Proxmox pins the whole guest memory for VFIO devices (no ballooning); Hyper-V DDA needs static memory. So the
host's unreserved memory must cover the sum, counted across the stack. On vSphere that is what admission control
counts: the host's memory minus the reservations of the VMs running there (device VMs reserve all their memory),
not its memory minus what is consumed now. Unknown free memory, or a clone that does not declare its memory, gives an
advisory.

Sources: VMware vSphere 7.0 VM Administration "PCI devices" (the full memory size is reserved); VMware vSphere
Resource Management "Admission Control"; VMware vSphere
Networking "SR-IOV Support"; Proxmox VE wiki "PCI(e) Passthrough" (memory is pinned, no ballooning); Microsoft
Learn "Plan for deploying devices by using Discrete Device Assignment" (no dynamic memory).

Links:
- https://docs.vmware.com/en/VMware-vSphere/7.0/com.vmware.vsphere.vm_admin.doc/GUID-5B3CAB26-5D06-4A99-92A0-3A04C69CE64B.html
- https://docs.vmware.com/en/VMware-vSphere/7.0/com.vmware.vsphere.resmgmt.doc/GUID-7FA1A7C1-F6D5-4AB6-B2F7-AC9574E43C97.html
- https://docs.vmware.com/en/VMware-vSphere/6.5/com.vmware.vsphere.networking.doc/GUID-E8E8D7B2-FE67-4B4F-921F-C3D6D7223869.html
- https://pve.proxmox.com/wiki/PCI(e)_Passthrough
- https://learn.microsoft.com/en-us/windows-server/virtualization/hyper-v/plan/plan-for-deploying-devices-using-discrete-device-assignment
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.model import MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, judged
from virtplane.verdicts import MEMORY_RESERVATION

RULE = Rule(MEMORY_RESERVATION, MANDATORY, "All memory reserved for device VMs, and the host has it unreserved",
            "Passthrough, vGPU and SR-IOV need the VM's whole memory reserved; the host's unreserved memory must "
            "cover every such VM of the stack placed there.",
            (sources.VSPHERE_PCI_DEVICES, sources.VSPHERE_ADMISSION, sources.VSPHERE_SRIOV, sources.PVE_PASSTHROUGH,
             sources.HYPERV_DDA),
            applies=lambda vm: vm.has_devices)


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    return judged(vm, RULE)
