"""Policy check speed, offline: N VMs with devices over a 500-host inventory (vSphere and Proxmox halves).

Prints the time of the check alone (placement of every VM that names no host, every rule, waivers) at 1k, 5k, 10k
and 50k VMs, VMs per second and microseconds per VM (flat when it grows linearly). Goal: at most 1 s at 10,000 VMs,
growing linearly. The code path measured: ``virtplane.policies.evaluate.check_vms`` (what `virtplane check` runs
once the stack is evaluated and the inventory read). With ``--end-to-end`` it also runs
``virtplane check STACK --inventory FILE --format sarif`` as a process on a generated stack program of the largest
size (program evaluation, imports and SARIF writing included).

    .venv/bin/python bench/check.py [--hosts 500] [--sizes 1000,5000,10000,50000] [--end-to-end]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from virtplane.inventory import Host, Inventory, PciDevice, SriovFunction, VgpuType
from virtplane.kinds import build_spec
from virtplane.policies.evaluate import DeclaredVm, check_vms
from virtplane.policies.waivers import PolicyConfig


def inventory(hosts: int) -> Inventory:
    made = []
    for index in range(hosts):
        vsphere = index % 2 == 0
        name = f"{'esx' if vsphere else 'pve'}-{index:03d}"
        gpus = [PciDevice(address=f"0000:{0x3b + g:02x}:00.0", class_id="0x0302", vendor_id="0x10de",
                          device_id="0x20b5", device_name="GA100 [A100 PCIe 80GB]", passthrough_capable=True,
                          passthrough_enabled=True, iommu_group=10 + g) for g in range(4)]
        profile = "grid_a100-10c" if vsphere else "nvidia-500"
        made.append(Host(
            name=name, endpoint="vc" if vsphere else "pve", hypervisor="vsphere" if vsphere else "proxmox",
            online=True, cpu_vendor="intel", hardware_virtualization=True, slat=True, iommu=True, nested=True,
            memory_total_mib=1 << 20, memory_free_mib=(1 << 20) - 65536,
            graphics_mode="sharedDirect" if vsphere else None, max_hardware_version="vmx-21" if vsphere else None,
            pci_devices=gpus,
            vgpu_types=[VgpuType(profile=profile, device=gpus[g].address, available=8, total=8) for g in (2, 3)],
            sriov=[SriovFunction(address="0000:5e:00.0", enabled=True, vfs_max=64, vfs_enabled=64, vfs_free=64)]))
    return Inventory(hosts=made)


def vms(count: int, hosts: int) -> list[DeclaredVm]:
    made = []
    for index in range(count):
        vsphere = index % 2 == 0
        kind = index % 10
        fields: dict[str, object] = {"cpus": 4, "memory": 8192, "firmware": "uefi",
                                     "machine": "vmx-19" if vsphere else "q35"}
        if kind == 0:
            fields["gpus"] = [{"mode": "passthrough", "vendor": "nvidia"}]
        elif kind <= 4:
            fields["gpus"] = [{"mode": "vgpu", "profile": "grid_a100-10c" if vsphere else "nvidia-500"}]
        elif kind <= 8:
            fields["nics"] = [{"network": "fast", "adapter": "sriov"}]
        else:
            fields["nested_virtualization"] = True
        if index % 7 == 0:  # some VMs name their host
            host = (index // 2) % (hosts // 2) * 2 + (0 if vsphere else 1)
            fields["node"] = f"{'esx' if vsphere else 'pve'}-{host:03d}"
        name = f"vm-{index:05d}"
        made.append(DeclaredVm(name, "vc" if vsphere else "pve", build_spec("VirtualMachine", name, fields),
                               "stacks/bench/__main__.py", index + 1))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--sizes", default="1000,5000,10000,50000")
    parser.add_argument("--end-to-end", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the best time is shown")
    args = parser.parse_args()
    facts = inventory(args.hosts)
    config = PolicyConfig.parse({"waive": {"hw.mobility": "bench"}})
    kinds = {"vc": "vsphere", "pve": "proxmox"}
    print(f"{args.hosts} hosts; VMs: 10% passthrough GPU, 40% vGPU, 40% SR-IOV, 10% nested; 1 in 7 pinned; "
          f"best of {args.repeat}; load average {os.getloadavg()[0]:.1f}")
    print("code path: virtplane.policies.evaluate.check_vms (placement of the VMs naming no host, every rule, "
          "waivers)")
    for size in (int(s) for s in args.sizes.split(",")):
        declared = vms(size, args.hosts)
        seconds = float("inf")
        for _ in range(args.repeat):
            started = time.perf_counter()
            report = check_vms("bench/dev", declared, facts, kinds, config)
            seconds = min(seconds, time.perf_counter() - started)
        print(f"{size:>6} VMs: {seconds:6.2f} s  {size / seconds:8.0f} VMs/s  {seconds / size * 1e6:6.1f} µs/VM  "
              f"{len(report.evaluated):>7} rule evaluations  {len(report.blocking)} mandatory, "
              f"{len(report.findings)} findings")
    if args.end_to_end:
        end_to_end(facts, max(int(s) for s in args.sizes.split(",")), args.hosts)


PROGRAM = """import pulumi
import virtplane

vc = pulumi.ResourceOptions(provider=virtplane.Endpoint("vc", kind="vsphere"))
pve = pulumi.ResourceOptions(provider=virtplane.Endpoint("pve", kind="proxmox"))
for index in range({count}):
    vsphere = index % 2 == 0
    kind = index % 10
    gpus, nics = None, None
    if kind == 0:
        gpus = [virtplane.Gpu("passthrough", vendor="nvidia")]
    elif kind <= 4:
        gpus = [virtplane.Gpu("vgpu", profile="grid_a100-10c" if vsphere else "nvidia-500")]
    elif kind <= 8:
        nics = [virtplane.Nic("fast", adapter="sriov")]
    virtplane.VirtualMachine(f"vm-{{index:05d}}", cpus=4, memory=8192, firmware="uefi",
                             machine="vmx-19" if vsphere else "q35", gpus=gpus, nics=nics,
                             nested_virtualization=True if kind == 9 else None, opts=vc if vsphere else pve)
"""


def end_to_end(facts: Inventory, count: int, hosts: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        stack = Path(scratch) / "stack"
        stack.mkdir()
        (stack / "Pulumi.yaml").write_text("name: bench\nruntime: python\n")
        (stack / "__main__.py").write_text(PROGRAM.format(count=count))
        (Path(scratch) / "inventory.json").write_text(facts.to_json())
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "virtplane", "check", str(stack), "--inventory",
                                 str(Path(scratch) / "inventory.json"), "--format", "sarif", "--out",
                                 str(Path(scratch) / "x.sarif")], capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        print(f"end to end, {count} VMs over {hosts} hosts (`virtplane check --format sarif` as a process): "
              f"{seconds:.2f} s, exit {result.returncode}")


if __name__ == "__main__":
    main()
