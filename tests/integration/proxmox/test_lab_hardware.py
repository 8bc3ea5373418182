"""The lab's own fakepve process (``virtplane lab up`` starts it) serves the seeded hardware too."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.integration.proxmox.conftest import connect
from virtplane_lab import fakepve


def test_the_lab_process_serves_nodes_that_differ_in_hardware(tmp_path: Path) -> None:
    lab = fakepve.start(tmp_path)
    try:
        provider = connect(lab.environ())
        hosts = {host.name: host for host in provider.hosts()}
        identity = provider.identity()
        provider.close()
    finally:
        lab.stop()
    assert identity == "fakecluster"
    assert [(gpu.address, gpu.in_use_by) for gpu in hosts["pve1"].gpus()] == [("0000:3b:00.0", []),
                                                                             ("0000:d8:00.0", ["render-9"])]
    assert [pf.address for pf in hosts["pve2"].sriov] == ["0000:5e:00.0"]
    assert (hosts["pve1"].iommu, hosts["pve2"].iommu, hosts["pve3"].iommu) == (True, True, False)
    assert (hosts["pve1"].nested, hosts["pve3"].nested) == (True, False)
    assert (max(hosts["pve1"].machine_types or []), max(hosts["pve3"].machine_types or [])) == (
        "pc-q35-9.2+pve1", "pc-q35-8.1+pve1")


def test_a_lab_process_with_one_api_worker_answers_one_request_at_a_time(tmp_path: Path) -> None:
    """The benchmarks' model of pveproxy's few workers: each request holds a worker for its service time, so three
    requests to one worker cannot all be answered before three service times have passed (a lower bound: a sleep
    never ends early)."""
    lab = fakepve.start(tmp_path, workers=1, service_ms=300)
    try:
        provider = connect(lab.environ())
        started = time.monotonic()
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda _: provider.client.get("/version", "read the version"), range(3)))
        elapsed = time.monotonic() - started
        provider.close()
    finally:
        lab.stop()
    assert elapsed >= 0.9
