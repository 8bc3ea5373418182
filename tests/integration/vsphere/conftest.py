"""One vSphere simulator for the whole session, and connected providers on it."""

from __future__ import annotations

import itertools
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect

from virtplane.lab import vcsim
from virtplane.providers.vsphere.provider import VsphereProvider

_names = itertools.count()
BIN_CACHE = Path(__file__).resolve().parents[3] / ".lab" / "bin"  # built once per checkout


@pytest.fixture(scope="session")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[vcsim.VcsimInstance]:
    instance = vcsim.start(tmp_path_factory.mktemp("vcsim"), hosts=3, bin_dir=BIN_CACHE)
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def provider(simulator: vcsim.VcsimInstance) -> Iterator[VsphereProvider]:
    connected = VsphereProvider.connect(VsphereProvider.settings_from("lab", {}, simulator.environ()))
    yield connected
    connected.close()


@pytest.fixture(scope="session")
def raw_si(simulator: vcsim.VcsimInstance) -> Iterator[Any]:
    """A plain pyVmomi session, for changes made behind virtplane's back."""
    host, port = simulator.host.rsplit(":", 1)
    si = SmartConnect(host=host, port=int(port), user=simulator.user, pwd=simulator.password,
                      sslContext=ssl.create_default_context(cafile=simulator.ca_file))
    yield si
    Disconnect(si)


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A VM / network name no other test uses."""
    return f"t{next(_names)}-{request.node.name[5:30].replace('_', '-')}"


@pytest.fixture
def stack(name: str) -> str:
    return f"stack-{name}"
