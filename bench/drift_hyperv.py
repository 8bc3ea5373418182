"""Drift over N VMs on the Hyper-V simulator: virtplane's batched read vs. a per-VM cmdlet loop, in one run.

The simulator (virtplane_lab.hypervsim, its own process, WinRM over HTTP with NTLM message encryption as the
driver uses by default) is seeded fast: pipelines of many statements, each VM made by ``New-VHD`` and
``New-VM -VHDPath -SwitchName | Set-VM -ProcessorCount -Notes <virtplane's ownership marker>``. A generated
stack declares those VMs as they are (Generation 2, secure boot, one 10 GiB disk, one adapter on the
switch, 2 CPUs, 512 MiB, off), so the drift pass must find N owned VMs and no drift. Measured:

  * virtplane drift: ``virtplane.engine.build_plan`` over a connected provider — the driver's one observe
    pipeline (Get-VM and, piped from it, processors, disks, VHDs, adapters, VLANs, firmware, assigned
    devices, GPU partitions) and the generic diff; the median of --repeat passes;
  * a per-VM cmdlet loop (what a typical script does): list the VMs once, then for each VM one round trip
    per property — ``Get-VM -Id X``, ``Get-VM -Id X | Get-VMProcessor``, ``| Get-VMHardDiskDrive``,
    ``| Get-VHD``, ``| Get-VMNetworkAdapter``, ``| Get-VMNetworkAdapterVlan``, ``| Get-VMFirmware``, and the
    SCSI controllers, checkpoints, assigned devices, GPU partitions and DVD drives (what virtplane reads) — mapped
    with the same pure functions and diffed the same way; run on a sample of --naive VMs, scaled per VM
    (the one listing of every VM is counted once, not scaled);

and the same loop with --threads VMs in flight, each thread on its own runspace pool (connection and login);
with, for each, PSRP round trips (pipelines), HTTP requests (counted at http.client), client CPU time and the
simulator's CPU time. The ratio is the loop's time (scaled) over virtplane's.

The simulator answers with TCP_NODELAY, as a real host's WinRM listener does (stock http.server sends headers and
body apart and would wait on the client's delayed ACK, ~50 ms per request, flattering virtplane's 1 round trip
against the loop's 7 per VM).

Within a run, virtplane's passes alternate with parts of the loop's sample (a pass, a part, a pass, ...), so
that a shared machine's changing load weighs on both sides of the ratio alike.

With --runs N (default 5) the comparison (virtplane's passes and the sequential loop's sample) is made N times in
a row on the same simulator, and the ratio's minimum, median and maximum are printed: one run's ratio moves with
the machine's load.

    python bench/drift_hyperv.py [--vms 1000] [--naive 100] [--repeat 3] [--batch 100] [--threads 8] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.process_cpu import process_cpu  # noqa: E402
from bench.request_counter import RequestCounter  # noqa: E402
from virtplane.declared import DeclaredResource, DesiredStack  # noqa: E402
from virtplane.diff import diff  # noqa: E402
from virtplane.engine import build_plan  # noqa: E402
from virtplane.kinds import build_spec  # noqa: E402
from virtplane.plan import Action  # noqa: E402
from virtplane.providers.base import Owner, description_marker  # noqa: E402
from virtplane.providers.hyperv.client import Cmd, HypervClient, i64, pipe, u64, vm_by_id  # noqa: E402
from virtplane.providers.hyperv.provider import HypervProvider  # noqa: E402
from virtplane.providers.hyperv.vm import join_parts  # noqa: E402
from virtplane.providers.hyperv.vm_state import Switches, vm_state  # noqa: E402
from virtplane.slots import resolve_vm  # noqa: E402
from virtplane_lab import hyperv, process  # noqa: E402

PROJECT, STACK_NAME, ENDPOINT = "bench", "dev", "hv"
STACK = f"{PROJECT}/{STACK_NAME}"
SWITCH = "bench-switch"
GiB, MiB = 1024**3, 1024**2
FIELDS = {"cpus": 2, "memory": 512, "firmware": "uefi", "secure_boot": True, "power": "off",
          "disks": [{"size": 10}], "nics": [{"network": SWITCH}]}


def start_simulator(work_dir: Path) -> hyperv.HypervInstance:
    """The simulated host over plain HTTP (WinRM messages NTLM-encrypted, as the driver's default without TLS)."""
    run_dir = work_dir / "bench"
    run_dir.mkdir(parents=True, exist_ok=True)
    password_file = process.new_password(run_dir)
    args = [sys.executable, "-m", "virtplane_lab.hypervsim", "--port", "0", "--host-name", "HV-BENCH",
            "--profile", "gpu", "--user", hyperv.USER, "--password-file", str(password_file), "--work-dir",
            str(run_dir), "--command-log", str(run_dir / "commands.jsonl")]
    pid, ready = process.launch(args, run_dir, "Hyper-V simulator", 60.0)
    return hyperv.HypervInstance(server=f"{ready['host']}:{ready['port']}", host_name="HV-BENCH", pid=pid,
                                 ca_file="", password_file=str(password_file), control_url=ready["control"],
                                 command_log=str(run_dir / "commands.jsonl"))


def name_of(index: int) -> str:
    return f"bench-{index:05d}"


def seed(client: HypervClient, count: int, batch: int, endpoint: str = ENDPOINT) -> None:
    client.run([pipe(Cmd("New-VMSwitch", {"Name": SWITCH, "SwitchType": "Internal"}))], "make the switch")
    for start in range(0, count, batch):
        statements = []
        for index in range(start, min(count, start + batch)):
            name = name_of(index)
            path = f"C:\\bench\\{name}.vhdx"
            marker = description_marker(Owner(STACK, name, endpoint))
            statements.append(pipe(Cmd("New-VHD", {"Path": path, "SizeBytes": u64(10 * GiB), "Dynamic": True})))
            statements.append(pipe(Cmd("New-VM", {"Name": name, "MemoryStartupBytes": i64(512 * MiB), "Generation": 2,
                                                   "VHDPath": path, "SwitchName": SWITCH}),
                                   Cmd("Set-VM", {"ProcessorCount": i64(2), "Notes": marker})))
        client.run(statements, f"seed VMs {start}..{start + len(statements) // 2 - 1}")


def desired_stack(count: int) -> DesiredStack:
    desired = DesiredStack(PROJECT, STACK_NAME)
    for index in range(count):
        name = name_of(index)
        item = DeclaredResource("VirtualMachine", name, build_spec("VirtualMachine", name, FIELDS), ENDPOINT)
        desired.resources[item.key] = item
    return desired


class Meter:
    """Wall time, HTTP requests, client CPU and simulator CPU of one measured block."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid

    def __enter__(self) -> Meter:
        self.counter = RequestCounter().__enter__()
        self.cpu = time.process_time()
        self.server = process_cpu(self.server_pid) or 0.0
        self.wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        self.server = (process_cpu(self.server_pid) or 0.0) - self.server
        self.counter.__exit__()
        self.requests = self.counter.count


def virtplane_drift(hv: HypervProvider, desired: DesiredStack, count: int, server_pid: int) -> tuple[Meter, int]:
    before = hv.client.round_trips
    with Meter(server_pid) as meter:
        plan = build_plan(desired, {ENDPOINT: hv})
    items = [r for r in plan.resources if r.kind == "VirtualMachine"]
    assert len(items) == count and all(r.action is Action.NOOP for r in items), \
        [(r.name, r.action, [c.change for c in r.changes]) for r in items if r.action is not Action.NOOP][:3]
    return meter, hv.client.round_trips - before


# What virtplane's observe pipeline reads of each VM (providers/hyperv/vm.py, _OBSERVE), one cmdlet per round trip
PER_VM = ("Get-VMProcessor", "Get-VMHardDiskDrive", "Get-VHD", "Get-VMNetworkAdapter", "Get-VMNetworkAdapterVlan",
          "Get-VMFirmware", "Get-VMScsiController", "Get-VMSnapshot", "Get-VMAssignableDevice",
          "Get-VMGpuPartitionAdapter", "Get-VMDvdDrive")


def read_one(client: HypervClient, desired: DesiredStack, name: str, vm_id: str) -> bool:
    """One VM, one round trip per property; mapped and diffed like virtplane does. True when it drifted."""
    objects = client.run([pipe(vm_by_id(vm_id))], f"read VM {name}").objects
    for cmdlet in PER_VM:
        objects += client.run([pipe(vm_by_id(vm_id), Cmd(cmdlet))], f"read {cmdlet} of {name}").objects
    [(vm, parts)] = join_parts(objects)
    state = vm_state(vm, parts.get("processor"), parts["disks"], parts["nics"], parts.get("firmware"), "HV",
                     Switches(None))
    spec = resolve_vm(desired.resources[f"VirtualMachine/{name}"].spec, state, lambda *_: "unused")  # live slots
    return bool(diff(spec.model_dump(), {**state, "gpus": []}, frozenset({"clone_from", "linked_clone"})))


@dataclass
class Loop:
    """The per-VM loop's cost at --vms VMs: its one listing of every VM as measured, plus its per-VM reads
    measured on the sample and scaled (the listing is not scaled: it is made once whatever the sample)."""

    wall: float
    cpu: float
    server: float
    requests: float
    trips: float
    sample_wall: float  # as measured: the listing and the sample's reads
    sample_trips: int
    sample_requests: int


def per_vm_loop(settings: Any, desired: DesiredStack, sample: int, server_pid: int, threads: int, scale: float,
                between: Callable[[], None] | None = None, slices: int = 1) -> tuple[Loop, int]:
    """List once, then per VM one round trip per property: one VM after another (threads=1), or ``threads``
    VMs at a time, each thread on its own runspace pool (a pool runs one pipeline at a time here). The sample
    is read in ``slices`` parts with ``between`` called (unmeasured) before each: virtplane's passes, so both
    sides of the ratio run under the same load of a shared machine."""
    clients = [HypervClient(settings) for _ in range(threads)]
    for client in clients:
        client.run([pipe(Cmd("Get-VMHost"))], "open the runspace pool")  # log in outside the measurement
    with Meter(server_pid) as listing:
        listed = clients[0].run([pipe(Cmd("Get-VM"))], "list the VMs").objects
    ids = {vm.text("Name"): str(vm.get("VMId")) for vm in listed}
    before = sum(client.round_trips for client in clients)
    names = [name_of(index) for index in range(sample)]
    wall = cpu = server = 0.0
    requests = drifted = 0
    for part in range(slices):
        if between is not None:
            between()
        chunk = names[part::slices]
        with Meter(server_pid) as meter:
            if threads == 1:
                drifted += sum(read_one(clients[0], desired, name, ids[name]) for name in chunk)
            else:
                def worker(slot: int, chunk: list[str] = chunk) -> int:
                    return sum(read_one(clients[slot], desired, name, ids[name]) for name in chunk[slot::threads])

                with ThreadPoolExecutor(threads) as pool:
                    drifted += sum(pool.map(worker, range(threads)))
        wall, cpu, server, requests = (wall + meter.wall, cpu + meter.cpu, server + meter.server,
                                       requests + meter.requests)
    trips = sum(client.round_trips for client in clients) - before
    for client in clients:
        client.close()
    loop = Loop(wall=listing.wall + wall * scale, cpu=listing.cpu + cpu * scale,
                server=listing.server + server * scale, requests=listing.requests + requests * scale,
                trips=1 + trips * scale, sample_wall=listing.wall + wall, sample_trips=1 + trips,
                sample_requests=listing.requests + requests)
    return loop, drifted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--naive", type=int, default=100, help="VMs the per-VM loop reads (scaled to --vms)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=100, help="VMs per seeding pipeline")
    parser.add_argument("--threads", type=int, default=8, help="runspace pools of the concurrent loop")
    parser.add_argument("--runs", type=int, default=5, help="times the comparison is made (ratio min/median/max)")
    args = parser.parse_args()
    sample = min(args.naive, args.vms)

    work = Path(tempfile.mkdtemp(prefix="drift-hyperv-"))
    instance = start_simulator(work)
    try:
        env = {**instance.environ(), "HYPERV_TLS": "false"}
        hv = HypervProvider.connect(HypervProvider.settings_from(ENDPOINT, {"operation_timeout": 600}, env))
        started = time.perf_counter()
        seed(hv.client, args.vms, args.batch)
        print(f"seeded {args.vms} VMs in {time.perf_counter() - started:.1f} s "
              f"({-(-args.vms // args.batch)} pipelines)")
        desired = desired_stack(args.vms)

        scale = args.vms / sample
        ratios: list[float] = []
        for run in range(max(1, args.runs)):
            runs: list[tuple[Meter, int]] = []
            loop, drifted = per_vm_loop(hv.settings, desired, sample, instance.pid, 1, scale, slices=args.repeat,
                                        between=lambda runs=runs: runs.append(
                                            virtplane_drift(hv, desired, args.vms, instance.pid)))
            ours, our_trips = sorted(runs, key=lambda run: run[0].wall)[len(runs) // 2]
            assert drifted == 0, f"the per-VM loop found drift on {drifted} VMs"
            ratios.append(loop.wall / ours.wall)
            print(f"run {run + 1}: virtplane {ours.wall:.2f} s, per-VM loop {loop.wall:.1f} s (scaled): "
                  f"{ratios[-1]:.1f}x; load average {os.getloadavg()[0]:.1f}", flush=True)
        wide, drifted = per_vm_loop(hv.settings, desired, sample, instance.pid, args.threads, scale)
        assert drifted == 0, f"the concurrent per-VM loop found drift on {drifted} VMs"

        print(f"\n{args.vms} VMs; virtplane: median of {args.repeat} passes "
              f"({', '.join(f'{run[0].wall:.2f}' for run in runs)} s); per-VM loop: {sample} VMs, scaled x{scale:g}")
        print(f"{'':32} {'time':>9} {'round trips':>12} {'HTTP requests':>14} {'client CPU':>11} {'sim CPU':>9}")
        print(f"{'virtplane drift (build_plan)':32} {ours.wall:8.2f}s {our_trips:12d} {ours.requests:14d} "
              f"{ours.cpu:10.2f}s {ours.server:8.2f}s")
        print(f"{'per-VM cmdlet loop (scaled)':32} {loop.wall:8.2f}s {round(loop.trips):12d} "
              f"{round(loop.requests):14d} {loop.cpu:10.2f}s {loop.server:8.2f}s")
        print(f"{'per-VM cmdlet loop (measured)':32} {loop.sample_wall:8.2f}s {loop.sample_trips:12d} "
              f"{loop.sample_requests:14d}")
        print(f"{f'concurrent loop, {args.threads} pools (scaled)':32} {wide.wall:8.2f}s "
              f"{round(wide.trips):12d} {round(wide.requests):14d} {wide.cpu:10.2f}s {wide.server:8.2f}s")
        ordered = sorted(ratios)
        print(f"\nper-VM loop / virtplane over {len(ratios)} runs: min {ordered[0]:.1f}x, median "
              f"{ordered[len(ordered) // 2]:.1f}x, max {ordered[-1]:.1f}x (goal >= 25x); load average "
              f"{os.getloadavg()[0]:.1f}")
        print(f"baseline's code path: bench/drift_hyperv.py per_vm_loop: Get-VM once, then per VM Get-VM -Id, and "
              f"Get-VM -Id piped to {', '.join(PER_VM)} ({1 + len(PER_VM)} pipelines: what virtplane's one pipeline "
              "reads), mapped and diffed as virtplane does")
        print(f"last run: {loop.wall / ours.wall:.1f}x sequential, "
              f"{wide.wall / ours.wall:.1f}x concurrent; round trips: {loop.trips / our_trips:.0f}x; "
              f"HTTP requests: {loop.requests / ours.requests:.0f}x")
        hv.close()
    finally:
        instance.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
