"""Host inventory on the vSphere simulator: virtplane's read vs. a naive per-host pyvmomi loop.

One simulator (64 hosts x 8 PCI devices by default, the lab's four hardware profiles in turn), both measured in
the same run on the same connection settings, each the median of ``--repeat`` runs:
  * virtplane: ``VsphereProvider.hosts()`` with the connection open (one PropertyCollector pass, one
    hardware-version query for the cluster, then the mapping to ``virtplane.inventory.Host``)
  * naive: walk the hosts and read the same properties through each host's managed object, one property
    access (one SOAP round trip) at a time, as many scripts do; no mapping
and the SOAP requests (HTTP requests to the SDK endpoint) each made.

    python bench/inventory_vsphere.py [--hosts 64] [--pci 8] [--delay-ms 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.request_counter import RequestCounter  # noqa: E402
from virtplane.providers.vsphere.provider import VsphereProvider  # noqa: E402
from virtplane_lab import vcsim  # noqa: E402


def measured(fn: Callable[[], Any], repeat: int) -> tuple[float, int, Any]:
    """Median seconds, requests of one run, and the last result."""
    times, requests, value = [], 0, None
    for _ in range(repeat):
        with RequestCounter() as counter:
            started = time.perf_counter()
            value = fn()
            times.append(time.perf_counter() - started)
        requests = counter.count
    return statistics.median(times), requests, value


def naive_loop(si: Any) -> int:
    """Every host, each property read through the managed object (``host.config`` in
    ``host.config.pciPassthruInfo`` is one round trip, fetched again for the next ``host.config.…``)."""
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
    try:
        hosts = list(view.view)
    finally:
        view.Destroy()
    devices = 0
    for h in hosts:
        _ = (h.name, h.runtime.connectionState, h.summary.config.product, h.summary.hardware,
             h.summary.quickStats.overallMemoryUsage, h.capability, h.hardware.cpuFeature, h.hardware.cpuPkg,
             h.config.pciPassthruInfo, h.config.sharedPassthruGpuTypes, h.config.graphicsInfo, h.vm)
        devices += len(h.hardware.pciDevice)
    return devices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=64)
    parser.add_argument("--pci", type=int, default=8, help="PCI devices per host")
    parser.add_argument("--delay-ms", type=int, default=10,
                        help="latency the simulator adds to every SOAP call (a LAN vCenter: ~10 ms)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="virtplane-bench-"))
    instance = vcsim.start(work, hosts=args.hosts, pci_per_host=args.pci, delay_ms=args.delay_ms,
                           bin_dir=REPO / ".lab" / "bin")
    try:
        provider = VsphereProvider.connect(VsphereProvider.settings_from("bench", {}, instance.environ()))
        try:
            ours_s, ours_req, hosts = measured(provider.hosts, args.repeat)
        finally:
            provider.close()
        ours_devices = sum(len(host.pci_devices) for host in hosts)

        address, port = instance.host.rsplit(":", 1)
        si = SmartConnect(host=address, port=int(port), user=instance.user, pwd=instance.password,
                          sslContext=ssl.create_default_context(cafile=instance.ca_file))
        try:
            naive_s, naive_req, naive_devices = measured(lambda: naive_loop(si), args.repeat)
        finally:
            Disconnect(si)
    finally:
        instance.stop()

    assert ours_devices == naive_devices == args.hosts * args.pci, (ours_devices, naive_devices)
    print(f"Host inventory of {len(hosts)} hosts x {args.pci} PCI devices; simulator latency {args.delay_ms} ms "
          f"per SOAP call; median of {args.repeat}")
    print(f"{'':36} {'total s':>9} {'ms/host':>9} {'SOAP requests':>14}")
    for label, seconds, requests in (("virtplane hosts() (read + map)", ours_s, ours_req),
                                     ("naive per-host pyvmomi loop", naive_s, naive_req)):
        print(f"{label:36} {seconds:9.3f} {seconds / len(hosts) * 1000:9.2f} {requests:14,}")
    print(f"\nnaive / virtplane: {naive_s / ours_s:.1f}x time (goal >= 10x), "
          f"{naive_req / ours_req:.1f}x SOAP requests")


if __name__ == "__main__":
    main()
