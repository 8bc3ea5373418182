"""The Hyper-V driver against hosts that behave as real ones do (issue: "Hyper-V as a real host behaves"): storage
laid out as New-VM lays it out, 100-character names, read errors of VMs the stack does not touch, clusters,
parallel pipelines, checkpoints, wildcards in paths, and the host facts real hosts report (Win32_Processor,
Get-VMHostNumaNode, Get-PnpDevice). Each host is described by a host description file (hostfile.py)."""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.hyperv.test_driver import SWITCH, converge, provider, stack, vms_named
from tests.integration.hyperv.test_driver_devices import read, vm_item, vm_of
from virtplane import apply
from virtplane.engine import build_plan
from virtplane.errors import ConnectionFailed, ProviderError, SpecError
from virtplane.kinds import build_spec
from virtplane.placement import PlacementError
from virtplane.plan import Action
from virtplane.providers.base import Owner, Rule, description_marker
from virtplane.providers.hyperv.client import Cmd, pipe, vm_by_id
from virtplane.providers.hyperv.provider import HypervProvider
from virtplane_lab import hyperv
from virtplane_lab.hypervsim import hostfile

GiB = 1024**3
MiB = 1024**2
H100 = "PCIROOT(0)#PCI(0400)#PCI(0000)"
NVME = "PCIROOT(0)#PCI(0500)#PCI(0000)"
_numbers = itertools.count()


def described(tmp: Path, base: str, **changes: Any) -> Path:
    """A built-in host description with some keys changed, as a JSON file."""
    data = yaml.safe_load(hostfile.builtin(base).read_text())
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    path = tmp / f"{base}-{next(_numbers)}.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def client_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[hyperv.HypervInstance]:
    """The gpu host, but giving new VMs automatic checkpoints as Windows clients do."""
    work = tmp_path_factory.mktemp("hvreal")
    instance = hyperv.start(work, host_name="HV-REAL", name="real",
                            profile=str(described(work, "gpu", automatic_checkpoints=True)))
    yield instance
    instance.stop()


def test_a_bios_vm_boots_from_ide_0_0_and_its_next_disk_gets_a_scsi_controller(client_host):
    """Generation 1 boots from IDE only, its DVD drive at IDE 1:0, and has no SCSI controller until one is added
    ("Should I create a generation 1 or 2 virtual machine in Hyper-V?"; Add-VMScsiController)."""
    hv = provider(client_host)
    name = f"bios-{next(_numbers)}"
    desired = stack(f"bios{next(_numbers)}", {name: {"firmware": "bios", "memory": 512, "power": "off",
                                                     "disks": [{"size": 2}, {"size": 3}]}})
    converge(desired, hv)
    item = vm_item(hv, desired)
    assert item.action is Action.NOOP, [c.change for c in item.changes]
    assert [(d["slot"], d["bus"]) for d in item.observed.state["disks"]] == [("ide0:0", "ide"),
                                                                              ("scsi0:0", "paravirtual")]
    vm_id = str(vm_of(hv, name).get("VMId"))
    assert len(read(hv, pipe(vm_by_id(vm_id), Cmd("Get-VMScsiController")))) == 1


def test_a_disk_on_another_scsi_controller_adds_the_controller_with_the_vm_off(client_host):
    hv = provider(client_host)
    name = f"ctl-{next(_numbers)}"
    project = f"ctl{next(_numbers)}"
    converge(stack(project, {name: {"memory": 512, "power": "on", "disks": [{"size": 1}]}}), hv)
    desired = stack(project, {name: {"memory": 512, "power": "on",
                                     "disks": [{"size": 1}, {"size": 1, "slot": "scsi2:0"}]}})
    item = vm_item(hv, desired)
    assert [(c.change.path, c.rule) for c in item.changes] == [("disks[scsi2:0]", Rule.POWER_OFF)]
    converge(desired, hv)
    vm_id = str(vm_of(hv, name).get("VMId"))
    assert len(read(hv, pipe(vm_by_id(vm_id), Cmd("Get-VMScsiController")))) == 3
    assert str(vm_of(hv, name).get("State")) == "Running" and vm_item(hv, desired).action is Action.NOOP


def test_a_vm_of_100_characters_is_created_under_a_short_pending_name_even_when_cut(client_host):
    """Hyper-V names are at most 100 characters; the pending name is a short hash, the marker in Notes."""
    hv = provider(client_host)
    name = f"{next(_numbers)}-" + "n" * 100
    name = name[:100]
    desired = stack(f"long{next(_numbers)}", {name: {"memory": 512, "power": "off", "disks": [{"size": 1}]}})
    client_host.control("fault", drop="New-VHD", times=1)
    assert apply.run(build_plan(desired, {"hv": hv}), {"hv": hv}).failed
    client_host.control("clear")
    [pending] = [o for o in read(hv, pipe(Cmd("Get-VM"))) if (o.text("Name") or "").startswith("virtplane-pending:#")
                 and f"resource={name[:20]}" in (o.text("Notes") or "")]
    assert len(pending.text("Name") or "") < 50
    converge(desired, hv)
    assert len(vms_named(hv, name)) == 1 and vm_item(hv, desired).action is Action.NOOP


def test_unreadable_disks_of_vms_the_stack_does_not_touch_do_not_fail_its_plan(client_host):
    """A pass-through disk (no VHD), a VHD file that is gone, a VHD on a share the host cannot open (double hop):
    Get-VHD writes an error for each; they are about VMs this stack neither owns nor declares."""
    hv = provider(client_host)
    client_host.control("seed", name=f"foreign-{next(_numbers)}", drives=["passthrough", "missing", "smb"])
    desired = stack(f"calm{next(_numbers)}", {"calm-1": {"memory": 512, "power": "off"}})
    converge(desired, hv)
    assert vm_item(hv, desired).action is Action.NOOP


def ours(desired: Any, name: str) -> str:
    """Notes carrying the stack's marker for ``name`` (a VM of the stack, made here in a way virtplane never does)."""
    return description_marker(Owner(desired.identity, name, "hv"))


def test_an_unreadable_disk_of_a_vm_of_the_stack_is_one_sentence_naming_vm_and_disk(client_host):
    hv = provider(client_host)
    name = f"mine-{next(_numbers)}"
    desired = stack(f"mine{next(_numbers)}", {name: {"memory": 512}})
    client_host.control("seed", name=name, drives=["smb"], notes=ours(desired, name))
    with pytest.raises(ProviderError) as caught:
        build_plan(desired, {"hv": hv})
    assert re.match(rf"VirtualMachine '{name}': disk scsi0:0 cannot be read on Hyper-V endpoint 'hv' "
                    r"\(PermissionDenied\): ", str(caught.value)), str(caught.value)


def test_a_clustered_vm_of_the_stack_is_refused_in_one_sentence(client_host):
    hv = provider(client_host)
    name = f"role-{next(_numbers)}"
    desired = stack(f"role{next(_numbers)}", {name: {"memory": 512}})
    client_host.control("seed", name=name, clustered=True, notes=ours(desired, name))
    with pytest.raises(ProviderError, match=f"VirtualMachine '{name}': the VM is a Failover Cluster role"):
        build_plan(desired, {"hv": hv})


def test_a_failover_cluster_node_is_refused_at_connect(tmp_path):
    instance = hyperv.start(tmp_path, host_name="HV-NODE", name="node",
                            profile=str(described(tmp_path, "plain", cluster_node=True)))
    try:
        with pytest.raises(ConnectionFailed, match="is a Failover Cluster node") as caught:
            provider(instance)
        assert "\n" not in str(caught.value)
    finally:
        instance.stop()


def test_parallel_applies_run_their_pipelines_at_the_same_time(client_host):
    """One runspace per endpoint would queue every change behind the slowest: with a pool of connections two
    Set-VMProcessor pipelines meet at the host (the simulator holds each until the other arrives)."""
    hv = provider(client_host)
    project = f"par{next(_numbers)}"
    names = [f"par-{next(_numbers)}" for _ in range(2)]
    converge(stack(project, {n: {"cpus": 1, "memory": 512, "power": "off"} for n in names}), hv)
    client_host.control("fault", gather="Set-VMProcessor", count=2, seconds=60)
    try:
        converge(stack(project, {n: {"cpus": 2, "memory": 512, "power": "off"} for n in names}), hv, parallel=2)
        assert client_host.control("fault")["gathered"] is True
    finally:
        client_host.control("clear")


def test_a_dropped_connection_has_its_shell_closed_not_left_to_the_idle_timeout(client_host):
    hv = provider(client_host)
    hv.client.run([pipe(Cmd("Get-VMHost"))], "warm up")
    before = client_host.control("state")["shells"]
    client_host.control("fault", drop="Get-VMHostSupportedVersion", times=1)
    with pytest.raises(ProviderError):
        hv.client.run([pipe(Cmd("Get-VMHostSupportedVersion"))], "read versions")
    client_host.control("clear")
    closed = threading.Event()
    for _ in range(100):
        if client_host.control("state")["shells"] < before:
            closed.set()
            break
        closed.wait(0.1)
    assert closed.is_set()


def test_vms_virtplane_creates_take_no_automatic_checkpoints(client_host):
    """Set-VM -AutomaticCheckpointsEnabled $false; a VM with a device also -CheckpointType Disabled."""
    hv = provider(client_host)
    name = f"noauto-{next(_numbers)}"
    converge(stack(f"noauto{next(_numbers)}", {name: {"memory": 512, "power": "on", "disks": [{"size": 1}]}}), hv)
    vm = vm_of(hv, name)
    assert vm.flag("AutomaticCheckpointsEnabled") is False
    assert read(hv, pipe(vm_by_id(str(vm.get("VMId"))), Cmd("Get-VMSnapshot"))) == []


def test_a_vm_with_checkpoints_reads_its_disks_through_the_chain_and_refuses_resize_and_delete(client_host):
    hv = provider(client_host)
    name = f"chain-{next(_numbers)}"
    project = f"chain{next(_numbers)}"
    desired = stack(project, {name: {"memory": 512, "power": "off", "disks": [{"size": 2, "thin": False}]}})
    converge(desired, hv)
    vm_id = str(vm_of(hv, name).get("VMId"))
    hv.client.run([pipe(vm_by_id(vm_id), Cmd("Checkpoint-VM", {"SnapshotName": "before upgrade"}))], "checkpoint")
    item = vm_item(hv, desired)
    assert item.action is Action.NOOP, [c.change for c in item.changes]  # thin read from the base disk
    grown = stack(project, {name: {"memory": 512, "power": "off", "disks": [{"size": 3, "thin": False}]}})
    result = apply.run(build_plan(grown, {"hv": hv}), {"hv": hv})
    [failure] = result.failed
    assert str(failure.error) == (f"VirtualMachine '{name}' has checkpoints ('before upgrade'): resizing disk "
                                  "scsi0:0 is not possible while they exist; remove them first (Remove-VMSnapshot "
                                  "merges their differencing disks into the disks)")
    result = apply.run(build_plan(stack(project, {}), {"hv": hv}, destroy=True), {"hv": hv})
    assert "deleting it would leave their differencing disks (.avhdx) and its own disks behind" in str(
        result.failed[0].error)
    hv.client.run([pipe(vm_by_id(vm_id), Cmd("Get-VMSnapshot"), Cmd("Remove-VMSnapshot"))], "merge")
    converge(grown, hv)
    assert not apply.run(build_plan(stack(project, {}), {"hv": hv}, destroy=True), {"hv": hv}).failed
    assert not [v for v in client_host.control("state")["vhds"] if vm_id.lower() in v["path"].lower()]


def test_vhds_in_a_folder_with_brackets_are_removed_by_their_literal_path(client_host):
    """Remove-Item -Path would read C:\\VMs[lab] as a wildcard pattern and remove nothing."""
    hv = provider(client_host, HYPERV_VHD_PATH="C:\\VMs[lab]")
    project = f"lit{next(_numbers)}"
    converge(stack(project, {"lit-1": {"memory": 512, "power": "off", "disks": [{"size": 1}]}}), hv)
    assert [v for v in client_host.control("state")["vhds"] if v["path"].startswith("C:\\VMs[lab]\\")]
    assert not apply.run(build_plan(stack(project, {}), {"hv": hv}, destroy=True), {"hv": hv}).failed
    assert not [v for v in client_host.control("state")["vhds"] if v["path"].startswith("C:\\VMs[lab]\\")]


def test_a_half_failed_batch_keeps_what_ran_and_the_rerun_converges(client_host):
    """A batch goes on statement by statement: the CPU change before the failing New-VHD stays, the disk attach
    after it never runs (-ErrorAction Stop), and once the path is free the next apply finishes."""
    hv = provider(client_host)
    name = f"half-{next(_numbers)}"
    project = f"half{next(_numbers)}"
    converge(stack(project, {name: {"cpus": 1, "memory": 512, "power": "off"}}), hv)
    vm_id = str(vm_of(hv, name).get("VMId"))
    blocker = f"C:\\ProgramData\\Microsoft\\Windows\\Virtual Hard Disks\\{vm_id}-scsi0-0.vhdx"
    hv.client.run([pipe(Cmd("New-VHD", {"Path": blocker, "SizeBytes": 1 * GiB, "Dynamic": True}))], "a stray file")
    desired = stack(project, {name: {"cpus": 2, "memory": 512, "power": "off", "disks": [{"size": 1}]}})
    [failure] = apply.run(build_plan(desired, {"hv": hv}), {"hv": hv}).failed
    assert "The file exists" in str(failure.error)
    assert vm_of(hv, name).number("ProcessorCount") == 2
    assert read(hv, pipe(vm_by_id(vm_id), Cmd("Get-VMHardDiskDrive"))) == []  # the stray file was not attached
    hv.client.run([pipe(Cmd("Remove-Item", {"LiteralPath": blocker}))], "remove the stray file")
    converge(desired, hv)
    assert vm_item(hv, desired).action is Action.NOOP


def test_host_facts_come_from_win32_processor_numa_nodes_and_pnp_classes(client_host):
    """Get-VMHost has no CPU vendor or free memory; the NVMe drive dismounted for DDA is no GPU."""
    [host] = provider(client_host).hosts()
    assert (host.cpu_vendor, host.memory_total_mib) == ("intel", 256 * 1024)
    assert host.memory_free_mib is not None and host.memory_free_mib <= 256 * 1024
    [nvme] = [d for d in host.pci_devices if d.address == NVME]
    assert (nvme.class_id, nvme.is_gpu) == ("0x0108", False)
    assert (host.sources["cpu_vendor"], host.sources["memory_free"]) == (
        "Win32_Processor Manufacturer", "Get-VMHostNumaNode MemoryAvailable")


def test_a_gpu_request_never_takes_the_dismounted_nvme_drive(client_host):
    hv = provider(client_host)
    with pytest.raises((PlacementError, SpecError, ProviderError)):
        build_plan(stack(f"nvme{next(_numbers)}", {"g-1": {"memory": 1024, "gpus": [{"mode": "passthrough"}]}}),
                   {"hv": hv})


def test_an_h100_gets_mmio_for_its_128_gib_bar_starts_and_is_given_back_enabled(client_host):
    """DDA page: MMIO for the device's BARs (an H100 maps 128 GiB; the page's 33280 MB example would not start it).
    Undo: Remove-VMAssignableDevice, Mount-VMHostAssignableDevice, Enable-PnpDevice."""
    hv = provider(client_host)
    hyperv.dismount_devices(client_host, [H100])  # as an administrator prepares a host (DDA page)
    name = f"h100-{next(_numbers)}"
    desired = stack(f"h100{next(_numbers)}", {name: {"memory": 2048, "power": "on", "firmware": "uefi",
                                                     "gpus": [{"mode": "passthrough", "device": H100}]}})
    converge(desired, hv)
    vm = vm_of(hv, name)
    assert (vm.number("HighMemoryMappedIoSpace"), str(vm.get("State"))) == (128 * GiB + 512 * MiB, "Running")
    assert str(vm.get("CheckpointType")) == "Disabled"
    assert not apply.run(build_plan(stack(desired.project, {}), {"hv": hv}, destroy=True), {"hv": hv}).failed
    device = next(d for d in client_host.control("state")["hardware"]["pci_devices"] if d["location_path"] == H100)
    assert (device["state"], device["enabled"]) == ("host", True)  # mounted and enabled again


def test_a_nested_vm_gets_mac_address_spoofing_on_its_network_adapters(client_host):
    """Nested guests reach the network through the VM's adapter: MAC address spoofing on ("Run Hyper-V in a virtual
    machine with nested virtualization", networking options)."""
    hv = provider(client_host)
    name = f"nest-{next(_numbers)}"
    converge(stack(f"nest{next(_numbers)}", {name: {"memory": 1024, "power": "off", "nested_virtualization": True,
                                                    "nics": [{"network": "app"}]}}), hv)
    vm_id = str(vm_of(hv, name).get("VMId"))
    [adapter] = read(hv, pipe(vm_by_id(vm_id), Cmd("Get-VMNetworkAdapter")))
    assert str(adapter.get("MacAddressSpoofing")) == "On" and adapter.text("SwitchName") == SWITCH


def test_amd_nested_virtualization_on_a_pre_2022_build_is_refused_at_placement_and_check(tmp_path):
    """AMD: Windows Server 2022 / Windows 11 or later (nested virtualization page); a Windows 10 2004 host offering
    version 9.3 still cannot."""
    instance = hyperv.start(tmp_path, host_name="HV-W10", name="w10", profile=str(described(
        tmp_path, "sriov", os={"caption": "Microsoft Windows 10 Pro", "version": "10.0.19041"},
        versions={"supported": ["8.0", "9.0", "9.3"], "default": "9.3"})))
    try:
        hv = provider(instance)
        refused = re.escape("needs a Windows Server 2022 or Windows 11 host (build 20348 or later")
        [host] = hv.hosts()
        assert (host.cpu_vendor, host.nested) == ("amd", False) and "20348" in host.sources["nested"]
        with pytest.raises(PlacementError, match="HV-W10: does not support nested virtualization"):
            build_plan(stack(f"amd{next(_numbers)}", {"n-1": {"nested_virtualization": True}}), {"hv": hv})
        spec = build_spec("VirtualMachine", "n-1", {"nested_virtualization": True, "node": "HV-W10"})
        [(field, message)] = hv.driver("VirtualMachine").check(spec, {"VirtualMachine": {"n-1": spec}})
        assert field == "nested_virtualization" and re.search(refused, message)
    finally:
        instance.stop()


def test_hyperv_server_takes_an_ipv6_address(tmp_path):
    instance = hyperv.start(tmp_path, host_name="HV-V6", name="v6", address="::1")
    try:
        assert instance.server.startswith("[::1]:")
        hv = HypervProvider.connect(HypervProvider.settings_from("hv", {}, {
            **instance.settings(), "HYPERV_PASSWORD": instance.password}))
        assert hv.hosts()[0].name == "HV-V6"
        hv.close()
    finally:
        instance.stop()


def test_credssp_against_a_host_that_does_not_offer_it_is_one_sentence_saying_how_to_enable_it(hyperv_sriov):
    """WinRM offers CredSSP only once Enable-WSManCredSSP -Role Server ran (Microsoft, "Enable-WSManCredSSP");
    the lab's hosts, like a default Windows Server, offer Negotiate and Basic."""
    env = {**hyperv_sriov.settings(), "HYPERV_PASSWORD": hyperv_sriov.password, "HYPERV_AUTH": "credssp"}
    with pytest.raises(ConnectionFailed) as caught:
        HypervProvider.connect(HypervProvider.settings_from("hv", {}, env))
    assert str(caught.value).endswith("does not accept CredSSP logins: enable CredSSP on the host "
                                      "(Enable-WSManCredSSP -Role Server) or use auth='negotiate'")
    assert hyperv_sriov.password not in str(caught.value)
