"""hw.vgpu (mandatory): each vGPU / mdev / GPU-partition profile the VM asks for is offered by its host, has a
free instance left after the stack's other VMs, and does not mix profile sizes on one time-sliced NVIDIA GPU.

NVIDIA time-sliced vGPU in its default equal-size mode: every vGPU resident on one physical GPU has the same
frame-buffer size (the first one placed fixes it); only GPUs put in mixed-size mode (vGPU 17 and later, some
boards) host different sizes. The inventory does not say which mode a GPU is in, so mixing is reported as
mandatory; a stack on mixed-size GPUs downgrades the rule with a reason. MIG-backed profiles (``-4-20c``) are
not time-sliced and are not checked for mixing. Where profiles name no GPU (vSphere lists them per host), mixing is
checked on hosts with a single GPU. Free instances: Proxmox's mdev ``available`` (what already runs
is counted there), otherwise the stack's own count against ``available``; unknown gives an advisory.

Sources: NVIDIA "Virtual GPU Software User Guide" (equal-size and mixed-size modes of time-sliced vGPUs);
Proxmox VE Administration Guide "PCI(e) passthrough, mediated devices"; VMware vSphere 7.0 VM Administration
"NVIDIA GRID GPU devices"; Microsoft Learn "GPU partitioning".

Links:
- https://docs.nvidia.com/grid/latest/grid-vgpu-user-guide/index.html
- https://pve.proxmox.com/pve-docs/chapter-qm.html#qm_pci_passthrough
- https://docs.vmware.com/en/VMware-vSphere/7.0/com.vmware.vsphere.vm_admin.doc/GUID-5B3CAB26-5D06-4A99-92A0-3A04C69CE64B.html
- https://learn.microsoft.com/en-us/windows-server/virtualization/hyper-v/gpu-partitioning
"""

from __future__ import annotations

import re
from collections import Counter

from virtplane.inventory import Host, Inventory, VgpuType
from virtplane.placement import _free_vgpu
from virtplane.policies import sources
from virtplane.policies.model import MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, unknown

RULE = Rule("hw.vgpu", MANDATORY, "vGPU profile offered, free and not mixed on a time-sliced GPU",
            "The host must offer the vGPU profile with a free instance left after the stack's other VMs; on one "
            "time-sliced NVIDIA GPU in equal-size mode all vGPUs have the same frame-buffer size.",
            (sources.NVIDIA_VGPU_GUIDE, sources.PVE_QM, sources.VSPHERE_PCI_DEVICES, sources.HYPERV_GPU_P),
            applies=lambda vm: bool(vm.vgpus))
_GRID_SIZE = re.compile(r"-(\d+)[a-z]+$")
_MIG = re.compile(r"-\d+-\d+[a-z]+$")


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    host = vm.host
    assert host is not None
    findings: list[Finding] = []
    own: Counter[tuple[str, str]] = Counter()
    for index in vm.vgpus:
        gpu = (vm.spec.gpus or [])[index]
        field = f"gpus[{index}].profile"
        vgpu_type, why = _free_vgpu(host, gpu, stack.usage, own)
        if vgpu_type is None:
            findings.append(vm.finding(RULE, f"host {host.name} cannot give {field} '{gpu.profile}': {why}",
                                       field=field, remediation="choose a profile the host offers, free an "
                                                                "instance, or place the VM on another host"))
            continue
        if vgpu_type.available is None:
            findings.append(unknown(vm, RULE, f"free instances of vGPU profile '{vgpu_type.profile}'", field=field))
        findings.extend(_mixing(vm, host, vgpu_type, stack, own, field))
        own[(vgpu_type.device or "", vgpu_type.profile)] += 1
    return findings


def _size(profile: str) -> str | None:
    """The frame-buffer size of a time-sliced NVIDIA profile (``grid_a100-20c`` -> "20"); the profile itself for
    mdev type names; None for MIG-backed and non-NVIDIA profiles."""
    name = profile.lower()
    if not (name.startswith("grid_") or name.startswith("nvidia-")):
        return None
    if _MIG.search(name):
        return None
    match = _GRID_SIZE.search(name)
    return match.group(1) if match else name


def _mixing(vm: VmUnderCheck, host: Host, wanted: VgpuType, stack: StackUnderCheck, own: Counter[tuple[str, str]],
            field: str) -> list[Finding]:
    size = _size(wanted.profile)
    # vSphere lists profiles per host, not per GPU: with one GPU on the host they all land on it.
    gpu = wanted.device or ("" if len(host.gpus()) == 1 else None)
    if size is None or gpu is None:
        return []
    resident = {t.profile for t in host.vgpu_types if (t.device or "") == gpu and t.in_use_by}
    resident |= {profile for (device, profile), count in stack.usage.vgpus_on(host.name).items()
                 if count and device == gpu}
    resident |= {profile for (device, profile), count in own.items() if count and device == gpu}
    clashing = sorted(p for p in resident if _size(p) not in (None, size))
    if not clashing:
        return []
    shown = gpu or host.gpus()[0].address
    return [vm.finding(RULE, f"GPU {shown} on {host.name} already hosts vGPU profile {', '.join(clashing)}; a "
                             f"time-sliced NVIDIA GPU in equal-size mode hosts one frame-buffer size at a time, so "
                             f"'{wanted.profile}' cannot join it", field=field,
                       remediation="use the same profile size on this GPU, another GPU, or put the GPU in "
                                   "mixed-size mode and downgrade hw.vgpu with a reason")]
