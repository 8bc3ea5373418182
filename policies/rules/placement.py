"""hw.placement (mandatory): a VM that no host can serve, with each host and why it cannot.

Hosts evaluated: the VM's ``node`` when it names one (then only a missing or offline node is reported here;
what the named host lacks is reported by the rule about that thing), else every host of its endpoint, through
virtplane/placement.py's ``fit`` with what the stack's earlier VMs took. When no host fits, the other rules
defer to this one and say nothing about the VM. An endpoint the inventory has no hosts for gives an advisory:
nothing about it can be verified; so does a chosen host that does not say whether it is online.

Sources: the placement constraints of the documents the other rules cite (VMware vSphere 7.0 VM Administration,
PCI devices; Proxmox VE PCI(e) Passthrough; NVIDIA Virtual GPU Software User Guide).

Links:
- https://docs.vmware.com/en/VMware-vSphere/7.0/com.vmware.vsphere.vm_admin.doc/GUID-5B3CAB26-5D06-4A99-92A0-3A04C69CE64B.html
- https://pve.proxmox.com/wiki/PCI(e)_Passthrough
- https://docs.nvidia.com/grid/latest/grid-vgpu-user-guide/index.html
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.model import ADVISORY, MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, unknown

RULE = Rule("hw.placement", MANDATORY, "Some host can serve the VM",
            "A VM is placed on its node, or on a host of its endpoint that has every device, capability, free "
            "instance and the memory it asks for, counting what the stack's other VMs take. This rule lists "
            "every host and why it cannot serve the VM.",
            (sources.VSPHERE_PCI_DEVICES, sources.PVE_PASSTHROUGH, sources.NVIDIA_VGPU_GUIDE))


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    if vm.placement_problem is None:
        return [unknown(vm, RULE, "whether the host is online")] if vm.host and vm.host.online is None else []
    if not vm.candidates and vm.placement_problem.startswith("cannot verify"):
        return [vm.finding(RULE, vm.placement_problem, field="node", level=ADVISORY,
                           remediation="refresh the inventory with `virtplane inventory --out FILE`")]
    field = "node" if vm.spec.node else _demand_field(vm)
    details = "; ".join(f"{host}: {', '.join(why)}" for host, why in sorted(vm.candidates.items()))
    message = vm.placement_problem + (f" — {details}" if details else "")
    return [vm.finding(RULE, message, field=field,
                       remediation="free or enable the devices on a host, name a host that has them in 'node', "
                                   "or ask for less")]


def _demand_field(vm: VmUnderCheck) -> str:
    if vm.spec.gpus:
        return "gpus"
    if vm.sriov_nics:
        return "nics"
    if vm.spec.nested_virtualization:
        return "nested_virtualization"
    return "memory"
