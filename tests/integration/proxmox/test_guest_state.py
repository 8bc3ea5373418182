"""A desktop's guest on Proxmox VE, as the QEMU guest agent reports it: who is logged in decides whether a
running desktop is in use; no agent (or one that does not answer) counts as in use."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.conformance.stack import Stack
from virtplane.apply import DataLossRefused, refuse_data_loss
from virtplane.plan import Action


@pytest.fixture
def desks(pve, provider, raw, stack):
    vmid = int(raw.cluster.nextid.get())
    raw.nodes("pve1").qemu.post(vmid=vmid, name="gold", memory=1024, scsi0="local-lvm:8", agent=1)
    raw.nodes("pve1").qemu(vmid).template.post()
    desks = Stack(SimpleNamespace(kind="proxmox", provider=provider), stack.replace("/", "-"))
    desks.pool("vdi", "gold", 3, memory=1024)
    desks.apply()
    return desks


def guest(pve, raw, name: str):
    [row] = [r for r in raw.cluster.resources.get(type="vm") if r.get("name") == name]
    return pve.vm(int(row["vmid"]))


def test_the_desktops_keep_the_templates_guest_agent_setting(desks, raw):
    rows = {r["name"]: r for r in raw.cluster.resources.get(type="vm")}
    assert str(raw.nodes("pve1").qemu(rows["vdi-001"]["vmid"]).config.get()["agent"]) == "1"


def test_a_running_desktop_whose_agent_reports_nobody_logged_in_can_be_removed_by_a_shrink(desks, pve, raw):
    guest(pve, raw, "vdi-003").agent = {"get-users": []}
    guest(pve, raw, "vdi-002").agent = {"get-users": [{"user": "ana", "login-time": 1.5}]}
    desks.pool("vdi", "gold", 2, memory=1024)
    plan = desks.plan()
    assert [(r.name, r.action) for r in plan.pending] == [("vdi-003", Action.DELETE)]
    assert plan.data_loss() == []
    desks.pool("vdi", "gold", 1, memory=1024)
    with pytest.raises(DataLossRefused, match=r"vdi-002 \(powered on; QEMU guest agent: ana logged in\)"):
        refuse_data_loss(desks.plan())


def test_a_desktop_whose_agent_does_not_run_counts_as_in_use(desks):
    desks.pool("vdi", "gold", 2, memory=1024)
    with pytest.raises(DataLossRefused, match=r"vdi-003 \(powered on; the QEMU guest agent does not answer, so it "
                                              r"counts as in use\)"):
        refuse_data_loss(desks.plan())


def test_the_agent_gives_the_desktops_address(desks, pve, raw):
    guest(pve, raw, "vdi-001").agent = {"get-users": []}
    live = [r.observed for r in desks.plan().resources if r.name == "vdi-001"]
    [state] = desks.peer.provider.driver("VirtualMachine").guest_states(live).values()
    assert (state.users, state.address, state.in_use) == ((), "192.0.2.10", False)
