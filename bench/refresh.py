"""`pulumi refresh` of N VMs through the plugin: round trips and time per Read, beside one read per resource.

A refresh sends the provider one Read per resource (id, old outputs, old inputs), many at once. This bench
seeds a simulator with N VMs owned by a stack, serves the plugin in this process (its gRPC server on
loopback, exactly the servicer `pulumi-resource-virtplane` runs, so the HTTP requests its drivers make are
counted here at http.client), sends the N Reads over gRPC with the engine's parallelism, and prints:
  * the plugin: total time, time per Read, HTTP round trips to the hypervisor
  * the per-resource baseline bridged Terraform providers use (one read per resource, same parallelism), on a
    sample scaled to N: on vSphere a find by instance UUID then a property read of that VM (2 SOAP calls), on
    Proxmox a GET of the VM's config (1 HTTP call), on Hyper-V ``Get-VM -Id`` and, piped from it, the VM's
    processor, disks, VHDs, adapters, VLANs and firmware (7 pipelines, each a few WinRM requests)
  * the ratio of round trips (goal: >= 20x fewer) and of time.

Round trips are HTTP requests to the hypervisor (a SOAP call, a PVE API call, a WinRM message). Expected: vSphere
O(1) (one paged PropertyCollector pass), Proxmox one config read per VM (PVE has no batched config read) plus the
listing, Hyper-V O(1) (one pipeline). The Hyper-V simulator has no latency setting.

    python bench/refresh.py [--vms 1000] [--only vsphere|proxmox|hyperv] [--latency-ms 20] [--parallel 16]
                            [--baseline-sample 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
from google.protobuf import json_format, struct_pb2
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import drift_hyperv, drift_proxmox  # noqa: E402
from bench.request_counter import RequestCounter  # noqa: E402
from virtplane.plugin import VERSION  # noqa: E402
from virtplane.plugin.engine_log import EngineLog  # noqa: E402
from virtplane.plugin.provider import VirtplaneProvider  # noqa: E402
from virtplane.plugin.servicer import VirtplaneServicer  # noqa: E402
from virtplane.providers.base import Observed  # noqa: E402
from virtplane.providers.registry import provider_class  # noqa: E402
from virtplane.specs import NetworkSpec  # noqa: E402
from virtplane_lab import fakepve, vcsim  # noqa: E402

PROJECT, STACK_NAME = "bench", "dev"
STACK = f"{PROJECT}/{STACK_NAME}"


class InProcessPlugin:
    """The plugin's gRPC server on an event loop of its own thread; a client stub to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)

    async def _start(self) -> int:
        provider = VirtplaneProvider(VERSION, EngineLog(None))
        self.server = grpc.aio.server()
        provider_pb2_grpc.add_ResourceProviderServicer_to_server(VirtplaneServicer([], VERSION, provider, ""),
                                                                 self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        return port

    def configure(self, kind: str) -> None:
        """A provider whose settings all come from the environment (VSPHERE_*, PROXMOX_VE_*)."""
        urn = f"urn:pulumi:{STACK_NAME}::{PROJECT}::pulumi:providers:virtplane::bench"
        self.stub.CheckConfig(provider_pb2.CheckRequest(urn=urn, news=_struct({"kind": kind})))
        self.stub.Configure(provider_pb2.ConfigureRequest(args=_struct({"kind": kind}), acceptSecrets=True,
                                                          urn=urn, name="bench"))

    def read(self, name: str, resource_id: str, state: dict[str, Any]) -> str:
        urn = f"urn:pulumi:{STACK_NAME}::{PROJECT}::pulumi:pulumi:Stack$virtplane:index:VirtualMachine::{name}"
        inputs = {k: v for k, v in state.items() if k in ("cpus", "memory")}
        reply = self.stub.Read(provider_pb2.ReadRequest(id=resource_id, urn=urn, properties=_struct(state),
                                                        inputs=_struct(inputs)), timeout=600)
        return reply.id

    def stop(self) -> None:
        self.channel.close()
        asyncio.run_coroutine_threadsafe(self.server.stop(0), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(json_format.json.loads(json_format.json.dumps(values, default=str)))
    return message


def owned_vms(kind: str, declared: dict[str, Any]) -> dict[str, Observed]:
    """The seeded VMs as the driver sees them (name -> Observed with its stable id), read outside the counts."""
    cls = provider_class(kind)
    provider = cls.connect(cls.settings_from("bench", {}, os.environ))
    try:
        owned = provider.driver("VirtualMachine").observe(STACK, declared).owned
    finally:
        provider.close()
    missing = [name for name, live in owned.items() if live.id is None]
    if missing:
        raise SystemExit(f"the {kind} driver does not report stable ids yet (Observed.id is None for "
                         f"{len(missing)} VMs, e.g. {missing[0]}): the plugin cannot Read by id on it; "
                         "run this again once the driver implements the Created/observe_ids contract")
    return owned


def refresh_through_plugin(owned: dict[str, Observed], parallel: int, kind: str) -> tuple[float, int]:
    plugin = InProcessPlugin()
    try:
        plugin.configure(kind)
        items = list(owned.items())
        with RequestCounter() as counter:
            started = time.perf_counter()
            with ThreadPoolExecutor(parallel) as pool:
                ids = list(pool.map(lambda item: plugin.read(item[0], str(item[1].id), item[1].state), items))
            seconds = time.perf_counter() - started
        wrong = [name for (name, live), got in zip(items, ids, strict=True) if got != live.id]
        if wrong:
            raise SystemExit(f"the plugin answered the wrong id for {len(wrong)} VMs, e.g. {wrong[0]}")
        return seconds, counter.count
    finally:
        plugin.stop()


def per_resource_baseline(read_one: Callable[[Observed], Any], owned: dict[str, Observed], sample: int,
                          parallel: int) -> tuple[float, float]:
    """One read per resource over a sample, with the same parallelism; (seconds, requests) scaled to all N."""
    chosen = list(owned.values())[:sample]
    with RequestCounter() as counter:
        started = time.perf_counter()
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(read_one, chosen))
        seconds = time.perf_counter() - started
    scale = len(owned) / len(chosen)
    return seconds * scale, counter.count * scale


def vsphere_reader(instance: vcsim.VcsimInstance) -> tuple[Callable[[Observed], Any], Callable[[], None]]:
    from pyVim.connect import Disconnect, SmartConnect
    from pyVmomi import vim, vmodl

    from virtplane.providers.vsphere.vm import PATHS

    host, port = instance.host.rsplit(":", 1)
    si = SmartConnect(host=host, port=int(port), user=instance.user, pwd=instance.password,
                      sslContext=ssl.create_default_context(cafile=instance.ca_file))
    content = si.RetrieveContent()

    def read_one(live: Observed) -> Any:  # as a Terraform-style Read: find by instance UUID, read its properties
        vm = content.searchIndex.FindByUuid(uuid=str(live.id), vmSearch=True, instanceUuid=True)
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=vm)],
            propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=list(PATHS))])
        return content.propertyCollector.RetrieveContents([spec])

    return read_one, lambda: Disconnect(si)


def proxmox_reader(instance: fakepve.FakepveInstance) -> tuple[Callable[[Observed], Any], Callable[[], None]]:
    from proxmoxer import ProxmoxAPI

    address = urlsplit(instance.url)
    api = ProxmoxAPI(address.hostname, port=address.port, user=instance.user, password=instance.password,
                     verify_ssl=instance.ca_file)
    nodes = {int(row["vmid"]): row["node"] for row in api.cluster.resources.get(type="vm")}

    def read_one(live: Observed) -> Any:  # as a Terraform-style Read: the VM's config
        return api.nodes(nodes[int(str(live.id))]).qemu(live.id).config.get()

    return read_one, lambda: None


def hyperv_reader(instance: Any) -> tuple[Callable[[Observed], Any], Callable[[], None]]:
    from virtplane.providers.hyperv.client import Cmd, HypervClient, pipe, vm_by_id
    from virtplane.providers.hyperv.provider import HypervProvider

    settings = HypervProvider.settings_from("bench", {}, os.environ)
    local = threading.local()
    clients: list[Any] = []

    def read_one(live: Observed) -> Any:  # as a per-resource Read: the VM, then one pipeline per part of it
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = HypervClient(settings)
            clients.append(client)
        objects = client.run([pipe(vm_by_id(str(live.id)))], "read a VM").objects
        for cmdlet in drift_hyperv.PER_VM:
            objects += client.run([pipe(vm_by_id(str(live.id)), Cmd(cmdlet))], f"read {cmdlet}").objects
        return objects

    def close() -> None:
        for client in clients:
            client.close()

    return read_one, close


def run(kind: str, args: argparse.Namespace, work: Path) -> None:
    n = args.vms
    latency = "no added latency" if kind == "hyperv" else f"{args.latency_ms:g} ms per request"
    print(f"\n== {kind}: seeding {n} VMs owned by {STACK} ({latency}) …", flush=True)
    started = time.perf_counter()
    declared: dict[str, Any] = {}
    instance: Any
    if kind == "vsphere":
        instance = vcsim.start(work / kind, hosts=3, vms=n, own_vms=STACK, bin_dir=REPO / ".lab" / "bin",
                               delay_ms=int(args.latency_ms), timeout=1800)
    elif kind == "hyperv":
        from virtplane.providers.hyperv.provider import HypervProvider

        instance = drift_hyperv.start_simulator(work / kind)
        environ = {**instance.environ(), "HYPERV_TLS": "false"}
        seeder = HypervProvider.connect(HypervProvider.settings_from("bench", {"operation_timeout": 600}, environ))
        try:
            drift_hyperv.seed(seeder.client, n, 100, endpoint="bench")
        finally:
            seeder.close()
    else:
        (work / kind).mkdir(parents=True, exist_ok=True)
        drift_proxmox.write_guests(work / kind / "guests.json", drift_proxmox.declared_specs(n))
        instance = fakepve.start(work / kind, time_scale=1.0, latency=args.latency_ms / 1000,
                                 guests=work / kind / "guests.json")
        declared = {"Network": {drift_proxmox.NETWORK: NetworkSpec(vlan=drift_proxmox.VLAN)}}
    print(f"   ready in {time.perf_counter() - started:.1f} s", flush=True)
    saved = dict(os.environ)
    os.environ.update(instance.environ())
    if kind == "hyperv":
        os.environ["HYPERV_TLS"] = "false"  # the bench's simulator speaks WinRM over HTTP (NTLM-encrypted)
    try:
        owned = owned_vms(kind, declared)
        if len(owned) != n:
            raise SystemExit(f"expected {n} owned VMs, the driver found {len(owned)}")
        plugin_s, plugin_requests = refresh_through_plugin(owned, args.parallel, kind)
        readers = {"vsphere": vsphere_reader, "proxmox": proxmox_reader, "hyperv": hyperv_reader}
        read_one, close = readers[kind](instance)
        try:
            base_s, base_requests = per_resource_baseline(read_one, owned, min(args.baseline_sample, n),
                                                          args.parallel)
        finally:
            close()
    finally:
        instance.stop()
        os.environ.clear()
        os.environ.update(saved)
    print(f"{'':46} {'total s':>8} {'ms/Read':>8} {'round trips':>12}")
    print(f"{'plugin: N Reads over gRPC (batched observe)':46} {plugin_s:8.2f} {plugin_s / n * 1000:8.2f} "
          f"{plugin_requests:>12,}")
    print(f"{'one read per resource (sample, scaled)':46} {base_s:8.2f} {base_s / n * 1000:8.2f} "
          f"{base_requests:>12,.0f}")
    print(f"   round trips: {base_requests / max(plugin_requests, 1):.1f}x fewer through the plugin (goal >= 20x); "
          f"time: {base_s / plugin_s:.1f}x; {kind}: {plugin_requests} round trips for {n} VMs through the plugin")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=1_000)
    parser.add_argument("--only", choices=["vsphere", "proxmox", "hyperv"])
    parser.add_argument("--latency-ms", type=float, default=20.0, help="latency added to every request")
    parser.add_argument("--parallel", type=int, default=16, help="Reads in flight at once (the engine's -p)")
    parser.add_argument("--baseline-sample", type=int, default=200, help="VMs the per-resource loop reads")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="virtplane-bench-refresh-"))
    failed = []
    for kind in [args.only] if args.only else ["vsphere", "proxmox", "hyperv"]:
        try:
            run(kind, args, work)
        except SystemExit as stop:
            print(f"   {kind}: not measured: {stop}", flush=True)
            failed.append(kind)
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
