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
from virtplane.policies.model import ADVISORY, MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, judged
from virtplane.verdicts import SLAT

RULE = Rule(SLAT, MANDATORY, "Second-level address translation (EPT / RVI) on the host",
            "Hyper-V hosts and nested virtualization need SLAT (Intel EPT, AMD RVI/NPT); elsewhere its absence "
            "is an advisory (shadow paging is slow).",
            (sources.HYPERV_REQUIREMENTS, sources.HYPERV_NESTED, sources.ESXI_REQUIREMENTS))


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    assert vm.host is not None
    found = judged(vm, RULE)
    if vm.host.slat is False and not found:
        found.append(vm.finding(RULE, f"host {vm.host.name} has no second-level address translation (EPT / RVI): "
                                      "memory virtualization falls back to shadow page tables", level=ADVISORY,
                                remediation="run the VM on a host whose CPU has EPT / RVI"))
    return found
