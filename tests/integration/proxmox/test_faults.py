"""Apply under each of fakepve's faults, through the engine: it succeeds by retrying only what is safe to retry,
or stops with one clear sentence per failed resource; then the fault is removed and a clean apply converges with
no orphan VM, no duplicate VMID and the unmanaged VM untouched."""

from __future__ import annotations

import copy
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter
from urllib3.exceptions import ProtocolError

from tests.conformance.stack import ENDPOINT, Stack
from tests.integration.proxmox.conftest import connect
from tests.integration.proxmox.transports import LoseAnswer, wrap
from virtplane import apply
from virtplane.errors import VirtplaneError
from virtplane.providers.base import owner_from_description
from virtplane.providers.proxmox.provider import ProxmoxProvider

PASSWORD = "fault-pw-6b1d0c"  # distinctive, so that a leak into a message is caught
pytestmark = pytest.mark.fakepve(password=PASSWORD)
SCALED = pytest.mark.fakepve(password=PASSWORD, time_scale=0.01)  # for faults that need PVE time to pass

BYSTANDER_VMID = 101  # between the VMIDs our VMs get, so every nextid has to skip it
CREATE = "/nodes/pve3/qemu"  # where db1 is created

# What the errors say (with what it means, added by the driver).
QUORUM = "cluster not ready - no quorum? (the cluster has lost quorum"
LOCKED = "VM is locked (backup) (another operation, backup, holds the VM"
LOCK_TIMEOUT = "got timeout (another task held the VM's configuration lock too long"


# ---- the stack, the unmanaged VM and the endpoint ------------------------------------------------------------------


@dataclass
class Endpoint:
    """What tests.conformance.stack.Stack needs of a peer: the kind and a connected provider."""

    provider: ProxmoxProvider
    kind: str = "proxmox"


def vm(node: str | None, **fields: Any) -> dict[str, Any]:
    values = {"cpus": 1, "memory": 512, "disks": [{"size": 8}], "nics": [{"network": "app"}], "power": "on"}
    return values | ({"node": node} if node else {}) | fields


def existing(endpoint: Endpoint, name: str) -> Stack:
    """What is there before the fault: web1 and web2 to update, old1 to delete."""
    return (Stack(endpoint, name).network("app", vlan=110)
            .vm("web1", **vm("pve1")).vm("web2", **vm("pve2")).vm("old1", **vm("pve1")))


def wanted(endpoint: Endpoint, name: str) -> Stack:
    """What the faulty apply is to make of it: web1 gets more memory and a second disk (shut down, reconfigured,
    started), web2 is tagged and shut down, db1 is created and started, old1 is stopped and deleted. (No disk grows:
    fakepve answers a QEMU resize with a task but leaves the disk as it was.)"""
    return (Stack(endpoint, name).network("app", vlan=110)
            .vm("web1", **vm("pve1", memory=1024, disks=[{"size": 8}, {"size": 2}]))
            .vm("web2", **vm("pve2", power="off", tags=["quiet"]))
            .vm("db1", **vm("pve3")))


@dataclass
class Bystander:
    """A VM made by hand, which no apply may ever touch; it carries our tag, so every observe reads it."""

    vmid: int
    seen: tuple[Any, ...]

    @staticmethod
    def state(pve: Any, vmid: int) -> tuple[Any, ...]:
        [fake] = [v for v in pve.vms if v.vmid == vmid]
        return (fake.name, fake.node, fake.status, fake.qmpstatus, fake.lock, copy.deepcopy(fake.config),
                copy.deepcopy(fake.pending))

    def assert_untouched(self, pve: Any) -> None:
        assert self.state(pve, self.vmid) == self.seen
        writes = [(method, path) for method, path, _ in pve.requests
                  if method != "GET" and re.search(rf"/qemu/{self.vmid}(/|$)", path)]
        assert writes == []


@pytest.fixture
def bystander(pve: Any) -> Bystander:
    pve.add_vm(BYSTANDER_VMID, "handmade", node="pve1", status="running", config={
        "memory": 2048, "cores": 2, "tags": "virtplane;keep", "description": "made by hand",
        "scsi0": "local-lvm:vm-101-disk-0,size=16G", "net0": "virtio=BC:24:11:00:01:01,bridge=vmbr0,tag=110"})
    return Bystander(BYSTANDER_VMID, Bystander.state(pve, BYSTANDER_VMID))


@dataclass
class Lab:
    """The fake cluster with the existing VMs applied cleanly, and the stack the faulty apply is to reach."""

    pve: Any
    endpoint: Endpoint
    stack: Stack
    bystander: Bystander


@pytest.fixture
def make_lab(pve: Any, environ: dict[str, str], bystander: Bystander) -> Iterator[Callable[..., Lab]]:
    providers: list[ProxmoxProvider] = []

    def make(**settings: Any) -> Lab:
        """Connect with these endpoint settings (request_timeout=…) and apply the existing VMs cleanly."""
        provider = connect(environ, **settings)
        providers.append(provider)
        endpoint = Endpoint(provider)
        existing(endpoint, "faults").apply()
        return Lab(pve, endpoint, wanted(endpoint, "faults"), bystander)

    yield make
    for provider in providers:
        provider.close()


# ---- running an apply under a fault, and what must hold afterwards --------------------------------------------------


@dataclass
class Run:
    """What an apply under a fault did: the plan's own error, or each failed resource's error."""

    plan_error: str | None = None
    failed: dict[str, str] = field(default_factory=dict)
    succeeded: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return self.plan_error is None and not self.failed


def assert_one_sentence(text: str, names: tuple[str, ...] = ()) -> None:
    """An error a person can act on: one line, no traceback, no password, no 'unexpected' bug report, and
    naming ``names`` (the VM it is about)."""
    assert text and "\n" not in text and "Traceback" not in text, text
    assert PASSWORD not in text, text
    assert "unexpected " not in text, text  # apply's wording for an exception that is not one of ours
    for name in names:
        assert re.search(rf"\b{re.escape(name)}\b", text), f"{name!r} not named in: {text}"


def apply_under_fault(lab: Lab) -> Run:
    """Plan and apply as the CLI does; every error must be one sentence naming its VM."""
    try:
        plan = lab.stack.plan()
    except VirtplaneError as exc:
        assert_one_sentence(str(exc))
        return Run(plan_error=str(exc))
    result = apply.run(plan, {ENDPOINT: lab.endpoint.provider}, parallel=4, allow_data_loss=True)  # old1 goes
    run = Run(succeeded={o.resource.name for o in result.outcomes if o.ok})
    for outcome in result.failed:
        assert_one_sentence(outcome.error, (outcome.resource.name,))
        run.failed[outcome.resource.name] = outcome.error
    return run


def assert_converged_cleanly(lab: Lab) -> None:
    """A clean apply succeeds and leaves nothing to do; each declared VM exists once, no VM carries our marker
    without being declared, no VMID is shared, and the unmanaged VM is as it was."""
    pve, stack = lab.pve, lab.stack
    stack.apply(allow_data_loss=True)
    assert stack.changes() == {}
    declared = {r.name for r in stack.desired.resources.values() if r.kind == "VirtualMachine"}
    vms = list(pve.vms)
    names = Counter(v.name for v in vms)
    assert {name: names[name] for name in declared} == dict.fromkeys(declared, 1)
    vmids = [v.vmid for v in vms] + [ct.vmid for ct in pve.cts]
    assert len(vmids) == len(set(vmids))
    marked = {}
    for v in vms:
        owner = owner_from_description(v.config.get("description"))
        if owner is not None:
            marked[v.vmid] = owner.resource
    ours = {v.vmid for v in vms if v.name in declared}
    assert set(marked.values()) == declared and set(marked) == ours  # no orphan carries our marker
    assert {v.vmid for v in vms} == ours | {lab.bystander.vmid}  # nor is any other VM left behind
    assert not [v.vmid for v in vms if v.lock]
    # No disk left behind either: every volume belongs to a VM that uses it (none is an unusedN).
    used = {str(value).split(",")[0]: v.vmid for v in vms for key, value in v.config.items()
            if re.fullmatch(r"(scsi|sata|ide|virtio|efidisk)\d+", key)}
    for storage, facts in pve.storages.items():
        for volume, info in facts.get("volumes", {}).items():
            if info.get("content") == "images":
                assert used.get(f"{storage}:{volume}") == info["vmid"], (storage, volume, info)
    lab.bystander.assert_untouched(pve)


# ---- watching the wire ----------------------------------------------------------------------------------------------


class Tap(BaseAdapter):
    """Calls ``before(method, path)`` ahead of each request the provider sends (it may disturb fakepve, or raise
    to drop the request), and counts the requests that failed on the wire."""

    def __init__(self, inner: BaseAdapter, before: Callable[[str, str], None] | None = None):
        super().__init__()
        self.inner, self.before = inner, before
        self.errors = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        self.inner.close()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if self.before:
            self.before(str(request.method), urlsplit(request.url).path)
        try:
            return self.inner.send(request, **kwargs)
        except requests.RequestException:
            with self._lock:
                self.errors += 1
            raise


@contextmanager
def tapped(lab: Lab, before: Callable[[str, str], None] | None = None) -> Iterator[Tap]:
    """The provider's traffic goes through a Tap while the block runs."""
    client = lab.endpoint.provider.client
    session = client.session
    inner = session.get_adapter("https://")
    wrapper = Tap(inner, before)
    session.mount("https://", wrapper)
    direct, client.direct_reads = client.direct_reads, False  # reads through the session, so the Tap sees them
    try:
        yield wrapper
    finally:
        session.mount("https://", inner)
        client.direct_reads = direct


def wait_until_quiet(pve: Any, hang: float = 0.0, timeout: float = 20.0) -> None:
    """Let what the faulty run left in flight land before the clean run: a request fakepve holds for ``hang``
    real seconds is carried out after the client gave up on it (if its body had arrived), and tasks may still run."""
    time.sleep(hang)
    deadline = time.monotonic() + timeout
    calm = 0
    while calm < 3:
        assert time.monotonic() < deadline, "fakepve still has tasks in flight"
        busy = (any(task["status"] != "stopped" for task in list(pve.tasks.values()))
                or any(v.lock in ("create", "clone") for v in list(pve.vms)))
        calm = 0 if busy else calm + 1
        time.sleep(0.02)


# ---- disturbing fakepve and reading it back ------------------------------------------------------------------------


def once(*points: tuple[str, str], then: Callable[[], None]) -> Callable[[str, str], None]:
    """A Tap hook: ``then()`` runs just before the first request for each (method, path suffix) of ``points``."""
    pending = set(points)
    lock = threading.Lock()

    def before(method: str, path: str) -> None:
        with lock:
            hit = next(((m, s) for m, s in pending if m == method and path.endswith(s)), None)
            if hit is None:
                return
            pending.discard(hit)
        then()

    return before


def hold_config_lock(pve: Any, vmid: int) -> None:
    """Another task takes the VM's configuration lock and keeps it until pve.release_config_lock(vmid). (fakepve's
    hold_config_lock is a coroutine for its own loop; given no duration it never waits, so it is run to its end
    here.)"""
    coroutine = pve.hold_config_lock(vmid, None)
    try:
        coroutine.send(None)
    except StopIteration:
        return
    raise AssertionError("hold_config_lock waited for a lock")


def next_vmid(pve: Any) -> int:
    """The VMID /cluster/nextid offers next: the first free one from 100."""
    taken = {v.vmid for v in pve.vms}
    return next(vmid for vmid in range(100, 1000) if vmid not in taken)


def fake_vm(pve: Any, name: str) -> Any:
    [found] = [v for v in pve.vms if v.name == name]
    return found


def writes_to(pve: Any, name: str, suffix: str = "") -> list[str]:
    """Paths of the non-GET requests fakepve saw for the VM called ``name`` (ending with ``suffix``)."""
    vmid = fake_vm(pve, name).vmid
    return [path for method, path, _ in pve.requests
            if method != "GET" and re.search(rf"/qemu/{vmid}{re.escape(suffix)}$", path)]


def assert_failed(run: Run, expected: dict[str, tuple[str, ...]]) -> None:
    """Exactly the VMs of ``expected`` failed, each with an error holding every fragment given for it."""
    assert run.plan_error is None, run.plan_error
    assert set(run.failed) == set(expected), run.failed
    for name, fragments in expected.items():
        for fragment in fragments:
            assert fragment in run.failed[name], (fragment, run.failed[name])


# ---- flaky and slow networks ----------------------------------------------------------------------------------------


def test_a_network_that_drops_connections_is_survived_by_retrying_reads_and_checking_before_writing_again(make_lab):
    lab = make_lab()
    lab.pve.flaky_network(drop_rate=0.3)  # fakepve resets the connection before it acts on the request
    with tapped(lab) as wire:
        run = apply_under_fault(lab)
    assert wire.errors > 0
    for error in [run.plan_error, *run.failed.values()]:
        assert error is None or "the connection was closed before an answer came" in error
    lab.pve.flaky_network(0)
    assert_converged_cleanly(lab)


def test_requests_that_hang_past_the_request_timeout_are_retried_or_reported_and_land_without_a_duplicate(make_lab):
    # A hung request is carried out by fakepve after hang_secs (unless its body was lost with the connection),
    # long after the client gave up on it: reads are retried, writes are re-read before being sent again.
    lab = make_lab(request_timeout=0.2)
    lab.pve.flaky_network(hang_rate=0.2, hang_secs=0.6)  # real seconds at time scale 0
    with tapped(lab) as wire:
        run = apply_under_fault(lab)
    assert wire.errors > 0
    for error in [run.plan_error, *run.failed.values()]:
        assert error is None or "no answer within 0.2 s" in error
    lab.pve.flaky_network(0)
    wait_until_quiet(lab.pve, hang=0.8)
    assert_converged_cleanly(lab)


def test_a_create_dropped_on_every_attempt_makes_no_vm_and_says_the_connection_failed(make_lab):
    # As fakepve's flaky_network drops a request: the connection is reset before PVE acts on it.
    lab = make_lab()

    def reset(method: str, path: str) -> None:
        if method == "POST" and path.endswith(CREATE):
            raise requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")))

    with tapped(lab, reset) as wire:
        run = apply_under_fault(lab)
    assert set(run.failed) == {"db1"} and run.plan_error is None, run
    assert re.fullmatch(r"the connection to Proxmox endpoint 'pve' failed while trying to create VM db1 with VMID \d+ "
                        r"on node pve3, so whether it happened is unknown \(the connection was closed before an answer "
                        r"came\)", run.failed["db1"]), run.failed["db1"]
    assert wire.errors == 0 and not [v for v in lab.pve.vms if v.name == "db1"]
    assert_converged_cleanly(lab)


@SCALED
def test_a_slow_network_within_the_request_timeout_only_slows_the_apply_down(make_lab):
    lab = make_lab()
    lab.pve.slow_network(5, jitter=5)  # 50 to 100 ms per answer at this time scale
    assert apply_under_fault(lab).ok
    lab.pve.slow_network(0)
    assert_converged_cleanly(lab)


@SCALED
def test_a_network_slower_than_the_request_timeout_stops_the_plan_with_one_sentence_before_any_change(make_lab):
    lab = make_lab(request_timeout=0.1)
    recorded = len(lab.pve.requests)
    lab.pve.slow_network(30)  # 300 ms per answer at this time scale
    run = apply_under_fault(lab)
    assert run.plan_error is not None
    assert re.fullmatch(r"Proxmox could not list the cluster's \w+: cannot reach endpoint 'pve' at https://\S+ "
                        r"\(no answer within 0\.1 s; tried 4 times\)", run.plan_error), run.plan_error
    lab.pve.slow_network(0)
    wait_until_quiet(lab.pve, hang=0.4)
    assert [path for method, path, _ in lab.pve.requests[recorded:] if method != "GET"] == []
    assert_converged_cleanly(lab)


# ---- locks and slow shutdowns ---------------------------------------------------------------------------------------


def test_a_configuration_lock_held_by_another_task_fails_those_vms_in_one_sentence_and_never_pulls_the_plug(
        make_lab):
    lab = make_lab()
    for name in ("web1", "old1"):
        hold_config_lock(lab.pve, fake_vm(lab.pve, name).vmid)
    run = apply_under_fault(lab)
    # web1 is to be shut down for its change: the record that it is to run again, written first, waits for the same
    # lock, so nothing of web1 changes.
    assert_failed(run, {"web1": ("Proxmox could not write the description of VM web1: can't lock file", LOCK_TIMEOUT),
                        "old1": ("Proxmox could not stop VM old1: TASK ERROR: can't lock file", LOCK_TIMEOUT)})
    # The shutdown never reached the guest: a hard stop instead would only have waited for the same lock.
    assert writes_to(lab.pve, "web1", "/status/stop") == []
    assert fake_vm(lab.pve, "web1").status == "running"
    for name in ("web1", "old1"):
        lab.pve.release_config_lock(fake_vm(lab.pve, name).vmid)
    assert_converged_cleanly(lab)


def test_vms_locked_by_a_backup_fail_in_one_sentence_and_are_finished_once_it_is_done(make_lab):
    lab = make_lab()
    for name in ("web1", "web2", "old1"):
        lab.pve.snapshot_lock(fake_vm(lab.pve, name).vmid, "backup")
    run = apply_under_fault(lab)
    assert_failed(run, {"web1": ("Proxmox could not write the description of VM web1", LOCKED),
                        "web2": ("Proxmox could not reconfigure VM web2", LOCKED),
                        "old1": ("Proxmox could not stop VM old1", LOCKED)})
    for name in ("web1", "web2", "old1"):
        lab.pve.unlock(fake_vm(lab.pve, name).vmid)
    assert_converged_cleanly(lab)


@SCALED
def test_guests_that_do_not_power_off_within_the_shutdown_timeout_are_stopped_hard(make_lab):
    lab = make_lab()
    fake_vm(lab.pve, "web1").acpi = False  # ignores the ACPI request
    fake_vm(lab.pve, "web2").shutdown_secs = 100_000  # would take longer than the driver's shutdown timeout
    assert apply_under_fault(lab).ok
    for name in ("web1", "web2"):
        assert len(writes_to(lab.pve, name, "/status/shutdown")) == 1
        assert len(writes_to(lab.pve, name, "/status/stop")) == 1
    assert fake_vm(lab.pve, "web2").status == "stopped"
    assert_converged_cleanly(lab)


# ---- quorum and nodes -----------------------------------------------------------------------------------------------


def test_lost_quorum_fails_every_write_in_one_sentence_and_changes_nothing(make_lab):
    lab = make_lab()
    configs = {v.vmid: copy.deepcopy(v.config) for v in lab.pve.vms}
    lab.pve.lose_quorum()
    run = apply_under_fault(lab)
    assert_failed(run, {"web1": ("Proxmox could not write the description of VM web1", QUORUM),
                        "web2": ("Proxmox could not reconfigure VM web2", QUORUM),
                        "db1": ("Proxmox could not create VM db1 with VMID", QUORUM),
                        "old1": ("Proxmox could not stop VM old1", QUORUM)})
    assert {v.vmid: v.config for v in lab.pve.vms} == configs
    lab.pve.regain_quorum()
    assert_converged_cleanly(lab)


def test_quorum_lost_between_creating_a_vm_and_starting_it_leaves_a_vm_the_next_run_finishes(make_lab):
    lab = make_lab()
    db1 = next_vmid(lab.pve)
    with tapped(lab, once(("POST", f"/qemu/{db1}/status/start"), then=lab.pve.lose_quorum)):
        run = apply_under_fault(lab)
    assert run.plan_error is None and "db1" in run.failed, run
    assert run.failed["db1"].startswith(f"Proxmox could not power on VM db1: {QUORUM}")
    assert all(QUORUM in error for error in run.failed.values()), run  # the others, if still writing then
    assert fake_vm(lab.pve, "db1").vmid == db1 and fake_vm(lab.pve, "db1").status == "stopped"  # made, not started
    lab.pve.regain_quorum()
    assert_converged_cleanly(lab)


def test_a_declared_node_that_is_offline_is_refused_at_plan_time_naming_the_vm(make_lab):
    lab = make_lab()
    recorded = len(lab.pve.requests)
    lab.pve.set_node_offline("pve3")
    run = apply_under_fault(lab)
    assert run.plan_error == "VirtualMachine 'db1': field 'node': node 'pve3' is offline (online nodes: pve1, pve2)"
    assert [path for method, path, _ in lab.pve.requests[recorded:] if method != "GET"] == []
    lab.pve.set_node_offline("pve3", False)
    assert_converged_cleanly(lab)


def test_a_vm_on_an_offline_node_stops_the_plan_with_one_sentence_naming_it(make_lab):
    lab = make_lab()
    recorded = len(lab.pve.requests)
    web2 = fake_vm(lab.pve, "web2").vmid
    lab.pve.set_node_offline("pve2")
    run = apply_under_fault(lab)
    assert run.plan_error == (f"Proxmox could not read the configuration of VM web2 ({web2}) on node pve2: no route to "
                              "host (the node is offline or cannot be reached from the cluster)")
    assert [path for method, path, _ in lab.pve.requests[recorded:] if method != "GET"] == []
    lab.pve.set_node_offline("pve2", False)
    assert_converged_cleanly(lab)


def test_a_node_going_offline_after_a_vm_was_created_on_it_leaves_a_vm_the_next_run_finishes(make_lab):
    lab = make_lab()
    db1 = next_vmid(lab.pve)
    with tapped(lab, once(("POST", f"/nodes/pve3/qemu/{db1}/status/start"),
                          then=lambda: lab.pve.set_node_offline("pve3"))):
        run = apply_under_fault(lab)
    assert_failed(run, {"db1": ("Proxmox could not power on VM db1: no route to host (the node is offline",)})
    assert fake_vm(lab.pve, "db1").vmid == db1
    lab.pve.set_node_offline("pve3", False)
    assert_converged_cleanly(lab)


# ---- tickets --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "suffix"), [("POST", CREATE), ("POST", "/config"), ("POST", "/status/shutdown"),
                                               ("DELETE", ""), ("GET", "/status")],
                         ids=["before-a-create", "before-a-config-write", "before-a-shutdown", "before-a-delete",
                              "while-following-a-task"])
def test_tickets_revoked_mid_apply_are_renewed_and_the_refused_request_sent_again(make_lab, method, suffix):
    lab = make_lab()
    logins = len([1 for _, path, _ in lab.pve.requests if path.endswith("/access/ticket")])
    with tapped(lab, once((method, suffix), then=lab.pve.revoke_tickets)):
        assert apply_under_fault(lab).ok
    assert len([1 for _, path, _ in lab.pve.requests if path.endswith("/access/ticket")]) == logins + 1
    assert_converged_cleanly(lab)


def test_tickets_that_expire_as_soon_as_they_are_issued_stop_the_plan_with_one_sentence(make_lab):
    lab = make_lab()
    lab.pve.ticket_ttl = -1
    lab.pve.revoke_tickets()
    run = apply_under_fault(lab)
    assert run.plan_error == ("Proxmox endpoint 'pve' refused the credentials of user root@pam while trying to list "
                              "the cluster's nodes: permission denied - invalid PVE ticket")
    lab.pve.ticket_ttl = 7200
    assert_converged_cleanly(lab)


# ---- PVE's named errors ---------------------------------------------------------------------------------------------

OK: dict[str, tuple[str, ...]] = {}


# (method, the path's end ({web1}: that VM's /nodes/…/qemu/<vmid>), error name, times, what the apply does:
# OK (succeeds), {vm: fragments of its error}, or "plan: fragment" (the plan stops)
NAMED = [
    pytest.param("POST", CREATE, "no_quorum", None,
                 {"db1": ("Proxmox could not create VM db1 with VMID", QUORUM)}, id="create-no_quorum"),
    pytest.param("POST", CREATE, "no_route_to_host", None,
                 {"db1": ("Proxmox could not create VM db1", "no route to host (the node is offline")},
                 id="create-no_route_to_host"),
    pytest.param("POST", CREATE, "unable_create", None,
                 {"db1": ("Proxmox could not create VM db1", "unable to create fake")}, id="create-unable_create"),
    pytest.param("POST", CREATE, "invalid_csrf", 1, OK, id="create-invalid_csrf-once"),
    pytest.param("POST", CREATE, "permission_check_failed", None, {"db1": ("permission denied for VM.Allocate",)},
                 id="create-permission_check_failed"),
    pytest.param("GET", "/cluster/nextid", "unable_get_any_free_vmid", None,
                 {"db1": ("Proxmox could not pick a free VM id for VM db1", "unable to get any free VMID")},
                 id="nextid-unable_get_any_free_vmid"),
    pytest.param("POST", "/status/start", "already_running", None, OK, id="start-already_running"),
    pytest.param("POST", "/status/start", "locked", None,
                 {"db1": ("Proxmox could not power on VM db1: TASK ERROR:", LOCKED),
                  "web1": ("Proxmox could not power on VM web1: TASK ERROR:", LOCKED)}, id="start-locked"),
    pytest.param("POST", "/status/start", "qemu_exited_code", None,
                 {"db1": ("Proxmox could not power on VM db1: TASK ERROR: QEMU exited with code 1",),
                  "web1": ("Proxmox could not power on VM web1: TASK ERROR: QEMU exited with code 1",)},
                 id="start-qemu_exited_code"),
    pytest.param("POST", "/status/shutdown", "quit_powerdown_failed_got_timeout", None, OK,
                 id="shutdown-quit_powerdown_failed_got_timeout"),
    pytest.param("POST", "/status/shutdown", "paused_cannot_shutdown", None,
                 {"web1": ("Proxmox could not shut down VM web1: VM is paused - cannot shutdown",),
                  "web2": ("Proxmox could not shut down VM web2: VM is paused - cannot shutdown",)},
                 id="shutdown-paused_cannot_shutdown"),
    pytest.param("POST", "/status/stop", "configuration_file_does_not_exist", None,
                 {"old1": ("Proxmox could not stop VM old1: TASK ERROR: Configuration file", "does not exist")},
                 id="stop-configuration_file_does_not_exist"),
    pytest.param("POST", "/config", "config_lock_timeout", None,
                 {"web1": ("Proxmox could not reconfigure VM web1", LOCK_TIMEOUT),
                  "web2": ("Proxmox could not reconfigure VM web2", LOCK_TIMEOUT)}, id="config-config_lock_timeout"),
    pytest.param("POST", "/config", "checksum_mismatch_file_change_other", None,
                 {"web1": ("Proxmox could not reconfigure VM web1: checksum mismatch",),
                  "web2": ("Proxmox could not reconfigure VM web2: checksum mismatch",)},
                 id="config-checksum_mismatch"),
    pytest.param("DELETE", "{old1}", "locked", None,
                 {"old1": ("Proxmox could not delete VM old1", LOCKED)}, id="delete-locked"),
    pytest.param("DELETE", "{old1}", "configuration_file_does_not_exist", None, OK,
                 id="delete-configuration_file_does_not_exist"),  # taken as gone; the next run deletes it
    pytest.param("GET", "/pending", "no_route_to_host", 2, OK, id="read-no_route_to_host-twice"),
    pytest.param("GET", "{web1}/pending", "configuration_file_does_not_exist", 1, OK,
                 id="read-configuration_file_does_not_exist-once"),
    pytest.param("GET", "/pending", "permission_denied", None, "plan: permission denied for VM.Audit on /vms/",
                 id="read-permission_denied"),
    pytest.param("GET", "/cluster/resources", "invalid_ticket", 1, OK, id="list-invalid_ticket-once"),
    pytest.param("GET", "/cluster/resources", "authentication_failure", None,
                 "plan: Proxmox endpoint 'pve' refused the credentials of user root@pam while trying to list the "
                 "cluster's nodes: authentication failure", id="list-authentication_failure"),
    pytest.param("GET", "/status", "no_route_to_host", 2, OK, id="task-no_route_to_host-twice"),
    pytest.param("GET", "/status", "param_upid_no_such_task", None,
                 {"db1": ("Proxmox refused to follow the task that is to create VM db1",),
                  "web1": ("Proxmox refused to follow the task that is to shut down VM web1",),
                  "web2": ("Proxmox refused to follow the task that is to reconfigure VM web2",),
                  "old1": ("Proxmox refused to follow the task that is to stop VM old1",)},
                 id="task-param_upid_no_such_task"),
]


@pytest.mark.parametrize(("method", "suffix", "error", "times", "expected"), NAMED)
def test_each_named_pve_error_is_retried_when_safe_or_reported_in_one_sentence_and_the_next_run_converges(
        make_lab, method, suffix, error, times, expected):
    lab = make_lab()
    for name in ("web1", "old1"):
        suffix = suffix.replace(f"{{{name}}}", f"/qemu/{fake_vm(lab.pve, name).vmid}")
    lab.pve.fail(method, suffix, error=error, times=times)
    run = apply_under_fault(lab)
    if isinstance(expected, str):
        assert run.plan_error is not None and expected.removeprefix("plan: ") in run.plan_error, run
    elif expected:
        assert_failed(run, expected)
    else:
        assert run.ok, run
    lab.pve.failures.clear()
    assert_converged_cleanly(lab)


def test_a_create_whose_answer_is_lost_is_found_by_its_marker_even_when_its_first_read_says_it_does_not_exist(
        make_lab):
    lab = make_lab()
    new = next_vmid(lab.pve)  # what db1 will get
    lab.pve.fail("GET", f"/qemu/{new}/pending", error="configuration_file_does_not_exist", times=1)
    wrap(lab.endpoint.provider, LoseAnswer, "POST", CREATE)
    assert apply_under_fault(lab).ok
    assert [path for method, path, _ in lab.pve.requests if method == "POST" and path.endswith(CREATE)] == [
        f"/api2/json{CREATE}"]
    assert_converged_cleanly(lab)


@SCALED
def test_a_shutdown_whose_answer_is_lost_is_waited_for_and_never_falls_through_to_a_hard_stop(make_lab):
    lab = make_lab()
    fake_vm(lab.pve, "web1").shutdown_secs = 30  # a guest that takes half a minute, well within the timeout
    wrap(lab.endpoint.provider, LoseAnswer, "POST", "/status/shutdown")
    assert apply_under_fault(lab).ok
    assert writes_to(lab.pve, "web1", "/status/stop") == []  # the guest shut down cleanly: never a hard stop
    assert len(writes_to(lab.pve, "web1", "/status/shutdown")) == 1
    assert_converged_cleanly(lab)
