"""The Hyper-V driver against the simulated host (virtplane_lab.hypervsim) through unmodified pypsrp.

Cmdlet behaviour cited from Microsoft's Hyper-V module reference (docset winserver2025-ps): New-VM, Set-VM,
Get-VM, Remove-VM, Get-/Add-/Remove-VMHardDiskDrive, New-/Resize-VHD, Get-/Add-VMNetworkAdapter,
Set-VMNetworkAdapterVlan, Stop-VM."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.support import hyperv as raw_hyperv
from virtplane import apply
from virtplane.declared import DeclaredResource, DesiredStack
from virtplane.engine import build_plan
from virtplane.errors import OwnershipError, SpecError
from virtplane.kinds import build_spec
from virtplane.plan import Action
from virtplane.providers.base import Owner
from virtplane.providers.hyperv.client import Cmd, pipe
from virtplane.providers.hyperv.provider import HypervProvider
from virtplane.providers.hyperv.vm_state import pending_name
from virtplane_lab.hyperv import HypervInstance

SWITCH = "lab-switch"
_numbers = itertools.count()
INJECTION = ["db'; Remove-VM * -Force; '", "$(Stop-Computer)", "back`tick", "semi;colon", "new\u2028line",
             "Ünïcødé-名前", "[bracket]*?"]


def provider(instance: HypervInstance, **overrides: str) -> HypervProvider:
    env = {**instance.settings(), "HYPERV_PASSWORD": instance.password, "HYPERV_TLS": str(instance.tls).lower(),
           "HYPERV_SWITCH": SWITCH, **overrides}
    hv = HypervProvider.connect(HypervProvider.settings_from("hv", {}, env))
    existing = {o.text("Name") for o in hv.client.run([pipe(Cmd("Get-VMSwitch"))], "list switches").objects}
    if SWITCH not in existing:
        hv.client.run([pipe(Cmd("New-VMSwitch", {"Name": SWITCH, "SwitchType": "Internal"}))], "make the switch")
    return hv


def stack(project: str, vms: dict[str, dict[str, Any]], vlan: int = 120) -> DesiredStack:
    desired = DesiredStack(project, "dev")
    network = DeclaredResource("Network", "app", build_spec("Network", "app", {"vlan": vlan}), "hv")
    desired.resources[network.key] = network
    for name, fields in vms.items():
        item = DeclaredResource("VirtualMachine", name, build_spec("VirtualMachine", name, fields), "hv",
                                {"Network/app"})
        desired.resources[item.key] = item
    return desired


def converge(desired: DesiredStack, hv: HypervProvider, **options: Any) -> None:
    result = apply.run(build_plan(desired, {"hv": hv}), {"hv": hv}, **options)
    assert not result.failed, [o.error for o in result.failed]


def vms_named(hv: HypervProvider, name: str) -> list[Any]:
    return [o for o in hv.client.run([pipe(Cmd("Get-VM"))], "list").objects if o.text("Name") == name]


def full(**overrides: Any) -> dict[str, Any]:
    return {"cpus": 2, "memory": "4GiB", "firmware": "uefi", "secure_boot": True, "nested_virtualization": True,
            "disks": [{"size": 3}, {"size": 5, "thin": False}], "nics": [{"network": "app"}], "tags": ["lab"],
            **overrides}


def test_a_vm_is_created_read_back_as_declared_and_a_second_plan_is_empty(hyperv_gpu):
    hv = provider(hyperv_gpu)
    desired = stack(f"p{next(_numbers)}", {"web-1": full()})
    plan = build_plan(desired, {"hv": hv})
    assert [r.action for r in plan.resources] == [Action.NOOP, Action.CREATE]
    converge(desired, hv)
    [item] = [r for r in build_plan(desired, {"hv": hv}).resources if r.kind == "VirtualMachine"]
    assert item.action is Action.NOOP, [c.change for c in item.changes]
    state = item.observed.state
    assert (state["cpus"], state["memory"], state["firmware"], state["secure_boot"]) == (2, 4096, "uefi", True)
    assert [(d["slot"], d["size"], d["thin"]) for d in state["disks"]] == [("scsi0:0", 3, True), ("scsi0:1", 5, False)]
    assert [(n["slot"], n["network"]) for n in state["nics"]] == [("nic0", "app")]


@pytest.mark.parametrize("name", INJECTION)
def test_a_name_that_looks_like_powershell_is_data_and_round_trips_exactly(hyperv_gpu, name):
    hv = provider(hyperv_gpu)
    desired = stack(f"inj{next(_numbers)}", {name: {"cpus": 1, "memory": 512, "power": "off", "tags": ["t"]}})
    converge(desired, hv)
    [vm] = vms_named(hv, name)
    assert vm.text("Name") == name
    assert [r.action for r in build_plan(desired, {"hv": hv}).resources if r.kind == "VirtualMachine"] == [
        Action.NOOP]
    assert not any(command["is_script"] for entry in hyperv_gpu.commands() for command in entry["commands"])


def test_create_returns_the_vmid_and_observe_ids_reads_it(hyperv_gpu):
    hv = provider(hyperv_gpu)
    desired = stack(f"id{next(_numbers)}", {"id-1": {"cpus": 1, "memory": 512, "power": "off"}})
    converge(desired, hv)
    [vm] = vms_named(hv, "id-1")
    vm_id = str(vm.get("VMId"))
    found = hv.driver("VirtualMachine").observe_ids("x/dev", [vm_id], {})
    assert list(found) == [vm_id.lower()] and found[vm_id.lower()].name == "id-1"


def test_observe_ids_answers_under_the_id_as_asked_whatever_its_case(hyperv_gpu):
    """Get-VM -Id takes a GUID (Microsoft, "Get-VM"): a VMId in upper case names the same VM, and the answer is
    keyed by the id the caller gave."""
    hv = provider(hyperv_gpu)
    converge(stack(f"case{next(_numbers)}", {"case-1": {"cpus": 1, "memory": 512, "power": "off"}}), hv)
    [vm] = vms_named(hv, "case-1")
    asked = str(vm.get("VMId")).upper()
    found = hv.driver("VirtualMachine").observe_ids("x/dev", [asked], {})
    assert list(found) == [asked] and found[asked].name == "case-1"


def test_a_create_reads_back_its_own_vm_alone(hyperv_gpu):
    """Get-VM -Id <guid> (Microsoft, "Get-VM"): the read after New-VM asks for the new VM only, not for every VM
    on the host, whose reply grows with the host."""
    hv = provider(hyperv_gpu)
    plan = build_plan(stack(f"one{next(_numbers)}", {"one-1": {"cpus": 1, "memory": 512, "power": "off"}}),
                      {"hv": hv})
    before = len(hyperv_gpu.commands())
    assert not apply.run(plan, {"hv": hv}).failed
    gets = [command for entry in hyperv_gpu.commands()[before:] for command in entry["commands"]
            if command["command"] == "Get-VM"]
    assert gets and all("Id" in command["parameters"] for command in gets), gets


def test_observe_is_one_round_trip_whatever_the_number_of_vms(hyperv_gpu):
    """One pipeline for every VM; the session's host may hold other tests' VMs with checkpoints or GPU partitions,
    which cost one more round trip each for the whole host (the chains' parent disks, the partition counts)."""
    hv = provider(hyperv_gpu)
    vms = {f"rt-{i}": {"cpus": 1, "memory": 512, "power": "off"} for i in range(12)}
    name = f"rt{next(_numbers)}"
    trips = []
    for count in (6, 12):
        desired = stack(name, dict(list(vms.items())[:count]))
        converge(desired, hv)
        before = hv.client.round_trips
        hv.driver("VirtualMachine").observe(desired.identity, {"VirtualMachine": {}})
        trips.append(hv.client.round_trips - before)
    extra = raw_hyperv.holds_checkpoint_disks(hyperv_gpu) + raw_hyperv.holds_gpu_partitions(hyperv_gpu)
    assert trips == [1 + extra, 1 + extra]


def test_an_unmanaged_vm_holding_a_declared_name_is_refused_and_never_touched(hyperv_gpu):
    hv = provider(hyperv_gpu)
    name = f"hand-made-{next(_numbers)}"
    hv.client.run([pipe(Cmd("New-VM", {"Name": name, "NoVHD": True}))], "make a VM by hand")
    with pytest.raises(OwnershipError, match=f"a virtual machine named '{name}' already exists"):
        build_plan(stack("own", {name: {"cpus": 1}}), {"hv": hv})
    assert len(vms_named(hv, name)) == 1


def test_a_create_interrupted_before_its_marker_is_written_converges_without_duplicate_or_orphan(hyperv_gpu):
    hv = provider(hyperv_gpu)
    name = f"cut-{next(_numbers)}"
    desired = stack(f"cut{next(_numbers)}", {name: {"cpus": 1, "memory": 512, "power": "off",
                                                    "disks": [{"size": 1}]}})
    hyperv_gpu.control("fault", drop="Set-VM", times=1)
    result = apply.run(build_plan(desired, {"hv": hv}), {"hv": hv})
    assert result.failed  # the connection dropped between New-VM and Set-VM -Notes
    hyperv_gpu.control("clear")
    converge(desired, hv)
    assert len(vms_named(hv, name)) == 1
    assert pending_name(Owner(desired.identity, name)) not in [o.text("Name") for o in hv.client.run(
        [pipe(Cmd("Get-VM"))], "list").objects]
    assert [r.action for r in build_plan(desired, {"hv": hv}).resources if r.kind == "VirtualMachine"] == [
        Action.NOOP]


def test_dropping_a_disk_is_marked_and_grow_is_in_place(hyperv_gpu):
    hv = provider(hyperv_gpu)
    project = f"disk{next(_numbers)}"
    converge(stack(project, {"d-1": {"cpus": 1, "memory": 512, "power": "off",
                                     "disks": [{"size": 2}, {"size": 4}]}}), hv)
    plan = build_plan(stack(project, {"d-1": {"disks": [{"size": 3}]}}), {"hv": hv})
    assert plan.data_loss() == ["VM d-1 on hv: disk scsi0:1 (4 GiB) is no longer declared; removing it destroys "
                                "its data"]
    with pytest.raises(apply.DataLossRefused):
        apply.run(plan, {"hv": hv})
    converge(stack(project, {"d-1": {"disks": [{"size": 3}]}}), hv, allow_data_loss=True)
    [item] = [r for r in build_plan(stack(project, {"d-1": {"disks": [{"size": 3}]}}), {"hv": hv}).resources
              if r.kind == "VirtualMachine"]
    assert [(d["slot"], d["size"]) for d in item.observed.state["disks"]] == [("scsi0:0", 3)]


def test_destroy_removes_the_vms_and_the_vhds_virtplane_made(hyperv_gpu):
    hv = provider(hyperv_gpu)
    project = f"gone{next(_numbers)}"
    converge(stack(project, {"g-1": {"cpus": 1, "memory": 512, "disks": [{"size": 1}]}}), hv)
    plan = build_plan(stack(project, {}), {"hv": hv}, destroy=True)
    assert [r.name for r in plan.pending] == ["g-1"]
    assert not apply.run(plan, {"hv": hv}).failed
    assert vms_named(hv, "g-1") == []
    vhds = hv.client.run([pipe(Cmd("Get-VM"), Cmd("Get-VHD"))], "list VHDs").objects
    assert not [v for v in vhds if "g-1" in (v.text("Path") or "")]


def test_a_switch_that_does_not_exist_is_one_sentence_naming_the_switches(hyperv_gpu):
    hv = provider(hyperv_gpu, HYPERV_SWITCH="no-such-switch")
    with pytest.raises(SpecError, match="switch 'no-such-switch' does not exist on the Hyper-V host"):
        build_plan(stack(f"sw{next(_numbers)}", {"s-1": {"cpus": 1, "nics": [{"network": "app"}]}}), {"hv": hv})


def test_an_intel_e1000_adapter_is_refused_at_plan_time_since_hyper_v_has_none(hyperv_gpu):
    """Add-VMNetworkAdapter makes a synthetic adapter, or with -IsLegacy the emulated legacy one (Microsoft,
    "Add-VMNetworkAdapter"): an e1000e would be made synthetic and drift on every plan."""
    hv = provider(hyperv_gpu)
    with pytest.raises(SpecError, match=r"nics\[0\]\.adapter.*e1000e adapters do not exist on Hyper-V"):
        nic = {"network": "app", "adapter": "e1000e"}
        build_plan(stack(f"nic{next(_numbers)}", {"e-1": {"cpus": 1, "nics": [nic]}}), {"hv": hv})
    assert vms_named(hv, "e-1") == []


def test_the_host_reports_its_facts_and_hosts_differ(hyperv_gpu, hyperv_plain):
    gpu_host = provider(hyperv_gpu).hosts()[0]
    plain_host = provider(hyperv_plain).hosts()[0]
    assert gpu_host.iommu is True and gpu_host.vgpu_types
    assert plain_host.iommu is False and not plain_host.vgpu_types


def test_vms_created_one_after_another_all_join_the_declared_vlan(hyperv_gpu):
    # A create reads its new VM back by id; that read must not forget the plan's networks for the next create.
    hv = provider(hyperv_gpu)
    desired = stack(f"p{next(_numbers)}", {name: {"memory": 512, "nics": [{"network": "app"}]}
                                           for name in ("seq-1", "seq-2", "seq-3")})
    converge(desired, hv, parallel=1)
    items = [r for r in build_plan(desired, {"hv": hv}).resources if r.kind == "VirtualMachine"]
    assert [r.action for r in items] == [Action.NOOP] * 3, [c.change for r in items for c in r.changes]
    assert {n["network"] for r in items for n in r.observed.state["nics"]} == {"app"}
