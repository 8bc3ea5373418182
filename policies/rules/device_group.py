"""hw.device-group (mandatory): a passthrough device leaves the host together with the devices it cannot be
separated from, so it can be given to a VM only when they can go too.

- Proxmox VE and libvirt (VFIO): the unit of passthrough is the IOMMU group. A device whose group holds another
  endpoint (not one of its own functions, not a bridge) cannot be passed alone; the finding names the group's devices.
- vSphere: ``HostPciPassthruInfo.dependentDevice`` names the device the VMkernel must release with this one (often
  a bridge); devices naming the same one go together, so one of them held by a VM, or not enabled for
  passthrough, keeps the others on the host.

Sources: Proxmox VE wiki "PCI(e) Passthrough" (IOMMU groups: all devices of a group are passed together; a device
must be alone in its group, its own functions and root ports excepted); vSphere API "HostPciPassthruInfo"
(dependentDevice: "Device which needs to be unclaimed by vmkernel (may be bridge)").

Links:
- https://pve.proxmox.com/wiki/PCI(e)_Passthrough
- https://developer.broadcom.com/xapis/virtual-infrastructure-json-api/latest/data-structures/HostPciPassthruInfo
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.model import MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, judged
from virtplane.verdicts import DEVICE_GROUP

RULE = Rule(DEVICE_GROUP, MANDATORY, "Passthrough device separable from its IOMMU group / dependent device",
            "A device passes through with its whole IOMMU group (Proxmox) or its dependent device (vSphere): it "
            "cannot be given alone when that group holds other endpoint devices, or when a device it goes with "
            "is held by a VM or not enabled for passthrough.",
            (sources.PVE_PASSTHROUGH, sources.VSPHERE_PASSTHRU_INFO, sources.LIBVIRT_NODEDEV),
            applies=lambda vm: bool(vm.passthrough_gpus))


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    return judged(vm, RULE, remediation="move the card to a slot with its own IOMMU group (ACS), free the devices it "
                                        "goes with, or use another GPU")
