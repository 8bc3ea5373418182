"""Drift over N VMs on the simulated XenServer pool: virtplane's batched read vs. a per-VM get_record loop, in one run.

The simulator (virtplane_lab.xapisim, its own process, XML-RPC over TLS as the lab serves it) is seeded through
XAPI itself: each VM cloned from ``Other install media``, provisioned, given 2 vCPUs, 512 MiB, a 10 GiB disk (VDI +
VBD) and a VIF on eth0's pool-wide network, and virtplane's marker (other_config, tag, name). A generated stack
declares those VMs as they are, so the drift pass must find N owned VMs and no drift. Measured:

  * virtplane drift: ``virtplane.engine.build_plan`` over a connected provider — one ``VM.get_all_records_where``
    and one ``get_all_records`` per class the VMs' parts live in (VBD, VDI, VIF, network, PIF, ...), whatever N —
    and the generic diff; the median of --repeat passes;
  * a per-VM loop (what a typical XenAPI script does): ``VM.get_all`` once, then per VM ``VM.get_record`` and a
    ``get_record`` for each of its VBDs, VDIs, VIFs and their networks, mapped with the same pure functions
    (providers/xenserver/records.py) and diffed the same way; run on a sample of --naive VMs, scaled per VM;

with, for each, the XML-RPC calls (counted by the simulator), client CPU time and the simulator's CPU time. The
ratio is the loop's time (scaled) over virtplane's.

    python bench/drift_xenserver.py [--vms 1000] [--naive 100] [--repeat 3] [--threads 8]
"""

from __future__ import annotations

import argparse
import ssl
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import XenAPI

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.process_cpu import process_cpu  # noqa: E402
from virtplane.declared import DeclaredEndpoint, DeclaredResource, DesiredStack  # noqa: E402
from virtplane.diff import diff  # noqa: E402
from virtplane.engine import build_plan  # noqa: E402
from virtplane.kinds import build_spec  # noqa: E402
from virtplane.plan import Action  # noqa: E402
from virtplane.providers.base import MARKER_KEY, Owner  # noqa: E402
from virtplane.providers.xenserver.provider import XenserverProvider  # noqa: E402
from virtplane.providers.xenserver.records import MARKER_TAG, PoolView, vm_state  # noqa: E402
from virtplane.slots import resolve_vm  # noqa: E402
from virtplane_lab import xenserver  # noqa: E402

PROJECT, STACK_NAME, ENDPOINT = "bench", "dev", "xs"
STACK = f"{PROJECT}/{STACK_NAME}"
NETWORK = "Pool-wide network associated with eth0"
GiB, MiB = 1024**3, 1024**2
FIELDS = {"cpus": 2, "memory": 512, "power": "off", "disks": [{"size": 10}], "nics": [{"network": NETWORK}]}


@contextmanager
def session(instance: xenserver.XenserverInstance) -> Iterator[Any]:
    """A logged-in ``XenAPI.Session`` (the unmodified client) over TLS verified with the pool's CA."""
    context = ssl.create_default_context(cafile=instance.ca_file)
    client = XenAPI.Session(instance.url, transport=xmlrpc.client.SafeTransport(context=context))
    client.xenapi.login_with_password(instance.user, instance.password, "2.21", "bench")
    try:
        yield client.xenapi
    finally:
        client.xenapi.session.logout()


def name_of(index: int) -> str:
    return f"bench-{index:05d}"


def seed_one(api: Any, template: str, sr: str, network: str, index: int) -> None:
    name = name_of(index)
    vm = api.VM.clone(template, name)
    api.VM.provision(vm)
    size = str(512 * MiB)
    api.VM.set_memory_limits(vm, size, size, size, size)
    api.VM.set_VCPUs_at_startup(vm, "2")
    vdi = api.VDI.create({"name_label": f"{name} 0", "name_description": "", "SR": sr, "virtual_size": str(10 * GiB),
                          "type": "system", "sharable": False, "read_only": False, "other_config": {},
                          "xenstore_data": {}, "sm_config": {}, "tags": []})
    api.VBD.create({"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True, "mode": "RW", "type": "Disk",
                    "unpluggable": False, "empty": False, "other_config": {}, "qos_algorithm_type": "",
                    "qos_algorithm_params": {}})
    api.VIF.create({"device": "0", "network": network, "VM": vm, "MAC": "", "MTU": "1500", "other_config": {},
                    "qos_algorithm_type": "", "qos_algorithm_params": {}})
    api.VM.add_to_other_config(vm, MARKER_KEY, Owner(STACK, name, ENDPOINT).encode())
    api.VM.set_tags(vm, [MARKER_TAG])


def seed(instance: xenserver.XenserverInstance, count: int, threads: int) -> None:
    def worker(slot: int) -> None:
        with session(instance) as api:
            template, network = api.VM.get_by_name_label("Other install media")[0], api.network.get_by_name_label(
                NETWORK)[0]
            sr = api.pool.get_default_SR(api.pool.get_all()[0])
            for index in range(slot, count, threads):
                seed_one(api, template, sr, network, index)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))


def desired_stack(count: int) -> DesiredStack:
    desired = DesiredStack(PROJECT, STACK_NAME)
    desired.endpoints[ENDPOINT] = DeclaredEndpoint(ENDPOINT, "xenserver", {})
    for index in range(count):
        name = name_of(index)
        item = DeclaredResource("VirtualMachine", name, build_spec("VirtualMachine", name, FIELDS), ENDPOINT)
        desired.resources[item.key] = item
    return desired


class Meter:
    """Wall time, XML-RPC calls (as the simulator counted them), client CPU and simulator CPU of one block."""

    def __init__(self, instance: xenserver.XenserverInstance) -> None:
        self.instance = instance

    def __enter__(self) -> Meter:
        self.before = len(self.instance.calls())
        self.cpu = time.process_time()
        self.server = process_cpu(self.instance.pid) or 0.0
        self.wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        self.server = (process_cpu(self.instance.pid) or 0.0) - self.server
        self.calls = len(self.instance.calls()) - self.before - 1  # the count itself is one call to the control


def virtplane_drift(provider: XenserverProvider, desired: DesiredStack, count: int,
                    instance: xenserver.XenserverInstance) -> Meter:
    with Meter(instance) as meter:
        plan = build_plan(desired, {ENDPOINT: provider})
    items = [r for r in plan.resources if r.kind == "VirtualMachine"]
    assert len(items) == count and all(r.action is Action.NOOP for r in items), \
        [(r.name, r.action, [c.change for c in r.changes]) for r in items if r.action is not Action.NOOP][:3]
    return meter


def read_one(api: Any, desired: DesiredStack, name: str, ref: str) -> bool:
    """One VM, one get_record per object; mapped and diffed like virtplane does. True when it drifted."""
    record = api.VM.get_record(ref)
    view = PoolView()
    for vbd in record["VBDs"]:
        view.vbds[vbd] = api.VBD.get_record(vbd)
        vdi = view.vbds[vbd]["VDI"]
        view.vdis[vdi] = api.VDI.get_record(vdi)
        view.srs.setdefault(view.vdis[vdi]["SR"], api.SR.get_record(view.vdis[vdi]["SR"]))
    for vif in record["VIFs"]:
        view.vifs[vif] = api.VIF.get_record(vif)
        network = view.vifs[vif]["network"]
        view.networks[network] = api.network.get_record(network)
    state = vm_state(ref, record, view, lambda network: str(view.networks[network]["name_label"]))
    spec = resolve_vm(desired.resources[f"VirtualMachine/{name}"].spec, state, lambda *_: "unused")
    return bool(diff(spec.model_dump(), state, frozenset({"clone_from", "linked_clone"})))


def per_vm_loop(instance: xenserver.XenserverInstance, desired: DesiredStack, sample: int, threads: int
                ) -> tuple[Meter, int]:
    """List once, then per VM one call per object: one VM after another (threads=1), or ``threads`` at a time,
    each thread on its own session (a XenAPI.Session is one connection)."""
    opened = [session(instance) for _ in range(threads)]
    apis = [each.__enter__() for each in opened]  # log in outside the measurement
    try:
        with Meter(instance) as meter:
            refs = {apis[0].VM.get_name_label(ref): ref for ref in apis[0].VM.get_all()}
            names = [name_of(index) for index in range(sample)]

            def worker(slot: int) -> int:
                return sum(read_one(apis[slot], desired, name, refs[name]) for name in names[slot::threads])

            if threads == 1:
                drifted = worker(0)
            else:
                with ThreadPoolExecutor(threads) as pool:
                    drifted = sum(pool.map(worker, range(threads)))
    finally:
        for each in opened:
            each.__exit__(None, None, None)
    return meter, drifted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--naive", type=int, default=100, help="VMs the per-VM loop reads (scaled to --vms)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8, help="sessions of the seeding and the concurrent loop")
    args = parser.parse_args()
    sample = min(args.naive, args.vms)

    instance = xenserver.start(Path(tempfile.mkdtemp(prefix="drift-xenserver-")))
    try:
        started = time.perf_counter()
        seed(instance, args.vms, args.threads)
        print(f"seeded {args.vms} VMs in {time.perf_counter() - started:.1f} s")
        provider = XenserverProvider.connect(XenserverProvider.settings_from(ENDPOINT, {}, instance.environ()))
        desired = desired_stack(args.vms)

        runs = [virtplane_drift(provider, desired, args.vms, instance) for _ in range(args.repeat)]
        ours = sorted(runs, key=lambda run: run.wall)[len(runs) // 2]
        loop, drifted = per_vm_loop(instance, desired, sample, 1)
        assert drifted == 0, f"the per-VM loop found drift on {drifted} VMs"
        wide, drifted = per_vm_loop(instance, desired, sample, args.threads)
        assert drifted == 0, f"the concurrent per-VM loop found drift on {drifted} VMs"
        scale = args.vms / sample

        print(f"\n{args.vms} VMs; virtplane: median of {args.repeat} passes "
              f"({', '.join(f'{run.wall:.2f}' for run in runs)} s); per-VM loop: {sample} VMs, scaled x{scale:g}")
        print(f"{'':34} {'time':>9} {'XML-RPC calls':>14} {'client CPU':>11} {'sim CPU':>9}")
        print(f"{'virtplane drift (build_plan)':34} {ours.wall:8.2f}s {ours.calls:14d} {ours.cpu:10.2f}s "
              f"{ours.server:8.2f}s")
        print(f"{'per-VM get_record loop (scaled)':34} {loop.wall * scale:8.2f}s {round(loop.calls * scale):14d} "
              f"{loop.cpu * scale:10.2f}s {loop.server * scale:8.2f}s")
        print(f"{'per-VM get_record loop (measured)':34} {loop.wall:8.2f}s {loop.calls:14d} {loop.cpu:10.2f}s "
              f"{loop.server:8.2f}s")
        print(f"{f'concurrent loop, {args.threads} sessions (scaled)':34} {wide.wall * scale:8.2f}s "
              f"{round(wide.calls * scale):14d} {wide.cpu * scale:10.2f}s {wide.server * scale:8.2f}s")
        print(f"\nratio, time: {loop.wall * scale / ours.wall:.1f}x sequential, "
              f"{wide.wall * scale / ours.wall:.1f}x concurrent; calls: {loop.calls * scale / ours.calls:.0f}x")
        provider.close()
    finally:
        instance.stop()


if __name__ == "__main__":
    main()
