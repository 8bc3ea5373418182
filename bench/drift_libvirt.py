"""Drift over N libvirt domains: virtplane's batched read vs. a per-domain XMLDesc loop, in one run.

The host is libvirt's test driver on a node file this script writes: N running domains carrying virtplane's
ownership marker (stack bench/dev), each with one 1 GiB qcow2 volume of the pool 'default' and one NIC on the
network 'default', plus N/10 domains of nobody's. A generated stack declares the N domains as they are, so the
drift pass must find N owned domains and no drift. The host is reached two ways:

  * in-process (``test:///<file>``): libvirt's calls are C function calls, nothing to batch;
  * through a libvirt daemon (``test+unix:///<file>?socket=…``, the lab's private libvirtd): every call is an RPC
    round trip, as with a real remote host (``qemu+ssh://``).

Measured, each the median of --repeat passes:

  * virtplane drift: ``virtplane.engine.build_plan`` over a connected provider — one ``listAllDomains``, one
    ``getAllDomainStats`` (every domain's state), every domain's XML (a few calls in flight), the owned domains'
    volumes' sizes, mapped and diffed;
  * a per-domain loop (what a script with libvirt-python typically does): ``listAllDomains``, then for each domain
    ``XMLDesc``, ``state`` and, per disk, ``storageVolLookupByName`` + ``info``, mapped with the same pure functions
    and diffed the same way.

The ratio is the loop's time over virtplane's.

    python bench/drift_libvirt.py [--domains 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import libvirt  # noqa: E402

from virtplane.declared import DeclaredEndpoint, DeclaredResource, DesiredStack  # noqa: E402
from virtplane.diff import diff  # noqa: E402
from virtplane.engine import build_plan  # noqa: E402
from virtplane.kinds import build_spec  # noqa: E402
from virtplane.plan import Action  # noqa: E402
from virtplane.providers.base import Owner  # noqa: E402
from virtplane.providers.libvirt import devices, domain_xml, marker  # noqa: E402
from virtplane.providers.libvirt.devices import NetworkNames, Volume  # noqa: E402
from virtplane.providers.libvirt.domain_xml import DomainFacts  # noqa: E402
from virtplane.providers.libvirt.provider import LibvirtProvider  # noqa: E402
from virtplane.slots import resolve_vm  # noqa: E402
from virtplane.specs import CREATE_ONLY, VirtualMachineSpec  # noqa: E402
from virtplane_lab import libvirtd  # noqa: E402

PROJECT, STACK_NAME, ENDPOINT = "bench", "dev", "kvm"
STACK = f"{PROJECT}/{STACK_NAME}"
FIELDS = {"cpus": 1, "memory": 256, "power": "on", "disks": [{"size": 1}], "nics": [{"network": "default"}]}
GiB = 1024**3


def name_of(index: int) -> str:
    return f"bench-{index:05d}"


def node_file(path: Path, count: int) -> Path:
    """The test driver's host: ``count`` domains of ours and ``count // 10`` of nobody's, with their volumes."""
    uuid = "00000000-0000-4000-8000-{:012d}"
    domains, volumes = [], []
    for index in range(count + count // 10):
        name = name_of(index) if index < count else f"other-{index:05d}"
        domain_uuid = uuid.format(index)
        volume = devices.volume_name(name, domain_uuid, "sda")
        mark = marker.Marker(Owner(STACK, name, ENDPOINT)).element() if index < count else None
        metadata = f"<metadata>{ET.tostring(mark, encoding='unicode')}</metadata>" if mark is not None else ""
        domains.append(
            f"<domain type='test'><name>{name}</name><uuid>{domain_uuid}</uuid>{metadata}"
            "<memory unit='MiB'>256</memory><currentMemory unit='MiB'>256</currentMemory><vcpu>1</vcpu>"
            "<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>"
            f"<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/><source pool='default' "
            f"volume='{volume}'/><target dev='sda' bus='scsi'/></disk>"
            "<controller type='scsi' index='0' model='virtio-scsi'/>"
            "<interface type='network'><source network='default'/><model type='virtio'/>"
            "<alias name='ua-net0'/></interface></devices></domain>")
        volumes.append(f"<volume type='file'><name>{volume}</name><capacity unit='GiB'>1</capacity>"
                       "<allocation unit='MiB'>200</allocation><target><format type='qcow2'/></target></volume>")
    path.write_text("<node><cpu><nodes>1</nodes><sockets>2</sockets><cores>8</cores><threads>2</threads>"
                    "<active>32</active><mhz>2600</mhz><model>x86_64</model></cpu><memory>67108864</memory>"
                    "<network><name>default</name><bridge name='virbr0'/></network>"
                    "<pool type='dir'><name>default</name><target><path>/var/lib/libvirt/images</path></target>"
                    + "".join(volumes) + "</pool>" + "".join(domains) + "</node>")
    return path


def desired_stack(count: int) -> DesiredStack:
    desired = DesiredStack(PROJECT, STACK_NAME)
    desired.endpoints[ENDPOINT] = DeclaredEndpoint(ENDPOINT, "libvirt", {})
    for index in range(count):
        name = name_of(index)
        spec = build_spec("VirtualMachine", name, FIELDS)
        desired.resources[f"VirtualMachine/{name}"] = DeclaredResource("VirtualMachine", name, spec, ENDPOINT, set())
    return desired


def connect(uri: str) -> LibvirtProvider:
    return LibvirtProvider.connect(LibvirtProvider.settings_from(ENDPOINT, {"uri": uri}, {}))


def virtplane_drift(provider: LibvirtProvider, desired: DesiredStack, count: int) -> float:
    started = time.perf_counter()
    plan = build_plan(desired, {ENDPOINT: provider})
    elapsed = time.perf_counter() - started
    owned = [r for r in plan.resources if r.kind == "VirtualMachine" and r.observed is not None]
    drifted = [r for r in owned if r.action is not Action.NOOP]
    assert len(owned) == count and not drifted, (len(owned), drifted[:1])
    return elapsed


def per_domain_loop(conn: libvirt.virConnect, desired: DesiredStack, count: int) -> float:
    started = time.perf_counter()
    node = conn.getHostname()
    pool = conn.storagePoolLookupByName("default")
    found = 0
    for domain in conn.listAllDomains(0):
        root = ET.fromstring(domain.XMLDesc(0))
        running = domain.state()[0] in domain_xml.RUNNING_STATES
        volumes = {}
        for source in root.findall("devices/disk/source"):
            volume = pool.storageVolLookupByName(source.get("volume"))
            _kind, capacity, allocation = volume.info()
            volumes[("default", source.get("volume"))] = Volume(capacity, allocation)
        mark = marker.read(root)
        if mark is None or mark.owner.stack != STACK:
            continue
        resource = desired.resources[f"VirtualMachine/{mark.owner.resource}"]
        spec = resource.spec
        assert isinstance(spec, VirtualMachineSpec)
        state = domain_xml.vm_state(root, DomainFacts(running, node, volumes, NetworkNames()), spec)
        spec = resolve_vm(spec, state, devices.new_slot)
        assert diff(spec.model_dump(), state, CREATE_ONLY["VirtualMachine"]) == []
        found += 1
    assert found == count, found
    return time.perf_counter() - started


def measure(label: str, uri: str, desired: DesiredStack, count: int, repeat: int) -> None:
    provider = connect(uri)
    conn = libvirt.open(uri)
    try:
        ours = statistics.median(virtplane_drift(provider, desired, count) for _ in range(repeat))
        loop = statistics.median(per_domain_loop(conn, desired, count) for _ in range(repeat))
    finally:
        provider.close()
        conn.close()
    calls_ours = 2 + count + count  # list, stats, every XML, the owned domains' volumes (lookup counted with info)
    calls_loop = 1 + count * 4
    print(f"{label:30} virtplane {ours:7.2f}s (~{calls_ours} calls)   per-domain loop {loop:7.2f}s "
          f"(~{calls_loop} calls)   ratio {loop / ours:4.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    libvirt.registerErrorHandler(lambda _context, _error: None, None)
    with tempfile.TemporaryDirectory(prefix="drift-libvirt-") as work:
        work_dir = Path(work)
        started = time.perf_counter()
        node = node_file(work_dir / "node.xml", args.domains)
        desired = desired_stack(args.domains)
        print(f"wrote a test-driver host of {args.domains} owned and {args.domains // 10} other domains in "
              f"{time.perf_counter() - started:.1f} s")
        measure("in-process (test:///)", f"test://{node}", desired, args.domains, args.repeat)
        daemon = libvirtd.start(work_dir, network=False)
        try:
            socket = daemon.uri.split("socket=", 1)[1]
            measure("through libvirtd (test+unix)", f"test+unix://{node}?socket={socket}", desired, args.domains,
                    args.repeat)
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
