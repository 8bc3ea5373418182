"""hw.gpu-passthrough (mandatory): each whole GPU the VM asks for exists on its host, is passthrough-capable,
enabled for passthrough, not in use by a VM outside this stack and not given to another VM of the stack.

On vSphere a GPU asked for by vendor (no device address) is a Dynamic DirectPath I/O device: some GPU of that
vendor must be free on the host. Whole GPUs are counted across the stack (a GPU given whole cannot also serve vGPU
slices). vSphere reports ``passthruCapable`` / ``passthruEnabled`` for every PCI device, so an unknown value
there is mandatory (the inventory is incomplete); elsewhere unknown is an advisory. On Proxmox and libvirt a device
that shares its IOMMU group with other devices (not its own functions) is an advisory: the whole group goes with it.
libvirt itself lets two domains hold one GPU (the second fails when it starts): every domain's host devices count as
in use.

Sources: VMware vSphere 7.0 VM Administration "PCI devices" (DirectPath I/O, Dynamic DirectPath I/O); Proxmox VE
wiki "PCI(e) Passthrough" (IOMMU groups, "no PCI device found"); Microsoft Learn "Plan for deploying devices by
using Discrete Device Assignment".

Links:
- https://docs.vmware.com/en/VMware-vSphere/7.0/com.vmware.vsphere.vm_admin.doc/GUID-5B3CAB26-5D06-4A99-92A0-3A04C69CE64B.html
- https://pve.proxmox.com/wiki/PCI(e)_Passthrough
- https://learn.microsoft.com/en-us/windows-server/virtualization/hyper-v/plan/plan-for-deploying-devices-using-discrete-device-assignment
"""

from __future__ import annotations

from virtplane.inventory import Host, Inventory, PciDevice
from virtplane.placement import _free_whole_gpu
from virtplane.policies import sources
from virtplane.policies.facts import is_dynamic_directpath
from virtplane.policies.model import (
    ADVISORY,
    MANDATORY,
    Finding,
    Rule,
    StackUnderCheck,
    VmUnderCheck,
    unknown,
)

RULE = Rule("hw.gpu-passthrough", MANDATORY, "Passthrough GPU capable, enabled and free",
            "A whole GPU must be passthrough-capable and enabled for passthrough on the host, and free: not held "
            "by a VM outside the stack nor by another VM of the stack.",
            (sources.VSPHERE_PCI_DEVICES, sources.PVE_PASSTHROUGH, sources.HYPERV_DDA),
            applies=lambda vm: bool(vm.passthrough_gpus))


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    host = vm.host
    assert host is not None
    findings: list[Finding] = []
    taken: set[str] = set()
    for index in vm.passthrough_gpus:
        gpu = (vm.spec.gpus or [])[index]
        field = f"gpus[{index}]"
        kind = "a Dynamic DirectPath GPU" if is_dynamic_directpath(vm, gpu) else "a whole GPU"
        device, why = _free_whole_gpu(host, gpu, taken, stack.usage)
        if device is None:
            findings.append(vm.finding(RULE, f"host {host.name} cannot give {field} {kind}: {why}", field=field,
                                       remediation="enable passthrough for a free GPU on the host (and reboot it), "
                                                   "free one, or name another host in 'node'"))
            continue
        taken.add(device.address)
        findings.extend(_unverified(vm, host, device, field))
        findings.extend(_iommu_group(vm, host, device, field))
    return findings


def _unverified(vm: VmUnderCheck, host: Host, device: PciDevice, field: str) -> list[Finding]:
    level = MANDATORY if host.hypervisor == "vsphere" else ADVISORY
    found = []
    if device.passthrough_capable is None:
        found.append(unknown(vm, RULE, f"whether GPU {device.address} is passthrough-capable", field=field,
                             level=level))
    if device.passthrough_enabled is None:
        found.append(unknown(vm, RULE, f"whether GPU {device.address} is enabled for passthrough", field=field,
                             level=level))
    return found


def _slot(address: str) -> str:
    return address.rsplit(".", 1)[0]


def _iommu_group(vm: VmUnderCheck, host: Host, device: PciDevice, field: str) -> list[Finding]:
    if host.hypervisor not in ("proxmox", "libvirt") or device.iommu_group is None:
        return []
    if device.iommu_group < 0:
        return [vm.finding(RULE, f"GPU {device.address} on {host.name} is in no IOMMU group: the IOMMU is off",
                           field=field, remediation="enable the IOMMU in the host firmware and kernel")]
    others = sorted(d.address for d in host.pci_devices if d.iommu_group == device.iommu_group
                    and _slot(d.address) != _slot(device.address))
    if others:
        return [vm.finding(RULE, f"GPU {device.address} on {host.name} shares IOMMU group {device.iommu_group} with "
                                 f"{', '.join(others)}: all of them are taken from the host together",
                           field=field, level=ADVISORY,
                           remediation="move the card to a slot with its own IOMMU group (ACS)")]
    return []
