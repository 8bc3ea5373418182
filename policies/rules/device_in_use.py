"""hw.device-in-use (mandatory): a whole GPU is free: not held by any VM outside the stack (running or not), not
given to another VM of the stack, not serving the stack's vGPU instances, and not the last one that powered-off VMs
will take when they start. Which VMs hold what is read from every VM, so an inventory that could not read them is a
"cannot verify" finding, never a pass.

- vSphere: a VM's ``VirtualPCIPassthrough`` with a fixed ``DeviceBackingInfo`` holds that device, on or off. One
  with a ``DynamicBackingInfo`` (Dynamic DirectPath I/O) holds its ``assignedId`` while it runs; powered off it
  holds nothing yet, but takes a free device of its ``allowedDevice`` at power-on, so it claims one (a
  ``device_claims`` entry): a request is refused when it would leave such a VM without a device. vGPU VMs hold
  their GPU (``config.graphicsInfo[].vm``), so it cannot be given whole.
- Proxmox VE: every VM's ``hostpciN`` (running or stopped) holds the device it names, or claims one of a mapping's
  devices on its node.
- Hyper-V: ``Get-VMAssignableDevice`` of every VM.

Sources: VMware vSphere 7.0 VM Administration "PCI devices" (Dynamic DirectPath I/O assigns an available device
at power-on); vSphere API "VirtualPCIPassthroughDynamicBackingInfo" (allowedDevice, assignedId); Proxmox VE
Administration Guide "Resource Mapping" (a mapping's devices are a pool PVE picks a free one from when the VM
starts); Microsoft Learn "Deploy graphics devices by using Discrete Device Assignment".

Links:
- https://docs.vmware.com/en/VMware-vSphere/7.0/com.vmware.vsphere.vm_admin.doc/GUID-5B3CAB26-5D06-4A99-92A0-3A04C69CE64B.html
- https://developer.broadcom.com/xapis/virtual-infrastructure-json-api/latest/data-structures/VirtualPCIPassthroughDynamicBackingInfo
- https://pve.proxmox.com/pve-docs/chapter-qm.html#resource_mapping
- https://learn.microsoft.com/en-us/windows-server/virtualization/hyper-v/plan/plan-for-deploying-devices-using-discrete-device-assignment
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.model import MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, judged
from virtplane.verdicts import DEVICE_IN_USE

RULE = Rule(DEVICE_IN_USE, MANDATORY, "Passthrough GPU not held by another VM",
            "A whole GPU must not be held by a VM outside the stack (running or stopped, including powered-off "
            "Dynamic DirectPath I/O VMs that take a free one at power-on and stopped Proxmox VMs holding a "
            "mapping), nor by another VM of the stack or its vGPU instances.",
            (sources.VSPHERE_PCI_DEVICES, sources.VSPHERE_DYNAMIC_BACKING, sources.PVE_RESOURCE_MAPPING,
             sources.HYPERV_DDA),
            applies=lambda vm: bool(vm.spec.gpus))


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    return judged(vm, RULE, remediation="free the GPU (remove it from the VM holding it), use another GPU, or name "
                                        "another host in 'node'")
