"""hw.hardware-version (mandatory): the VM's virtual hardware is new enough for the devices it asks for, and the
host can run that version.

vSphere minimums (virtual hardware version = "compatibility"):
- Dynamic DirectPath I/O (a passthrough GPU named by vendor, no address): vmx-17 (ESXi 7.0, where Dynamic
  DirectPath I/O appeared);
- NVIDIA GRID vGPU ("Shared PCI Device"): vmx-11 (the VM must be compatible with ESXi 6.0 and later);
- SR-IOV passthrough NIC: vmx-10 (available to VMs compatible with ESXi 5.5 and later).
A VM that does not declare ``machine`` is made at the host's newest version (``max_hardware_version``); a clone
that does not declare it cannot be verified (advisory). A declared version above the host's newest is mandatory.
Proxmox VE: PCIe passthrough of a GPU wants machine type q35 (``pcie=1`` needs it); i440fx (the default) is an
advisory. libvirt: the same for a declared non-q35 machine (virtplane's domains are q35 unless declared).

Sources: VMware KB 1003746 "Virtual machine hardware versions"; VMware vSphere 7.0 VM Administration "PCI
devices" (Dynamic DirectPath I/O since vSphere 7.0, NVIDIA GRID vGPU); VMware vSphere Networking "SR-IOV
Support"; Proxmox VE Administration Guide "PCI(e) passthrough" (q35 for PCIe).

Links:
- https://kb.vmware.com/s/article/1003746
- https://docs.vmware.com/en/VMware-vSphere/7.0/com.vmware.vsphere.vm_admin.doc/GUID-5B3CAB26-5D06-4A99-92A0-3A04C69CE64B.html
- https://docs.vmware.com/en/VMware-vSphere/6.5/com.vmware.vsphere.networking.doc/GUID-E8E8D7B2-FE67-4B4F-921F-C3D6D7223869.html
- https://pve.proxmox.com/pve-docs/chapter-qm.html#qm_pci_passthrough
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.facts import is_dynamic_directpath, vmx
from virtplane.policies.model import ADVISORY, MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, unknown

RULE = Rule("hw.hardware-version", MANDATORY, "Virtual hardware version new enough for the devices",
            "vSphere: Dynamic DirectPath I/O needs vmx-17, vGPU vmx-11, SR-IOV NICs vmx-10, and the host must run "
            "the VM's version. Proxmox: GPU passthrough wants machine type q35.",
            (sources.VSPHERE_HW_VERSIONS, sources.VSPHERE_PCI_DEVICES, sources.VSPHERE_SRIOV, sources.PVE_QM),
            applies=lambda vm: vm.has_devices and vm.hypervisor in ("vsphere", "proxmox", "libvirt"))
DYNAMIC_DIRECTPATH, VGPU, SRIOV = 17, 11, 10


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    if not vm.has_devices:
        return []
    if vm.hypervisor == "vsphere":
        return _vsphere(vm)
    if vm.hypervisor == "proxmox":
        return _proxmox(vm)
    if vm.hypervisor == "libvirt":
        return _libvirt(vm)
    return []


def _needs(vm: VmUnderCheck) -> list[tuple[int, str, str]]:
    needs = []
    for index, gpu in enumerate(vm.spec.gpus or []):
        if gpu.mode == "vgpu":
            needs.append((VGPU, "a vGPU", f"gpus[{index}]"))
        elif is_dynamic_directpath(vm, gpu):
            needs.append((DYNAMIC_DIRECTPATH, "a Dynamic DirectPath I/O GPU", f"gpus[{index}]"))
    needs.extend((SRIOV, "an SR-IOV NIC", f"nics[{index}]") for index in vm.sriov_nics)
    return needs


def _vsphere(vm: VmUnderCheck) -> list[Finding]:
    host = vm.host
    assert host is not None
    findings: list[Finding] = []
    host_max = vmx(host.max_hardware_version)
    declared = vmx(vm.spec.machine)
    if declared is not None and host_max is not None and declared > host_max:
        findings.append(vm.finding(RULE, f"host {host.name} runs hardware versions up to vmx-{host_max:02d}; the VM "
                                         f"declares vmx-{declared:02d}", field="machine",
                                   remediation=f"set machine='vmx-{host_max:02d}' or choose a newer host"))
    needs = _needs(vm)
    if not needs:
        return findings
    version, whose = declared, "its hardware version"
    if version is None and vm.spec.machine is None and not vm.spec.clone_from:
        version, whose = host_max, f"host {host.name}'s newest hardware version"
    minimum, what, field = max(needs)
    if version is None:
        findings.append(unknown(vm, RULE, f"the VM's hardware version ({what} needs vmx-{minimum:02d})",
                                field="machine"))
    elif version < minimum:
        findings.append(vm.finding(RULE, f"{what} ({field}) needs hardware version vmx-{minimum:02d} or later; "
                                         f"{whose} is vmx-{version:02d}", field="machine",
                                   remediation=_remedy(host.name, host_max, minimum, minimum == DYNAMIC_DIRECTPATH)))
    return findings


def _remedy(host: str, host_max: int | None, minimum: int, dynamic: bool) -> str:
    """Raise ``machine`` where the host runs the version; where it does not, that would only trade this finding for
    "the host runs up to …": name a newer host, or (Dynamic DirectPath) the GPU's address for plain DirectPath I/O."""
    if host_max is None or host_max >= minimum:
        return f"set machine='vmx-{minimum:02d}' or later"
    plain = (" or name the GPU's PCI address in device= (DirectPath I/O, which does not need vmx-17)"
             if dynamic else "")
    return f"run the VM on a host with vmx-{minimum:02d} or later (host {host} runs up to vmx-{host_max:02d}){plain}"


def _proxmox(vm: VmUnderCheck) -> list[Finding]:
    if not vm.passthrough_gpus:
        return []
    machine = vm.spec.machine
    if machine is None and vm.spec.clone_from:
        return [unknown(vm, RULE, "the machine type of this clone (GPU passthrough wants q35)", field="machine")]
    if machine is None or "q35" not in machine:
        shown = machine or "i440fx (the default)"
        return [vm.finding(RULE, f"GPU passthrough on machine type {shown}: PCIe passthrough (pcie=1) needs q35",
                           field="machine", level=ADVISORY, remediation="set machine='q35'")]
    return []


def _libvirt(vm: VmUnderCheck) -> list[Finding]:
    """virtplane makes libvirt domains q35 unless ``machine`` says otherwise; a GPU on i440fx sits on legacy PCI."""
    machine = vm.spec.machine
    if not vm.passthrough_gpus or machine is None or "q35" in machine:
        return []
    return [vm.finding(RULE, f"GPU passthrough on machine type {machine}: the GPU sits on conventional PCI, not PCIe "
                             "(q35)", field="machine", level=ADVISORY, remediation="set machine='q35'")]
