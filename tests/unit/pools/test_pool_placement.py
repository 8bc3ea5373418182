"""A vGPU pool placed over capable hosts: spread balances, pack fills a host first, and a pool larger than the free
vGPU instances is refused at plan in one sentence, before anything is made."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.unit.pools.helpers import PoolProvider, PoolStack, memory_kind  # noqa: F401 - the fixture
from virtplane.inventory import Host, PciDevice, VgpuType
from virtplane.placement import PlacementError

pytestmark = pytest.mark.usefixtures("memory_kind")


def gpu_host(name: str, free: int, memory_free_mib: int = 262144) -> Host:
    address = "0000:3b:00.0"
    return Host(name=name, endpoint="ep", hypervisor="vsphere", online=True, memory_free_mib=memory_free_mib,
                pci_devices=[PciDevice(address=address, class_id="0x0302", vendor_id="0x10de", device_id="0x20b5",
                                       device_name="GA100 [A100 PCIe 80GB]")],
                vgpu_types=[VgpuType(profile="grid_a100-4c", device=address, available=free, total=20)])


def vgpu_pool(size: int, spread: str = "spread") -> str:
    return (f"virtplane.DesktopPool('vdi', template='golden', size={size}, memory='2GiB', spread={spread!r}, "
            "gpus=[virtplane.Gpu('vgpu', profile='grid_a100-4c')], opts=on_ep)\n")


def hosts_of(plan) -> Counter[str]:
    return Counter(r.placement for r in plan.resources if r.pool == "vdi")


def test_spread_balances_the_desktops_over_the_capable_hosts(tmp_path):
    desks = PoolStack(tmp_path, PoolProvider([gpu_host("h1", 10), gpu_host("h2", 10, 131072),
                                              gpu_host("h3", 0)]))
    desks.declare(vgpu_pool(6))
    assert hosts_of(desks.plan()) == {"h1": 3, "h2": 3}


def test_pack_fills_one_host_before_the_next(tmp_path):
    desks = PoolStack(tmp_path, PoolProvider([gpu_host("h1", 4), gpu_host("h2", 10)]))
    desks.declare(vgpu_pool(6, "pack"))
    assert hosts_of(desks.plan()) == {"h1": 4, "h2": 2}


def test_a_grown_pool_spreads_its_new_desktops_onto_the_hosts_holding_fewest(tmp_path):
    desks = PoolStack(tmp_path, PoolProvider([gpu_host("h1", 10), gpu_host("h2", 10)]))
    desks.declare(vgpu_pool(1))
    desks.apply()
    desks.declare(vgpu_pool(3))
    placed = {r.name: r.placement for r in desks.plan().pending}
    first = desks.live()["vdi-001"]["node"]
    assert sorted(placed.values()) == sorted([first, "h2" if first == "h1" else "h1"])


def test_a_pool_larger_than_the_free_vgpu_instances_is_refused_in_one_sentence_with_the_numbers(tmp_path):
    desks = PoolStack(tmp_path, PoolProvider([gpu_host("h1", 12), gpu_host("h2", 8), gpu_host("h3", 0)]))
    desks.declare(vgpu_pool(40))
    with pytest.raises(PlacementError) as refused:
        desks.plan()
    message = str(refused.value)
    assert message.startswith("DesktopPool 'vdi': 40 new desktops with vGPU profile 'grid_a100-4c' need a place, "
                              "but the hosts of endpoint 'ep' can take only 20 of them after the stack's other VMs "
                              "(h1: 12, h2: 8); desktop vdi-021 and later: ")
    assert "h3: has no free instance of vGPU profile 'grid_a100-4c' left" in message
    assert message.endswith("Nothing was created: lower size by 20 or free capacity")
    assert "\n" not in message
    assert desks.live() == {}


def test_the_capacity_check_counts_the_stacks_other_vms_declared_before_the_pool(tmp_path):
    desks = PoolStack(tmp_path, PoolProvider([gpu_host("h1", 3)]))
    desks.declare("virtplane.VirtualMachine('ws', memory=1024, firmware='uefi', gpus=[virtplane.Gpu('vgpu', "
                  "profile='grid_a100-4c')], opts=on_ep)\n" + vgpu_pool(3))
    with pytest.raises(PlacementError, match=r"can take only 2 of them .*\(h1: 2\)"):
        desks.plan()


def test_check_reports_the_desktops_no_host_can_serve_as_one_finding_on_the_pool(tmp_path):
    from virtplane.inventory import Inventory
    from virtplane.policies.evaluate import check_stack

    hosts = [gpu_host("h1", 12), gpu_host("h2", 8)]
    desks = PoolStack(tmp_path, PoolProvider(hosts))
    desired = desks.declare(vgpu_pool(40))
    report = check_stack(desired, Inventory(hosts=hosts))
    [finding] = report.blocking
    assert (finding.rule, finding.resource, finding.field) == ("hw.placement", "vdi", "gpus")
    assert finding.message.startswith("DesktopPool 'vdi': 20 of its 40 desktops find no host of endpoint 'ep' after "
                                      "the stack's other VMs (vdi-021, vdi-022, vdi-023 …); vdi-021: ")
    assert "has no free instance of vGPU profile 'grid_a100-4c' left" in finding.message
    assert finding.remediation.startswith("lower size by 20, or ")
