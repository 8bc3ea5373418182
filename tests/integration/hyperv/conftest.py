"""Simulated Hyper-V hosts (``virtplane_lab.hypervsim``) for the session, and pypsrp clients on them.

``hyperv_gpu``: Intel host with a DDA-capable GPU and a partitionable GPU, plain HTTP (NTLM with WinRM
message encryption, or Basic with encryption="never"). ``hyperv_sriov``: AMD host with an SR-IOV NIC, HTTPS
with the lab's CA. ``hyperv_plain``: no IOMMU, no GPU, highest configuration version 10.0. Tests use
distinct VM names (or VMIds) since the hosts are shared by the session."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from virtplane_lab import hyperv

_names = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


@pytest.fixture(scope="session")
def hyperv_gpu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[hyperv.HypervInstance]:
    instance = hyperv.start(tmp_path_factory.mktemp("hv"), host_name="HV-GPU", profile="gpu", name="gpu")
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def hyperv_sriov(tmp_path_factory: pytest.TempPathFactory) -> Iterator[hyperv.HypervInstance]:
    instance = hyperv.start(tmp_path_factory.mktemp("hv"), host_name="HV-SRIOV", profile="sriov", tls=True,
                            name="sriov")
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def hyperv_plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[hyperv.HypervInstance]:
    instance = hyperv.start(tmp_path_factory.mktemp("hv"), host_name="HV-PLAIN", profile="plain", name="plain")
    yield instance
    instance.stop()


def wsman(instance: hyperv.HypervInstance, **overrides: Any) -> WSMan:
    """The client the driver uses: NTLM with message encryption over HTTP, or any auth over verified TLS."""
    host, port = instance.server.rsplit(":", 1)
    options: dict[str, Any] = {"port": int(port), "username": instance.user, "password": instance.password,
                               "ssl": instance.tls, "auth": "ntlm", "connection_timeout": 10, "read_timeout": 30,
                               "operation_timeout": 20}
    if instance.tls:
        options["cert_validation"] = instance.ca_file
    options.update(overrides)
    return WSMan(host, **options)


Run = Callable[[Callable[[PowerShell], Any]], PowerShell]


def runner(instance: hyperv.HypervInstance) -> Iterator[Run]:
    """``run(build)``: one pipeline on a pool kept for the test; ``build(ps)`` adds its commands."""
    pool = RunspacePool(wsman(instance))
    pool.open()

    def run(build: Callable[[PowerShell], Any]) -> PowerShell:
        ps = PowerShell(pool)
        build(ps)
        ps.invoke()
        return ps

    yield run
    pool.close()


@pytest.fixture
def gpu_run(hyperv_gpu: hyperv.HypervInstance) -> Iterator[Run]:
    yield from runner(hyperv_gpu)


@pytest.fixture
def sriov_run(hyperv_sriov: hyperv.HypervInstance) -> Iterator[Run]:
    yield from runner(hyperv_sriov)


@pytest.fixture
def plain_run(hyperv_plain: hyperv.HypervInstance) -> Iterator[Run]:
    yield from runner(hyperv_plain)
