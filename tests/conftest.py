"""Shared fixtures: simulators started for the session or per test, never mocks of our own code."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import cli as cli_support
from tests.support import fakepve_fixture, lab_libvirt
from tests.support import hyperv as raw_hyperv
from virtplane_lab import cli as lab_cli
from virtplane_lab import hyperv, libvirtd, vcsim, xenserver
from virtplane_lab.fakepve import SNIPPETS_STORAGE

REPO = Path(__file__).resolve().parents[1]
BIN_CACHE = REPO / ".lab" / "bin"  # the simulator binary is built once per checkout

fakepve = fakepve_fixture.fakepve  # overrides fakepve's own fixture: the fake's nodes carry seeded hardware

# Every process this session starts (simulators, the CLI, the plugin) inherits this variable; one still running
# when the session ends was left behind by a test (pytest_sessionfinish below).
SESSION_MARK = "VIRTPLANE_TEST_SESSION"


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller (or a plain run) names the session; workers inherit it
        os.environ.setdefault(SESSION_MARK, uuid.uuid4().hex)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Run as a shell's background job, this process ignores Ctrl-C, and so would every process it starts: the
        # tests that stop the CLI, the plugin or the policy pack with Ctrl-C need it to arrive as in a terminal.
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _left_behind() -> list[tuple[int, str]]:
    """(pid, command line) of processes carrying this session's mark, other than this process and its parents."""
    mark = f"{SESSION_MARK}={os.environ[SESSION_MARK]}".encode()
    ours = {os.getpid()}
    pid = os.getppid()
    while pid > 1 and pid not in ours:
        ours.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in ours:
            continue
        try:
            if mark in (entry / "environ").read_bytes().split(b"\0"):
                found.append((int(entry.name), (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()))
        except OSError:
            continue  # ended meanwhile, or not ours to read
    return found


@pytest.hookimpl(trylast=True)  # after pytest-xdist has shut its workers down
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a test left a process running (and end those processes, so nothing stays)."""
    lab_libvirt.stop()  # the session's own daemon, started on first use (each xdist worker stops its own)
    if "tests.conformance.kill" in sys.modules:  # the kill harness's fork server, started on first use
        sys.modules["tests.conformance.kill"].stop_server()
    if hasattr(session.config, "workerinput") or not Path("/proc").is_dir():
        return
    left = _left_behind()
    for pid, _ in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if left:
        lines = "\n".join(f"  {pid}: {command[:200]}" for pid, command in left)
        session.config.get_terminal_writer().line(f"\nprocesses left running by the tests (now ended):\n{lines}",
                                                  red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session", autouse=True)
def lock_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tests' lock spaces (tests/support/cli.py user_env) live in a directory of pytest's own."""
    cli_support.LOCK_ROOT = tmp_path_factory.mktemp("locks")
    return cli_support.LOCK_ROOT


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback TCP port nothing listens on for the test's length: bound here and never listened on, so a
    connection to it is refused and no other process can take it meanwhile."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    yield holder.getsockname()[1]
    holder.close()


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
