"""Placement of device VMs across an inventory, offline: plan-time CPU for N VMs over H hosts.

    python bench/placement.py [--vms 2000] [--hosts 64]

Builds a synthetic inventory (every fourth host with a passthrough GPU and vGPU profiles, every fourth with
an SR-IOV physical function, the rest plain; 8 PCI devices each) and a stack of VMs that each ask for a
vGPU slice, a whole GPU, an SR-IOV NIC or nested virtualization, then places them all with
virtplane.placement (what `virtplane plan` does) and prints the CPU time. Goal: 2,000 VMs over 64 hosts
under 2 s of CPU.
"""

from __future__ import annotations

import argparse
import time

from virtplane.inventory import Host, PciDevice, SriovFunction, VgpuType
from virtplane.kinds import build_spec
from virtplane.placement import PlacementError, Usage, place


def inventory(hosts: int) -> list[Host]:
    result = []
    for index in range(hosts):
        devices = [PciDevice(address=f"0000:{slot:02x}:00.0", class_id="0x0200", vendor_id="0x8086",
                             device_id="0x1572") for slot in range(1, 7)]
        vgpus, sriov = [], []
        if index % 4 == 0:
            for slot in (0x3b, 0x3c):
                devices.append(PciDevice(address=f"0000:{slot:02x}:00.0", class_id="0x0302", vendor_id="0x10de",
                                         device_id="0x20b5", passthrough_capable=True, passthrough_enabled=True))
            vgpus = [VgpuType(profile=f"grid_a100-{size}c", device="0000:3c:00.0", available=80 // size)
                     for size in (4, 10, 20, 40)]
        if index % 4 == 1:
            sriov = [SriovFunction(address="0000:5e:00.0", enabled=True, vfs_max=64, vfs_enabled=64, vfs_free=64)]
        result.append(Host(name=f"esx-{index:03d}", endpoint="bench", hypervisor="vsphere", online=True,
                           nested=index % 4 != 2, memory_free_mib=1024 * 1024, pci_devices=devices,
                           vgpu_types=vgpus, sriov=sriov))
    return result


REQUESTS = [
    {"gpus": [{"mode": "vgpu", "profile": "grid_a100-4c"}]},
    {"nics": [{"network": "n", "adapter": "sriov"}]},
    {"nested_virtualization": True},
    {"gpus": [{"mode": "vgpu", "profile": "grid_a100-10c"}]},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=2000)
    parser.add_argument("--hosts", type=int, default=64)
    args = parser.parse_args()
    hosts = inventory(args.hosts)
    specs = [build_spec("VirtualMachine", f"vm-{i}", {"cpus": 2, "memory": 2048, **REQUESTS[i % len(REQUESTS)]})
             for i in range(args.vms)]
    usage = Usage()
    placed = refused = 0
    started_cpu, started = time.process_time(), time.perf_counter()
    for index, spec in enumerate(specs):
        try:
            place(f"vm-{index}", "bench", spec, hosts, usage)
            placed += 1
        except PlacementError:
            refused += 1
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    print(f"placement of {args.vms} device VMs over {args.hosts} hosts: {cpu:.2f} s CPU ({wall:.2f} s wall), "
          f"{placed} placed, {refused} refused for lack of capacity; goal < 2 s CPU: "
          f"{'met' if cpu < 2 else 'missed'}")


if __name__ == "__main__":
    main()
