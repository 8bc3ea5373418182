"""hw.mobility (advisory): what a VM gives up with passthrough, vGPU or SR-IOV devices (and, on Proxmox, with
nested virtualization's CPU type ``host``).

- vSphere DirectPath I/O / SR-IOV: no vMotion, no snapshots, no suspend and resume, no Fault Tolerance, no HA
  restart elsewhere, no hot add of devices, memory or CPUs; DRS only at power-on. vGPU: vMotion and suspend only
  where the host's vGPU manager supports it.
- Proxmox VE: no live migration and no snapshots with RAM for VMs with passed-through devices.
- Hyper-V DDA: no save/restore, no live migration, no dynamic memory.
- libvirt/QEMU: a domain with host devices cannot be migrated or saved with its memory; host-passthrough CPUs
  (nested virtualization) migrate only between identical CPUs.

Sources: VMware vSphere 7.0 VM Administration "PCI devices"; VMware vSphere Networking "SR-IOV Support"
(features unavailable with SR-IOV); Proxmox VE wiki "PCI(e) Passthrough"; Microsoft Learn "Plan for deploying
devices by using Discrete Device Assignment".

Links:
- https://docs.vmware.com/en/VMware-vSphere/7.0/com.vmware.vsphere.vm_admin.doc/GUID-5B3CAB26-5D06-4A99-92A0-3A04C69CE64B.html
- https://docs.vmware.com/en/VMware-vSphere/6.5/com.vmware.vsphere.networking.doc/GUID-E8E8D7B2-FE67-4B4F-921F-C3D6D7223869.html
- https://pve.proxmox.com/wiki/PCI(e)_Passthrough
- https://learn.microsoft.com/en-us/windows-server/virtualization/hyper-v/plan/plan-for-deploying-devices-using-discrete-device-assignment
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.model import ADVISORY, Finding, Rule, StackUnderCheck, VmUnderCheck

RULE = Rule("hw.mobility", ADVISORY, "Devices pin the VM: no live migration, snapshots or suspend",
            "Passthrough GPUs and SR-IOV NICs stop live migration, snapshots with memory, suspend and HA restart; "
            "vGPU only allows them where the host's vGPU manager supports it.",
            (sources.VSPHERE_PCI_DEVICES, sources.VSPHERE_SRIOV, sources.PVE_PASSTHROUGH, sources.HYPERV_DDA),
            applies=lambda vm: vm.has_devices or (bool(vm.spec.nested_virtualization)
                                                  and vm.hypervisor in ("proxmox", "libvirt")))
_LOST = {
    "vsphere": "vMotion, snapshots, suspend/resume, Fault Tolerance, HA restart on another host and hot add",
    "proxmox": "live migration and snapshots that include RAM",
    "hyperv": "live migration, save/restore and dynamic memory",
    "libvirt": "live migration, save/restore and snapshots with memory",
}


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    hypervisor = vm.hypervisor or ""
    if vm.passthrough_gpus or vm.sriov_nics:
        what = "a passthrough GPU" if vm.passthrough_gpus else "an SR-IOV NIC"
        lost = _LOST.get(hypervisor, "live migration, snapshots and suspend")
        return [vm.finding(RULE, f"with {what} the VM loses {lost}", field="gpus" if vm.passthrough_gpus else
                           "nics", remediation="plan maintenance as a power-off, or waive hw.mobility with a reason")]
    if vm.vgpus:
        return [vm.finding(RULE, "with a vGPU, live migration, suspend and snapshots with memory work only where the "
                                 "host's vGPU manager supports them", field="gpus",
                           remediation="check the GPU's migration support, or waive hw.mobility with a reason")]
    if vm.spec.nested_virtualization and hypervisor in ("proxmox", "libvirt"):
        cpu = "CPU type 'host'" if hypervisor == "proxmox" else "a host-passthrough CPU"
        return [vm.finding(RULE, f"nested virtualization uses {cpu}: live migration only between hosts "
                                 "with identical CPUs", field="nested_virtualization",
                           remediation="keep such VMs on one CPU model, or waive hw.mobility with a reason")]
    return []
