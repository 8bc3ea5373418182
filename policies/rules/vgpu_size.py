"""hw.vgpu-size (mandatory): the vGPU fits its physical GPU: one frame-buffer size per time-sliced NVIDIA GPU in
equal-size mode, and the GPU's frame buffer left.

NVIDIA time-sliced vGPU runs, by default, in equal-size mode: every vGPU resident on one physical GPU has the same
frame-buffer size (the first one placed fixes it), so a GPU running 20 GB vGPUs takes only 20 GB vGPUs. Mixed-size
mode is used only where the host reports it (vSphere 8.0 U3 ``graphicsInfo[].vgpuMode`` = ``mixedSize``). The GPU's
frame buffer (vSphere ``graphicsInfo[].memorySizeInKB``) bounds the sum of the vGPUs on it: a third 40 GB vGPU
does not fit an 80 GB GPU. Sizes come from the profile (``grid_a100-20c``: 20 GB) or the mdev type's description
(``framebuffer=20480M``); MIG-backed profiles are not time-sliced and are not checked here.

Sources: NVIDIA "Virtual GPU Software User Guide" (equal-size and mixed-size modes of time-sliced vGPUs, frame
buffer per vGPU type); vSphere API "HostGraphicsInfo" (memorySizeInKB, vgpuMode, vm).

Links:
- https://docs.nvidia.com/grid/latest/grid-vgpu-user-guide/index.html
- https://developer.broadcom.com/xapis/virtual-infrastructure-json-api/latest/data-structures/HostGraphicsInfo
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.model import MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, judged
from virtplane.verdicts import VGPU_SIZE

RULE = Rule(VGPU_SIZE, MANDATORY, "vGPU size fits its GPU (equal-size mode, frame buffer left)",
            "On a time-sliced NVIDIA GPU in equal-size mode all vGPUs have one frame-buffer size, and together they "
            "fit the GPU's frame buffer.",
            (sources.NVIDIA_VGPU_GUIDE, sources.VSPHERE_GRAPHICS_INFO),
            applies=lambda vm: bool(vm.vgpus))


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    return judged(vm, RULE, remediation="use the size already running on that GPU, another GPU or host, or a GPU the "
                                        "host runs in mixed-size mode")
