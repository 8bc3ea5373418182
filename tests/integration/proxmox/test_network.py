"""The Network kind on Proxmox: a VLAN on the endpoint's bridge, nothing created or deleted on the cluster."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.conformance.stack import Stack
from tests.integration.proxmox.conftest import connect
from tests.integration.proxmox.helpers import qemu
from virtplane.plan import Action
from virtplane.providers.base import Owner
from virtplane.providers.proxmox.provider import ProxmoxProvider
from virtplane.specs import NetworkSpec


@dataclass
class Endpoint:
    """What tests.conformance.stack.Stack needs of a peer."""

    provider: ProxmoxProvider
    kind: str = "proxmox"


def networks(**vlans: int) -> dict[str, dict[str, NetworkSpec]]:
    return {"Network": {name: NetworkSpec(vlan=vlan) for name, vlan in vlans.items()}}


def test_declared_networks_are_reported_as_existing_with_their_vlan_and_nothing_is_written(provider, stack, pve):
    driver = provider.driver("Network")
    result = driver.observe(stack, networks(app=110, lan=0))
    assert {name: (o.state, o.owner) for name, o in result.owned.items()} == {
        "app": ({"vlan": 110}, Owner(stack, "app")), "lan": ({"vlan": 0}, Owner(stack, "lan"))}
    driver.create(Owner(stack, "new"), NetworkSpec(vlan=7))
    driver.delete(result.owned["app"])
    assert [method for method, _, _ in pve.requests if method != "GET"] == ["POST"]  # the login, nothing else


def test_nothing_is_reported_when_destroying(provider, stack):
    assert provider.driver("Network").observe(stack, {}).owned == {}


def test_two_networks_on_one_vlan_are_not_reported_and_check_says_why(provider, stack):
    declared = networks(app=110, web=110, lan=0)
    driver = provider.driver("Network")
    assert set(driver.observe(stack, declared).owned) == {"lan"}
    problems = driver.check(declared["Network"]["app"], declared)
    assert problems == [("vlan", "VLAN 110 is also the VLAN of network(s) web on this endpoint; on Proxmox a network "
                                 "is a VLAN on bridge vmbr0, so networks sharing one could not be told apart")]


def test_a_missing_bridge_is_reported_by_check_naming_the_nodes_and_the_setting(environ, stack):
    provider = connect(environ, bridge="vmbr9")
    declared = networks(app=110)
    driver = provider.driver("Network")
    assert driver.observe(stack, declared).owned == {}
    [(field, message)] = driver.check(declared["Network"]["app"], declared)
    assert field == "vlan"
    assert message.startswith("bridge 'vmbr9' does not exist on node(s) pve1, pve2, pve3")
    assert "PROXMOX_VE_BRIDGE" in message
    provider.close()


@pytest.mark.parametrize(("net0", "live"), [
    ("virtio=BC:24:11:00:00:09,bridge=vmbr0,tag=42", "vmbr0.42"),  # another VLAN
    ("virtio=BC:24:11:00:00:09,bridge=vmbr0", "vmbr0"),  # the tag removed
    ("virtio=BC:24:11:00:00:09,bridge=vmbr1,tag=110", "vmbr1.110"),  # another bridge, same VLAN
], ids=["tag", "untagged", "bridge"])
def test_a_nics_bridge_or_tag_changed_behind_our_back_is_planned_as_drift_and_repaired(provider, raw, net0, live):
    stack = Stack(Endpoint(provider), "nets").network("app", vlan=110).vm(
        "web1", cpus=1, memory=512, nics=[{"network": "app"}])
    stack.apply()
    qemu(raw, "web1").config.put(net0=net0)
    assert stack.changes() == {"web1": (Action.UPDATE, [("nics[net0].network", live, "app")])}
    stack.apply()
    assert stack.changes() == {}
    assert qemu(raw, "web1").config.get()["net0"].endswith(",bridge=vmbr0,tag=110")


def test_a_network_create_returns_an_id_naming_the_bridge_and_vlan(fresh_pve):
    from virtplane.kinds import build_spec
    from virtplane.providers.base import Owner
    from virtplane.providers.registry import provider_class

    cls = provider_class("proxmox")
    provider = cls.connect(cls.settings_from("pve", {}, fresh_pve))
    try:
        created = provider.driver("Network").create(Owner("p/dev", "app", "pve"), build_spec("Network", "app",
                                                                                           {"vlan": 30}))
        assert (created.id, created.outputs) == ("vmbr0.30", {"vlan": 30})
    finally:
        provider.close()
