"""hw.virtualization (mandatory): the host's CPU has hardware virtualization (Intel VT-x / AMD-V) and it is enabled.
On libvirt a host without it runs QEMU's emulation (domain type ``qemu``, TCG) instead of KVM: VMs run, many times
slower, so there it is an advisory.

Without it ESXi runs no 64-bit guest and no nested hypervisor, so placement never chooses such a host
(virtplane/host_checks.py). On vSphere, VT-x disabled in the BIOS still shows VMX in CPUID: the host says so in
``capability.ftCompatibilityIssues`` (``cpuHvDisabled``, ``cpuHvUnsupported``), which is read first.

Sources: VMware "ESXi Hardware Requirements" (64-bit VMs need Intel VT-x or AMD RVI enabled in the BIOS); vSphere
API "HostCapabilityFtUnsupportedReason";
Proxmox VE "System Requirements" (CPU with Intel VT / AMD-V flags for KVM); Microsoft Learn "System requirements
for Hyper-V on Windows Server" (VM Monitor Mode extensions, virtualization enabled in firmware); libvirt "Domain
XML format" (domain types kvm and qemu).

Links:
- https://docs.vmware.com/en/VMware-vSphere/7.0/com.vmware.esxi.install.doc/GUID-DEB8086A-306B-4239-BF76-E354679202FC.html
- https://developer.broadcom.com/xapis/virtual-infrastructure-json-api/latest/data-structures/HostCapabilityFtUnsupportedReason_enum
- https://pve.proxmox.com/pve-docs/chapter-pve-installation.html#install_recommended_requirements
- https://learn.microsoft.com/en-us/windows-server/virtualization/hyper-v/host-hardware-requirements
- https://libvirt.org/formatdomain.html
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.model import ADVISORY, MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, judged
from virtplane.verdicts import VIRTUALIZATION

RULE = Rule(VIRTUALIZATION, MANDATORY, "Hardware virtualization present and enabled on the host",
            "The host CPU must offer Intel VT-x or AMD-V and firmware must enable it; without it ESXi runs no "
            "64-bit VM, KVM does not start and Hyper-V does not install.",
            (sources.ESXI_REQUIREMENTS, sources.VSPHERE_CAPABILITY, sources.PVE_REQUIREMENTS,
             sources.HYPERV_REQUIREMENTS, sources.LIBVIRT_DOMAIN))


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    assert vm.host is not None
    if vm.host.hardware_virtualization is False and vm.host.hypervisor == "libvirt":
        return [vm.finding(RULE, f"host {vm.host.name} has no usable KVM: QEMU emulates the CPU (TCG), many times "
                                 "slower", level=ADVISORY,
                           remediation="enable Intel VT-x / AMD-V (SVM) in the host's firmware and load kvm-intel / "
                                       "kvm-amd, or accept emulation for this VM")]
    return judged(vm, RULE)
