"""Which VMs hold a Hyper-V GPU's partitions, as the host's facts name them: a VMGpuPartitionAdapter does not name
its GPU, so only a host with one partitionable GPU can tell (pure mapping of providers/hyperv/host_facts.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from virtplane.providers.hyperv.client import PsObject
from virtplane.providers.hyperv.host_facts import host_facts

GIB = 1024**3


def obj(type_name: str, **props: Any) -> PsObject:
    return PsObject(SimpleNamespace(types=[f"Microsoft.HyperV.PowerShell.{type_name}"], adapted_properties={},
                                    extended_properties=props))


def gpu(name: str) -> PsObject:
    return obj("VMHostPartitionableGpu", Name=name, ValidPartitionCounts=[1, 4], PartitionCount=4,
               TotalVRAM=16 * GIB, AvailableVRAM=8 * GIB)


def holders(gpus: list[PsObject]) -> dict[tuple[str, str], list[str]]:
    partitions = [obj("VMGpuPartitionAdapter", VMName=name, VMId=name) for name in ("desk-1", "desk-2")]
    host = host_facts("hv", obj("VMHost", Name="HV1"), [], [], gpus, [], partitions=partitions)
    return {(v.device or "", v.profile): v.in_use_by for v in host.vgpu_types}


def test_on_a_host_with_one_partitionable_gpu_every_partition_is_that_gpus():
    assert holders([gpu("gpu-a")]) == {("gpu-a", "gpu-p/1"): [], ("gpu-a", "gpu-p/4"): ["desk-1", "desk-2"]}


def test_with_several_gpus_no_partition_is_attributed_so_none_counts_as_free():
    assert set(map(tuple, holders([gpu("gpu-a"), gpu("gpu-b")]).values())) == {()}


def free(available: int, partitions: list[PsObject]) -> dict[str, int | None]:
    gpu = obj("VMHostPartitionableGpu", Name="gpu-a", ValidPartitionCounts=[1, 4, 8], PartitionCount=4,
              TotalVRAM=16 * GIB, AvailableVRAM=available)
    host = host_facts("hv", obj("VMHost", Name="HV1"), [], [], [gpu], [], partitions=partitions)
    return {v.profile: v.available for v in host.vgpu_types}


def test_a_gpu_with_no_partition_assigned_offers_every_valid_count_in_full_since_it_can_be_split_anew():
    assert free(16 * GIB, []) == {"gpu-p/1": 1, "gpu-p/4": 4, "gpu-p/8": 8}


def test_a_gpu_with_a_partition_assigned_offers_only_its_current_count():
    held = [obj("VMGpuPartitionAdapter", VMName="desk-1", VMId="desk-1")]
    assert free(12 * GIB, held) == {"gpu-p/1": None, "gpu-p/4": 3, "gpu-p/8": None}
