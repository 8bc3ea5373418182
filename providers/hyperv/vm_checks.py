"""Plan-time rules for Hyper-V VMs that need hardware (pure: no I/O), each broken rule one sentence.

- Nested virtualization (Microsoft's "Run Hyper-V in a virtual machine with nested virtualization"): VM
  configuration version 8.0 or later on Intel, 9.3 or later on AMD, and on AMD a Windows Server 2022 / Windows 11
  host (build 20348 or later: Windows Server 2022 is 20348, Windows 11 22000).
- GPU partitioning ("GPU partitioning" page): configuration version 12.0 or later.
- Discrete Device Assignment ("Plan for deploying devices by using DDA"): no dynamic memory.
- SR-IOV (New-VMSwitch ``-EnableIov``): chosen when a switch is created; Set-VMSwitch cannot turn it on.

A VM's version is its ``machine`` when declared, else the live VM's, else what create will ask for
(``creation_version``: the host's default, raised to the lowest supported version that allows what the VM
needs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from virtplane.specs import VirtualMachineSpec

NESTED_MINIMUM = {"intel": "8.0", "amd": "9.3"}
AMD_NESTED_BUILD = 20348  # Windows Server 2022
GPU_P_MINIMUM = "12.0"


def version_tuple(text: str | None) -> tuple[int, int]:
    major, _, minor = str(text or "0").partition(".")
    try:
        return int(major), int(minor or 0)
    except ValueError:
        return (0, 0)


@dataclass(frozen=True)
class HostVersions:
    """The host's CPU vendor (``intel``/``amd``/None), configuration versions and default version."""

    vendor: str | None
    supported: list[str] = field(default_factory=list)
    default: str | None = None
    build: int | None = None  # the Windows build (Win32_OperatingSystem BuildNumber)
    os_name: str | None = None


def vendor_of(manufacturer: str | None) -> str | None:
    """Win32_Processor.Manufacturer (``GenuineIntel``, ``AuthenticAMD``) -> ``intel``/``amd``/None."""
    text = str(manufacturer or "").lower()
    return "intel" if "intel" in text else "amd" if "amd" in text else None


def host_versions_from(objects: Iterable[Any]) -> HostVersions:
    """HostVersions from the objects of Win32_Processor, Win32_OperatingSystem and Get-VMHostSupportedVersion."""
    vendor = build = os_name = None
    versions: list[Any] = []
    for obj in objects:
        short = obj.type_name.rsplit("/", 1)[-1].rsplit(".", 1)[-1]
        if short == "Win32_Processor" and vendor is None:
            vendor = vendor_of(obj.text("Manufacturer"))
        elif short == "Win32_OperatingSystem":
            build = obj.number("BuildNumber")
            os_name = obj.text("Caption")
        elif short == "VMHostSupportedVersion":
            versions.append(obj)
    default = next((v.text("Version") for v in versions if v.flag("IsDefault")), None)
    return HostVersions(vendor, [v.text("Version") or "" for v in versions], default, build, os_name)


@dataclass(frozen=True)
class LiveVm:
    """What the plan knows of an existing VM."""

    version: str | None
    dynamic_memory: bool
    generation: int


def needed_version(spec: VirtualMachineSpec, vendor: str | None) -> tuple[str | None, str]:
    """The lowest configuration version the VM's features need, and which feature needs it."""
    needs: list[tuple[str, str]] = []
    if spec.nested_virtualization:
        needs.append((NESTED_MINIMUM.get(vendor or "", NESTED_MINIMUM["intel"]), "nested virtualization"))
    if any(gpu.mode == "vgpu" for gpu in spec.gpus or []):
        needs.append((GPU_P_MINIMUM, "GPU partitioning"))
    if not needs:
        return None, ""
    return max(needs, key=lambda need: version_tuple(need[0]))


def creation_version(spec: VirtualMachineSpec, host: HostVersions) -> str | None:
    """``-Version`` for New-VM: the declared machine; else, when the host's default is too low for what the VM
    needs, the lowest supported version that is high enough; else None (the host's default)."""
    if spec.machine:
        return spec.machine
    needed, _ = needed_version(spec, host.vendor)
    if needed is None or version_tuple(host.default) >= version_tuple(needed):
        return None
    high_enough = sorted((v for v in host.supported if version_tuple(v) >= version_tuple(needed)), key=version_tuple)
    return high_enough[0] if high_enough else None


def problems(name: str, spec: VirtualMachineSpec, live: LiveVm | None, host: HostVersions,
             switches: Mapping[str, bool], switch_of: Callable[[str], str]) -> list[tuple[str, str]]:
    """Every rule ``spec`` breaks on this host, as (field, sentence)."""
    found: list[tuple[str, str]] = []
    found += _version_problems(name, spec, live, host)
    for index, gpu in enumerate(spec.gpus or []):
        if gpu.mode == "passthrough" and live is not None and live.dynamic_memory:
            found.append((f"gpus[{index}]", f"Discrete Device Assignment needs static memory and VM {name} uses "
                                            "dynamic memory; turn it off first (Set-VMMemory -DynamicMemoryEnabled "
                                            "$false)"))
    for index, nic in enumerate(spec.nics or []):
        if nic.adapter != "sriov":
            continue
        switch = switch_of(nic.network)
        if switch not in switches:
            known = ", ".join(sorted(switches)) or "none"
            found.append((f"nics[{index}].network", f"the switch '{switch}' does not exist on the Hyper-V host "
                                                     f"(switches: {known})"))
        elif not switches[switch]:
            found.append((f"nics[{index}].adapter", f"switch '{switch}' was created without SR-IOV, and SR-IOV is "
                                                     "chosen when a switch is created (New-VMSwitch -EnableIov "
                                                     "$true); use a switch created with it"))
    return found


def _version_problems(name: str, spec: VirtualMachineSpec, live: LiveVm | None, host: HostVersions
                      ) -> list[tuple[str, str]]:
    needed, feature = needed_version(spec, host.vendor)
    if needed is None:
        return []
    field_name = "nested_virtualization" if feature == "nested virtualization" else "gpus"
    vendor = {"intel": "an Intel", "amd": "an AMD"}.get(host.vendor or "", "this")
    if spec.nested_virtualization and host.vendor == "amd" and host.build is not None and host.build < AMD_NESTED_BUILD:
        return [("nested_virtualization", f"nested virtualization on an AMD processor needs a Windows Server 2022 or "
                                          f"Windows 11 host (build {AMD_NESTED_BUILD} or later), and this host runs "
                                          f"build {host.build} ({host.os_name or 'Windows'})")]
    rule = f"{feature} needs VM configuration version {needed} or later"
    if feature == "nested virtualization":
        rule = (f"nested virtualization on a host with {vendor} processor needs VM configuration version {needed} "
                "or later")
    if spec.machine and version_tuple(spec.machine) < version_tuple(needed):
        return [(field_name, f"{rule}, and machine is {spec.machine}")]
    if spec.machine:
        return []
    if live is not None:
        if version_tuple(live.version) < version_tuple(needed):
            return [(field_name, f"{rule}, and VM {name} has version {live.version} (Update-VMVersion raises it, "
                                 "one way, with the VM off)")]
        return []
    version = creation_version(spec, host) or host.default
    if host.supported and version_tuple(version) < version_tuple(needed):
        highest = max(host.supported, key=version_tuple)
        return [(field_name, f"{rule}, and this host offers versions up to {highest}")]
    return []
