"""vSphere lists vGPU profiles per host, not per GPU: a GPU given whole cannot also serve the host's vGPUs,
and the last GPU left for the plan's vGPU instances cannot be given whole."""

import pytest

from tests.unit.placement_agreement import checked_place
from tests.unit.policy.inventories import esx, gpu
from virtplane.inventory import Inventory, VgpuType
from virtplane.kinds import build_spec
from virtplane.placement import PlacementError, Usage

HOST = esx("esx-1", endpoint="ep", pci_devices=[gpu("0000:3b:00.0", "GA100 [A100 PCIe 80GB]")],
           vgpu_types=[VgpuType(profile="grid_a100-20c")])
PASSTHROUGH = build_spec("VirtualMachine", "p", {"cpus": 1, "memory": 1024, "firmware": "uefi",
                                                 "gpus": [{"mode": "passthrough"}]})
SLICE = build_spec("VirtualMachine", "s", {"cpus": 1, "memory": 1024, "firmware": "uefi",
                                           "gpus": [{"mode": "vgpu", "profile": "grid_a100-20c"}]})


def test_a_host_whose_only_gpu_is_given_whole_has_no_vgpu_left():
    usage = Usage()
    checked_place("p", "ep", PASSTHROUGH, [HOST], usage)
    with pytest.raises(PlacementError, match="has no GPU left for vGPU profiles: every GPU is given whole"):
        checked_place("s", "ep", SLICE, [HOST], usage)


def test_the_last_gpu_serving_vgpu_instances_cannot_be_given_whole():
    usage = Usage()
    checked_place("s", "ep", SLICE, [HOST], usage)
    with pytest.raises(PlacementError, match=r"0000:3b:00\.0 is the last GPU left for this plan's vGPU instances"):
        checked_place("p", "ep", PASSTHROUGH, [HOST], usage)


def test_with_two_gpus_one_goes_whole_and_the_other_serves_vgpus():
    host = HOST.model_copy(update={"pci_devices": [*HOST.pci_devices, gpu("0000:af:00.0", "A100")]})
    usage = Usage()
    assert checked_place("s", "ep", SLICE, [host], usage).host == "esx-1"
    assert checked_place("p", "ep", PASSTHROUGH, [host], usage).gpu_devices == ["0000:3b:00.0"]
    with pytest.raises(PlacementError):
        checked_place("p2", "ep", PASSTHROUGH, [host], usage)


def test_two_vgpu_sizes_on_a_one_gpu_host_with_host_wide_profiles_are_a_mix():
    from virtplane.policies.evaluate import DeclaredVm, check_vms

    host = HOST.model_copy(update={"vgpu_types": [VgpuType(profile="grid_a100-20c"),
                                                  VgpuType(profile="grid_a100-10c")]})
    vms = [DeclaredVm(name, "ep", build_spec("VirtualMachine", name, {
        "cpus": 1, "memory": 1024, "node": "esx-1", "gpus": [{"mode": "vgpu", "profile": profile}]}))
        for name, profile in (("a", "grid_a100-20c"), ("b", "grid_a100-10c"))]
    report = check_vms("p/s", vms, Inventory(hosts=[host]))
    mixes = [f for f in report.findings if f.rule == "hw.vgpu-size" and f.level == "mandatory"]
    assert [f.resource for f in mixes] == ["b"]
    assert "host esx-1 cannot give gpus[0].profile 'grid_a100-10c': GPU 0000:3b:00.0 already hosts vGPU profile " \
           "grid_a100-20c" in mixes[0].message
