"""hw.graphics-mode (mandatory, vSphere): a vGPU needs a GPU whose graphics type is "Shared Direct" (vendor shared
passthrough graphics, ``sharedDirect``); "Shared" is VMware's vSGA and serves no vGPU profile. The type is read per
GPU (``config.graphicsInfo[].graphicsType``), never from the host's first GPU: a host may run one GPU in Shared
Direct and another in Shared.

Sources: vSphere API "HostGraphicsInfoGraphicsType" (basic, shared, direct, sharedDirect) and "HostGraphicsInfo";
VMware vSphere Resource Management "Configuring Host Graphics" (Shared = VMware shared virtual graphics, Shared
Direct = vendor shared passthrough graphics); NVIDIA "Virtual GPU Software User Guide" (set the default graphics
type to Shared Direct before configuring vGPU on VMware vSphere).

Links:
- https://developer.broadcom.com/xapis/virtual-infrastructure-json-api/latest/data-structures/HostGraphicsInfoGraphicsType_enum
- https://docs.nvidia.com/grid/latest/grid-vgpu-user-guide/index.html
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.model import MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, judged
from virtplane.verdicts import GRAPHICS_MODE

RULE = Rule(GRAPHICS_MODE, MANDATORY, "GPU graphics type Shared Direct for vGPU (vSphere)",
            "On vSphere, vGPU profiles are served only by a GPU whose graphics type is Shared Direct (vendor shared "
            "passthrough), not Shared (vSGA).",
            (sources.VSPHERE_GRAPHICS_TYPE, sources.VSPHERE_GRAPHICS_INFO, sources.NVIDIA_VGPU_GUIDE),
            applies=lambda vm: bool(vm.vgpus) and vm.hypervisor == "vsphere")


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    return judged(vm, RULE, remediation="set the GPU's graphics type to Shared Direct (Configure > Graphics) and "
                                        "restart Xorg / reboot the host")
