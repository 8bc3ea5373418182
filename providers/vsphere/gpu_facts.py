"""vSphere's GPUs as inventory facts: per GPU its graphics type, vGPU mode and frame buffer, and the vGPU profiles it
can serve with the vGPUs running on it. Pure mapping (no I/O).

- ``config.graphicsInfo[]`` is per graphics device (``pciId``): ``graphicsType`` (basic, shared, direct,
  sharedDirect), ``vgpuMode`` (vSphere 8.0 U3: sameSize, mixedSize; not reported before: equal-size, NVIDIA's
  default), ``memorySizeInKB`` (the frame buffer) and ``vm[]`` (the VMs whose vGPUs run on it).
- ``config.sharedPassthruGpuTypes`` lists the host's profiles for all its GPUs; a profile serves the GPUs whose
  board its name names (``grid_a100-20c`` an A100). A profile whose board no GPU's name carries stays host-wide
  (no device), as before.
- vSphere reports no remaining vGPU capacity: each per-GPU profile carries its instance size, and placement counts
  the GPU's frame buffer against what runs there (``available`` stays None, ``total`` is frame buffer / size).

Sources: vSphere API "HostGraphicsInfo" and "HostGraphicsInfoGraphicsType"; NVIDIA "Virtual GPU Software User
Guide" (vGPU type names, equal-size and mixed-size modes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from virtplane import gpus as boards
from virtplane.inventory import PciDevice, VgpuType
from virtplane.providers.vsphere.device_use import DeviceUsage, pci_address


def graphics_by_address(graphics: Sequence[Any] | None) -> dict[str, Any]:
    return {pci_address(info.pciId): info for info in graphics or [] if getattr(info, "pciId", None)}


def graphics_mode(graphics: Sequence[Any] | None) -> tuple[str | None, str]:
    """The host's graphics type when all its GPUs share one; else None (each GPU's is in its own facts)."""
    kinds = sorted({info.graphicsType for info in graphics or [] if info.graphicsType})
    if not kinds:
        return None, "unknown: config.graphicsInfo lists no graphics device"
    if len(kinds) == 1:
        return kinds[0], "config.graphicsInfo[].graphicsType"
    return None, (f"GPUs differ ({', '.join(kinds)}): each GPU's type is in pci_devices[].graphics_type "
                  "(config.graphicsInfo[].graphicsType)")


def with_graphics(device: PciDevice, info: Any | None) -> PciDevice:
    """A GPU with what ``graphicsInfo`` says of it."""
    if info is None:
        return device
    memory = getattr(info, "memorySizeInKB", None)
    return device.model_copy(update={
        "graphics_type": info.graphicsType or None, "vgpu_mode": getattr(info, "vgpuMode", None) or None,
        "memory_mib": int(memory) // 1024 if memory else None})


def _serves(profile: str, gpu: PciDevice) -> bool:
    token = boards.profile(profile).board
    return token is not None and boards.board_named(token, gpu.device_name)


def vgpu_types(profiles: Sequence[str] | None, gpus: Sequence[PciDevice], graphics: Mapping[str, Any],
               usage: DeviceUsage) -> list[VgpuType]:
    """The host's vGPU profiles, per GPU that serves them, with the VMs whose vGPU runs there (``graphicsInfo[].vm``).
    A vGPU VM no GPU names (powered off: it takes a GPU at power-on) is counted on every GPU that serves its
    profile: never more room than there is."""
    running = {address: {usage.vm_names.get(vm._moId, vm._moId) for vm in getattr(info, "vm", None) or []}
               for address, info in graphics.items()}
    found = []
    for profile in dict.fromkeys(profiles or []):
        holders = sorted(usage.vgpu.get(profile, []))
        serving = [gpu for gpu in gpus if _serves(profile, gpu)]
        if not serving:
            found.append(VgpuType(profile=profile, in_use_by=holders))
            continue
        named = {vm for gpu in serving for vm in running.get(gpu.address, set())}
        stray = [vm for vm in holders if vm not in named]
        described = boards.profile(profile)
        for gpu in serving:
            here = sorted({*(vm for vm in holders if vm in running.get(gpu.address, set())), *stray})
            size = described.size_mib
            total = gpu.memory_mib // size if gpu.memory_mib and size and not described.mig else None
            found.append(VgpuType(profile=profile, device=gpu.address, size_mib=size, total=total, in_use_by=here))
    return sorted(found, key=lambda v: (v.device or "", v.profile))
