"""Drift over N VMs on fakepve (a fake Proxmox VE cluster): virtplane vs. sequential and concurrent proxmoxer loops.

fakepve runs as its own process with a latency added to every response (a LAN PVE cluster: ~20 ms), and is
seeded with N VMs spread over nodes pve1..pve3, each configured exactly as virtplane's Proxmox driver creates
it for a declared spec (ownership marker included) and as PVE stores it afterwards. A generated stack declares
those VMs as they are, so the drift pass must find N owned VMs and no drift. Measured in one run:
  * virtplane drift in-process, end to end (the median of --repeat passes), and its phases: evaluating the
    stack program, connecting (login), reading and diffing (build_plan)
  * virtplane drift as a process (`virtplane drift STACK --json`: Python start-up and imports included)
  * a sequential proxmoxer loop (what a typical script does): log in, list the VMs once
    (/cluster/resources), then GET each VM's /config one after another (virtplane reads /pending instead:
    the same one request per VM)
  * concurrent proxmoxer loops: the same login, list and one config GET per VM, with 8, 16, 32 and 64 GETs in
    flight (--threads) on a thread pool sharing one ProxmoxAPI, whose session keeps that many pooled
    connections; the fastest is the baseline ("best tuned"), its thread count printed
and the HTTP requests each made (counted in this process, at http.client's putrequest), the client CPU time,
and fakepve's CPU time. The ratios are each loop's time over virtplane's drift.

With --workers 3, fakepve serves the API as a PVE node does, with 3 workers each request holds for --service-ms
(the network's latency holds none), and virtplane's drift is measured with 1 to 64 reads in flight (the
concurrency sweep behind vm_reader.CONCURRENT_READS).

    python bench/drift_proxmox.py [--vms 1000] [--latency-ms 20] [--repeat 3] [--threads 8,16,32,64] [--no-cli]
                                  [--sequential 1000] [--workers 3 --service-ms 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from proxmoxer import ProxmoxAPI
from requests.adapters import HTTPAdapter

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.cli_run import run_drift  # noqa: E402
from bench.process_cpu import process_cpu  # noqa: E402
from bench.request_counter import RequestCounter  # noqa: E402
from virtplane.engine import build_plan, connected  # noqa: E402
from virtplane.evaluate import evaluate  # noqa: E402
from virtplane.plan import Plan  # noqa: E402
from virtplane.providers.base import Owner, description_marker  # noqa: E402
from virtplane.providers.proxmox import vm_reader  # noqa: E402
from virtplane.providers.proxmox.config import (  # noqa: E402
    NetworkNames,
    create_config,
    join_options,
    new_slot,
    split_options,
)
from virtplane.providers.proxmox.ownership import encode_tags  # noqa: E402
from virtplane.providers.registry import provider_class  # noqa: E402
from virtplane.slots import resolve_vm  # noqa: E402
from virtplane.specs import VirtualMachineSpec  # noqa: E402
from virtplane_lab import fakepve  # noqa: E402

PROJECT, STACK_NAME = "bench", "dev"
STACK = f"{PROJECT}/{STACK_NAME}"
NODES = ("pve1", "pve2", "pve3")
STORAGE = "local-lvm"  # fakepve's storage for VM disks
BRIDGE = "vmbr0"  # the endpoint's bridge (PROXMOX_VE_BRIDGE's default)
NETWORK, VLAN = "bench-net", 120
FIRST_VMID = 100
DRIVE_KEY = re.compile(r"^(?:(?:scsi|sata|ide|virtio)\d+|efidisk0)$")
BOOT_PREFIXES = ("ide", "sata", "scsi", "virtio")  # where PVE looks for the boot disk, in order

PROGRAM = f'''
import json
from pathlib import Path
import pulumi
import virtplane

ep = virtplane.Endpoint("bench", kind="proxmox")
opts = pulumi.ResourceOptions(provider=ep)
networks = {{"{NETWORK}": virtplane.Network("{NETWORK}", vlan={VLAN}, opts=opts)}}
for name, spec in json.loads(Path(__file__).with_name("vms.json").read_text()).items():
    virtplane.VirtualMachine(name, cpus=spec["cpus"], sockets=spec["sockets"], memory=spec["memory"],
        node=spec["node"], machine=spec["machine"], disks=[virtplane.Disk(**d) for d in spec["disks"]],
        nics=[virtplane.Nic(networks.get(n["network"], n["network"]), n["adapter"]) for n in spec["nics"]],
        firmware=spec["firmware"], secure_boot=spec["secure_boot"], guest_os=spec["guest_os"],
        power=spec["power"], nested_virtualization=spec["nested_virtualization"], tags=spec["tags"], opts=opts)
'''

# Three shapes, cycled: a web VM, a database VM (UEFI, two buses) and a stopped batch VM. None asks for nested
# virtualization: that sends the VM through host-fact placement, which counts memory, and fakepve's nodes report
# 8 GiB each, so hundreds of VMs never fit; the benches measure applying and reading, not placement.
SHAPES: tuple[dict[str, Any], ...] = (
    {"cpus": 2, "sockets": 1, "memory": 2048, "machine": None, "firmware": "bios", "secure_boot": False,
     "disks": [{"size": 20, "storage": STORAGE, "thin": True, "bus": "paravirtual"}],
     "nics": [{"network": NETWORK, "adapter": "paravirtual"}], "guest_os": "linux", "power": "on",
     "nested_virtualization": False, "tags": ["web"]},
    {"cpus": 4, "sockets": 2, "memory": 8192, "machine": "q35", "firmware": "uefi", "secure_boot": True,
     "disks": [{"size": 40, "storage": STORAGE, "thin": True, "bus": "paravirtual"},
               {"size": 100, "storage": STORAGE, "thin": True, "bus": "virtio-blk"}],
     "nics": [{"network": NETWORK, "adapter": "paravirtual"}], "guest_os": "linux", "power": "on",
     "nested_virtualization": False, "tags": ["db", "prod"]},
    {"cpus": 1, "sockets": 1, "memory": 1024, "machine": None, "firmware": "bios", "secure_boot": False,
     "disks": [{"size": 10, "storage": STORAGE, "thin": True, "bus": "sata"}],
     "nics": [{"network": BRIDGE, "adapter": "e1000"}], "guest_os": "other", "power": "off",
     "nested_virtualization": False, "tags": []},
)


# ---- measuring -------------------------------------------------------------------------------------------


@dataclass
class Measured:
    seconds: float
    requests: int | None
    client_cpu: float | None
    server_cpu: float | None
    value: Any = None


def measure(fn: Callable[[RequestCounter], Any], server_pid: int) -> Measured:
    server_before = process_cpu(server_pid)
    with RequestCounter() as counter:
        cpu_before = time.process_time()
        started = time.perf_counter()
        value = fn(counter)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
    server_after = process_cpu(server_pid)
    server = None if server_before is None or server_after is None else server_after - server_before
    return Measured(seconds, counter.count, cpu, server, value)


# ---- the seeded cluster and the stack declaring it ------------------------------------------------------


def declared_specs(n: int) -> dict[str, dict[str, Any]]:
    """Resource name -> VirtualMachine inputs: the shapes cycled, nodes pve1..pve3 in turn."""
    return {f"bench-{i:05d}": dict(SHAPES[i % len(SHAPES)], node=NODES[i % len(NODES)]) for i in range(n)}


def driver_config(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """What virtplane's Proxmox driver sends to create this VM (VirtualMachineDriver.create, no clone)."""
    spec = resolve_vm(VirtualMachineSpec.model_validate(inputs), None, new_slot).with_creation_defaults()
    storages = [disk.storage or STORAGE for disk in spec.disks or []]
    efi_storage = (storages[0] if storages else STORAGE) if spec.firmware == "uefi" else None
    config = create_config(spec, storages, efi_storage, NetworkNames(BRIDGE, {NETWORK: VLAN}))
    config.update(name=name, description=description_marker(Owner(STACK, name)), tags=encode_tags(spec.tags))
    return config


def as_stored(vmid: int, config: dict[str, Any]) -> dict[str, Any]:
    """The configuration as PVE stores it once the create task has run: new disks (``storage:size``) allocated
    as ``storage:vm-<vmid>-disk-<n>,size=…``, a MAC on each NIC, and the keys PVE adds itself."""
    stored = dict(config)
    drives = sorted(key for key in config if DRIVE_KEY.match(key))
    numbers: dict[str, int] = {}
    for key in drives:  # PVE allocates in key order, numbering the disks per storage
        volume, options = split_options(str(config[key]))
        storage, _, size = str(volume).partition(":")
        numbers[storage] = numbers.get(storage, -1) + 1
        options["size"] = "528K" if key == "efidisk0" else f"{size}G"
        stored[key] = join_options(f"{storage}:vm-{vmid}-disk-{numbers[storage]}", dict(sorted(options.items())))
    nics = sorted(key for key in config if key.startswith("net"))
    for index, key in enumerate(nics):
        model, options = split_options(str(config[key]))
        mac = f"BC:24:{index:02X}:{vmid >> 16 & 255:02X}:{vmid >> 8 & 255:02X}:{vmid & 255:02X}"
        stored[key] = join_options(f"{model}={mac}", dict(sorted(options.items())))
    first_disk = [key for prefix in BOOT_PREFIXES for key in drives if key.startswith(prefix)][:1]
    stored["boot"] = "order=" + ";".join(first_disk + nics[:1])
    stored["meta"] = "creation-qemu=10.0.2,ctime=1760000000"
    stored["smbios1"] = f"uuid={uuid.UUID(int=vmid)}"
    stored["vmgenid"] = str(uuid.UUID(int=vmid << 64))
    return stored


def write_guests(path: Path, specs: dict[str, dict[str, Any]]) -> None:
    guests = []
    for index, (name, inputs) in enumerate(specs.items()):
        vmid = FIRST_VMID + index
        guests.append({"vmid": vmid, "name": name, "node": inputs["node"],
                       "status": "running" if inputs["power"] == "on" else "stopped",
                       "config": as_stored(vmid, driver_config(name, inputs))})
    path.write_text(json.dumps({"guests": guests}))


def write_stack(directory: Path, specs: dict[str, dict[str, Any]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Pulumi.yaml").write_text(f"name: {PROJECT}\nruntime: python\n")
    (directory / f"Pulumi.{STACK_NAME}.yaml").write_text("config: {}\n")
    (directory / "__main__.py").write_text(PROGRAM)
    (directory / "vms.json").write_text(json.dumps(specs))


# ---- the two contenders ---------------------------------------------------------------------------------


@dataclass
class DriftRun:
    """One virtplane drift pass: the plan, (seconds, HTTP requests) of each phase, and the client CPU seconds of
    the read and diff (build_plan)."""

    plan: Plan
    phases: dict[str, tuple[float, int]]
    read_cpu: float = 0.0


def virtplane_drift(stack_dir: Path, counter: RequestCounter) -> DriftRun:
    """What `virtplane drift` does, in this process: evaluate, connect (log in), then read and diff."""
    phases: dict[str, tuple[float, int]] = {}
    before, started = counter.count, time.perf_counter()

    def phase(name: str) -> None:
        nonlocal before, started
        phases[name] = (time.perf_counter() - started, counter.count - before)
        before, started = counter.count, time.perf_counter()

    desired = evaluate(stack_dir, STACK_NAME)
    phase("evaluate")
    with connected(desired) as providers:
        phase("connect")
        cpu = time.process_time()
        plan = build_plan(desired, providers)
        cpu = time.process_time() - cpu
        phase("read + diff")
    return DriftRun(plan, phases, cpu)


def log_in(instance: fakepve.FakepveInstance) -> ProxmoxAPI:
    address = urlsplit(instance.url)
    return ProxmoxAPI(address.hostname, port=address.port, user=instance.user, password=instance.password,
                      verify_ssl=instance.ca_file)


SEQUENTIAL = ("bench/drift_proxmox.py sequential_loop: proxmoxer ProxmoxAPI login, GET /cluster/resources?type=vm, "
              "then GET /nodes/{node}/qemu/{vmid}/config per VM, one after another")
CONCURRENT = ("bench/drift_proxmox.py concurrent_loop: the same login, list and per-VM config GET on a "
              "ThreadPoolExecutor of N threads sharing one ProxmoxAPI, its requests session keeping N connections")


def sequential_loop(instance: fakepve.FakepveInstance, sample: int) -> int:
    """A typical script: log in, list the VMs once, then read every VM's configuration one after another (the
    first ``sample`` VMs)."""
    api = log_in(instance)
    configs = {}
    for row in api.cluster.resources.get(type="vm")[:sample]:
        configs[row["vmid"]] = api.nodes(row["node"]).qemu(row["vmid"]).config.get()
    return len(configs)


def concurrent_loop(instance: fakepve.FakepveInstance, threads: int) -> int:
    """The same script with ``threads`` config GETs in flight: one login, one list, then the per-VM GETs on a
    thread pool sharing the ProxmoxAPI, its requests session keeping ``threads`` connections (requests keeps
    10 by default: the others would be opened, TLS handshake included, and dropped on every request)."""
    api = log_in(instance)
    api._store["session"].mount("https://", HTTPAdapter(pool_connections=1, pool_maxsize=threads))
    rows = api.cluster.resources.get(type="vm")
    with ThreadPoolExecutor(max_workers=threads) as pool:
        configs = dict(pool.map(lambda row: (row["vmid"], api.nodes(row["node"]).qemu(row["vmid"]).config.get()),
                                rows))
    return len(configs)


def verify(plan: Plan, n: int) -> int:
    """The drift must find every seeded VM owned and unchanged; returns how many it found."""
    vms = [item for item in plan.resources if item.kind == "VirtualMachine"]
    owned = sum(1 for item in vms if item.observed is not None)
    pending = plan.pending
    if owned != n or len(vms) != n or pending:
        details = "; ".join(f"{item.key}: {item.action.value} "
                            f"{[(c.change.path, c.change.old, c.change.new) for c in item.changes]}"
                            for item in pending[:5])
        raise SystemExit(f"bench setup is wrong: expected {n} owned VMs and no drift, found {owned} owned of "
                         f"{len(vms)} declared and {len(pending)} with drift ({details or 'none listed'})")
    return owned


# ---- main -----------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=1_000)
    parser.add_argument("--latency-ms", type=float, default=20.0,
                        help="latency fakepve adds to every response (a LAN PVE cluster: ~20 ms)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="virtplane drift passes (the median is reported; the sequential loop runs once)")
    parser.add_argument("--threads", default="8,16,32,64",
                        help="thread counts of the concurrent loops (the fastest is the baseline)")
    parser.add_argument("--sequential", type=int, default=1_000,
                        help="VMs the sequential loop reads (scaled to every VM)")
    parser.add_argument("--no-cli", action="store_true", help="skip the `virtplane drift` process run")
    parser.add_argument("--workers", type=int, default=0,
                        help="serve the API with this many workers (real PVE: 3) and sweep virtplane's concurrency")
    parser.add_argument("--service-ms", type=float, default=5.0, help="with --workers: ms a request holds a worker")
    args = parser.parse_args()
    n = args.vms
    thread_counts = [int(t) for t in args.threads.split(",") if t]

    work = Path(tempfile.mkdtemp(prefix="virtplane-bench-pve-"))
    specs = declared_specs(n)
    write_guests(work / "guests.json", specs)
    stack_dir = work / "stack"
    write_stack(stack_dir, specs)
    provider_class("proxmox")  # import the driver now, as `virtplane drift` does before it connects

    served = f"{args.workers} API workers, {args.service_ms:g} ms each" if args.workers else "unlimited workers"
    print(f"Seeding fakepve with {n} VMs owned by {STACK} on {', '.join(NODES)} "
          f"({args.latency_ms:g} ms per request, {served}) …", flush=True)
    started = time.perf_counter()
    # fakepve scales its latency by time_scale (0 would remove it): measure in real time, time_scale 1.
    instance = fakepve.start(work, time_scale=1.0, latency=args.latency_ms / 1000, guests=work / "guests.json",
                             workers=args.workers, service_ms=args.service_ms)
    print(f"  ready in {time.perf_counter() - started:.1f} s", flush=True)
    saved_environ = dict(os.environ)
    os.environ.update(instance.environ())
    sweep: dict[int, float] = {}
    try:
        passes = []
        for _ in range(max(1, args.repeat)):
            passes.append(measure(lambda counter: virtplane_drift(stack_dir, counter), instance.pid))
            owned = verify(passes[-1].value.plan, n)
        ours = sorted(passes, key=lambda m: m.seconds)[len(passes) // 2]  # the median pass
        run: DriftRun = ours.value

        cli = None
        if not args.no_cli:
            cli = run_drift(stack_dir, dict(os.environ))
            if cli.returncode != 0:
                raise SystemExit(f"virtplane drift exited {cli.returncode} (0: no drift expected): {cli.stderr}")

        if args.workers:
            default = vm_reader.CONCURRENT_READS
            for in_flight in (1, 2, 4, 8, 16, 32, 64):
                vm_reader.CONCURRENT_READS = in_flight
                sweep[in_flight] = measure(lambda counter: virtplane_drift(stack_dir, counter), instance.pid).seconds
            vm_reader.CONCURRENT_READS = default

        sample = min(n, args.sequential)
        loop = measure(lambda counter: sequential_loop(instance, sample), instance.pid)
        if loop.value != sample:
            raise SystemExit(f"the sequential loop read {loop.value} configurations, expected {sample}")
        loops = {}
        for threads in thread_counts:
            loops[threads] = measure(lambda counter, t=threads: concurrent_loop(instance, t), instance.pid)
            if loops[threads].value != n:
                raise SystemExit(f"the concurrent loop read {loops[threads].value} configurations, expected {n}")
    finally:
        instance.stop()
        os.environ.clear()
        os.environ.update(saved_environ)
    shutil.rmtree(work, ignore_errors=True)  # kept when something failed, for fakepve/fakepve.log

    def cpu(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    scale = n / sample
    best_threads = min(loops, key=lambda t: loops[t].seconds)
    best = loops[best_threads]
    median = f", median of {len(passes)}" if len(passes) > 1 else ""
    rows = [
        (f"virtplane drift, in-process{median}", ours.seconds, ours.requests, ours.client_cpu, ours.server_cpu),
        *[(f"  {name}", seconds, made, None, None) for name, (seconds, made) in run.phases.items()],
        ("virtplane drift --json (a process, imports incl.)", cli.seconds if cli else None, None, None, None),
        (f"sequential proxmoxer loop ({sample} VMs, scaled)", loop.seconds * scale, int(loop.requests * scale),
         loop.client_cpu * scale, (loop.server_cpu or 0) * scale),
        *[(f"concurrent proxmoxer loop ({threads} threads)", m.seconds, m.requests, m.client_cpu, m.server_cpu)
          for threads, m in loops.items()],
    ]
    print(f"\nDrift over {n} VMs on fakepve ({owned} owned, {len(run.plan.pending)} with drift); "
          f"{args.latency_ms:g} ms added per request; {served}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'':50} {'total s':>8} {'ms/VM':>7} {'HTTP requests':>14} {'client CPU s':>13} {'server CPU s':>13}")
    for label, total, requests_made, client, server in rows:
        if total is None:
            continue
        made = "-" if requests_made is None else f"{requests_made:,}"
        print(f"{label:50} {total:8.2f} {total / n * 1000:7.2f} {made:>14} {cpu(client):>13} {cpu(server):>13}")
    if len(passes) > 1:
        print(f"  (virtplane drift passes: {', '.join(f'{m.seconds:.2f}' for m in passes)} s)")
    print(f"\n  virtplane's client CPU for the read and diff: {run.read_cpu / n * 1000:.3f} ms per VM (goal <= 0.5); "
          f"the whole in-process pass, evaluation included: {ours.client_cpu / n * 1000:.3f} ms per VM")
    if cli is not None:
        exit_s = cli.seconds - cli.phases.get("total", 0)
        print(f"  the drift process's phases (s): {cli.phase_text()}; interpreter exit {exit_s:.2f}")
        print(f"  fixed cost (everything but the read, start to exit): {cli.seconds - cli.phases.get('read', 0):.2f} s "
              f"(goal < 0.5 s); peak resident memory {cli.peak_rss_mib:.0f} MiB")
    if sweep:
        print(f"\nvirtplane drift against {args.workers} API workers, by reads in flight (vm_reader.CONCURRENT_READS, "
              f"now {vm_reader.CONCURRENT_READS}):")
        for in_flight, seconds in sweep.items():
            print(f"  {in_flight:3d} in flight: {seconds:6.2f} s")
    print("\nBaselines' code paths")
    print(f"  sequential : {SEQUENTIAL}")
    print(f"  concurrent : {CONCURRENT}")
    print(f"  virtplane  : GET /cluster/resources?type=vm, then GET /nodes/{{node}}/qemu/{{vmid}}/pending per VM, "
          f"{vm_reader.CONCURRENT_READS} in flight (providers/proxmox/vm_reader.py)")
    print("\nRatios")
    sequential_s = loop.seconds * scale
    print(f"  best concurrent loop: {best_threads} threads ({best.seconds:.2f} s)")
    print(f"  {'best concurrent loop / virtplane in-process':46}: {best.seconds / ours.seconds:6.2f}x  (goal >= 0.95x)")
    print(f"  {'sequential loop / virtplane in-process':46}: {sequential_s / ours.seconds:6.1f}x")
    if cli is not None:
        print(f"  {'sequential loop / drift process':46}: {sequential_s / cli.seconds:6.1f}x  (goal >= 15x)")
        print(f"  {'best concurrent loop / drift process':46}: {best.seconds / cli.seconds:6.2f}x")
    print(f"  HTTP requests: virtplane {ours.requests:,}, sequential loop {int(loop.requests * scale):,}, "
          f"best concurrent loop {best.requests:,}")


if __name__ == "__main__":
    main()
