"""hw.graphics-mode (mandatory, vSphere): a vGPU needs the host's graphics type "Shared Direct" (vendor shared
passthrough graphics, ``sharedDirect``); "Shared" is VMware's vSGA and serves no vGPU profile.

Sources: vSphere API "HostGraphicsInfoGraphicsType" (basic, shared, direct, sharedDirect); VMware vSphere
Resource Management "Configuring Host Graphics" (Shared = VMware shared virtual graphics, Shared Direct = vendor
shared passthrough graphics); NVIDIA "Virtual GPU Software User Guide" (set the default graphics type to Shared
Direct before configuring vGPU on VMware vSphere).

Links:
- https://developer.broadcom.com/xapis/virtual-infrastructure-json-api/latest/data-structures/HostGraphicsInfoGraphicsType_enum
- https://docs.nvidia.com/grid/latest/grid-vgpu-user-guide/index.html
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.model import MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, unknown

RULE = Rule("hw.graphics-mode", MANDATORY, "Host graphics type Shared Direct for vGPU (vSphere)",
            "On vSphere, vGPU profiles are served only when the host's default graphics type is Shared Direct "
            "(vendor shared passthrough), not Shared (vSGA).",
            (sources.VSPHERE_GRAPHICS_TYPE, sources.NVIDIA_VGPU_GUIDE),
            applies=lambda vm: bool(vm.vgpus) and vm.hypervisor == "vsphere")


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    host = vm.host
    assert host is not None
    if not vm.vgpus or host.hypervisor != "vsphere":
        return []
    field = f"gpus[{vm.vgpus[0]}]"
    if host.graphics_mode is None:
        return [unknown(vm, RULE, "the host graphics type (vGPU needs Shared Direct)", field=field)]
    if host.graphics_mode != "sharedDirect":
        return [vm.finding(RULE, f"host {host.name}'s graphics type is '{host.graphics_mode}'; vGPU needs "
                                 "'sharedDirect' (Shared Direct)", field=field,
                           remediation="set the host's default graphics type to Shared Direct (Configure > "
                                       "Graphics) and restart Xorg / reboot the host")]
    return []
