"""Plan-time checks of a VirtualMachine on a pool: what XenServer has no setting for, and references the pool
cannot satisfy (the template, SRs, networks, vGPU types), as (field, message) pairs — found before anything is
made."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from virtplane.providers.xenserver.records import THIN_SR_TYPES
from virtplane.specs import VirtualMachineSpec

Problems = list[tuple[str, str]]


@dataclass(frozen=True)
class PoolNames:
    """What the checks look things up in: names as the pool has them."""

    where: str  # "XenServer endpoint 'lab'"
    default_template: str
    template_setting: str  # the variable that names the default template
    sources: frozenset[str]  # templates and VMs a VM can be made from, by name
    srs: Mapping[str, str]  # SR name -> type
    networks: Callable[[str], list[str]]  # a NIC's network name -> the XAPI networks it stands for
    sriov: Callable[[str], bool]  # whether a XAPI network is an SR-IOV network
    profiles: frozenset[str]  # vGPU type model names, lower case


def vm_problems(spec: VirtualMachineSpec, names: PoolNames) -> Problems:
    problems: Problems = []
    if spec.guest_os is not None:
        problems.append(("guest_os", "XenServer VMs have no guest OS setting (the template a VM is made from sets it): "
                                     "leave guest_os unset and choose the template with clone_from"))
    if spec.machine is not None:
        problems.append(("machine", "XenServer has no machine type setting; leave machine unset"))
    problems += _source_problems(spec, names)
    problems += _disk_problems(spec, names)
    problems += _nic_problems(spec, names)
    for index, gpu in enumerate(spec.gpus or []):
        if gpu.mode == "vgpu" and gpu.profile and gpu.profile.lower() not in names.profiles:
            offered = ", ".join(sorted(names.profiles)) or "none"
            problems.append((f"gpus[{index}].profile", f"no vGPU type named '{gpu.profile}' on {names.where} "
                                                       f"(types: {offered})"))
    return problems


def _source_problems(spec: VirtualMachineSpec, names: PoolNames) -> Problems:
    if spec.clone_from is not None:
        if spec.clone_from not in names.sources:
            return [("clone_from", f"no template or VM named '{spec.clone_from}' on {names.where}"
                                   f"{_choices(names.sources)}")]
        return []
    if names.default_template not in names.sources:
        return [("clone_from", f"is unset, so the VM is made from the endpoint's template '{names.default_template}' "
                               f"({names.template_setting}), which {names.where} does not have"
                               f"{_choices(names.sources)}")]
    return []


def _choices(sources: frozenset[str]) -> str:
    shown = sorted(sources)[:8]
    return f" (templates: {', '.join(shown)}{', …' if len(sources) > len(shown) else ''})" if shown else ""


def _disk_problems(spec: VirtualMachineSpec, names: PoolNames) -> Problems:
    problems: Problems = []
    for index, disk in enumerate(spec.disks or []):
        if disk.bus not in (None, "paravirtual"):
            problems.append((f"disks[{index}].bus", f"XenServer disks are paravirtual VBDs; bus '{disk.bus}' does not "
                                                    "exist there (leave bus unset or 'paravirtual')"))
        if disk.slot is not None and not disk.slot.isdigit():
            problems.append((f"disks[{index}].slot", f"a XenServer disk's slot is its VBD userdevice, a number like "
                                                     f"'0' or '1'; got '{disk.slot}'"))
        if disk.storage is not None and disk.storage not in names.srs:
            problems.append((f"disks[{index}].storage", f"no SR named '{disk.storage}' on {names.where}"
                                                        f" (SRs: {', '.join(sorted(names.srs)) or 'none'})"))
        elif disk.storage is not None and disk.thin is not None:
            thin = names.srs[disk.storage] in THIN_SR_TYPES
            if thin != disk.thin:
                kind = "thin" if thin else "thick"
                problems.append((f"disks[{index}].thin", f"SR '{disk.storage}' ({names.srs[disk.storage]}) allocates "
                                                         f"{kind}: on XenServer that is the SR's, not the disk's; "
                                                         f"choose an SR that is {'thick' if thin else 'thin'}"))
    return problems


def _nic_problems(spec: VirtualMachineSpec, names: PoolNames) -> Problems:
    problems: Problems = []
    for index, nic in enumerate(spec.nics or []):
        where = f"nics[{index}]"
        if nic.adapter in ("e1000", "e1000e"):
            problems.append((f"{where}.adapter", "XenServer VIFs are paravirtual (netfront); there is no "
                                                 f"{nic.adapter} adapter to choose"))
        if nic.slot is not None and not nic.slot.isdigit():
            problems.append((f"{where}.slot", f"a XenServer NIC's slot is its VIF device, a number like '0'; got "
                                              f"'{nic.slot}'"))
        found = names.networks(nic.network)
        if len(found) != 1:
            what = "no network" if not found else f"{len(found)} networks"
            problems.append((f"{where}.network", f"{what} named '{nic.network}' on {names.where}: declare it as a "
                                                 "Network of the stack or name one network of the pool"))
            continue
        sriov = names.sriov(found[0])
        if nic.adapter == "sriov" and not sriov:
            problems.append((f"{where}.adapter", f"adapter 'sriov' needs an SR-IOV network (network_sriov); "
                                                 f"'{nic.network}' is not one"))
        elif sriov and nic.adapter not in (None, "sriov"):
            problems.append((f"{where}.adapter", f"'{nic.network}' is an SR-IOV network: its VIFs get virtual "
                                                 "functions, so the adapter is 'sriov'"))
    return problems
