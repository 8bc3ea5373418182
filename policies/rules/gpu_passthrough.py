"""hw.gpu-passthrough (mandatory): each whole GPU the VM asks for exists on its host, is passthrough-capable,
enabled for passthrough, and active: on vSphere a device enabled for passthrough is usable only once the host has
rebooted (``passthruActive``); enabled but not active is a "no" until then.

On vSphere a GPU asked for by vendor (no device address) is a Dynamic DirectPath I/O device: some GPU of that
vendor must be enabled on the host. vSphere reports ``passthruCapable`` / ``passthruEnabled`` for every PCI device,
so an unknown value there is mandatory (the inventory is incomplete); elsewhere unknown is an advisory. Whether the
GPU is free is hw.device-in-use (libvirt lets two domains hold one GPU, the second failing at start: every
domain's host devices count as in use); whether it can leave its IOMMU group or dependent device is
hw.device-group.

Sources: VMware vSphere 7.0 VM Administration "PCI devices" (DirectPath I/O, Dynamic DirectPath I/O); vSphere API
"HostPciPassthruInfo" (passthruActive: enabled and rebooted); Proxmox VE wiki "PCI(e) Passthrough" ("no PCI device
found"); Microsoft Learn "Plan for deploying devices by using Discrete Device Assignment".

Links:
- https://docs.vmware.com/en/VMware-vSphere/7.0/com.vmware.vsphere.vm_admin.doc/GUID-5B3CAB26-5D06-4A99-92A0-3A04C69CE64B.html
- https://developer.broadcom.com/xapis/virtual-infrastructure-json-api/latest/data-structures/HostPciPassthruInfo
- https://pve.proxmox.com/wiki/PCI(e)_Passthrough
- https://learn.microsoft.com/en-us/windows-server/virtualization/hyper-v/plan/plan-for-deploying-devices-using-discrete-device-assignment
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.model import MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, judged
from virtplane.verdicts import GPU_PASSTHROUGH

RULE = Rule(GPU_PASSTHROUGH, MANDATORY, "Passthrough GPU present, capable, enabled and active",
            "A whole GPU must exist on the host, be passthrough-capable, be enabled for passthrough and be active "
            "(vSphere: enabled and the host rebooted since).",
            (sources.VSPHERE_PCI_DEVICES, sources.VSPHERE_PASSTHRU_INFO, sources.PVE_PASSTHROUGH,
             sources.HYPERV_DDA),
            applies=lambda vm: bool(vm.passthrough_gpus))


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    return judged(vm, RULE, remediation="enable passthrough for a GPU on the host (and reboot it), or name another "
                                        "host in 'node'")
