"""The pure translation between ContainerSpec and a PVE container configuration (lxc_config.py), its update planning
and its rules (container_rules.py), table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from virtplane.container_specs import CONTAINER_CREATE_ONLY, ContainerSpec
from virtplane.diff import diff
from virtplane.providers.base import FieldChange, RefusedChange, Rule
from virtplane.providers.proxmox.config import NetworkNames
from virtplane.providers.proxmox.container_rules import container_rule
from virtplane.providers.proxmox.lxc_config import (
    container_state,
    create_config,
    features_value,
    new_slot,
    reconfigure_container,
)
from virtplane.slots import resolve_slots

NAMES = NetworkNames("vmbr0", {"app": 110})
TEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"
LIVE = {  # as PVE keeps a container made from FULL (pct config), hwaddr and sizes filled in
    "arch": "amd64", "cores": 2, "memory": 1024, "swap": 256, "hostname": "web", "ostype": "debian",
    "rootfs": "local-lvm:vm-101-disk-0,size=8G", "mp0": "local-lvm:vm-101-disk-1,mp=/srv/data,size=4G",
    "mp1": "fast:vm-101-disk-2,mp=/var/log/app,size=2G",
    "net0": "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:00:01,ip=dhcp,tag=110,type=veth",
    "features": "keyctl=1,nesting=1", "unprivileged": 1, "dev0": "/dev/dri/renderD128,gid=44",
    "tags": "app;virtplane", "description": "virtplane.owner: stack=p/s;resource=web",
}
FULL = {"template": TEMPLATE, "cpus": 2, "memory": "1GiB", "swap": 256, "rootfs": {"size": 8},
        "mounts": [{"path": "/srv/data", "size": 4}, {"path": "/var/log/app", "size": 2, "storage": "fast"}],
        "nics": [{"network": "app"}], "unprivileged": True, "features": {"nesting": True, "keyctl": True},
        "devices": ["/dev/dri/renderD128"], "node": "pve1", "tags": ["app"]}


def spec(**overrides: Any) -> ContainerSpec:
    return ContainerSpec.model_validate(FULL | overrides)


def test_a_live_configuration_reads_back_in_the_specs_shape():
    state = container_state(LIVE, "pve1", True, NAMES)
    assert state == {
        "template": None, "clone_from": None, "linked_clone": False, "cpus": 2, "memory": 1024, "swap": 256,
        "rootfs": {"size": 8, "storage": "local-lvm"},
        "mounts": [{"path": "/srv/data", "size": 4, "storage": "local-lvm", "slot": "mp0"},
                   {"path": "/var/log/app", "size": 2, "storage": "fast", "slot": "mp1"}],
        "nics": [{"network": "app", "adapter": None, "device": None, "slot": "net0"}],
        "unprivileged": True, "features": {"nesting": True, "keyctl": True, "fuse": False},
        "devices": ["/dev/dri/renderD128"], "hostname": "web", "password": None, "ssh_keys": None, "docker": False,
        "power": "on", "node": "pve1", "tags": ["app"]}


def test_the_declared_container_and_its_live_configuration_do_not_differ():
    declared = resolve_slots(spec(), container_state(LIVE, "pve1", True, NAMES), new_slot)
    assert diff(declared.model_dump(), container_state(LIVE, "pve1", True, NAMES), CONTAINER_CREATE_ONLY) == []


def test_pves_defaults_read_back_for_keys_a_configuration_lacks():
    state = container_state({"rootfs": "local-lvm:vm-9-disk-0,size=4G"}, "pve2", False, NAMES)
    assert (state["cpus"], state["memory"], state["swap"], state["unprivileged"], state["mounts"]) == (
        None, 512, 512, False, [])


def test_a_create_sends_every_key_with_new_volumes_as_storage_colon_size():
    made = resolve_slots(spec(), None, new_slot).with_creation_defaults()
    assert create_config(made, "local-lvm", ["local-lvm", "fast"], NAMES) == {
        "rootfs": "local-lvm:8", "tags": "app;virtplane", "cores": 2, "memory": 1024, "swap": 256,
        "unprivileged": 1, "features": "keyctl=1,nesting=1", "mp0": "local-lvm:4,mp=/srv/data",
        "mp1": "fast:2,mp=/var/log/app", "net0": "name=eth0,bridge=vmbr0,tag=110", "dev0": "/dev/dri/renderD128"}


def test_a_container_made_from_a_template_gets_the_creation_defaults_for_what_is_unset():
    made = ContainerSpec.model_validate({"template": TEMPLATE}).with_creation_defaults()
    assert (made.cpus, made.memory, made.swap, made.rootfs.size, made.unprivileged, made.power) == (  # type: ignore
        1, 512, 512, 8, True, "on")
    assert made.features is not None and not any(made.features.model_dump().values())
    clone = ContainerSpec.model_validate({"clone_from": "base"})
    assert clone.with_creation_defaults() is clone  # a clone keeps its source's


@pytest.mark.parametrize(("wanted", "live", "expected"), [
    ({"nesting": True}, "keyctl=1", "keyctl=1,nesting=1"),  # keyctl unset: kept as it is
    ({"keyctl": False}, "keyctl=1,nesting=1", "nesting=1"),
    ({"nesting": True}, "mount=nfs;cifs", "mount=nfs;cifs,nesting=1"),  # flags virtplane does not manage stay
    ({"nesting": False}, "nesting=1", ""),
])
def test_features_set_only_the_flags_declared(wanted, live, expected):
    assert features_value(spec(features=wanted).features, live) == expected  # type: ignore[arg-type]


def test_an_update_sets_only_what_changed_and_keeps_a_nics_mac_and_ip():
    changed = resolve_slots(spec(cpus=4, nics=[{"network": "vmbr1"}], features={"fuse": True}),
                            container_state(LIVE, "pve1", True, NAMES), new_slot)
    changes = diff(changed.model_dump(), container_state(LIVE, "pve1", True, NAMES), CONTAINER_CREATE_ONLY)
    plan = reconfigure_container(changed, LIVE, changes, NAMES, lambda mount: "local-lvm")
    assert plan.settings == {"cores": 4, "features": "fuse=1,keyctl=1,nesting=1",
                             "net0": "name=eth0,bridge=vmbr1,hwaddr=BC:24:11:00:00:01,ip=dhcp,type=veth"}
    assert (plan.delete, plan.resize, plan.removed_volumes) == ([], [], [])


def test_volumes_grow_by_resize_and_removed_mount_points_are_listed_for_destruction():
    changed = resolve_slots(spec(rootfs={"size": 12}, mounts=[{"path": "/srv/data", "size": 5},
                                                              {"path": "/srv/new", "size": 1, "slot": "mp3"}]),
                            container_state(LIVE, "pve1", True, NAMES), new_slot)
    changes = diff(changed.model_dump(), container_state(LIVE, "pve1", True, NAMES), CONTAINER_CREATE_ONLY)
    assert {c.path for c in changes} == {"rootfs.size", "mounts[mp0].size", "mounts[mp3]", "mounts[mp1]"}
    plan = reconfigure_container(changed, LIVE, changes, NAMES, lambda mount: "local-lvm")
    assert plan.settings == {"mp3": "local-lvm:1,mp=/srv/new"}
    assert plan.delete == ["mp1"] and plan.removed_volumes == ["fast:vm-101-disk-2"]
    assert sorted(plan.resize) == [("mp0", 5), ("rootfs", 12)]


def test_devices_are_a_set_of_paths_added_and_removed_by_their_dev_keys():
    changed = spec(devices=["/dev/net/tun"])
    changes = diff(changed.model_dump(), container_state(LIVE, "pve1", True, NAMES), CONTAINER_CREATE_ONLY)
    plan = reconfigure_container(changed, LIVE, changes, NAMES, lambda mount: "local-lvm")
    assert (plan.settings, plan.delete) == ({"dev1": "/dev/net/tun"}, ["dev0"])


def test_an_interrupted_clone_gets_its_marker_tag_with_the_tags_it_has():
    plan = reconfigure_container(spec(tags=None), LIVE | {"tags": "app"}, [], NAMES, lambda m: "", finish_marker=True)
    assert plan.settings == {"tags": "app;virtplane"}


@pytest.mark.parametrize(("path", "old", "new", "rule"), [
    ("cpus", 1, 2, Rule.IN_PLACE), ("memory", 512, 1024, Rule.IN_PLACE), ("swap", 512, 0, Rule.IN_PLACE),
    ("hostname", "a", "b", Rule.IN_PLACE), ("tags", [], ["x"], Rule.IN_PLACE), ("power", "off", "on", Rule.IN_PLACE),
    ("nics[net1]", None, {"network": "app"}, Rule.IN_PLACE), ("nics[net0].network", "a", "b", Rule.IN_PLACE),
    ("rootfs.size", 8, 10, Rule.IN_PLACE), ("mounts[mp0].size", 4, 6, Rule.IN_PLACE),
    ("mounts[mp2]", None, {"path": "/x", "size": 1}, Rule.IN_PLACE),
    ("mounts[mp0]", {"path": "/x", "size": 1}, None, Rule.POWER_OFF), ("mounts[mp0].path", "/a", "/b", Rule.POWER_OFF),
    ("features.nesting", False, True, Rule.POWER_OFF), ("devices", [], ["/dev/net/tun"], Rule.POWER_OFF),
    ("node", "pve1", "pve2", Rule.POWER_OFF),
    ("unprivileged", True, False, Rule.REPLACE), ("rootfs.storage", "a", "b", Rule.REPLACE),
    ("mounts[mp0].storage", "a", "b", Rule.REPLACE),
])
def test_each_change_is_applied_as_pve_can(path, old, new, rule):
    assert container_rule(FieldChange(path, old, new)) is rule


@pytest.mark.parametrize(("path", "what"), [("rootfs.size", "the root filesystem"), ("mounts[mp1].size",
                                                                                       "mount point mp1")])
def test_shrinking_a_volume_is_refused_saying_what(path, what):
    with pytest.raises(RefusedChange, match=f"shrinking {what} from 8 GiB to 4 GiB is not possible on Proxmox"):
        container_rule(FieldChange(path, 8, 4))
