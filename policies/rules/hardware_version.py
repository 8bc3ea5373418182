"""hw.hardware-version (mandatory): the VM's virtual hardware is new enough for the devices it asks for, and the
host can run that version.

vSphere minimums (virtual hardware version = "compatibility"):
- Dynamic DirectPath I/O (a passthrough GPU named by vendor, no address): vmx-17 (ESXi 7.0, where Dynamic
  DirectPath I/O appeared);
- NVIDIA GRID vGPU ("Shared PCI Device"): vmx-11 (the VM must be compatible with ESXi 6.0 and later);
- SR-IOV passthrough NIC: vmx-10 (available to VMs compatible with ESXi 5.5 and later).
A VM that does not declare ``machine`` is made at the host's newest version (``max_hardware_version``, from
``QueryConfigOptionDescriptor``, else the ESXi release: 6.7 U2/U3 vmx-15, 7.0 vmx-17, 7.0 U1 vmx-18, 7.0 U2 vmx-19,
8.0 vmx-20, 8.0 U2 vmx-21); a clone that does not declare it cannot be verified (advisory). A declared version
above the host's newest is mandatory, and so is a device need above what the candidate host runs: placement checks
both for every candidate host.
Proxmox VE: a versioned machine (``pc-q35-9.2+pve1``) newer than the node's QEMU offers
(``/nodes/{node}/capabilities/qemu/machines``) is mandatory; PCIe passthrough of a GPU wants machine type q35
(``pcie=1`` needs it): i440fx (the default) is an advisory.
libvirt: GPU passthrough on a declared non-q35 machine is an advisory (virtplane's domains are q35 unless
declared).

Sources: VMware KB 1003746 "Virtual machine hardware versions"; VMware vSphere 7.0 VM Administration "PCI
devices" (Dynamic DirectPath I/O since vSphere 7.0, NVIDIA GRID vGPU); VMware vSphere Networking "SR-IOV
Support"; Proxmox VE Administration Guide "PCI(e) passthrough" (q35 for PCIe); Proxmox VE API
"/nodes/{node}/capabilities/qemu/machines".

Links:
- https://kb.vmware.com/s/article/1003746
- https://docs.vmware.com/en/VMware-vSphere/7.0/com.vmware.vsphere.vm_admin.doc/GUID-5B3CAB26-5D06-4A99-92A0-3A04C69CE64B.html
- https://docs.vmware.com/en/VMware-vSphere/6.5/com.vmware.vsphere.networking.doc/GUID-E8E8D7B2-FE67-4B4F-921F-C3D6D7223869.html
- https://pve.proxmox.com/pve-docs/chapter-qm.html#qm_pci_passthrough
- https://pve.proxmox.com/pve-docs/api-viewer/#/nodes/{node}/capabilities/qemu/machines
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.model import ADVISORY, MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, judged, unknown
from virtplane.verdicts import HARDWARE_VERSION

RULE = Rule(HARDWARE_VERSION, MANDATORY, "Virtual hardware version new enough for the devices, and the host runs it",
            "vSphere: Dynamic DirectPath I/O needs vmx-17, vGPU vmx-11, SR-IOV NICs vmx-10, and the host must run "
            "the VM's version. Proxmox: the node's QEMU must offer the VM's machine version; GPU passthrough wants "
            "machine type q35 (libvirt too).",
            (sources.VSPHERE_HW_VERSIONS, sources.VSPHERE_PCI_DEVICES, sources.VSPHERE_SRIOV, sources.PVE_QM,
             sources.PVE_API_MACHINES, sources.LIBVIRT_DOMAIN),
            applies=lambda vm: (vm.has_devices and vm.hypervisor in ("vsphere", "proxmox", "libvirt"))
            or (vm.hypervisor == "proxmox" and vm.spec.machine is not None)
            or (vm.hypervisor == "vsphere" and vm.spec.machine is not None))


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    found = judged(vm, RULE)
    if vm.hypervisor == "proxmox" and vm.passthrough_gpus:
        found.extend(_q35(vm))
    if vm.hypervisor == "libvirt":
        found.extend(_libvirt(vm))
    return found


def _q35(vm: VmUnderCheck) -> list[Finding]:
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
