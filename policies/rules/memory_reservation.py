"""hw.memory-reservation (mandatory): a VM with passthrough GPUs, vGPUs or SR-IOV NICs has all its memory
reserved (pinned for device DMA), and its host has that much free memory left after the stack's other device
VMs reserved theirs.

vSphere reserves the whole memory size when a PCI device is added (and SR-IOV needs "Reserve all guest memory");
Proxmox pins the whole guest memory for VFIO devices (no ballooning); Hyper-V DDA needs static memory. So the
host's free memory (``memory_free_mib``) must cover the sum, counted across the stack. Unknown free memory, or a
clone that does not declare its memory, gives an advisory.

Sources: VMware vSphere 7.0 VM Administration "PCI devices" (the full memory size is reserved); VMware vSphere
Networking "SR-IOV Support"; Proxmox VE wiki "PCI(e) Passthrough" (memory is pinned, no ballooning); Microsoft
Learn "Plan for deploying devices by using Discrete Device Assignment" (no dynamic memory).

Links:
- https://docs.vmware.com/en/VMware-vSphere/7.0/com.vmware.vsphere.vm_admin.doc/GUID-5B3CAB26-5D06-4A99-92A0-3A04C69CE64B.html
- https://docs.vmware.com/en/VMware-vSphere/6.5/com.vmware.vsphere.networking.doc/GUID-E8E8D7B2-FE67-4B4F-921F-C3D6D7223869.html
- https://pve.proxmox.com/wiki/PCI(e)_Passthrough
- https://learn.microsoft.com/en-us/windows-server/virtualization/hyper-v/plan/plan-for-deploying-devices-using-discrete-device-assignment
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.model import MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, unknown

RULE = Rule("hw.memory-reservation", MANDATORY, "All memory reserved for device VMs, and the host has it",
            "Passthrough, vGPU and SR-IOV need the VM's whole memory reserved; the host's free memory must cover "
            "every such VM of the stack placed there.",
            (sources.VSPHERE_PCI_DEVICES, sources.VSPHERE_SRIOV, sources.PVE_PASSTHROUGH, sources.HYPERV_DDA),
            applies=lambda vm: vm.has_devices)


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    host = vm.host
    assert host is not None
    if not vm.has_devices:
        return []
    if vm.spec.memory is None:
        return [unknown(vm, RULE, "the memory of this clone (all of it is reserved)", field="memory")]
    if host.memory_free_mib is None:
        return [unknown(vm, RULE, f"free memory for the {vm.spec.memory} MiB this VM reserves", field="memory")]
    left = host.memory_free_mib - stack.reserved_mib[host.name]
    if left < vm.spec.memory:
        return [vm.finding(RULE, f"the VM reserves all its {vm.spec.memory} MiB (devices pin memory); host "
                                 f"{host.name} has {left} MiB free after the stack's other device VMs there",
                           field="memory", remediation="lower memory, free memory on the host, or place the VM "
                                                       "elsewhere")]
    return []
