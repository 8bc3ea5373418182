"""Shared fixtures: simulators started for the session or per test, never mocks of our own code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import fakepve_fixture, lab_libvirt
from tests.support import hyperv as raw_hyperv
from virtplane_lab import cli as lab_cli
from virtplane_lab import hyperv, libvirtd, vcsim, xenserver
from virtplane_lab.fakepve import SNIPPETS_STORAGE

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
def fresh_pve(fakepve: Any, fakepve_cafile: str, tmp_path: Path) -> dict[str, str]:
    """A fresh three-node fake Proxmox VE cluster for one test, as PROXMOX_VE_* variables, with the lab's shared
    snippets storage (a directory of the test's) and other teams' VMs, as `virtplane lab up` makes it."""
    for node in ("pve2", "pve3"):
        fakepve.add_node(node)
    fakepve.add_snippets_storage(SNIPPETS_STORAGE, str(tmp_path / "pve-snippets"))
    fakepve.seed_lab_guests()
    return {"PROXMOX_VE_ENDPOINT": fakepve.url, "PROXMOX_VE_USERNAME": fakepve.user,
            "PROXMOX_VE_PASSWORD": fakepve.password, "PROXMOX_VE_CA_FILE": fakepve_cafile,
            "PROXMOX_VE_SNIPPETS_STORAGE": SNIPPETS_STORAGE,
            "PROXMOX_VE_SNIPPETS_PATH": str(tmp_path / "pve-snippets" / "snippets")}


@pytest.fixture(scope="session")
def hyperv_lab_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[hyperv.HypervInstance]:
    """One simulated Hyper-V host for the session, set up as `virtplane lab up` sets up the lab's (HTTPS with
    its own CA, NTLM, the switch lab-switch): shared by the end-to-end and the conformance tests."""
    instance = hyperv.start(tmp_path_factory.mktemp("hyperv-lab"), host_name=lab_cli.HYPERV_HOST,
                            profile=lab_cli.HYPERV_PROFILE, tls=True, switch=lab_cli.HYPERV_SWITCH,
                            dismount=lab_cli.HYPERV_DDA_GPUS)
    yield instance
    instance.stop()


@pytest.fixture
def fresh_hyperv(hyperv_lab_host: hyperv.HypervInstance) -> hyperv.HypervInstance:
    """The session's Hyper-V host with no VMs on it (its switch stays)."""
    raw_hyperv.empty(hyperv_lab_host)
    hyperv.dismount_devices(hyperv_lab_host, lab_cli.HYPERV_DDA_GPUS)  # a destroy gives the DDA GPU back to the host
    return hyperv_lab_host


@pytest.fixture(scope="session")
def xenserver_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[xenserver.XenserverInstance]:
    """One simulated XenServer pool for the session, as `virtplane lab up` starts the lab's (HTTPS with its own CA,
    the master on 127.0.0.1 and a member on 127.0.0.2)."""
    instance = xenserver.start(tmp_path_factory.mktemp("xenserver"))
    yield instance
    instance.stop()


@pytest.fixture
def fresh_xenserver(xenserver_pool: xenserver.XenserverInstance) -> xenserver.XenserverInstance:
    """The session's pool, freshly seeded for one test (no VMs, the seeded networks and templates only)."""
    xenserver_pool.control("reset")
    return xenserver_pool

@pytest.fixture(scope="session")
def libvirtd_lab() -> libvirtd.LibvirtInstance:
    """The session's private libvirtd with QEMU, as `virtplane lab up` starts the lab's (pool and network
    'default'); started on first use, stopped when the session ends (tests/support/lab_libvirt.py)."""
    return lab_libvirt.instance()


@pytest.fixture
def fresh_libvirtd(libvirtd_lab: libvirtd.LibvirtInstance) -> libvirtd.LibvirtInstance:
    """The session's libvirtd with no domain, volume or extra network (emptied again after the test)."""
    return lab_libvirt.fresh()


@pytest.fixture(autouse=True)
def _no_qemu_left_running() -> Iterator[None]:
    """A test that used the session's libvirtd leaves no domain behind: a running QEMU would keep a core busy."""
    yield
    if lab_libvirt.used_since_last_call():
        lab_libvirt.empty()
