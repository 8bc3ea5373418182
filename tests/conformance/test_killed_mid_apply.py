"""``kill -9`` at each step of a create, a clone, a reconfigure and a delete, on every provider: the next apply
converges, and destroy — also straight after the kill — leaves no orphan and no duplicate; nothing the plan did
not name is touched (a VM made by hand stays, a VM only reconfigured keeps its id, a VM whose power the stack
leaves unset runs again as before).

Each step is a separate run on fresh names (tests/conformance/kill.py kills the child right after its N-th
change), until a run finishes without reaching step N.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.conformance.kill import killed_after
from tests.conformance.peers import Peer
from tests.conformance.stack import ENDPOINT, Stack

MAX_STEPS = 40  # far more changes than any scenario makes: a guard against a loop that never ends


@dataclass
class Scenario:
    """``before`` is applied first (not killed); ``after`` is the apply that is killed at each step."""

    before: Stack | None
    after: Stack
    keeps: list[str] = field(default_factory=list)  # VMs that must keep their id (changed in place, never replaced)
    gone: list[str] = field(default_factory=list)  # VMs the killed apply deletes
    allow_data_loss: bool = False


def vm(network: str, **fields: Any) -> dict[str, Any]:
    return {"cpus": 2, "memory": "1GiB", "disks": [{"size": 4}], "nics": [{"network": network}], **fields}


def create(peer: Peer, prefix: str) -> Scenario:
    after = Stack(peer, prefix).network(f"{prefix}-net", vlan=120)
    after.vm(f"{prefix}-a", **vm(f"{prefix}-net", disks=[{"size": 4}, {"size": 2}], firmware="uefi", tags=["t"],
                                 power="on"))
    return Scenario(None, after)


def clone(peer: Peer, prefix: str) -> Scenario:
    peer.add_template(f"{prefix}-tpl")
    after = Stack(peer, prefix)
    after.vm(f"{prefix}-a", clone_from=f"{prefix}-tpl", cpus=2, memory="1GiB", tags=["t"], power="on")
    return Scenario(None, after)


def reconfigure(peer: Peer, prefix: str) -> Scenario:
    before = Stack(peer, prefix).network(f"{prefix}-net", vlan=120)
    before.vm(f"{prefix}-a", cpus=2, memory="2GiB", disks=[{"size": 4}], nics=[{"network": f"{prefix}-net"}])
    after = Stack(peer, prefix).network(f"{prefix}-net", vlan=120)
    # memory lowered: switched off for it; power left unset, so it must run again afterwards
    after.vm(f"{prefix}-a", cpus=4, memory="1GiB", disks=[{"size": 4}, {"size": 2}],
             nics=[{"network": f"{prefix}-net"}, {"network": f"{prefix}-net"}], tags=["t"])
    return Scenario(before, after, keeps=[f"{prefix}-a"])


def delete(peer: Peer, prefix: str) -> Scenario:
    before = Stack(peer, prefix).network(f"{prefix}-net", vlan=120)
    before.vm(f"{prefix}-a", **vm(f"{prefix}-net")).vm(f"{prefix}-b", **vm(f"{prefix}-net"))
    after = Stack(peer, prefix).network(f"{prefix}-net", vlan=120).vm(f"{prefix}-a", **vm(f"{prefix}-net"))
    return Scenario(before, after, keeps=[f"{prefix}-a"], gone=[f"{prefix}-b"], allow_data_loss=True)


def ids(stack: Stack) -> dict[str, str | None]:
    return {r.name: r.observed.id for r in stack.plan().resources if r.observed is not None}


def ours(peer: Peer, prefix: str) -> list[str]:
    """Every VM on the endpoint whose name holds the prefix (pending names included), templates aside."""
    return sorted(n for n in peer.names() if prefix in n and not n.endswith("-tpl") and not n.endswith("-hand"))


def check_killed_at_every_step(peer: Peer, name: str, make: Callable[[Peer, str], Scenario]) -> int:
    for step in range(1, MAX_STEPS):
        for then_destroy in (True, False):
            prefix = f"{name}s{step}{'d' if then_destroy else 'c'}"
            scenario = make(peer, prefix)
            peer.add_unmanaged_vm(f"{prefix}-hand")
            if scenario.before is not None:
                scenario.before.apply()
                assert peer.provider is not None
            before_ids = ids(scenario.before) if scenario.before is not None else {}
            running = {vm: True for vm in scenario.keeps}
            killed = killed_after(step, peer.kind, peer.environ, scenario.after.desired, ENDPOINT,
                                  inputs=peer.inputs, allow_data_loss=scenario.allow_data_loss)
            peer.settle()  # what the killed run started on the hypervisor finishes without it
            if then_destroy:  # straight to destroy: everything the killed run made or left must be found
                scenario.after.apply(destroy=True)
            else:
                scenario.after.apply(allow_data_loss=scenario.allow_data_loss)
                assert scenario.after.changes() == {}, f"step {step}: not converged"
                live = {r.name: r for r in scenario.after.plan().resources}
                for kept in scenario.keeps:
                    assert live[kept].observed.id == before_ids[kept], f"step {step}: {kept} was replaced"
                    if running[kept]:
                        assert live[kept].observed.state["power"] == "on", f"step {step}: {kept} left off"
                for gone in scenario.gone:
                    assert peer.count(gone) == 0, f"step {step}: {gone} is still there"
                declared = sorted(r.name for r in scenario.after.desired.resources.values()
                                  if r.kind == "VirtualMachine")
                assert ours(peer, prefix) == declared, f"step {step}: orphans or duplicates"
                scenario.after.apply(destroy=True)
            assert ours(peer, prefix) == [], f"step {step}: left behind after destroy"
            assert peer.count(f"{prefix}-hand") == 1, f"step {step}: the VM made by hand was touched"
        if not killed:
            return step
    raise AssertionError(f"still killed after {MAX_STEPS} steps")


def test_a_create_killed_at_any_step_converges_and_destroys_cleanly(killable_peer, name):
    assert check_killed_at_every_step(killable_peer, name, create) > 2


def test_a_reconfigure_killed_at_any_step_converges_keeping_the_vm_and_its_power(killable_peer, name):
    assert check_killed_at_every_step(killable_peer, name, reconfigure) > 2


def test_a_delete_killed_at_any_step_converges_and_leaves_no_orphan(killable_peer, name):
    assert check_killed_at_every_step(killable_peer, name, delete) > 1


def test_a_clone_killed_at_any_step_converges_and_destroys_cleanly(cloning_peer, name):
    assert check_killed_at_every_step(cloning_peer, name, clone) > 2
