"""hw.nested-with-devices: nested virtualization together with passthrough or vGPU devices.

Mandatory on vSphere for GPUs: ESXi refuses "Expose hardware assisted virtualization to the guest OS" on a VM
with a PCI passthrough device or vGPU ("Virtualization is not supported on a virtual machine with a PCI
passthrough device"). SR-IOV NICs with nested virtualization on vSphere are an advisory (the same limitation is
documented for PCI passthrough devices, which SR-IOV VFs are). Other hypervisors document no such limit: no
finding.

Sources: Broadcom KB 437651 "Unable to enable Expose hardware assisted virtualization to the guest OS on a VM with
vGPU or PCI passthrough device"; VMware vSphere 7.0 VM Administration "PCI devices".

Links:
- https://knowledge.broadcom.com/external/article/437651
- https://docs.vmware.com/en/VMware-vSphere/7.0/com.vmware.vsphere.vm_admin.doc/GUID-5B3CAB26-5D06-4A99-92A0-3A04C69CE64B.html
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.model import ADVISORY, MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck

RULE = Rule("hw.nested-with-devices", MANDATORY, "No nested virtualization with passthrough or vGPU (vSphere)",
            "vSphere cannot expose hardware-assisted virtualization to a VM that has a PCI passthrough device or "
            "a vGPU.",
            (sources.VSPHERE_NESTED_WITH_PASSTHROUGH, sources.VSPHERE_PCI_DEVICES),
            applies=lambda vm: bool(vm.spec.nested_virtualization) and vm.has_devices and vm.hypervisor == "vsphere")


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    if not vm.spec.nested_virtualization or vm.hypervisor != "vsphere" or not vm.has_devices:
        return []
    if vm.spec.gpus:
        return [vm.finding(RULE, "vSphere does not expose hardware-assisted virtualization to a VM with a PCI "
                                 "passthrough GPU or vGPU", field="nested_virtualization",
                           remediation="turn nested_virtualization off or move the GPU work to another VM")]
    return [vm.finding(RULE, "nested virtualization with an SR-IOV passthrough NIC: vSphere refuses nested "
                             "virtualization with PCI passthrough devices", field="nested_virtualization",
                       level=ADVISORY, remediation="use a paravirtual NIC on the nested-virtualization VM")]
