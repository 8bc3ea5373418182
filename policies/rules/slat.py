"""hw.slat: second-level address translation (Intel EPT / AMD RVI, NPT) on the host.

Mandatory on Hyper-V (Microsoft requires SLAT for the Hyper-V role) and for nested virtualization anywhere
(Microsoft: Intel VT-x *and EPT*; VMware exposes hardware-assisted virtualization to guests only with hardware
MMU support); advisory otherwise (ESXi and KVM fall back to shadow page tables, slowly).

Sources: Microsoft Learn "System requirements for Hyper-V on Windows Server"; Microsoft Learn "Run Hyper-V in a
Virtual Machine with Nested Virtualization"; VMware "ESXi Hardware Requirements".

Links:
- https://learn.microsoft.com/en-us/windows-server/virtualization/hyper-v/host-hardware-requirements
- https://learn.microsoft.com/en-us/virtualization/hyper-v-on-windows/user-guide/enable-nested-virtualization
- https://docs.vmware.com/en/VMware-vSphere/7.0/com.vmware.esxi.install.doc/GUID-DEB8086A-306B-4239-BF76-E354679202FC.html
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.model import ADVISORY, MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, unknown

RULE = Rule("hw.slat", MANDATORY, "Second-level address translation (EPT / RVI) on the host",
            "Hyper-V hosts and nested virtualization need SLAT (Intel EPT, AMD RVI/NPT); elsewhere its absence "
            "is an advisory (shadow paging is slow).",
            (sources.HYPERV_REQUIREMENTS, sources.HYPERV_NESTED, sources.ESXI_REQUIREMENTS))


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    assert vm.host is not None
    required = vm.hypervisor == "hyperv" or bool(vm.spec.nested_virtualization)
    if vm.host.slat is None:
        return [unknown(vm, RULE, "second-level address translation (EPT / RVI)")]
    if vm.host.slat is False:
        why = "nested virtualization needs it" if vm.spec.nested_virtualization else (
            "Hyper-V requires it" if vm.hypervisor == "hyperv" else "memory virtualization falls back to shadow "
                                                                  "page tables")
        return [vm.finding(RULE, f"host {vm.host.name} has no second-level address translation (EPT / RVI): {why}",
                           field="nested_virtualization" if vm.spec.nested_virtualization else None,
                           level=MANDATORY if required else ADVISORY,
                           remediation="run the VM on a host whose CPU has EPT / RVI")]
    return []
