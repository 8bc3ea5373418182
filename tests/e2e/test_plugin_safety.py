"""What ``pulumi preview`` shows is what ``pulumi up`` does, and nothing is duplicated or destroyed unasked: the
plugin driven over gRPC as the engine drives it, on vcsim, fakepve and the Hyper-V simulator.

- a Create sent again after an interrupted one finishes the object the first left, never makes a second;
- a field that can force a replacement and is not known yet is shown as one;
- Update refuses to change what the live object has and the preview never showed (it asks for a refresh);
- a change that destroys data fails Diff (so the preview) and Update unless the Endpoint allows data loss;
- pointing an Endpoint at another backend is a replacement of its provider, refused without allowDataLoss;
- Networks are read and deleted by id everywhere, and a refresh-only process names a VM's NICs as the stack does;
- Handshake is answered, and asks the engine to refresh resources before updating them.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import grpc
import pytest
from pulumi.runtime.proto import provider_pb2

from tests.support.plugin import (
    PROJECT,
    STACK,
    UNKNOWN,
    Plugin,
    as_dict,
    provider_urn,
    secret,
    struct,
    unwrap,
    wire,
)
from tests.support.plugin_peers import BLANK_ENVIRONMENT, Endpoint, id_of, started, stopped
from virtplane.providers.base import Owner

pytestmark = pytest.mark.fakepve(password="pve-Pw9x2-not-shown")
_names = itertools.count()
VM = {"cpus": 1, "memory": 512, "disks": [{"size": 1}, {"size": 2}], "power": "off"}
STACK_ID = f"{PROJECT}/{STACK}"
# the setting naming the backend
IDENTITY = {"vsphere": "server", "proxmox": "endpoint", "hyperv": "server", "xenserver": "server"}


@pytest.fixture
def name() -> str:
    return f"s{next(_names)}-db"


def _kind(endpoint: Endpoint) -> str:
    return str(endpoint[1]["kind"])


def _created(plugin: Plugin, name: str, inputs: dict[str, Any] = VM, kind: str = "VirtualMachine"
             ) -> tuple[str, dict[str, Any]]:
    reply = plugin.create(kind, name, inputs)
    return reply["id"], unwrap(reply["properties"])


def _refused(call: Any) -> str:
    with pytest.raises(grpc.RpcError) as failure:
        call()
    assert failure.value.code() == grpc.StatusCode.UNKNOWN
    return str(failure.value.details())


def _read(plugin: Plugin, name: str, object_id: str, outputs: dict[str, Any], inputs: dict[str, Any] = VM
          ) -> dict[str, Any]:
    reply = plugin.read("VirtualMachine", name, object_id, outputs, inputs)
    assert reply["id"] == object_id
    return unwrap(reply["properties"])


# -- 10: an interrupted create is finished, not made twice -----------------------------------------------

def test_a_create_sent_again_after_an_interrupted_run_takes_over_the_vm_instead_of_making_a_second(
        plugin: Plugin, endpoint: Endpoint, name: str, tmp_path: Path) -> None:
    peer, config, password = endpoint
    first, _ = _created(plugin, name)  # the engine never recorded this answer: the run was killed
    again = started(tmp_path / "next-run", config)
    try:
        second, outputs = _created(again, name)
        assert second == first and peer.count(name) == 1
        assert again.diff("VirtualMachine", name, second, outputs, VM)["changes"] == "DIFF_NONE"
        assert any("finishing an interrupted create" in message for _, message, _ in again.engine.logs)
    finally:
        stopped(again, password)


def test_a_create_finishes_a_vm_an_interrupted_create_left_half_made(plugin: Plugin, endpoint: Endpoint,
                                                                     name: str) -> None:
    peer = endpoint[0]
    peer.add_half_created_vm(Owner(STACK_ID, name, "lab"))  # Hyper-V: still under its pending name
    object_id, outputs = _created(plugin, name)
    assert peer.count(name) == 1 and object_id == id_of(peer, name)
    assert plugin.diff("VirtualMachine", name, object_id, outputs, VM)["changes"] == "DIFF_NONE"
    assert [disk["size"] for disk in _read(plugin, name, object_id, outputs)["disks"]] == [1, 2]


# -- 12: unknowns do not hide replacements ------------------------------------------------------------------

def test_a_preview_shows_a_replacement_when_a_field_that_can_force_one_is_not_known_yet(
        plugin: Plugin, endpoint: Endpoint, name: str) -> None:
    object_id, outputs = _created(plugin, name)
    reply = plugin.diff("VirtualMachine", name, object_id, outputs, {**VM, "disks": UNKNOWN, "cpus": UNKNOWN})
    assert reply["replaces"] == ["disks"] and reply["deleteBeforeReplace"] is True
    assert reply["detailedDiff"] == {"cpus": {"kind": "UPDATE", "inputDiff": False},
                                     "disks": {"kind": "UPDATE_REPLACE", "inputDiff": False}}
    assert any(message.startswith(f"may destroy data: if the values known only at apply time ask for it: VM {name} "
                                  "on lab would be replaced") for _, message, _ in plugin.engine.logs)
    replaced_by_firmware = plugin.diff("VirtualMachine", name, object_id, outputs, {**VM, "firmware": UNKNOWN})
    assert replaced_by_firmware["replaces"] == (["firmware"] if _kind(endpoint) == "hyperv" else [])  # generation


def test_a_firmware_change_replaces_a_hyperv_vm_and_updates_it_elsewhere(
        plugin: Plugin, endpoint: Endpoint, name: str) -> None:
    """Hyper-V fixes a VM's generation (BIOS: 1, UEFI: 2) at New-VM: another firmware is another VM, so the
    preview shows a replacement, which destroys the disks; the other hypervisors change firmware in place."""
    object_id, outputs = _created(plugin, name)
    assert outputs["firmware"] == "bios"
    change = lambda: plugin.diff("VirtualMachine", name, object_id, outputs, {**VM, "firmware": "uefi"})  # noqa: E731
    if _kind(endpoint) == "hyperv":
        [first, second] = outputs["disks"]
        assert _refused(change).startswith(
            f"refusing to apply: VM {name} on lab would be replaced (deleted and created again) to change firmware, "
            f"destroying its disks ({first['slot']} (1 GiB), {second['slot']} (2 GiB))")
    else:
        reply = change()
        assert reply["replaces"] == [] and reply["detailedDiff"] == {"firmware": {"kind": "UPDATE",
                                                                                  "inputDiff": False}}


# -- 13: update applies what the preview showed, nothing else ------------------------------------------------

def test_an_update_refuses_to_revert_a_change_made_behind_its_back_that_the_preview_did_not_show(
        plugin: Plugin, endpoint: Endpoint, name: str) -> None:
    peer = endpoint[0]
    object_id, outputs = _created(plugin, name)
    peer.set_memory(name, 1024)  # since the last refresh: the state still says 512
    message = _refused(lambda: plugin.update("VirtualMachine", name, object_id, outputs, {**VM, "cpus": 2}))
    assert message == (f"VirtualMachine '{name}': the live virtual machine differs from what the preview compared "
                       "with (memory is 1024 on the hypervisor but 512 in Pulumi's state); updating it would change "
                       "what no preview showed. Nothing was changed: run `pulumi refresh`, then preview again")
    refreshed = _read(plugin, name, object_id, outputs)
    assert (refreshed["memory"], refreshed["cpus"]) == (1024, 1)
    updated = unwrap(plugin.update("VirtualMachine", name, object_id, refreshed, {**VM, "cpus": 2})["properties"])
    assert (updated["memory"], updated["cpus"]) == (512, 2)  # what a preview from the refreshed state showed


# -- 14: data loss needs allowDataLoss ------------------------------------------------------------------------

def test_a_change_that_destroys_data_fails_the_preview_and_the_update_unless_the_endpoint_allows_it(
        plugin: Plugin, endpoint: Endpoint, name: str, tmp_path: Path) -> None:
    _peer, config, password = endpoint
    object_id, outputs = _created(plugin, name)
    [first, second] = outputs["disks"]
    fewer = {**VM, "disks": [{"size": 1}]}
    for news, loss in ((fewer, f"VM {name} on lab: disk {second['slot']} (2 GiB) is no longer declared; removing it "
                               "destroys its data"),
                       ({**VM, "disks": [{"size": 1, "thin": False}, {"size": 2}]},
                        f"VM {name} on lab would be replaced (deleted and created again) to change "
                        f"disks[{first['slot']}].thin, destroying its disks ({first['slot']} (1 GiB), "
                        f"{second['slot']} (2 GiB))")):
        refusal = (f"refusing to apply: {loss}. Nothing was changed; set allowDataLoss: true on the Endpoint (for "
                   "the default provider: `pulumi config set virtplane:allowDataLoss true`) or "
                   "VIRTPLANE_ALLOW_DATA_LOSS=1 to apply it anyway, or declare the disks to keep")
        assert _refused(lambda news=news: plugin.diff("VirtualMachine", name, object_id, outputs, news)) == refusal
    assert "refusing to apply" in _refused(lambda: plugin.update("VirtualMachine", name, object_id, outputs, fewer))
    assert len(_read(plugin, name, object_id, outputs)["disks"]) == 2

    allowing = started(tmp_path / "allowing", {**config, "allowDataLoss": True})
    try:
        reply = allowing.diff("VirtualMachine", name, object_id, outputs, fewer)
        assert reply["detailedDiff"] == {"disks[1]": {"kind": "DELETE", "inputDiff": False}}
        updated = unwrap(allowing.update("VirtualMachine", name, object_id, outputs, fewer)["properties"])
        assert [disk["slot"] for disk in updated["disks"]] == [first["slot"]]
    finally:
        stopped(allowing, password)


# -- 15: a new backend is a new provider ---------------------------------------------------------------------

def test_pointing_an_endpoint_at_another_backend_replaces_its_provider_only_when_data_loss_is_allowed(
        endpoint: Endpoint, tmp_path: Path) -> None:
    _peer, config, password = endpoint
    identity = IDENTITY[_kind(endpoint)]
    raw = Plugin(tmp_path, BLANK_ENVIRONMENT)  # the engine asks a plugin it has not configured yet
    olds = {**config, "password": secret(password)}

    def diff_config(**changed: Any) -> dict[str, Any]:
        return as_dict(raw.call("DiffConfig", provider_pb2.DiffRequest(
            urn=provider_urn("lab"), olds=struct(wire(olds)), news=struct(wire({**olds, **changed})))))

    try:
        elsewhere = "https://other.example:8006" if identity == "endpoint" else "other.example:443"
        message = _refused(lambda: diff_config(**{identity: elsewhere}))
        assert message.startswith(f"refusing to apply: Endpoint 'lab': changing its {identity} from "
                                  f"{config[identity]!r} to {elsewhere!r} points the stack at another backend")
        moved = diff_config(**{identity: elsewhere, "allowDataLoss": True})
        assert moved["changes"] == "DIFF_SOME" and moved["deleteBeforeReplace"] is True
        assert moved["replaces"] == [identity] and moved["detailedDiff"][identity]["kind"] == "UPDATE_REPLACE"
        assert diff_config(**{identity: UNKNOWN})["replaces"] == [identity]  # a preview: shown, not refused
        assert diff_config(kind="memory", allowDataLoss=True)["replaces"][0] == "kind"
        credentials = diff_config(password=secret(password + "-rotated"))
        assert credentials["changes"] == "DIFF_SOME" and credentials["replaces"] == []
        assert diff_config()["changes"] == "DIFF_NONE"
    finally:
        stopped(raw, password)


# -- 16: networks by id --------------------------------------------------------------------------------------

def test_networks_are_read_and_deleted_by_id_and_a_refresh_names_the_nics_as_the_stack_does(
        plugin: Plugin, endpoint: Endpoint, name: str, tmp_path: Path) -> None:
    _peer, config, password = endpoint
    network, vm = f"{name}-net", {**VM, "nics": [{"network": f"{name}-net"}]}
    assert plugin.check("Network", network, {"vlan": 120})["failures"] == []
    network_id, network_outputs = _created(plugin, network, {"vlan": 120}, kind="Network")
    vm_id, vm_outputs = _created(plugin, name, vm)
    assert vm_outputs["nics"][0]["network"] == network
    moved = plugin.diff("Network", network, network_id, network_outputs, {"vlan": 130})
    # a VLAN tag's id names the VLAN: another VLAN is another network; a vSphere port group changes in place
    assert moved["replaces"] == ([] if _kind(endpoint) == "vsphere" else ["vlan"])

    refresh = started(tmp_path / "refresh", config)  # `pulumi refresh`: Reads only, a VM's maybe first
    try:
        assert _read(refresh, name, vm_id, vm_outputs, vm)["nics"][0]["network"] == network
        read = refresh.read("Network", network, network_id, network_outputs, {"vlan": 120})
        assert read["id"] == network_id and unwrap(read["properties"])["vlan"] == 120
        refresh.delete("VirtualMachine", name, vm_id, vm_outputs)
        refresh.delete("Network", network, network_id, network_outputs)
    finally:
        stopped(refresh, password)


# -- 17: handshake, refresh before update -------------------------------------------------------------------

def test_the_handshake_is_answered_and_asks_the_engine_to_refresh_resources_before_updating_them(
        endpoint: Endpoint, name: str, tmp_path: Path) -> None:
    _peer, config, password = endpoint
    plugin = Plugin(tmp_path, BLANK_ENVIRONMENT)
    try:
        handshake = as_dict(plugin.call("Handshake", provider_pb2.ProviderHandshakeRequest(
            engine_address=f"127.0.0.1:{plugin.engine.port}", configure_with_urn=True,
            supports_refresh_before_update=True)))
        assert handshake["acceptSecrets"] is True and handshake["acceptOutputs"] is False
        plugin.configure("lab", config)
        created = plugin.create("VirtualMachine", name, VM)
        assert created["refreshBeforeUpdate"] is True
        outputs = unwrap(created["properties"])
        assert plugin.read("VirtualMachine", name, created["id"], outputs, VM)["refreshBeforeUpdate"] is True
        assert plugin.update("VirtualMachine", name, created["id"], outputs, VM)["refreshBeforeUpdate"] is True
    finally:
        stopped(plugin, password)


# -- secrets under VIRTPLANE_DEBUG --------------------------------------------------------------------------

def test_with_virtplane_debug_a_failure_carrying_the_password_shows_only_stars(endpoint: Endpoint, name: str,
                                                                               tmp_path: Path) -> None:
    _peer, config, password = endpoint
    plugin = started(tmp_path, config, {"VIRTPLANE_DEBUG": "1"})
    try:
        # a password pasted where a network name belongs: the error names that network
        message = _refused(lambda: plugin.create("VirtualMachine", name, {**VM, "nics": [{"network": password}]}))
        assert "***" in message and password not in message
    finally:
        stopped(plugin, password, tracebacks=True)
    assert "Traceback" in plugin.stderr()  # the debug output was there, and masked
