"""Faults between the Hyper-V driver and its host: the connection dropped in the middle of a pipeline (create,
update, delete), a slow cmdlet, a host reboot between plan and apply. Each ends in a clear error or in success,
and the next run converges with no orphan VM, no orphan VHD and no duplicate.

Cmdlet behaviour from Microsoft's Hyper-V module reference (https://learn.microsoft.com/powershell/module/hyper-v/):
New-VM (cannot set Notes), New-VHD, Add-VMHardDiskDrive, Set-VMProcessor, Remove-VM ("does not delete any
virtual hard drives"); WinRM operation timeouts from the WS-Management reference (MS-WSMV OperationTimeout)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.hyperv.test_driver import SWITCH, converge, provider, stack, vms_named
from virtplane import apply
from virtplane.engine import build_plan
from virtplane.plan import Action
from virtplane.providers.base import PENDING_PREFIX
from virtplane.providers.hyperv.client import Cmd, pipe
from virtplane.providers.hyperv.provider import HypervProvider
from virtplane_lab import hyperv

_numbers = itertools.count()


@pytest.fixture(scope="module")
def hv_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[hyperv.HypervInstance]:
    """A host of this module's own: faults and reboots must not disturb other tests."""
    instance = hyperv.start(tmp_path_factory.mktemp("hvfault"), host_name="HV-FAULT", profile="plain", name="fault")
    yield instance
    instance.control("clear")
    instance.stop()


def vhd_paths(instance: hyperv.HypervInstance) -> set[str]:
    return {v["path"].lower() for v in instance.control("state")["vhds"]}


def attached_paths(hv: HypervProvider) -> set[str]:
    objects = hv.client.run([pipe(Cmd("Get-VM"), Cmd("Get-VHD"))], "list attached VHDs").objects
    return {(o.text("Path") or "").lower() for o in objects}


def all_vm_names(hv: HypervProvider) -> list[str]:
    return [o.text("Name") or "" for o in hv.client.run([pipe(Cmd("Get-VM"))], "list").objects]


def failed_once(desired: Any, hv: HypervProvider, **options: Any) -> str:
    result = apply.run(build_plan(desired, {"hv": hv}), {"hv": hv}, **options)
    assert len(result.failed) == 1, result
    return str(result.failed[0].error)


def assert_clean(hv: HypervProvider, instance: hyperv.HypervInstance, desired: Any, names: list[str],
                 before: set[str]) -> None:
    """Converged: each declared VM once, nothing pending, every VHD made since ``before`` attached."""
    live = all_vm_names(hv)
    assert all(live.count(name) == 1 for name in names), live
    assert not [n for n in live if n.startswith(PENDING_PREFIX)]
    assert vhd_paths(instance) - before <= attached_paths(hv)
    assert [r.action for r in build_plan(desired, {"hv": hv}).resources if r.kind == "VirtualMachine"] == [
        Action.NOOP] * len(names)


@pytest.mark.parametrize("cmdlet", ["New-VHD", "Add-VMHardDiskDrive"])
def test_a_create_cut_in_its_configuration_pipeline_fails_clearly_and_the_rerun_leaves_no_orphan(hv_host, cmdlet):
    """New-VM, then New-VHD / Add-VMHardDiskDrive in the next pipeline (New-VM, New-VHD and Add-VMHardDiskDrive
    cmdlet references: New-VM cannot set Notes): the connection drops there (the VHD may exist, unattached). The
    rerun removes the pending VM and that VHD, and creates the VM once."""
    hv = provider(hv_host)
    before = vhd_paths(hv_host)
    name = f"cut-{next(_numbers)}"
    desired = stack(f"cut{next(_numbers)}", {name: {"cpus": 1, "memory": 512, "power": "off",
                                                    "disks": [{"size": 1}, {"size": 2}], "nics": [{"network": "app"}]}})
    hv_host.control("fault", drop=cmdlet, times=1)
    error = failed_once(desired, hv)
    hv_host.control("clear")
    assert error.startswith(f"Hyper-V could not configure the new VM {name}: cannot reach Hyper-V at ")
    assert "\n" not in error and "Traceback" not in error
    converge(desired, hv)
    assert_clean(hv, hv_host, desired, [name], before)


def test_an_update_cut_at_set_vmprocessor_fails_clearly_restarts_the_vm_and_the_rerun_converges(hv_host):
    """Set-VMProcessor -Count needs the VM off (Set-VMProcessor cmdlet reference): the driver stops it, the
    connection drops, the VM is started again (its power state restored) and the next run applies the change."""
    hv = provider(hv_host)
    name = f"upd-{next(_numbers)}"
    project = f"upd{next(_numbers)}"
    converge(stack(project, {name: {"cpus": 1, "memory": 512, "power": "on"}}), hv)
    desired = stack(project, {name: {"cpus": 2, "memory": 512, "power": "on"}})
    before = vhd_paths(hv_host)
    hv_host.control("fault", drop="Set-VMProcessor", times=1)
    error = failed_once(desired, hv)
    hv_host.control("clear")
    assert error.startswith(f"Hyper-V could not reconfigure VM {name}: cannot reach Hyper-V at ")
    [vm] = vms_named(hv, name)
    assert str(vm.get("State")) == "Running" and vm.number("ProcessorCount") == 1
    converge(desired, hv)
    [vm] = vms_named(hv, name)
    assert vm.number("ProcessorCount") == 2 and str(vm.get("State")) == "Running"
    assert_clean(hv, hv_host, desired, [name], before)


def test_a_delete_cut_at_remove_vm_fails_clearly_and_the_rerun_removes_the_vm_and_its_vhds(hv_host):
    """Remove-VM "does not delete any virtual hard drives" (Remove-VM cmdlet reference): the driver removes the
    ones it made, also on the rerun."""
    hv = provider(hv_host)
    name = f"del-{next(_numbers)}"
    project = f"del{next(_numbers)}"
    before = vhd_paths(hv_host)
    converge(stack(project, {name: {"cpus": 1, "memory": 512, "disks": [{"size": 1}]}}), hv)
    assert len(vhd_paths(hv_host) - before) == 1
    hv_host.control("fault", drop="Remove-VM", times=1)
    result = apply.run(build_plan(stack(project, {}), {"hv": hv}, destroy=True), {"hv": hv})
    hv_host.control("clear")
    [failure] = result.failed
    assert str(failure.error).startswith(f"Hyper-V could not delete VM {name}: cannot reach Hyper-V at ")
    assert len(vms_named(hv, name)) == 1
    assert not apply.run(build_plan(stack(project, {}), {"hv": hv}, destroy=True), {"hv": hv}).failed
    assert vms_named(hv, name) == [] and vhd_paths(hv_host) == before


def test_a_cmdlet_slower_than_the_winrm_operation_timeout_still_completes(hv_host):
    """The host answers a Receive that waited OperationTimeout with a timeout fault and the client asks again
    until the pipeline is done ([MS-WSMV] Receive and OperationTimeout; Set-VMProcessor cmdlet reference)."""
    env = {**hv_host.settings(), "HYPERV_PASSWORD": hv_host.password, "HYPERV_TLS": "false", "HYPERV_SWITCH": SWITCH}
    provider(hv_host)  # the switch exists
    hv = HypervProvider.connect(HypervProvider.settings_from("hv", {"operation_timeout": 1}, env))
    name = f"slow-{next(_numbers)}"
    desired = stack(f"slow{next(_numbers)}", {name: {"cpus": 2, "memory": 512, "power": "off"}})
    hv_host.control("fault", slow="Set-VMProcessor", seconds=3)
    try:
        converge(desired, hv)
    finally:
        hv_host.control("clear")
    [vm] = vms_named(hv, name)
    assert vm.number("ProcessorCount") == 2


def test_a_host_reboot_between_plan_and_apply_reopens_the_runspace_and_applies(hv_host):
    """A reboot loses every runspace: the first request is refused (login context or shell unknown, [MS-PSRP]
    runspace pool state), so nothing ran; the client opens a new runspace pool and sends the pipeline again
    (Set-VMProcessor cmdlet reference for the change applied)."""
    hv = provider(hv_host)
    name = f"boot-{next(_numbers)}"
    project = f"boot{next(_numbers)}"
    converge(stack(project, {name: {"cpus": 1, "memory": 512, "power": "off"}}), hv)
    desired = stack(project, {name: {"cpus": 2, "memory": 512, "power": "off"}})
    plan = build_plan(desired, {"hv": hv})
    assert hv_host.control("reboot")["runspaces_lost"] >= 1
    result = apply.run(plan, {"hv": hv})
    assert not result.failed, [o.error for o in result.failed]
    [vm] = vms_named(hv, name)
    assert vm.number("ProcessorCount") == 2
