"""The Hyper-V side of the end-to-end tests: one simulated host for the session, set up as `virtplane lab up`
sets up the lab's (HTTPS with its own CA, NTLM, the switch lab-switch), emptied of VMs before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import hyperv as raw_hyperv
from virtplane.lab import cli as lab_cli
from virtplane.lab import hyperv


@pytest.fixture(scope="session")
def hyperv_lab_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[hyperv.HypervInstance]:
    instance = hyperv.start(tmp_path_factory.mktemp("hyperv-lab"), host_name=lab_cli.HYPERV_HOST,
                            profile=lab_cli.HYPERV_PROFILE, tls=True, switch=lab_cli.HYPERV_SWITCH)
    yield instance
    instance.stop()


@pytest.fixture
def fresh_hyperv(hyperv_lab_host: hyperv.HypervInstance) -> hyperv.HypervInstance:
    """The session's Hyper-V host with no VMs on it (its switch stays)."""
    raw_hyperv.empty(hyperv_lab_host)
    return hyperv_lab_host
