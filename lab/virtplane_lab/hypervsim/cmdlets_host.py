"""Host cmdlets: Get-VMHost, Get-VMHostSupportedVersion, and Select-Object (trims objects)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .engine import Invocation, cmdlet
from .params import Param
from .psobjects import HostView, Selected, VersionView, describe
from .targets import wildcard


@cmdlet("Get-VMHost", {"ComputerName": Param("String[]")})
def get_vm_host(inv: Invocation) -> Iterator[Any]:
    yield HostView(inv.host)


@cmdlet("Get-VMHostSupportedVersion", {"Default": Param("Switch")})
def get_vm_host_supported_version(inv: Invocation) -> Iterator[Any]:
    hardware = inv.host.hardware
    for version in hardware.supported_versions:
        if not inv.get("Default") or version == hardware.default_version:
            yield VersionView(version, version == hardware.default_version)


@cmdlet("Select-Object", {"Property": Param("String[]")}, pipeline={"*": "InputObject"},
        command_class="Microsoft.PowerShell.Commands.SelectObjectCommand")
def select_object(inv: Invocation) -> Iterator[Any]:
    obj = inv.get("InputObject")
    if obj is None:
        return
    type_names, properties = describe(obj, inv.host)
    patterns = [wildcard(p) for p in inv.get("Property", ["*"])]
    chosen: dict[str, Any] = {}
    for pattern in patterns:
        for name, value in properties.items():
            if pattern.match(name) and name not in chosen:
                chosen[name] = value
    yield Selected(["Selected." + type_names[0], "System.Management.Automation.PSCustomObject", "System.Object"],
                   chosen)
