"""hw.sriov (mandatory): each SR-IOV NIC has a physical function on its host with SR-IOV enabled and a free
virtual function left after the stack's other VMs (``vfs_free`` counts the VFs every VM holds, running or stopped:
vSphere has no "VFs in use" field, so the VMs' SR-IOV NICs on the PF are counted; Proxmox VMs' ``hostpciN`` naming a
VF or a mapping of VFs; this stack's own VMs are given theirs back first).

Sources: VMware vSphere Networking "SR-IOV Support" (SR-IOV enabled in BIOS and NIC firmware, VFs per PF);
Proxmox VE wiki "PCI(e) Passthrough" (SR-IOV: VFs are created on the PF and passed through);
Microsoft Learn "Plan for deploying devices by using Discrete Device Assignment".

Links:
- https://docs.vmware.com/en/VMware-vSphere/6.5/com.vmware.vsphere.networking.doc/GUID-E8E8D7B2-FE67-4B4F-921F-C3D6D7223869.html
- https://pve.proxmox.com/wiki/PCI(e)_Passthrough
- https://learn.microsoft.com/en-us/windows-server/virtualization/hyper-v/plan/plan-for-deploying-devices-using-discrete-device-assignment
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.model import MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, judged
from virtplane.verdicts import SRIOV

RULE = Rule(SRIOV, MANDATORY, "SR-IOV physical function enabled with a free virtual function",
            "An SR-IOV NIC needs a physical function with SR-IOV enabled on the host and a free virtual function, "
            "counting the VFs every VM holds and the stack's other VMs take.",
            (sources.VSPHERE_SRIOV, sources.PVE_PASSTHROUGH, sources.HYPERV_DDA),
            applies=lambda vm: bool(vm.sriov_nics))


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    return judged(vm, RULE, remediation="enable SR-IOV and more VFs on the PF, free VFs, or place the VM on another "
                                        "host")
