"""Out-of-band changes on a simulated Hyper-V host with raw pypsrp, as an administrator would make them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import TaggedValue
from pypsrp.wsman import WSMan

from virtplane_lab.hyperv import HypervInstance


def run(instance: HypervInstance, *statements: Callable[[PowerShell], Any]) -> list[Any]:
    """One pipeline of statements (each ``build(ps)`` adds cmdlets, one statement each); fails on any error."""
    host, port = instance.server.rsplit(":", 1)
    wsman = WSMan(host, port=int(port), username=instance.user, password=instance.password, ssl=instance.tls,
                  auth="ntlm", cert_validation=instance.ca_file or True, connection_timeout=10, read_timeout=30,
                  operation_timeout=20)
    with RunspacePool(wsman) as pool:
        ps = PowerShell(pool)
        for build in statements:
            build(ps)
            ps.add_statement()
        output = ps.invoke()
    assert not ps.had_errors and not ps.streams.error, [str(e) for e in ps.streams.error]
    return output


def prop(obj: Any, name: str) -> Any:
    """A property of a deserialized object, read case-insensitively from adapted and extended properties."""
    for properties in (obj.adapted_properties, obj.extended_properties):
        for key, value in properties.items():
            if key.lower() == name.lower():
                return value
    raise KeyError(name)


def vm_names(instance: HypervInstance) -> list[str]:
    return [prop(vm, "Name") for vm in run(instance, lambda ps: ps.add_cmdlet("Get-VM"))]


def _vm(ps: PowerShell, name: str) -> PowerShell:
    return ps.add_cmdlet("Get-VM").add_parameter("Name", name)


def _while_off(instance: HypervInstance, name: str, change: Callable[[PowerShell], Any]) -> None:
    """Make ``change`` (``Get-VM -Name name | …``) with the VM off, as Hyper-V needs for startup memory and
    processors: a running VM is turned off and started again, one that is off stays off."""
    [vm] = run(instance, lambda ps: _vm(ps, name))
    if str(prop(vm, "State")) not in ("Running", "2"):
        run(instance, lambda ps: change(_vm(ps, name)))
        return
    run(instance,
        lambda ps: _vm(ps, name).add_cmdlet("Stop-VM").add_parameter("TurnOff", True).add_parameter("Force", True),
        lambda ps: change(_vm(ps, name)),
        lambda ps: _vm(ps, name).add_cmdlet("Start-VM"))


def set_cpus(instance: HypervInstance, name: str, cpus: int) -> None:
    _while_off(instance, name, lambda ps: ps.add_cmdlet("Set-VMProcessor").add_parameter("Count", cpus))


def set_memory(instance: HypervInstance, name: str, mib: int) -> None:
    _while_off(instance, name, lambda ps: ps.add_cmdlet("Set-VMMemory").add_parameter("StartupBytes",
                                                                                 TaggedValue("I64", mib * 1024**2)))


def remove_nics(instance: HypervInstance, name: str) -> None:
    run(instance, lambda ps: _vm(ps, name).add_cmdlet("Get-VMNetworkAdapter").add_cmdlet("Remove-VMNetworkAdapter"))


def remove_nic(instance: HypervInstance, name: str, adapter: str) -> None:
    """``Get-VMNetworkAdapter -Name <adapter> | Remove-VMNetworkAdapter`` on one VM."""
    run(instance, lambda ps: _vm(ps, name).add_cmdlet("Get-VMNetworkAdapter").add_parameter("Name", adapter)
        .add_cmdlet("Remove-VMNetworkAdapter"))


def turn_off(instance: HypervInstance, name: str) -> None:
    """``Stop-VM -TurnOff``: the VM is off at once, as when its power is pulled."""
    run(instance, lambda ps: _vm(ps, name).add_cmdlet("Stop-VM").add_parameter("TurnOff", True)
        .add_parameter("Force", True))


def create_vm(instance: HypervInstance, name: str, *, generation: int = 1, memory_mib: int = 512) -> None:
    """``New-VM -Name <name> -Generation <g> -MemoryStartupBytes <m> -NoVHD``, without any virtplane marker."""
    memory = TaggedValue("I64", memory_mib * 1024**2)
    run(instance, lambda ps: ps.add_cmdlet("New-VM").add_parameter("Name", name).add_parameter("Generation", generation)
        .add_parameter("MemoryStartupBytes", memory).add_parameter("NoVHD", True))


def create_plain_vm(instance: HypervInstance, name: str) -> None:
    """``New-VM`` with Hyper-V's defaults (Generation 1, 512 MB, one adapter), no virtplane marker."""
    run(instance, lambda ps: ps.add_cmdlet("New-VM").add_parameter("Name", name).add_parameter("NoVHD", True))


def memory_mib(instance: HypervInstance, name: str) -> int:
    [memory] = run(instance, lambda ps: _vm(ps, name).add_cmdlet("Get-VMMemory"))
    return int(prop(memory, "Startup")) // 1024**2


def empty(instance: HypervInstance) -> None:
    """Remove every VM and the VHDs attached to them, leaving the host's switches as they are."""
    drives = run(instance, lambda ps: ps.add_cmdlet("Get-VM").add_cmdlet("Get-VMHardDiskDrive"))
    paths = [prop(drive, "Path") for drive in drives if prop(drive, "Path")]
    # a differencing disk's parent (a golden image's VHDX) can go only once its children are gone
    parents = {str(prop(vhd, "ParentPath")).lower() for vhd in run(
        instance, lambda ps: ps.add_cmdlet("Get-VM").add_cmdlet("Get-VHD")) if prop(vhd, "ParentPath")}
    paths.sort(key=lambda path: path.lower() in parents)
    run(instance, lambda ps: ps.add_cmdlet("Get-VM").add_cmdlet("Stop-VM").add_parameter("TurnOff", True)
        .add_parameter("Force", True).add_parameter("ErrorAction", "SilentlyContinue"),
        lambda ps: ps.add_cmdlet("Get-VM").add_cmdlet("Remove-VM").add_parameter("Force", True),
        *[(lambda ps, path=path: ps.add_cmdlet("Remove-Item").add_parameter("Path", path)) for path in paths])


def holds_checkpoint_disks(instance: HypervInstance) -> bool:
    """True when a VM of the host writes to a checkpoint's differencing disk (``.avhdx``)."""
    drives = run(instance, lambda ps: ps.add_cmdlet("Get-VM").add_cmdlet("Get-VMHardDiskDrive"))
    return any(str(prop(drive, "Path") or "").lower().endswith(".avhdx") for drive in drives)


def holds_gpu_partitions(instance: HypervInstance) -> bool:
    """True when a VM of the host has a GPU partition adapter."""
    return bool(run(instance, lambda ps: ps.add_cmdlet("Get-VM").add_cmdlet("Get-VMGpuPartitionAdapter")))


GOLDEN_VHD_FOLDER = "C:\\Golden"


def create_golden(instance: HypervInstance, name: str, *, memory_mib: int = 1024) -> str:
    """A golden image as an administrator prepares one: a Generation 2 VM, off, with one VHDX on SCSI 0:0 (the
    parent of linked clones' differencing disks); returns the VHDX's path."""
    path = f"{GOLDEN_VHD_FOLDER}\\{name}.vhdx"
    memory = TaggedValue("I64", memory_mib * 1024**2)
    run(instance,
        lambda ps: ps.add_cmdlet("New-VM").add_parameter("Name", name).add_parameter("Generation", 2)
        .add_parameter("MemoryStartupBytes", memory).add_parameter("NoVHD", True),
        lambda ps: ps.add_cmdlet("New-VHD").add_parameter("Path", path)
        .add_parameter("SizeBytes", TaggedValue("U64", 16 * 1024**3)).add_parameter("Dynamic", True),
        lambda ps: _vm(ps, name).add_cmdlet("Add-VMHardDiskDrive").add_parameter("ControllerType", "SCSI")
        .add_parameter("Path", path))
    return path


def vhds_of(instance: HypervInstance, name: str) -> list[Any]:
    """The VHD objects of a VM's drives (Get-VHD -VMId)."""
    return run(instance, lambda ps: _vm(ps, name).add_cmdlet("Get-VHD"))
