"""The Proxmox container driver against fakepve's ``/nodes/{node}/lxc``, beyond the conformance suite: a create whose
answer is lost, clones, what an API token may not set, what a delete destroys, and how PVE's refusals read."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.proxmox.conftest import connect
from tests.integration.proxmox.helpers import requests_to
from tests.integration.proxmox.transports import LoseAnswer, RecordUrls, wrap
from virtplane.container_specs import CONTAINER_CREATE_ONLY, ContainerSpec
from virtplane.diff import diff
from virtplane.errors import ProviderError
from virtplane.providers.base import Declared, Observed, Owner
from virtplane.providers.proxmox.provider import ProxmoxProvider
from virtplane.slots import resolve_slots
from virtplane.specs import NetworkSpec

TEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"


def ct_spec(**fields: Any) -> ContainerSpec:
    return ContainerSpec.model_validate({"template": TEMPLATE, "memory": 512, "nics": [{"network": "app"}]} | fields)


def declared(cts: dict[str, ContainerSpec]) -> Declared:
    return {"Network": {"app": NetworkSpec(vlan=110)}, "Container": dict(cts)}


def observe(provider: ProxmoxProvider, stack: str, cts: dict[str, ContainerSpec]) -> dict[str, Observed]:
    return provider.driver("Container").observe(stack, declared(cts)).owned


def create(provider: ProxmoxProvider, stack: str, name: str, spec: ContainerSpec) -> Observed:
    """Check and create one container as the engine would; returns it as read back."""
    driver = provider.driver("Container")
    observe(provider, stack, {name: spec})
    assert driver.check(spec, declared({name: spec})) == []
    made = spec if spec.clone_from else resolve_slots(spec, None, driver.new_slot).with_creation_defaults()
    if made.node is None and not made.clone_from:
        made = made.model_copy(update={"node": driver.place(made, {})})
    created = driver.create(Owner(stack, name), made)
    live = observe(provider, stack, {name: spec})[name]
    assert created.id == live.id
    return live


def containers(raw: Any, name: str) -> list[dict[str, Any]]:
    return [r for r in raw.cluster.resources.get(type="vm") if r.get("type") == "lxc" and r.get("name") == name]


def test_a_create_whose_answer_is_lost_is_found_by_its_marker_and_not_made_twice(provider, stack, pve, raw):
    lost = wrap(provider, LoseAnswer, "POST", "/nodes/pve1/lxc")
    live = create(provider, stack, "ct1", ct_spec(node="pve1"))
    assert lost.lost == 1 and len(containers(raw, "ct1")) == 1
    assert len(requests_to(pve, "POST", "/nodes/pve1/lxc")) == 1
    assert live.state["power"] == "on" and live.marker_complete


def make_template(raw: Any, name: str, **config: Any) -> int:
    """A container template made by hand (pct create, then convert to a template)."""
    vmid = int(raw.cluster.nextid.get())
    raw.nodes("pve1").lxc.post(vmid=vmid, hostname=name, ostemplate=TEMPLATE, storage="local-lvm", **config)
    raw.nodes("pve1").lxc(vmid).template.post()
    return vmid


def test_a_linked_clone_of_a_template_is_marked_and_gets_the_declared_fields(provider, stack, raw):
    make_template(raw, "base", memory=256, features="nesting=1")
    spec = ContainerSpec.model_validate({"clone_from": "base", "linked_clone": True, "memory": 1024,
                                         "mounts": [{"path": "/srv", "size": 2}], "tags": ["web"]})
    live = create(provider, stack, "web1", spec)
    assert (live.state["memory"], live.state["features"]["nesting"], live.state["tags"]) == (1024, True, ["web"])
    assert [m["slot"] for m in live.state["mounts"]] == ["mp0"] and live.marker_complete
    assert live.state["power"] == "off"  # power is not declared: the clone stays as its template made it
    [row] = containers(raw, "web1")
    config = raw.nodes(row["node"]).lxc(row["vmid"]).config.get()
    assert config["rootfs"].startswith("local-lvm:") and "virtplane.owner: " in config["description"]


def test_cloning_a_privileged_source_as_unprivileged_is_refused_before_anything_is_made(provider, stack, raw):
    make_template(raw, "legacy-base", unprivileged=0)
    spec = ContainerSpec.model_validate({"clone_from": "legacy-base", "unprivileged": True})
    with pytest.raises(ProviderError, match="clones 'legacy-base', which is privileged, but declares "
                                            "unprivileged=True: a clone keeps its source's"):
        provider.driver("Container").create(Owner(stack, "web2"), spec)
    assert containers(raw, "web2") == []


def test_a_clone_source_that_is_missing_or_running_is_named_at_plan(provider, stack, raw):
    driver = provider.driver("Container")
    missing = ContainerSpec.model_validate({"clone_from": "nosuch"})
    observe(provider, stack, {"a": missing})
    assert driver.check(missing, declared({"a": missing})) == [
        ("clone_from", "no container or container template named 'nosuch' exists on this Proxmox cluster")]
    vmid = int(raw.cluster.nextid.get())
    raw.nodes("pve1").lxc.post(vmid=vmid, hostname="live-one", ostemplate=TEMPLATE, storage="local-lvm", start=1)
    running = ContainerSpec.model_validate({"clone_from": "live-one"})
    observe(provider, stack, {"b": running})
    assert driver.check(running, declared({"b": running})) == [
        ("clone_from", f"'live-one' (VMID {vmid}) is running, and Proxmox makes a full clone of a running container "
                       "only from a snapshot: stop it, or clone a template")]


def test_an_api_token_may_set_nesting_but_keyctl_fuse_and_devices_are_refused_at_plan(pve, environ):
    pve.apitokens["ci@pve!deploy"] = "tok-secret-9"
    pve.grant("ci@pve!deploy", "/", "VM.Audit", "Sys.Audit", "Datastore.Audit", "VM.Allocate")
    token = connect({k: v for k, v in environ.items() if k not in ("PROXMOX_VE_USERNAME", "PROXMOX_VE_PASSWORD")}
                    | {"PROXMOX_VE_API_TOKEN": "ci@pve!deploy=tok-secret-9"})
    try:
        driver = token.driver("Container")
        spec = ct_spec(node="pve1", features={"nesting": True, "keyctl": True}, devices=["/dev/net/tun"])
        observe(token, "p/s", {"ct": spec})
        problems = dict(driver.check(spec, declared({"ct": spec})))
        assert set(problems) == {"features.keyctl", "devices"}
        assert problems["features.keyctl"].startswith("only root@pam itself may set this feature flag on Proxmox")
        nesting_only = ct_spec(node="pve1", features={"nesting": True})
        assert driver.check(nesting_only, declared({"ct": nesting_only})) == []
    finally:
        token.close()


def test_a_delete_stops_the_container_and_destroys_only_the_volumes_its_configuration_references(provider, stack,
                                                                                               raw):
    live = create(provider, stack, "ct3", ct_spec(node="pve1", mounts=[{"path": "/srv", "size": 1}]))
    urls = wrap(provider, RecordUrls)
    provider.driver("Container").delete(live)
    assert containers(raw, "ct3") == []
    deletes = [url for method, url in urls.seen if method == "DELETE"]
    assert len(deletes) == 1 and "purge=1" in deletes[0] and "destroy-unreferenced-disks=0" in deletes[0]
    assert [url for method, url in urls.seen if method == "POST" and url.endswith("/status/stop")]


def test_a_mount_point_removed_from_a_running_container_is_applied_powered_off_and_its_volume_destroyed(
        provider, stack, raw):
    spec = ct_spec(node="pve1", mounts=[{"path": "/srv", "size": 1}, {"path": "/var/cache", "size": 1}])
    live = create(provider, stack, "ct4", spec)
    wanted = resolve_slots(ct_spec(node="pve1", mounts=[{"path": "/srv", "size": 1}]), live.state,
                           provider.driver("Container").new_slot)
    changes = diff(wanted.model_dump(), live.state, CONTAINER_CREATE_ONLY)
    assert [c.path for c in changes] == ["mounts[mp1]"]
    provider.driver("Container").update(live, wanted, changes)
    [row] = containers(raw, "ct4")
    config = raw.nodes("pve1").lxc(row["vmid"]).config.get()
    assert "mp1" not in config and not [key for key in config if key.startswith("unused")]
    assert row["status"] == "running"  # started again after the change


def test_a_container_moved_to_another_node_migrates_offline_and_runs_again(provider, stack, raw):
    live = create(provider, stack, "ct5", ct_spec(node="pve1"))
    wanted = ct_spec(node="pve2")
    changes = diff(wanted.model_dump(), live.state, CONTAINER_CREATE_ONLY)
    assert [c.path for c in changes] == ["node"]
    provider.driver("Container").update(live, wanted, changes)
    [row] = containers(raw, "ct5")
    assert (row["node"], row["status"]) == ("pve2", "running")
