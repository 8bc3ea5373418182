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
  * a concurrent proxmoxer loop: the same login, list and one config GET per VM, with 32 GETs in flight
    (--threads) on a thread pool sharing one ProxmoxAPI, whose session keeps 32 pooled connections (what
    virtplane's own client does)
and the HTTP requests each made (counted in this process, at http.client's putrequest), the client CPU time,
and fakepve's CPU time. The ratios are each loop's time over virtplane's in-process drift.

    python bench/drift_proxmox.py [--vms 1000] [--latency-ms 20] [--repeat 3] [--threads 32] [--no-cli]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
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

from bench.process_cpu import process_cpu  # noqa: E402
from bench.request_counter import RequestCounter  # noqa: E402
from virtplane.engine import build_plan, connected  # noqa: E402
from virtplane.evaluate import evaluate  # noqa: E402
from virtplane.plan import Plan  # noqa: E402
from virtplane.providers.base import Owner, description_marker  # noqa: E402
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
    """One virtplane drift pass: the plan, and (seconds, HTTP requests) of each phase."""

    plan: Plan
    phases: dict[str, tuple[float, int]]


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
        plan = build_plan(desired, providers)
        phase("read + diff")
    return DriftRun(plan, phases)


def log_in(instance: fakepve.FakepveInstance) -> ProxmoxAPI:
    address = urlsplit(instance.url)
    return ProxmoxAPI(address.hostname, port=address.port, user=instance.user, password=instance.password,
                      verify_ssl=instance.ca_file)


def sequential_loop(instance: fakepve.FakepveInstance) -> int:
    """A typical script: log in, list the VMs once, then read every VM's configuration one after another."""
    api = log_in(instance)
    configs = {}
    for row in api.cluster.resources.get(type="vm"):
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
    parser.add_argument("--threads", type=int, default=32, help="config GETs in flight in the concurrent loop")
    parser.add_argument("--no-cli", action="store_true", help="skip the `virtplane drift` process run")
    args = parser.parse_args()
    n = args.vms

    work = Path(tempfile.mkdtemp(prefix="virtplane-bench-pve-"))
    specs = declared_specs(n)
    write_guests(work / "guests.json", specs)
    stack_dir = work / "stack"
    write_stack(stack_dir, specs)
    provider_class("proxmox")  # import the driver now, as `virtplane drift` does before it connects

    print(f"Seeding fakepve with {n} VMs owned by {STACK} on {', '.join(NODES)} "
          f"({args.latency_ms:g} ms per request) …", flush=True)
    started = time.perf_counter()
    # fakepve scales its latency by time_scale (0 would remove it): measure in real time, time_scale 1.
    instance = fakepve.start(work, time_scale=1.0, latency=args.latency_ms / 1000, guests=work / "guests.json")
    print(f"  ready in {time.perf_counter() - started:.1f} s", flush=True)
    saved_environ = dict(os.environ)
    os.environ.update(instance.environ())
    try:
        passes = []
        for _ in range(max(1, args.repeat)):
            passes.append(measure(lambda counter: virtplane_drift(stack_dir, counter), instance.pid))
            owned = verify(passes[-1].value.plan, n)
        ours = sorted(passes, key=lambda m: m.seconds)[len(passes) // 2]  # the median pass
        run: DriftRun = ours.value

        cli_seconds = None
        if not args.no_cli:
            started = time.perf_counter()
            cli = subprocess.run([sys.executable, "-m", "virtplane", "drift", str(stack_dir), "--json"],
                                 env=dict(os.environ), capture_output=True, text=True, check=False)
            cli_seconds = time.perf_counter() - started
            if cli.returncode != 0:
                raise SystemExit(f"virtplane drift exited {cli.returncode} (0: no drift expected): "
                                 f"{cli.stderr.strip() or cli.stdout[-500:]}")

        loop = measure(lambda counter: sequential_loop(instance), instance.pid)
        if loop.value != n:
            raise SystemExit(f"the sequential loop read {loop.value} configurations, expected {n}")
        concurrent = measure(lambda counter: concurrent_loop(instance, args.threads), instance.pid)
        if concurrent.value != n:
            raise SystemExit(f"the concurrent loop read {concurrent.value} configurations, expected {n}")
    finally:
        instance.stop()
        os.environ.clear()
        os.environ.update(saved_environ)
    shutil.rmtree(work, ignore_errors=True)  # kept when something failed, for fakepve/fakepve.log

    def cpu(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    median = f", median of {len(passes)}" if len(passes) > 1 else ""
    rows = [
        (f"virtplane drift, in-process{median}", ours.seconds, ours.requests, ours.client_cpu, ours.server_cpu),
        *[(f"  {name}", seconds, made, None, None) for name, (seconds, made) in run.phases.items()],
        ("virtplane drift --json (a process, imports incl.)", cli_seconds, None, None, None),
        ("sequential proxmoxer loop", loop.seconds, loop.requests, loop.client_cpu, loop.server_cpu),
        (f"concurrent proxmoxer loop ({args.threads} threads)", concurrent.seconds, concurrent.requests,
         concurrent.client_cpu, concurrent.server_cpu),
    ]
    print(f"\nDrift over {n} VMs on fakepve ({owned} owned, {len(run.plan.pending)} with drift); "
          f"{args.latency_ms:g} ms added per request")
    print(f"{'':50} {'total s':>8} {'ms/VM':>7} {'HTTP requests':>14} {'client CPU s':>13} {'server CPU s':>13}")
    for label, total, requests_made, client, server in rows:
        if total is None:
            continue
        made = "-" if requests_made is None else f"{requests_made:,}"
        print(f"{label:50} {total:8.2f} {total / n * 1000:7.2f} {made:>14} {cpu(client):>13} {cpu(server):>13}")
    if len(passes) > 1:
        print(f"  (virtplane drift passes: {', '.join(f'{m.seconds:.2f}' for m in passes)} s)")
    concurrent_label = f"concurrent-{args.threads} loop"
    print("\nRatios")
    print(f"  {'sequential loop / virtplane drift':38}: {loop.seconds / ours.seconds:6.1f}x  (target >= 15x)")
    print(f"  {concurrent_label + ' / virtplane drift':38}: {concurrent.seconds / ours.seconds:6.1f}x")
    if cli_seconds is not None:
        print(f"  {'sequential loop / drift process':38}: {loop.seconds / cli_seconds:6.1f}x")
        print(f"  {concurrent_label + ' / drift process':38}: {concurrent.seconds / cli_seconds:6.1f}x")
    print(f"  HTTP requests: virtplane {ours.requests:,}, sequential loop {loop.requests:,}, "
          f"{concurrent_label} {concurrent.requests:,}")


if __name__ == "__main__":
    main()
