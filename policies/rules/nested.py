"""hw.nested (mandatory): nested virtualization is supported by the host and by the VM's virtual hardware.

- vSphere: the host's ``nestedHVSupported`` capability, and virtual hardware version vmx-09 (ESXi 5.1) or later
  ("Expose hardware assisted virtualization to the guest OS" needs compatibility ESXi 5.1 and later).
- Hyper-V: VM configuration version 8.0 or later on Intel; on AMD a Windows Server 2022 / Windows 11 host and
  configuration version 9.3 (the older Learn page; the current one says 10.0, so 9.3 to 9.x gets an advisory).
- Proxmox VE: the kvm module's nested parameter on the node; virtplane gives the VM CPU type ``host``.

Sources: VMware KB 1003746 "Virtual machine hardware versions"; Microsoft Learn "Run Hyper-V in a Virtual
Machine with Nested Virtualization"; Proxmox VE wiki "Nested Virtualization".

Links:
- https://kb.vmware.com/s/article/1003746
- https://learn.microsoft.com/en-us/virtualization/hyper-v-on-windows/user-guide/enable-nested-virtualization
- https://pve.proxmox.com/wiki/Nested_Virtualization
"""

from __future__ import annotations

from virtplane.host_checks import config_version
from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.model import ADVISORY, MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, judged
from virtplane.verdicts import NESTED

RULE = Rule(NESTED, MANDATORY, "Nested virtualization supported by host and virtual hardware",
            "The host must support nested hardware-assisted virtualization; on vSphere the VM needs hardware "
            "version vmx-09 or later, on Hyper-V configuration version 8.0 (Intel) or 9.3 (AMD).",
            (sources.VSPHERE_HW_VERSIONS, sources.HYPERV_NESTED, sources.PVE_NESTED),
            applies=lambda vm: bool(vm.spec.nested_virtualization))
HYPERV_AMD_CURRENT_PAGE = (10, 0)


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    assert vm.host is not None
    if not vm.spec.nested_virtualization:
        return []
    found = judged(vm, RULE)
    if vm.host.hypervisor == "hyperv" and vm.host.cpu_vendor == "amd" and not found:
        version = config_version(vm.spec.machine) or (
            config_version(vm.host.max_hardware_version) if vm.spec.machine is None else None)
        if version is not None and version < HYPERV_AMD_CURRENT_PAGE:
            found.append(vm.finding(RULE, f"configuration version {version[0]}.{version[1]} meets the 9.3 minimum "
                                          "for nested virtualization on AMD, but Microsoft's current page asks for "
                                          "10.0", field="machine", level=ADVISORY,
                                    remediation="set machine='10.0' to be safe"))
    return found
