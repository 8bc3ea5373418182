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

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.facts import config_version, vmx
from virtplane.policies.model import ADVISORY, MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, unknown

RULE = Rule("hw.nested", MANDATORY, "Nested virtualization supported by host and virtual hardware",
            "The host must support nested hardware-assisted virtualization; on vSphere the VM needs hardware "
            "version vmx-09 or later, on Hyper-V configuration version 8.0 (Intel) or 9.3 (AMD).",
            (sources.VSPHERE_HW_VERSIONS, sources.HYPERV_NESTED, sources.PVE_NESTED),
            applies=lambda vm: bool(vm.spec.nested_virtualization))
VSPHERE_MINIMUM = 9
HYPERV_INTEL, HYPERV_AMD, HYPERV_AMD_CURRENT_PAGE = (8, 0), (9, 3), (10, 0)


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    host = vm.host
    assert host is not None
    if not vm.spec.nested_virtualization:
        return []
    findings: list[Finding] = []
    if host.nested is False:
        findings.append(vm.finding(RULE, f"host {host.name} does not support nested virtualization",
                                   field="nested_virtualization",
                                   remediation="choose a host with nested virtualization (Proxmox: kvm-intel / "
                                               "kvm-amd nested=1), or turn it off for this VM"))
    elif host.nested is None:
        findings.append(unknown(vm, RULE, "nested virtualization support", field="nested_virtualization"))
    if vm.hypervisor == "vsphere":
        findings.extend(_vsphere_version(vm))
    elif vm.hypervisor == "hyperv":
        findings.extend(_hyperv_version(vm))
    return findings


def _vsphere_version(vm: VmUnderCheck) -> list[Finding]:
    assert vm.host is not None
    version = vmx(vm.spec.machine)
    source = "its hardware version"
    if version is None and vm.spec.machine is None and not vm.spec.clone_from:
        version, source = vmx(vm.host.max_hardware_version), f"host {vm.host.name}'s newest hardware version"
    if version is None:
        return [unknown(vm, RULE, "the VM's hardware version (nested needs vmx-09 or later)", field="machine")]
    if version < VSPHERE_MINIMUM:
        return [vm.finding(RULE, f"nested virtualization needs hardware version vmx-09 or later; {source} is "
                                 f"vmx-{version:02d}", field="machine",
                           remediation="set machine='vmx-09' or later")]
    return []


def _hyperv_version(vm: VmUnderCheck) -> list[Finding]:
    assert vm.host is not None
    version = config_version(vm.spec.machine) or (
        config_version(vm.host.max_hardware_version) if vm.spec.machine is None else None)
    if version is None:
        return [unknown(vm, RULE, "the VM's configuration version", field="machine")]
    shown = f"{version[0]}.{version[1]}"
    if vm.host.cpu_vendor == "amd":
        if version < HYPERV_AMD:
            return [vm.finding(RULE, f"nested virtualization on AMD needs configuration version 9.3 or later; the "
                                     f"VM's is {shown}", field="machine", remediation="set machine='9.3' or later")]
        if version < HYPERV_AMD_CURRENT_PAGE:
            return [vm.finding(RULE, f"configuration version {shown} meets the 9.3 minimum for nested "
                                     "virtualization on AMD, but Microsoft's current page asks for 10.0",
                               field="machine", level=ADVISORY, remediation="set machine='10.0' to be safe")]
        return []
    if version < HYPERV_INTEL:
        return [vm.finding(RULE, f"nested virtualization needs configuration version 8.0 or later; the VM's is "
                                 f"{shown}", field="machine", remediation="set machine='8.0' or later")]
    if vm.host.cpu_vendor is None:
        return [unknown(vm, RULE, "the CPU vendor (AMD needs configuration version 9.3)", field="machine")]
    return []
