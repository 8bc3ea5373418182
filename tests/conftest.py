"""Shared fixtures: simulators started for the session or per test, never mocks of our own code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import fakepve_fixture
from virtplane.lab import vcsim

REPO = Path(__file__).resolve().parents[1]
BIN_CACHE = REPO / ".lab" / "bin"  # the simulator binary is built once per checkout

fakepve = fakepve_fixture.fakepve  # overrides fakepve's own fixture: the fake's nodes carry seeded hardware


@pytest.fixture(scope="session")
def vcsim_instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[vcsim.VcsimInstance]:
    """One vSphere simulator for the whole session (tests use distinct object names)."""
    instance = vcsim.start(tmp_path_factory.mktemp("vcsim"), hosts=3, bin_dir=BIN_CACHE)
    yield instance
    instance.stop()


@pytest.fixture
def fresh_vcsim(tmp_path: Path) -> Iterator[vcsim.VcsimInstance]:
    """A simulator of its own for a test that needs a clean inventory."""
    instance = vcsim.start(tmp_path / "vcsim", hosts=3, bin_dir=BIN_CACHE)
    yield instance
    instance.stop()


@pytest.fixture
def fresh_pve(fakepve: Any, fakepve_cafile: str) -> dict[str, str]:
    """A fresh three-node fake Proxmox VE cluster for one test, as PROXMOX_VE_* variables."""
    for node in ("pve2", "pve3"):
        fakepve.add_node(node)
    return {"PROXMOX_VE_ENDPOINT": fakepve.url, "PROXMOX_VE_USERNAME": fakepve.user,
            "PROXMOX_VE_PASSWORD": fakepve.password, "PROXMOX_VE_CA_FILE": fakepve_cafile}
