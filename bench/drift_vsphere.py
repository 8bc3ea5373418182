"""Drift over N VMs on the vSphere simulator: virtplane vs. one raw pyVmomi pass vs. naive per-VM loops.

Everything is measured in one run, on the same simulator, so the ratios are what matters:
  * virtplane end to end (`virtplane drift STACK --json` as a process: start-up, imports, evaluation of the
    program, login, reads, diff and report), with its phases (VIRTPLANE_TIMINGS) and its peak resident memory
  * virtplane, read and diff alone (observe + plan, connection already open), with its streaming reader of
    the PropertyCollector's pages (the default) and with pyVmomi reading them
  * one raw pyVmomi PropertyCollector pass of the same fields (the baseline of the goal: the fastest read
    pyVmomi offers, no normalization, no diff), and the same pass through virtplane's streaming reader
  * a naive sequential pyvmomi loop, on a sample (--naive VMs), scaled per VM: what a reasonable per-VM script
    does, reading each VM's ``config``, ``runtime`` and ``customValue`` once (three round trips a VM) and each
    host's name once
  * the same per-VM reads on 32 threads (--threads), over every VM: one ServiceInstance shared by the threads,
    its connection pool raised to 32 (pyvmomi's SOAP stub is made for sharing: each call takes its own pooled
    HTTP connection under a lock)
  * one raw PropertyCollector pass of the same fields (the limit: no normalization, no diff)
and the SOAP requests each made (HTTP requests to the SDK endpoint), this process's CPU time and the
simulator's CPU time during each.

    python bench/drift_vsphere.py [--vms 10000] [--naive 1000] [--threads 32] [--delay-ms 10]

--naive 0 and --threads 0 leave the per-VM loops out (at 10,000 VMs they take minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.cli_run import run_drift  # noqa: E402
from bench.process_cpu import process_cpu  # noqa: E402
from bench.request_counter import RequestCounter  # noqa: E402
from virtplane.engine import build_plan, connected  # noqa: E402
from virtplane.evaluate import evaluate  # noqa: E402
from virtplane.providers.vsphere.collector import retrieve  # noqa: E402
from virtplane.providers.vsphere.vm import PATHS  # noqa: E402
from virtplane_lab import vcsim  # noqa: E402

STACK = "bench/dev"
PROGRAM = '''
import json
from pathlib import Path
import pulumi
import virtplane

ep = virtplane.Endpoint("bench", kind="vsphere")
opts = pulumi.ResourceOptions(provider=ep)
for name, spec in json.loads(Path(__file__).with_name("vms.json").read_text()).items():
    virtplane.VirtualMachine(name, cpus=spec["cpus"], memory=spec["memory"],
        disks=[virtplane.Disk(**d) for d in spec["disks"]], nics=[virtplane.Nic(**n) for n in spec["nics"]],
        firmware=spec["firmware"], guest_os=spec["guest_os"], power=spec["power"],
        nested_virtualization=spec["nested_virtualization"], tags=spec["tags"], opts=opts)
'''


@dataclass
class Measured:
    seconds: float
    requests: int
    client_cpu: float
    server_cpu: float | None
    value: Any = None


def timed(fn: Callable[[], Any], server_pid: int) -> Measured:
    server_before = process_cpu(server_pid)
    with RequestCounter() as counter:
        cpu_before = time.process_time()
        started = time.perf_counter()
        value = fn()
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
    server_after = process_cpu(server_pid)
    server = None if server_before is None or server_after is None else server_after - server_before
    return Measured(seconds, counter.count, cpu, server, value)


def connect(instance: vcsim.VcsimInstance) -> vim.ServiceInstance:
    host, port = instance.host.rsplit(":", 1)
    return SmartConnect(host=host, port=int(port), user=instance.user, pwd=instance.password,
                        sslContext=ssl.create_default_context(cafile=instance.ca_file))


def vm_view(si: vim.ServiceInstance) -> vim.view.ContainerView:
    content = si.RetrieveContent()
    return content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)


RAW_PASS = ("bench/drift_vsphere.py raw_pass: RetrievePropertiesEx + ContinueRetrievePropertiesEx (maxObjects "
            "1,000) over a ContainerView of every VM, the 16 paths of virtplane's PATHS, deserialized by pyVmomi")
NAIVE = ("bench/drift_vsphere.py read_vm: per VM vm.config, vm.runtime, vm.customValue (3 SOAP calls), each "
         "host's name once")


def stream_pass(si: vim.ServiceInstance) -> int:
    """The same pass through virtplane's streaming reader (providers/vsphere/stream.py)."""
    content = si.RetrieveContent()
    return len(retrieve(content, content.rootFolder, vim.VirtualMachine, PATHS, stream=True))


def raw_pass(si: vim.ServiceInstance) -> int:
    """One PropertyCollector pass over every VM, the same fields virtplane reads, paged by 1,000."""
    collector = si.content.propertyCollector
    view = vm_view(si)
    try:
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[
                vmodl.query.PropertyCollector.TraversalSpec(name="v", path="view", skip=False,
                                                            type=vim.view.ContainerView)])],
            propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.VirtualMachine,
                                                                pathSet=list(PATHS))])
        result = collector.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions(
            maxObjects=1000))
        count = 0
        while result is not None:
            count += len(result.objects)
            result = collector.ContinueRetrievePropertiesEx(result.token) if result.token else None
        return count
    finally:
        view.Destroy()


def all_vms(si: vim.ServiceInstance) -> list[vim.VirtualMachine]:
    view = vm_view(si)
    try:
        return list(view.view)
    finally:
        view.Destroy()


class HostNames:
    """Host moref -> name, each host's name fetched once (one round trip per host, not per VM)."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._lock = threading.Lock()

    def of(self, host: vim.HostSystem) -> str:
        key = host._moId
        with self._lock:
            if key in self._names:
                return self._names[key]
        name = host.name  # two threads may both fetch a host seen for the first time: harmless, and rare
        with self._lock:
            self._names[key] = name
        return name


def read_vm(vm: vim.VirtualMachine, hosts: HostNames) -> tuple[Any, ...]:
    """The fields virtplane reads, the way a reasonable per-VM script reads them: ``vm.config``,
    ``vm.runtime`` and ``vm.customValue`` once each (every property access is one round trip), the
    fields then taken from those locals; the VM's name from ``config.name``."""
    config, runtime, custom = vm.config, vm.runtime, vm.customValue
    hardware = config.hardware
    return (config.name, config.template, custom, hardware.numCPU, hardware.numCoresPerSocket,
            hardware.memoryMB, hardware.device, config.firmware, config.bootOptions, config.guestId,
            runtime.powerState, hosts.of(runtime.host), config.version, config.nestedHVEnabled)


def naive_loop(si: vim.ServiceInstance, sample: int) -> int:
    """A sequential per-VM loop over the first ``sample`` VMs."""
    vms = all_vms(si)[:sample]
    hosts = HostNames()
    for vm in vms:
        read_vm(vm, hosts)
    return len(vms)


def concurrent_loop(si: vim.ServiceInstance, threads: int) -> int:
    """The same per-VM reads over every VM, ``threads`` in flight on one shared ServiceInstance."""
    si._stub.poolSize = threads  # keep one HTTP connection per thread (pyvmomi's default pool keeps 5)
    vms = all_vms(si)
    hosts = HostNames()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return sum(1 for _ in pool.map(lambda vm: read_vm(vm, hosts), vms))


def write_stack(directory: Path, instance: vcsim.VcsimInstance) -> int:
    """Declare every seeded VM as it is, so the drift pass compares N matching VMs."""
    with connected(evaluate_stub(directory)) as providers:
        owned = providers["bench"].driver("VirtualMachine").observe(STACK, {}).owned
    specs = {name: observed.state for name, observed in owned.items()}
    (directory / "vms.json").write_text(json.dumps(specs))
    return len(specs)


def evaluate_stub(directory: Path):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Pulumi.yaml").write_text("name: bench\nruntime: python\n")
    (directory / "Pulumi.dev.yaml").write_text("config: {}\n")
    (directory / "__main__.py").write_text(PROGRAM)
    (directory / "vms.json").write_text("{}")
    return evaluate(directory, "dev")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--naive", type=int, default=1_000,
                        help="VMs the sequential naive loop reads (scaled per VM)")
    parser.add_argument("--threads", type=int, default=32,
                        help="threads of the concurrent naive loop (it reads every VM)")
    parser.add_argument("--delay-ms", type=int, default=10,
                        help="latency the simulator adds to every SOAP call (a LAN vCenter: ~10 ms)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="virtplane-bench-"))
    print(f"Seeding the vSphere simulator with {args.vms} VMs owned by {STACK} …", flush=True)
    started = time.perf_counter()
    instance = vcsim.start(work, hosts=3, vms=args.vms, own_vms=STACK, bin_dir=REPO / ".lab" / "bin",
                           delay_ms=args.delay_ms, timeout=3600)
    print(f"  ready in {time.perf_counter() - started:.0f} s", flush=True)
    saved_environ = dict(os.environ)
    os.environ.update(instance.environ())
    naive = concurrent = None
    try:
        stack_dir = work / "stack"
        declared = write_stack(stack_dir, instance)
        desired = evaluate(stack_dir, "dev")
        assert len(desired.resources) == declared == args.vms, (len(desired.resources), declared)

        cli = run_drift(stack_dir, dict(os.environ))
        if cli.returncode not in (0, 2):
            raise SystemExit(f"virtplane drift failed: {cli.stderr}")
        with connected(desired) as providers:
            ours = timed(lambda: build_plan(desired, providers), instance.pid)
            driver = providers["bench"].driver("VirtualMachine")
            driver.stream_reads = False
            ours_pyvmomi = timed(lambda: build_plan(desired, providers), instance.pid)
        drifted = len(ours.value.pending)
        if len(ours_pyvmomi.value.pending) != drifted:
            raise SystemExit("the two readers disagree on the drift")

        si = connect(instance)
        try:
            raw = timed(lambda: raw_pass(si), instance.pid)
            streamed = timed(lambda: stream_pass(si), instance.pid)
            if args.naive:
                naive = timed(lambda: naive_loop(si, args.naive), instance.pid)
        finally:
            Disconnect(si)
        if args.threads:
            si = connect(instance)  # its own session and connection pool
            try:
                concurrent = timed(lambda: concurrent_loop(si, args.threads), instance.pid)
            finally:
                Disconnect(si)
            if concurrent.value != args.vms:
                raise SystemExit(f"the concurrent loop read {concurrent.value} VMs, expected {args.vms}")
    finally:
        instance.stop()
        os.environ.clear()
        os.environ.update(saved_environ)
    shutil.rmtree(work, ignore_errors=True)

    n = args.vms

    def cpu(value: float | None, factor: float = 1.0) -> str:
        return "-" if value is None else f"{value * factor:.2f}"

    rows = [
        ("virtplane drift, end to end (a process)", cli.seconds, None, "-", "-"),
        ("virtplane drift: read + diff", ours.seconds, ours.requests, cpu(ours.client_cpu), cpu(ours.server_cpu)),
        ("virtplane drift: read + diff, pyVmomi reader", ours_pyvmomi.seconds, ours_pyvmomi.requests,
         cpu(ours_pyvmomi.client_cpu), cpu(ours_pyvmomi.server_cpu)),
        ("raw pyVmomi PropertyCollector pass", raw.seconds, raw.requests, cpu(raw.client_cpu), cpu(raw.server_cpu)),
        ("the same pass, streaming reader", streamed.seconds, streamed.requests, cpu(streamed.client_cpu),
         cpu(streamed.server_cpu)),
    ]
    if naive is not None:
        scale = n / naive.value  # the sequential loop's sample, scaled to every VM
        rows.append((f"naive sequential loop ({naive.value} VMs, scaled)", naive.seconds * scale,
                     naive.requests * scale, cpu(naive.client_cpu, scale), cpu(naive.server_cpu, scale)))
    if concurrent is not None:
        rows.append((f"naive concurrent loop ({args.threads} threads)", concurrent.seconds, concurrent.requests,
                     cpu(concurrent.client_cpu), cpu(concurrent.server_cpu)))
    print(f"\nDrift over {n} VMs ({drifted} with drift; raw pass saw {raw.value}); "
          f"simulator latency {args.delay_ms} ms per SOAP call; load average {os.getloadavg()[0]:.1f}")
    print(f"{'':46} {'total s':>9} {'ms/VM':>8} {'SOAP requests':>14} {'client CPU s':>13} {'server CPU s':>13}")
    for label, total, requests, client, server in rows:
        req = "-" if requests is None else f"{requests:,.0f}"
        print(f"{label:46} {total:9.2f} {total / n * 1000:8.3f} {req:>14} {client:>13} {server:>13}")
    print(f"\n  the drift process's phases (s): {cli.phase_text()}")
    print(f"  fixed cost (everything but the read): {cli.fixed():.2f} s")
    print(f"  its peak resident memory: {cli.peak_rss_mib:.0f} MiB ({cli.peak_rss_mib * 1024 / n:.1f} KiB per VM)")
    print("\nBaselines' code paths")
    print(f"  raw pass    : {RAW_PASS}")
    print("  streamed    : bench/drift_vsphere.py stream_pass: the same request through virtplane's collector with "
          "stream=True (providers/vsphere/stream.py)")
    print(f"  naive loops : {NAIVE}")
    print("\nRatios")
    print(f"  virtplane drift end to end / raw pyVmomi pass : {cli.seconds / raw.seconds:6.2f}x  "
          "(goal: <= 0.5x at 10,000 VMs, < 1.3x at 2,000)")
    print(f"  virtplane read + diff / raw pyVmomi pass      : {ours.seconds / raw.seconds:6.2f}x")
    print(f"  streaming reader / pyVmomi, the raw pass      : {streamed.seconds / raw.seconds:6.2f}x  "
          f"(client CPU {streamed.client_cpu / raw.client_cpu:.2f}x)")
    print(f"  read + diff, pyVmomi reader / streaming reader: {ours_pyvmomi.seconds / ours.seconds:6.2f}x")
    if naive is not None:
        sequential = naive.seconds * n / naive.value
        print(f"  naive sequential / virtplane read + diff      : {sequential / ours.seconds:6.1f}x")
    if concurrent is not None:
        print(f"  naive concurrent-{args.threads} / virtplane read + diff    : "
              f"{concurrent.seconds / ours.seconds:6.1f}x")
    print(f"  SOAP requests: virtplane {ours.requests:,} ({ours.requests / (n / 1000):.1f} per 1,000 VMs)")


if __name__ == "__main__":
    main()
