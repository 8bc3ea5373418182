"""The host-level facts a VM's request meets or not, one check per fact, each owned by a policy rule.

A check reads one VM's spec and one host's facts and adds refusals and unknowns to a ``Judgement``
(virtplane/verdicts.py). ``HOST_CHECKS`` is the list placement runs for every candidate host (virtplane/placement.py)
and the rules report from: a new fact (a new hypervisor's, a new hardware limit) is a new function appended here,
with the rule that owns it. Devices (which GPU, which virtual function) are chosen in virtplane/device_choice.py.

Vendor sources are in the owning rules' modules (policies/rules/).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from virtplane import gpus as boards
from virtplane.inventory import Host
from virtplane.specs import VirtualMachineSpec
from virtplane.verdicts import (
    HARDWARE_VERSION,
    IOMMU,
    MEMORY_RESERVATION,
    NESTED,
    SLAT,
    VIRTUALIZATION,
    Judgement,
)

if TYPE_CHECKING:
    from virtplane.placement import Usage

HostCheck = Callable[[VirtualMachineSpec, Host, "Usage", Judgement], None]

_VMX = re.compile(r"^vmx-(\d+)$")
_CONFIG_VERSION = re.compile(r"^(\d+)\.(\d+)$")
_QEMU_MACHINE = re.compile(r"^pc(?:-(?P<type>q35|i440fx))?-(?P<version>\d+(?:\.\d+)+)(?:\+pve(?P<pve>\d+))?"
                           r"(?:\.pxe)?$")

# vSphere minimum hardware versions (VMware KB 1003746; vSphere VM Administration "PCI devices"; vSphere
# Networking "SR-IOV Support"; "Expose hardware assisted virtualization" needs ESXi 5.1 compatibility).
DYNAMIC_DIRECTPATH, VGPU_VMX, SRIOV_VMX, NESTED_VMX = 17, 11, 10, 9
# Hyper-V configuration versions for nested virtualization (Microsoft Learn, nested virtualization).
HYPERV_INTEL, HYPERV_AMD = (8, 0), (9, 3)


def vmx(version: str | None) -> int | None:
    """``vmx-19`` -> 19; anything else (a Proxmox machine type, unset) -> None."""
    match = _VMX.match((version or "").strip().lower())
    return int(match.group(1)) if match else None


def config_version(version: str | None) -> tuple[int, int] | None:
    """A Hyper-V VM configuration version ``9.3`` -> (9, 3)."""
    match = _CONFIG_VERSION.match((version or "").strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def qemu_machine(machine: str | None) -> tuple[str, tuple[int, ...]] | None:
    """A versioned QEMU machine (``pc-q35-9.2+pve1`` -> ("q35", (9, 2, 1)), ``pc-i440fx-8.1`` -> ("i440fx",
    (8, 1, 0))); None for an unversioned one (``q35``, ``pc``: the newest the node has) or anything else."""
    match = _QEMU_MACHINE.match((machine or "").split(",")[0].strip().lower())
    if not match:
        return None
    version = tuple(int(part) for part in match["version"].split("."))
    return match["type"] or "i440fx", (*version, int(match["pve"] or 0))


def reserves_memory(spec: VirtualMachineSpec) -> bool:
    """A VM with a PCI device (a GPU, a vGPU slice, an SR-IOV function) has all its memory reserved, so it must
    fit in the host's free memory; others may overcommit (the host's free memory only orders the choice)."""
    return bool(spec.gpus) or any(nic.adapter == "sriov" for nic in spec.nics or [])


def is_dynamic_directpath(host: Host, index: int, spec: VirtualMachineSpec) -> bool:
    """On vSphere a passthrough GPU named by vendor or not at all (no device address) is Dynamic DirectPath I/O."""
    gpu = (spec.gpus or [])[index]
    return host.hypervisor == "vsphere" and gpu.mode == "passthrough" and not gpu.device


def sriov_vgpu(spec: VirtualMachineSpec, host: Host) -> list[int]:
    """The VM's vGPUs whose board runs SR-IOV-based vGPU (NVIDIA Ampere and later): by the profile's board, or the
    host's GPU named by the request."""
    found = []
    for index, gpu in enumerate(spec.gpus or []):
        if gpu.mode != "vgpu":
            continue
        token = boards.profile(gpu.profile or "").board
        if any((known := boards.board(d.vendor_id, d.device_id, d.device_name)) is not None and known.sriov_vgpu
               and (token is None or known.token == token) for d in host.gpus()):
            found.append(index)
    return found


def request_shape(spec: VirtualMachineSpec) -> tuple[object, ...]:
    """Every field of a VM's request that ``HOST_FACT_CHECKS`` read: two requests of one shape get the same answer
    from one host (a new fact check that reads another field adds it here; a test pins that)."""
    return (spec.machine, spec.clone_from, bool(spec.nested_virtualization),
            tuple((gpu.mode, gpu.profile, gpu.device, gpu.vendor) for gpu in spec.gpus or []),
            tuple((nic.adapter, nic.device) for nic in spec.nics or []))


# ---- the checks ------------------------------------------------------------------------------------------------

def virtualization(spec: VirtualMachineSpec, host: Host, usage: Usage, judgement: Judgement) -> None:
    if host.hardware_virtualization is False and host.hypervisor == "libvirt":
        return  # QEMU emulates the CPU (TCG): slower, not refused (hw.virtualization says so, as an advisory)
    if host.hardware_virtualization is False:
        judgement.refuse(VIRTUALIZATION, None, "has no hardware virtualization (VT-x / AMD-V) enabled",
                         remedy="enable Intel VT-x / AMD-V (SVM) in the host's firmware setup, or run the VM on "
                                "another host")
    elif host.hardware_virtualization is None:
        judgement.unknown(VIRTUALIZATION, None, "hardware virtualization (VT-x / AMD-V)")


def slat(spec: VirtualMachineSpec, host: Host, usage: Usage, judgement: Judgement) -> None:
    nested = bool(spec.nested_virtualization)
    if host.slat is None:
        judgement.unknown(SLAT, None, "second-level address translation (EPT / RVI)")
    elif host.slat is False and (nested or host.hypervisor == "hyperv"):
        why = "nested virtualization needs it" if nested else "Hyper-V requires it"
        judgement.refuse(SLAT, "nested_virtualization" if nested else None,
                         f"has no second-level address translation (EPT / RVI): {why}",
                         remedy="run the VM on a host whose CPU has EPT / RVI")


def nested(spec: VirtualMachineSpec, host: Host, usage: Usage, judgement: Judgement) -> None:
    if not spec.nested_virtualization:
        return
    if host.nested is False:
        judgement.refuse(NESTED, "nested_virtualization", "does not support nested virtualization",
                         remedy="choose a host with nested virtualization (Proxmox: kvm-intel / kvm-amd nested=1), "
                                "or turn it off for this VM")
    elif host.nested is None:
        judgement.unknown(NESTED, "nested_virtualization", "nested virtualization support")
    if host.hypervisor == "vsphere":
        _nested_vmx(spec, host, judgement)
    elif host.hypervisor == "hyperv":
        _nested_configuration_version(spec, host, judgement)


def _nested_vmx(spec: VirtualMachineSpec, host: Host, judgement: Judgement) -> None:
    version, source = vmx(spec.machine), "its hardware version"
    if version is None and spec.machine is None and not spec.clone_from:
        version, source = vmx(host.max_hardware_version), f"host {host.name}'s newest hardware version"
    if version is None:
        judgement.unknown(NESTED, "machine", "the VM's hardware version (nested needs vmx-09 or later)")
    elif version < NESTED_VMX:
        judgement.refuse(NESTED, "machine", f"nested virtualization needs hardware version vmx-09 or later; {source} "
                                            f"is vmx-{version:02d}", remedy="set machine='vmx-09' or later",
                         about_vm=True)


def _nested_configuration_version(spec: VirtualMachineSpec, host: Host, judgement: Judgement) -> None:
    version = config_version(spec.machine) or (
        config_version(host.max_hardware_version) if spec.machine is None else None)
    if version is None:
        judgement.unknown(NESTED, "machine", "the VM's configuration version")
        return
    shown = f"{version[0]}.{version[1]}"
    if host.cpu_vendor == "amd" and version < HYPERV_AMD:
        judgement.refuse(NESTED, "machine", f"nested virtualization on AMD needs configuration version 9.3 or later; "
                                            f"the VM's is {shown}", remedy="set machine='9.3' or later", about_vm=True)
    elif host.cpu_vendor != "amd" and version < HYPERV_INTEL:
        judgement.refuse(NESTED, "machine", f"nested virtualization needs configuration version 8.0 or later; the "
                                            f"VM's is {shown}", remedy="set machine='8.0' or later", about_vm=True)
    elif host.cpu_vendor is None:
        judgement.unknown(NESTED, "machine", "the CPU vendor (AMD needs configuration version 9.3)")


def iommu(spec: VirtualMachineSpec, host: Host, usage: Usage, judgement: Judgement) -> None:
    passthrough = [i for i, gpu in enumerate(spec.gpus or []) if gpu.mode == "passthrough"]
    nics = [i for i, nic in enumerate(spec.nics or []) if nic.adapter == "sriov"]
    vgpus = sriov_vgpu(spec, host)
    if not (passthrough or nics or vgpus):
        return
    field = f"gpus[{passthrough[0]}]" if passthrough else (f"nics[{nics[0]}]" if nics else f"gpus[{vgpus[0]}]")
    what = "passthrough devices need" if passthrough or nics else \
        "SR-IOV-based vGPUs (NVIDIA Ampere and later) need"
    if host.iommu is False:
        judgement.refuse(IOMMU, field, f"has no IOMMU (VT-d / AMD-Vi) enabled, which {what}",
                         remedy="enable VT-d / AMD-Vi in the host firmware (Proxmox with kernels before 6.8 on "
                                "Intel: also intel_iommu=on)")
    elif host.iommu is None and not any(d.passthrough_capable for d in host.pci_devices):
        judgement.unknown(IOMMU, field, "the IOMMU (VT-d / AMD-Vi)")


def _device_needs(spec: VirtualMachineSpec, host: Host) -> list[tuple[int, str, str]]:
    needs = []
    for index, gpu in enumerate(spec.gpus or []):
        if gpu.mode == "vgpu":
            needs.append((VGPU_VMX, "a vGPU", f"gpus[{index}]"))
        elif is_dynamic_directpath(host, index, spec):
            needs.append((DYNAMIC_DIRECTPATH, "a Dynamic DirectPath I/O GPU", f"gpus[{index}]"))
    needs.extend((SRIOV_VMX, "an SR-IOV NIC", f"nics[{index}]")
                 for index, nic in enumerate(spec.nics or []) if nic.adapter == "sriov")
    return needs


def _version_remedy(host: str, host_max: int | None, minimum: int, dynamic: bool) -> str:
    """Raise ``machine`` where the host runs the version; where it does not, that would only trade this refusal for
    "the host runs up to …": name a newer host, or (Dynamic DirectPath) the GPU's address for plain DirectPath I/O."""
    if host_max is None or host_max >= minimum:
        return f"set machine='vmx-{minimum:02d}' or later"
    plain = (" or name the GPU's PCI address in device= (DirectPath I/O, which does not need vmx-17)"
             if dynamic else "")
    return f"run the VM on a host with vmx-{minimum:02d} or later (host {host} runs up to vmx-{host_max:02d}){plain}"


def hardware_version(spec: VirtualMachineSpec, host: Host, usage: Usage, judgement: Judgement) -> None:
    if host.hypervisor == "vsphere":
        _vsphere_hardware_version(spec, host, judgement)
    elif host.hypervisor == "proxmox":
        _qemu_machine_version(spec, host, judgement)


def _vsphere_hardware_version(spec: VirtualMachineSpec, host: Host, judgement: Judgement) -> None:
    host_max = vmx(host.max_hardware_version)
    declared = vmx(spec.machine)
    if declared is not None and host_max is not None and declared > host_max:
        judgement.refuse(HARDWARE_VERSION, "machine", f"runs hardware versions up to vmx-{host_max:02d}; the VM "
                                                      f"declares vmx-{declared:02d}",
                         remedy=f"set machine='vmx-{host_max:02d}' or choose a newer host")
    needs = _device_needs(spec, host)
    if not needs:
        return
    version, whose = declared, "its hardware version"
    if version is None and spec.machine is None and not spec.clone_from:
        version, whose = host_max, f"host {host.name}'s newest hardware version"
    minimum, what, field = max(needs)
    if version is None:
        judgement.unknown(HARDWARE_VERSION, "machine", f"the VM's hardware version ({what} needs "
                                                       f"vmx-{minimum:02d})")
    elif version < minimum:
        judgement.refuse(HARDWARE_VERSION, "machine", f"{what} ({field}) needs hardware version vmx-{minimum:02d} or "
                                                      f"later; {whose} is vmx-{version:02d}",
                         remedy=_version_remedy(host.name, host_max, minimum, minimum == DYNAMIC_DIRECTPATH),
                         about_vm=True)


def _qemu_machine_version(spec: VirtualMachineSpec, host: Host, judgement: Judgement) -> None:
    wanted = qemu_machine(spec.machine)
    if wanted is None:
        return
    kind, version = wanted
    if host.machine_types is None:
        judgement.unknown(HARDWARE_VERSION, "machine", f"whether node {host.name}'s QEMU offers machine "
                                                       f"{spec.machine}")
        return
    offered = sorted((parsed[1], machine) for machine in host.machine_types
                     if (parsed := qemu_machine(machine)) is not None and parsed[0] == kind)
    if not offered or offered[-1][0] < version:
        newest = offered[-1][1] if offered else None
        shown = f"up to {newest}" if newest else f"no versioned {kind} machine"
        judgement.refuse(HARDWARE_VERSION, "machine", f"offers QEMU machine versions {shown}; the VM asks for "
                                                      f"{spec.machine}",
                         remedy=(f"set machine='{newest}' (or an older version, or plain '{kind}' for the newest)"
                                 if newest else f"set machine='{kind}'") + ", or upgrade the node's QEMU")


def memory_reservation(spec: VirtualMachineSpec, host: Host, usage: Usage, judgement: Judgement) -> None:
    if not reserves_memory(spec):
        return
    if spec.memory is None:
        judgement.unknown(MEMORY_RESERVATION, "memory", "the memory of this clone (all of it is reserved)")
    elif host.memory_free_mib is None:
        judgement.unknown(MEMORY_RESERVATION, "memory", f"free memory for the {spec.memory} MiB this VM reserves")
    elif (left := host.memory_free_mib - usage.reserved_mib[host.name]) < spec.memory:
        judgement.refuse(MEMORY_RESERVATION, "memory", f"has {left} MiB of memory unreserved after the stack's other "
                                                       f"device VMs there; the VM reserves all its {spec.memory} MiB "
                                                       "(devices pin memory)",
                         remedy="lower memory, free memory on the host, or place the VM elsewhere")


HOST_FACT_CHECKS: tuple[HostCheck, ...] = (virtualization, slat, nested, iommu, hardware_version)
"""The checks that read the request and the host's facts only, never ``usage``: their answer for one request shape
(``request_shape``) on one host holds for the whole plan (virtplane/fact_verdicts.py judges each pair once)."""
CAPACITY_CHECKS: tuple[HostCheck, ...] = (memory_reservation,)
"""The checks that read what the plan already placed (``usage``): judged afresh for every VM."""
HOST_CHECKS: tuple[HostCheck, ...] = HOST_FACT_CHECKS + CAPACITY_CHECKS
