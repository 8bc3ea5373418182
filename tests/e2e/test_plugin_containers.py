"""pulumi-resource-virtplane serves the Container kind over gRPC, tested as the VM is (test_plugin_on_simulators.py):
Check, Diff, Create, Read, Update and Delete on fakepve's ``/nodes/{node}/lxc``, configured as a stack's Endpoint
would be; proxmoxer, as an administrator, checks the cluster. The container's root password travels as a secret and
is never in a reply outside a secret envelope, never in its outputs, never on stderr."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.conformance.peers import ProxmoxPeer
from tests.support.plugin import Plugin, outside_secret_envelopes, secret, unwrap

pytestmark = pytest.mark.fakepve(password="pve-Pw9x2-not-shown")
ROOT_PASSWORD = "ct-root-Pw7-never-shown"
_names = itertools.count()


def container(**overrides: Any) -> dict[str, Any]:
    return {"template": ProxmoxPeer.template, "cpus": 1, "memory": 512, "rootfs": {"size": 4},
            "mounts": [{"path": "/srv", "size": 2}], "features": {"nesting": True}, "power": "on",
            "password": secret(ROOT_PASSWORD), **overrides}


@pytest.fixture
def peer(fakepve: Any, fakepve_cafile: str) -> Iterator[ProxmoxPeer]:
    for node in ("pve2", "pve3"):
        fakepve.add_node(node)
    connected = ProxmoxPeer(fakepve.url, fakepve.user, fakepve.password, fakepve_cafile)
    yield connected
    connected.close()


@pytest.fixture
def plugin(tmp_path: Path, peer: ProxmoxPeer, fakepve: Any, fakepve_cafile: str) -> Iterator[Plugin]:
    started = Plugin(tmp_path, {"PROXMOX_VE_ENDPOINT": "", "PROXMOX_VE_PASSWORD": ""})
    started.configure("lab", {"kind": "proxmox", "endpoint": fakepve.url, "username": fakepve.user,
                              "password": fakepve.password, "ca_file": fakepve_cafile})
    yield started
    started.stop()
    for reply in started.replies:
        visible = outside_secret_envelopes(reply)
        assert fakepve.password not in visible and ROOT_PASSWORD not in visible
    assert fakepve.password not in started.stderr() and ROOT_PASSWORD not in started.stderr()
    assert "Traceback" not in started.stderr()


@pytest.fixture
def name() -> str:
    return f"p{next(_names)}-ct"


def test_create_read_update_and_delete_a_container_through_the_plugin(plugin: Plugin, peer: ProxmoxPeer,
                                                                      name: str) -> None:
    assert plugin.check("Container", name, container())["failures"] == []
    preview = plugin.create("Container", name, container(), preview=True)
    assert preview["id"] == "" and unwrap(preview["properties"])["unprivileged"] is True  # the creation default
    assert "password" not in preview["properties"]
    assert peer.count_containers(name) == 0  # a preview touches nothing
    created = plugin.create("Container", name, container())
    object_id, outputs = created["id"], unwrap(created["properties"])
    assert object_id == str(peer._lxc(name).status.current.get()["vmid"])
    assert "password" not in outputs and outputs["mounts"][0]["slot"] == "mp0"
    assert plugin.diff("Container", name, object_id, outputs, container())["changes"] == "DIFF_NONE"

    peer.set_container_memory(name, 1024)  # behind our back
    refreshed = unwrap(plugin.read("Container", name, object_id, outputs, container())["properties"])
    assert refreshed["memory"] == 1024
    assert plugin.diff("Container", name, object_id, refreshed, container())["detailedDiff"] == {
        "memory": {"kind": "UPDATE", "inputDiff": False}}

    updated = unwrap(plugin.update("Container", name, object_id, refreshed,
                                   container(cpus=2, rootfs={"size": 6}))["properties"])
    assert (updated["cpus"], updated["memory"], updated["rootfs"]["size"]) == (2, 512, 6)

    plugin.delete("Container", name, object_id, updated)
    assert peer.count_containers(name) == 0
    assert plugin.read("Container", name, object_id, outputs, container())["id"] == ""


def test_diff_refuses_a_replace_or_a_removed_mount_point_in_the_plans_words_and_a_shrink(plugin: Plugin,
                                                                                          name: str) -> None:
    created = plugin.create("Container", name, container())
    object_id, outputs = created["id"], unwrap(created["properties"])
    refusals = {}
    for label, news in (("replace", container(unprivileged=False)), ("removed", container(mounts=[])),
                        ("shrunk", container(rootfs={"size": 2}))):
        with pytest.raises(grpc.RpcError) as refused:
            plugin.diff("Container", name, object_id, outputs, news)
        refusals[label] = refused.value.details()
    assert refusals["replace"].startswith(f"refusing to apply: container {name} on lab would be replaced (deleted and "
                                          "created again) to change unprivileged, destroying its root filesystem and "
                                          "mount points (rootfs (4 GiB), mp0 (2 GiB))")
    assert refusals["replace"].endswith("or declare the mount points to keep")
    assert refusals["removed"].startswith(f"refusing to apply: container {name} on lab: mount point mp0 (2 GiB) is "
                                          "no longer declared; removing it destroys its data")
    assert "field 'rootfs.size': shrinking the root filesystem from 4 GiB to 2 GiB is not possible" in \
        refusals["shrunk"]
    plugin.delete("Container", name, object_id, outputs)


def test_with_data_loss_allowed_diff_says_unprivileged_replaces_and_a_removed_mount_point_is_a_delete(
        tmp_path: Path, fakepve: Any, fakepve_cafile: str, name: str) -> None:
    started = Plugin(tmp_path, {"PROXMOX_VE_ENDPOINT": "", "PROXMOX_VE_PASSWORD": ""})
    try:
        started.configure("lab", {"kind": "proxmox", "endpoint": fakepve.url, "username": fakepve.user,
                                  "password": fakepve.password, "ca_file": fakepve_cafile, "allowDataLoss": True})
        created = started.create("Container", name, container())
        object_id, outputs = created["id"], unwrap(created["properties"])
        replace = started.diff("Container", name, object_id, outputs, container(unprivileged=False))
        assert replace["replaces"] == ["unprivileged"] and replace["deleteBeforeReplace"] is True
        removed = started.diff("Container", name, object_id, outputs, container(mounts=[]))
        assert removed["detailedDiff"] == {"mounts[0]": {"kind": "DELETE", "inputDiff": False}}
        assert any(f"destroys data: container {name} on lab: mount point mp0 (2 GiB) is no longer declared" in message
                   for _severity, message, _urn in started.engine.logs)
        started.delete("Container", name, object_id, outputs)
    finally:
        started.stop()


def test_a_template_that_does_not_exist_fails_the_create_in_one_sentence_and_makes_nothing(plugin: Plugin,
                                                                                          peer: ProxmoxPeer,
                                                                                          name: str) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        plugin.create("Container", name, container(template="debian-13-standard_13.0-1_amd64.tar.zst", node="pve1"))
    message = refused.value.details()
    assert message.startswith(f"Container '{name}': field 'template': template "
                              "'debian-13-standard_13.0-1_amd64.tar.zst' does not exist on node pve1 (templates there: "
                              "local:vztmpl/alpine-3.20-default_20240908_amd64.tar.xz, "
                              "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst)")
    assert peer.count_containers(name) == 0
