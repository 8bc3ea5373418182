"""pulumi-resource-virtplane over gRPC, called as the Pulumi engine calls it, on an in-memory endpoint.

The plugin runs as its own process (started with an engine address, its port read from stdout) and serves
a file-backed in-memory hypervisor registered through VIRTPLANE_EXTRA_KINDS; the test seeds and inspects
that hypervisor's file directly. tests/e2e/test_plugin_on_simulators.py runs the same protocol on vcsim
and fakepve.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import engine_pb2, provider_pb2

from tests.support.memory_endpoint import Store
from tests.support.plugin import (
    PROJECT,
    SECRET_SIG,
    STACK,
    UNKNOWN,
    Plugin,
    as_dict,
    outside_secret_envelopes,
    secret,
    unwrap,
)
from virtplane.providers.base import Owner

PASSWORD = "pw-Xy7q-never-shown"
EXTRA = {"VIRTPLANE_EXTRA_KINDS": "memory=tests.support.memory_endpoint:FileProvider"}
STACK_ID = f"{PROJECT}/{STACK}"
VM = {"cpus": 2, "memory": "2GiB", "disks": [{"size": 10}, {"size": 20}], "nics": [{"network": "app"}],
      "power": "on"}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    hypervisor = Store(tmp_path / "hypervisor.json")
    with hypervisor.open() as data:
        data["password"] = PASSWORD
    return hypervisor


def _no_secret_escaped(plugin: Plugin) -> None:
    for reply in plugin.replies:
        assert PASSWORD not in outside_secret_envelopes(reply)
    assert PASSWORD not in plugin.stderr()
    assert all(PASSWORD not in message for _, message, _ in plugin.engine.logs)


@pytest.fixture
def raw_plugin(tmp_path: Path) -> Iterator[Plugin]:
    """A started plugin, not configured yet."""
    plugin = Plugin(tmp_path, EXTRA)
    yield plugin
    plugin.stop()
    assert plugin.extra_stdout == b"", "the plugin wrote to stdout after its port"
    _no_secret_escaped(plugin)


@pytest.fixture
def plugin(raw_plugin: Plugin, store: Store) -> Plugin:
    reply = raw_plugin.configure("lab", {"kind": "memory", "path": str(store.path), "username": "admin",
                                         "password": PASSWORD})
    assert reply["acceptSecrets"] and reply["supportsPreview"]
    return raw_plugin


@pytest.fixture
def allowing_plugin(raw_plugin: Plugin, store: Store) -> Plugin:
    """A plugin whose Endpoint allows data loss (allowDataLoss: true)."""
    raw_plugin.configure("lab", {"kind": "memory", "path": str(store.path), "username": "admin", "password": PASSWORD,
                                 "allowDataLoss": True})
    return raw_plugin


def _create(plugin: Plugin, name: str, inputs: dict[str, Any], kind: str = "VirtualMachine") -> tuple[str, dict]:
    reply = plugin.create(kind, name, inputs)
    return reply["id"], unwrap(reply["properties"])


# -- info, schema, configuration -------------------------------------------------------------------------

TOKEN = re.compile(r"^virtplane:index:[A-Z][A-Za-z0-9]*$")


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if "$ref" in value:
            yield value["$ref"]
        for item in value.values():
            yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def test_the_plugin_reports_its_version_and_a_package_schema_generated_from_the_specs(raw_plugin: Plugin) -> None:
    import json

    from virtplane.kinds import KINDS, kind
    from virtplane.wire_names import camel

    info = as_dict(raw_plugin.call("GetPluginInfo", empty_pb2.Empty()))
    assert re.match(r"^\d+\.\d+\.\d+", info["version"])
    schema = json.loads(raw_plugin.call("GetSchema", provider_pb2.GetSchemaRequest(version=0)).schema)
    assert schema["name"] == "virtplane" and schema["version"] == info["version"]
    assert set(schema["config"]) <= {"variables", "defaults"}
    assert {f"virtplane:index:{kind.name}" for kind in KINDS} == set(schema["resources"])
    for token, resource in {**schema["resources"], **schema["types"]}.items():
        assert TOKEN.match(token), token
        properties = resource.get("inputProperties", resource.get("properties", {}))
        assert set(resource.get("requiredInputs", resource.get("required", []))) <= set(properties)
    for ref in _refs(schema):
        assert ref.startswith("#/types/") and ref.removeprefix("#/types/") in schema["types"], ref
    vm = schema["resources"]["virtplane:index:VirtualMachine"]
    assert set(vm["inputProperties"]) == {camel(field) for field in kind("VirtualMachine").spec.model_fields}
    assert {"secureBoot", "cloneFrom", "nestedVirtualization", "cloudInit"} <= set(vm["inputProperties"])
    assert schema["language"]["python"]["packageName"] == "virtplane"  # the module users import
    cloud_init = schema["types"]["virtplane:index:CloudInit"]
    assert set(cloud_init["properties"]) == {"userData", "metaData", "networkConfig"}
    assert vm["properties"]["cloudInit"]["type"] == "string"  # an output is the digest, never the documents
    assert vm["inputProperties"]["disks"]["items"] == {"$ref": "#/types/virtplane:index:Disk"}
    assert schema["types"]["virtplane:index:Disk"]["required"] == ["size"]
    firmware = schema["types"][vm["inputProperties"]["firmware"]["$ref"].removeprefix("#/types/")]
    assert [e["value"] for e in firmware["enum"]] == ["bios", "uefi"]
    assert "`memory`" in vm["inputProperties"]["memory"]["description"]
    container = schema["resources"]["virtplane:index:Container"]["inputProperties"]
    assert container["password"]["secret"] is True and container["sshKeys"]["secret"] is True
    assert container["mounts"]["items"] == {"$ref": "#/types/virtplane:index:Mount"}
    assert not any(p.get("secret") for f, p in container.items() if f not in ("password", "sshKeys"))
    for place in (schema["provider"]["inputProperties"], schema["config"]["variables"]):
        assert place["password"]["secret"] is True and place["apiToken"]["secret"] is True
        assert "caFile" in place and "ca_file" not in place
        assert {"kind", "server", "endpoint", "datacenter", "node", "storage", "bridge", "path"} <= set(place)
        assert not place["server"].get("secret")


def test_the_plugin_folder_for_pulumi_plugin_install_serves_the_same_plugin(tmp_path: Path) -> None:
    import sys

    from tests.support.plugin import REPO

    folder = Plugin(tmp_path, EXTRA, command=[sys.executable, str(REPO / "pulumi-plugin")])
    try:
        assert as_dict(folder.call("GetPluginInfo", empty_pb2.Empty()))["version"]
    finally:
        folder.stop()
    assert folder.extra_stdout == b""


def test_check_config_names_the_setting_that_is_wrong(raw_plugin: Plugin) -> None:
    def failures(config: dict[str, Any]) -> list[dict[str, str]]:
        return as_dict(raw_plugin.call("CheckConfig", provider_pb2.CheckRequest(
            urn="urn:pulumi:dev::proj::pulumi:providers:virtplane::ep", news=_struct(config))))["failures"]

    assert failures({"kind": "xen"})[0]["property"] == "kind"
    assert failures({"kind": "memory"})[0]["property"] == "path"
    assert failures({"kind": "memory", "path": "/x", "servr": "vc"})[0]["property"] == "servr"
    assert failures({"kind": "memory", "path": UNKNOWN}) == []  # known only at apply time: not judged
    reply = as_dict(raw_plugin.call("CheckConfig", provider_pb2.CheckRequest(
        urn="urn:pulumi:dev::proj::pulumi:providers:virtplane::ep",
        news=_struct({"kind": "memory", "path": "/x", "password": PASSWORD}))))
    assert reply["failures"] == [] and reply["inputs"]["password"][SECRET_SIG]


def _struct(values: dict[str, Any]) -> Any:
    from tests.support.plugin import struct, wire

    return struct(wire(values))


def test_a_wrong_password_fails_the_first_operation_in_one_sentence_without_showing_it(raw_plugin: Plugin,
                                                                                       store: Store) -> None:
    raw_plugin.configure("lab", {"kind": "memory", "path": str(store.path), "username": "admin",
                                 "password": "wrong-" + PASSWORD})
    with pytest.raises(grpc.RpcError) as failure:
        raw_plugin.create("VirtualMachine", "web-1", VM)
    assert failure.value.code() == grpc.StatusCode.UNKNOWN
    assert failure.value.details() == f"memory endpoint {store.path}: login refused for user admin"
    assert "wrong-" not in raw_plugin.stderr()


# -- check ------------------------------------------------------------------------------------------------

def test_check_accepts_good_inputs_with_numbers_as_doubles(plugin: Plugin) -> None:
    reply = plugin.check("VirtualMachine", "web-1", VM)
    assert reply["failures"] == []
    assert unwrap(reply["inputs"])["cpus"] == 2


def test_check_names_the_property_of_a_bad_input_instead_of_failing_the_call(plugin: Plugin) -> None:
    assert plugin.check("VirtualMachine", "web-1", {**VM, "memory": "lots"})["failures"][0]["property"] == "memory"
    bad_disk = plugin.check("VirtualMachine", "web-1", {**VM, "disks": [{"size": 10}, {"size": "huge"}]})
    assert [f["property"] for f in bad_disk["failures"]] == ["disks[1].size"]
    typo = plugin.check("VirtualMachine", "web-1", {**VM, "cpu": 2})["failures"][0]
    assert typo == {"property": "cpu", "reason": "unknown field (did you mean 'cpus'?)"}
    assert plugin.check("VirtualMachine", "web-1", {**VM, "cpus": 3, "sockets": 2})["failures"][0]["property"] \
        == "sockets"
    assert plugin.check("Network", "app", {"vlan": 5000})["failures"][0]["property"] == "vlan"


def test_check_in_preview_judges_only_what_is_known(plugin: Plugin) -> None:
    assert plugin.check("VirtualMachine", "web-1", {**VM, "cpus": UNKNOWN, "sockets": 2})["failures"] == []
    failures = plugin.check("VirtualMachine", "web-1", {**VM, "cpus": UNKNOWN, "memory": "lots"})["failures"]
    assert [f["property"] for f in failures] == ["memory"]


# -- create -----------------------------------------------------------------------------------------------

def test_a_preview_create_touches_nothing_and_leaves_what_the_hypervisor_decides_unknown(plugin: Plugin,
                                                                                          store: Store) -> None:
    reply = plugin.create("VirtualMachine", "web-1", {**VM, "tags": UNKNOWN}, preview=True)
    assert reply["id"] == ""
    outputs = reply["properties"]
    assert outputs["cpus"] == 2 and outputs["memory"] == 2048
    assert outputs["node"] == UNKNOWN and outputs["tags"] == UNKNOWN
    assert outputs["disks"][0]["slot"] == UNKNOWN
    assert store.read()["objects"]["VirtualMachine"] == {}


def test_create_returns_the_stable_id_and_outputs_and_marks_the_object_as_ours(plugin: Plugin,
                                                                             store: Store) -> None:
    object_id, outputs = _create(plugin, "web-1", VM)
    live = store.read()["objects"]["VirtualMachine"][object_id]
    assert live["name"] == "web-1"
    assert Owner.decode(live["owner"]) == Owner(STACK_ID, "web-1", "lab")
    assert outputs["memory"] == 2048 and outputs["firmware"] == "bios"  # a creation default
    assert [d["slot"] for d in outputs["disks"]] == ["disk0", "disk1"]


def test_new_vms_are_placed_on_the_hosts_in_turn_and_an_unknown_node_is_refused_in_preview(plugin: Plugin,
                                                                                            store: Store) -> None:
    with store.open() as data:
        data["hosts"] = ["h1", "h2"]
    nodes = [_create(plugin, f"web-{n}", VM)[1]["node"] for n in range(3)]
    assert nodes == ["h1", "h2", "h1"]
    for preview in (True, False):
        with pytest.raises(grpc.RpcError) as failure:
            plugin.create("VirtualMachine", "web-9", {**VM, "node": "h9"}, preview=preview)
        assert failure.value.details() == ("VirtualMachine 'web-9': field 'node': no host named 'h9' on this "
                                           "endpoint; hosts: h1, h2")
    assert len(store.read()["objects"]["VirtualMachine"]) == 3


def test_a_name_the_hypervisor_does_not_take_is_refused_before_anything_is_made(plugin: Plugin,
                                                                                store: Store) -> None:
    for preview in (True, False):
        with pytest.raises(grpc.RpcError) as failure:
            plugin.create("VirtualMachine", "Web-1", VM, preview=preview)
        assert failure.value.details() == ("VirtualMachine 'Web-1': field 'name': must hold no upper-case letters "
                                           "on this hypervisor")
    assert store.read()["objects"]["VirtualMachine"] == {}


def test_creates_sent_at_once_run_at_once(plugin: Plugin, store: Store) -> None:
    with store.open() as data:
        data["creates_together"] = 10  # each create waits until ten are in the driver together
    with ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(lambda n: plugin.create("VirtualMachine", f"web-{n}", VM), range(10)))
    assert len({reply["id"] for reply in replies}) == 10


def test_an_input_given_as_a_secret_comes_back_as_a_secret_output(plugin: Plugin) -> None:
    reply = plugin.create("VirtualMachine", "web-1", {**VM, "guestOs": secret("windows")})
    assert reply["properties"]["guestOs"] == secret("windows")
    assert not isinstance(reply["properties"]["cpus"], dict)


# -- diff -------------------------------------------------------------------------------------------------

def test_diff_finds_no_change_when_the_inputs_match_and_ignores_what_is_not_set(plugin: Plugin) -> None:
    object_id, outputs = _create(plugin, "web-1", VM)
    assert plugin.diff("VirtualMachine", "web-1", object_id, outputs, VM)["changes"] == "DIFF_NONE"
    unmanaged = {key: value for key, value in VM.items() if key not in ("memory", "power")}
    assert plugin.diff("VirtualMachine", "web-1", object_id, {**outputs, "memory": 1}, unmanaged)["changes"] \
        == "DIFF_NONE"


def test_diff_reports_an_in_place_change_by_its_property_path(plugin: Plugin) -> None:
    object_id, outputs = _create(plugin, "web-1", VM)
    reply = plugin.diff("VirtualMachine", "web-1", object_id, outputs,
                        {**VM, "cpus": 4, "disks": [{"size": 10}, {"size": 30}]})
    assert reply["changes"] == "DIFF_SOME" and reply["replaces"] == []
    assert reply["detailedDiff"] == {"cpus": {"kind": "UPDATE", "inputDiff": False},
                                     "disks[1].size": {"kind": "UPDATE", "inputDiff": False}}
    assert sorted(reply["diffs"]) == ["cpus", "disks"]


def test_diff_asks_for_a_replacement_when_a_field_cannot_change_in_place_where_data_loss_is_allowed(
        allowing_plugin: Plugin) -> None:
    object_id, outputs = _create(allowing_plugin, "web-1", VM)
    reply = allowing_plugin.diff("VirtualMachine", "web-1", object_id, outputs,
                                 {**VM, "disks": [{"size": 10, "thin": False}, {"size": 20}]})
    assert reply["replaces"] == ["disks"] and reply["deleteBeforeReplace"] is True
    assert reply["detailedDiff"]["disks[0].thin"]["kind"] == "UPDATE_REPLACE"
    assert any("would be replaced" in message and "disk0 (10 GiB)" in message
               for severity, message, _ in allowing_plugin.engine.logs if severity == engine_pb2.WARNING)


def test_diff_flags_a_disk_removal_as_destroying_data_and_warns_naming_the_slot_where_it_is_allowed(
        allowing_plugin: Plugin) -> None:
    object_id, outputs = _create(allowing_plugin, "web-1", VM)
    reply = allowing_plugin.diff("VirtualMachine", "web-1", object_id, outputs, {**VM, "disks": [{"size": 10}]})
    assert reply["detailedDiff"] == {"disks[1]": {"kind": "DELETE", "inputDiff": False}}
    warnings = [(message, where) for severity, message, where in allowing_plugin.engine.logs
                if severity == engine_pb2.WARNING]
    assert warnings == [("destroys data: VM web-1 on lab: disk disk1 (20 GiB) is no longer declared; removing it "
                         "destroys its data", f"urn:pulumi:{STACK}::{PROJECT}::pulumi:pulumi:Stack$virtplane:index:"
                         "VirtualMachine::web-1")]


def test_a_diff_in_preview_shows_an_unknown_input_as_an_update_and_judges_the_rest(plugin: Plugin) -> None:
    object_id, outputs = _create(plugin, "web-1", VM)
    reply = plugin.diff("VirtualMachine", "web-1", object_id, outputs, {**VM, "cpus": UNKNOWN, "sockets": 2,
                                                                       "memory": "4GiB"})
    assert reply["detailedDiff"] == {"cpus": {"kind": "UPDATE", "inputDiff": False},
                                     "memory": {"kind": "UPDATE", "inputDiff": False},
                                     "sockets": {"kind": "ADD", "inputDiff": False}}


def test_a_refused_change_fails_the_diff_in_one_sentence_naming_resource_and_field(plugin: Plugin) -> None:
    object_id, outputs = _create(plugin, "web-1", VM)
    with pytest.raises(grpc.RpcError) as failure:
        plugin.diff("VirtualMachine", "web-1", object_id, outputs, {**VM, "disks": [{"size": 5}, {"size": 20}]})
    assert failure.value.details() == ("VirtualMachine 'web-1': field 'disks[disk0].size': shrinking a disk is "
                                       "not possible")


# -- read, import -----------------------------------------------------------------------------------------

def test_a_refresh_of_many_resources_costs_one_batched_read(plugin: Plugin, store: Store) -> None:
    created = [_create(plugin, f"web-{n}", VM) for n in range(8)]
    before = len(store.read()["calls"])
    with ThreadPoolExecutor(8) as pool:  # the engine sends Reads in parallel
        replies = list(pool.map(lambda item: plugin.read("VirtualMachine", "web", item[0], item[1], VM), created))
    assert [reply["id"] for reply in replies] == [object_id for object_id, _ in created]
    assert unwrap(replies[3]["properties"])["memory"] == 2048
    assert unwrap(replies[3]["inputs"]) == unwrap(_wired(VM))
    reads = [call for call in store.read()["calls"][before:] if call[0] == "VirtualMachine"]
    assert reads == [["VirtualMachine", "observe", 0]]


def _wired(values: dict[str, Any]) -> dict[str, Any]:
    from tests.support.plugin import wire

    return wire(values)


def test_a_refresh_sees_changes_made_behind_our_back(plugin: Plugin, store: Store) -> None:
    object_id, outputs = _create(plugin, "web-1", VM)
    with store.open() as data:
        data["objects"]["VirtualMachine"][object_id]["state"]["cpus"] = 8
    refreshed = unwrap(plugin.read("VirtualMachine", "web-1", object_id, outputs, VM)["properties"])
    assert refreshed["cpus"] == 8
    reply = plugin.diff("VirtualMachine", "web-1", object_id, refreshed, VM)
    assert reply["detailedDiff"] == {"cpus": {"kind": "UPDATE", "inputDiff": False}}


def test_an_import_by_id_alone_returns_inputs_that_diff_clean_against_the_object(plugin: Plugin,
                                                                                  store: Store) -> None:
    state = {"cpus": 4, "memory": 4096, "sockets": 1, "node": "h1", "machine": None, "firmware": "uefi",
             "secure_boot": True, "guest_os": "linux", "power": "off", "nested_virtualization": False,
             "tags": ["legacy"], "gpus": [], "clone_from": None, "linked_clone": False,
             "disks": [{"size": 40, "storage": "ds1", "thin": True, "bus": "paravirtual", "slot": "disk0"}],
             "nics": [{"network": "app", "adapter": "e1000", "device": None, "slot": "nic0"}]}
    object_id = store.add("VirtualMachine", "legacy-1", state, owner=None)  # made by hand
    reply = plugin.read("VirtualMachine", "legacy-1", object_id)
    assert reply["id"] == object_id
    inputs = unwrap(reply["inputs"])
    assert inputs["cpus"] == 4 and "clone_from" not in inputs and "machine" not in inputs
    assert plugin.check("VirtualMachine", "legacy-1", inputs)["failures"] == []
    assert plugin.diff("VirtualMachine", "legacy-1", object_id, unwrap(reply["properties"]), inputs)["changes"] \
        == "DIFF_NONE"


def test_what_a_library_prints_after_the_handshake_goes_to_stderr_not_stdout(plugin: Plugin,
                                                                            store: Store) -> None:
    with store.open() as data:
        data["chatty"] = True
    plugin.read("VirtualMachine", "web-1", "vi-1")
    plugin.stop()
    assert plugin.extra_stdout == b""
    assert "chatty library: reading 1 ids" in plugin.stderr()


def test_imports_asked_for_at_once_share_read_passes_and_all_get_answers(plugin: Plugin, store: Store) -> None:
    ids = [store.add("VirtualMachine", f"old-{n}", {"cpus": 1, "memory": 512}, owner=None) for n in range(24)]
    with ThreadPoolExecutor(12) as pool:
        replies = list(pool.map(lambda object_id: plugin.read("VirtualMachine", "old", object_id), ids))
    assert [reply["id"] for reply in replies] == ids
    passes = [call for call in store.read()["calls"] if call[1] == "observe_ids"]
    assert sum(asked for _, _, asked in passes) == len(ids) and len(passes) < len(ids)


def test_reading_an_object_that_is_gone_answers_an_empty_id(plugin: Plugin) -> None:
    assert plugin.read("VirtualMachine", "web-1", "vi-404", {"cpus": 1}, {"cpus": 1})["id"] == ""
    assert plugin.read("VirtualMachine", "web-1", "vi-404")["id"] == ""


# -- update, delete ---------------------------------------------------------------------------------------

def test_update_changes_the_object_in_place_and_returns_what_it_reads_back(plugin: Plugin, store: Store) -> None:
    object_id, outputs = _create(plugin, "web-1", VM)
    news = {**VM, "cpus": 4, "disks": [{"size": 10}, {"size": 30}, {"size": 5}]}
    reply = unwrap(plugin.update("VirtualMachine", "web-1", object_id, outputs, news)["properties"])
    assert reply["cpus"] == 4 and [(d["slot"], d["size"]) for d in reply["disks"]] == [
        ("disk0", 10), ("disk1", 30), ("disk2", 5)]
    assert store.read()["objects"]["VirtualMachine"][object_id]["state"]["cpus"] == 4


def test_a_preview_update_changes_nothing(plugin: Plugin, store: Store) -> None:
    object_id, outputs = _create(plugin, "web-1", VM)
    reply = unwrap(plugin.update("VirtualMachine", "web-1", object_id, outputs, {**VM, "cpus": 4},
                                 preview=True)["properties"])
    assert reply["cpus"] == 4
    assert store.read()["objects"]["VirtualMachine"][object_id]["state"]["cpus"] == 2


def test_delete_removes_what_we_own(plugin: Plugin, store: Store) -> None:
    object_id, outputs = _create(plugin, "web-1", VM)
    plugin.delete("VirtualMachine", "web-1", object_id, outputs)
    assert object_id not in store.read()["objects"]["VirtualMachine"]
    plugin.delete("VirtualMachine", "web-1", object_id, outputs)  # gone already: fine


@pytest.mark.parametrize(("owner", "why"), [
    (None, f"it carries no virtplane.owner marker, so stack '{STACK_ID}' did not create it"),
    (Owner("other/prod", "web-1", "lab"),
     f"its virtplane.owner marker names stack 'other/prod' and endpoint 'lab', not stack '{STACK_ID}' and "
     "endpoint 'lab'"),
])
def test_delete_and_update_refuse_an_object_that_is_not_ours(plugin: Plugin, store: Store, owner: Owner | None,
                                                             why: str) -> None:
    object_id = store.add("VirtualMachine", "web-1", {"cpus": 1, "memory": 512}, owner)
    for action, call in (("delete", lambda: plugin.delete("VirtualMachine", "web-1", object_id, {})),
                         ("update", lambda: plugin.update("VirtualMachine", "web-1", object_id, {}, {"cpus": 2}))):
        with pytest.raises(grpc.RpcError) as failure:
            call()
        assert failure.value.details() == (
            f"VirtualMachine 'web-1': refusing to {action} virtual machine web-1 (id {object_id}) on endpoint "
            f"'lab': {why}")
    assert store.read()["objects"]["VirtualMachine"][object_id]["state"] == {"cpus": 1, "memory": 512}


def test_networks_are_served_like_vms(plugin: Plugin, store: Store) -> None:
    object_id, outputs = _create(plugin, "app", {"vlan": 120}, kind="Network")
    assert outputs == {"vlan": 120}
    assert plugin.diff("Network", "app", object_id, outputs, {"vlan": 130})["detailedDiff"] == {
        "vlan": {"kind": "UPDATE", "inputDiff": False}}
    plugin.update("Network", "app", object_id, outputs, {"vlan": 130})
    assert store.read()["objects"]["Network"][object_id]["state"] == {"vlan": 130}


# -- a program's registrations, as the plugin receives them ---------------------------------------------

def test_what_a_stack_program_registers_passes_the_plugins_checks(plugin: Plugin, store: Store) -> None:
    import pulumi

    import virtplane

    registered: dict[str, tuple[str, dict[str, Any]]] = {}

    class Recording(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            registered[args.name] = (args.typ, dict(args.inputs))
            return f"{args.name}-id", dict(args.inputs)

        def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
            return {}

    pulumi.runtime.set_mocks(Recording(), project=PROJECT, stack=STACK, preview=False)

    @pulumi.runtime.test
    def program() -> Any:
        endpoint = virtplane.Endpoint("lab", kind="memory", path=str(store.path), username="admin",
                                      password=PASSWORD)
        on_it = pulumi.ResourceOptions(provider=endpoint)
        app = virtplane.Network("app", vlan=120, opts=on_it)
        vm = virtplane.VirtualMachine("web-1", cpus=2, memory="2GiB", disks=[virtplane.Disk("40GiB"),
                                      virtplane.Disk(100, thin=False)], nics=[virtplane.Nic(app)],
                                      firmware="uefi", secure_boot=True, tags=["web"], opts=on_it)
        return vm.id.apply(lambda _: None)

    from virtplane.providers import registry

    registry.KINDS.setdefault("memory", EXTRA["VIRTPLANE_EXTRA_KINDS"].split("=", 1)[1])
    try:
        program()
    finally:
        registry.KINDS.pop("memory", None)
    provider_type, provider_inputs = registered["lab"]
    assert provider_type == "pulumi:providers:virtplane"
    assert provider_inputs["password"] == secret(PASSWORD)
    network_type, network_inputs = registered["app"]
    vm_type, vm_inputs = registered["web-1"]
    assert (network_type, vm_type) == ("virtplane:index:Network", "virtplane:index:VirtualMachine")
    assert plugin.check("Network", "app", network_inputs)["failures"] == []
    assert plugin.check("VirtualMachine", "web-1", vm_inputs)["failures"] == []
    object_id, outputs = _create(plugin, "web-1", vm_inputs)
    assert [(d["size"], d["thin"]) for d in outputs["disks"]] == [(40, True), (100, False)]
    assert plugin.diff("VirtualMachine", "web-1", object_id, outputs, vm_inputs)["changes"] == "DIFF_NONE"


# -- data safety: what the preview shows is what up does ----------------------------------------------------

def test_creates_of_the_resources_check_saw_look_for_interrupted_creates_in_one_read(plugin: Plugin,
                                                                                      store: Store) -> None:
    for n in range(6):
        assert plugin.check("VirtualMachine", f"web-{n}", VM)["failures"] == []
    before = len(store.read()["calls"])
    for n in range(6):
        _create(plugin, f"web-{n}", VM)
    reads = [call for call in store.read()["calls"][before:] if call[0] == "VirtualMachine"]
    assert reads == [["VirtualMachine", "observe", 0]]


def test_a_create_refuses_a_same_named_object_that_is_not_this_stacks_and_leaves_it_alone(plugin: Plugin,
                                                                                          store: Store) -> None:
    object_id = store.add("VirtualMachine", "web-1", {"cpus": 1, "memory": 512}, Owner("other/prod", "web-1", "lab"))
    with pytest.raises(grpc.RpcError) as failure:
        plugin.create("VirtualMachine", "web-1", VM)
    assert failure.value.details() == (
        "VirtualMachine 'web-1': a virtual machine named 'web-1' already exists on endpoint 'lab' and is not managed "
        f"by stack '{STACK_ID}' (it belongs to stack 'other/prod'); rename the resource or remove that object by hand")
    assert list(store.read()["objects"]["VirtualMachine"]) == [object_id]


def test_a_replacement_made_create_before_delete_keeps_the_object_its_create_took_over(plugin: Plugin,
                                                                                        store: Store) -> None:
    object_id, outputs = _create(plugin, "web-1", VM)
    again, _ = _create(plugin, "web-1", VM)  # the replacement's Create finds the old object by its marker
    assert again == object_id
    plugin.delete("VirtualMachine", "web-1", object_id, outputs)  # then the engine deletes "the old one"
    assert list(store.read()["objects"]["VirtualMachine"]) == [object_id]
    assert any("not deleting virtual machine" in message for _, message, _ in plugin.engine.logs)


def test_the_environment_allows_data_loss_for_one_run(tmp_path: Path, store: Store) -> None:
    allowed = Plugin(tmp_path, {**EXTRA, "VIRTPLANE_ALLOW_DATA_LOSS": "1"})
    try:
        allowed.configure("lab", {"kind": "memory", "path": str(store.path), "username": "admin",
                                  "password": PASSWORD})
        object_id, outputs = _create(allowed, "web-1", VM)
        assert allowed.diff("VirtualMachine", "web-1", object_id, outputs, {**VM, "disks": [{"size": 10}]})[
            "detailedDiff"] == {"disks[1]": {"kind": "DELETE", "inputDiff": False}}
    finally:
        allowed.stop()
    _no_secret_escaped(allowed)


def test_check_config_refuses_an_allow_data_loss_that_is_not_a_boolean(raw_plugin: Plugin) -> None:
    reply = as_dict(raw_plugin.call("CheckConfig", provider_pb2.CheckRequest(
        urn="urn:pulumi:dev::proj::pulumi:providers:virtplane::ep",
        news=_struct({"kind": "memory", "path": "/x", "allowDataLoss": "maybe"}))))
    assert reply["failures"] == [{"property": "allowDataLoss", "reason": "got 'maybe'; expected true or false"}]
    both = as_dict(raw_plugin.call("CheckConfig", provider_pb2.CheckRequest(
        urn="urn:pulumi:dev::proj::pulumi:providers:virtplane::ep",
        news=_struct({"kind": "memory", "path": "/x", "allowDataLoss": "maybe", "servr": "x"}))))
    assert [failure["property"] for failure in both["failures"]] == ["allowDataLoss", "servr"]  # all at once
    for given in (True, "true", "false"):
        assert as_dict(raw_plugin.call("CheckConfig", provider_pb2.CheckRequest(
            urn="urn:pulumi:dev::proj::pulumi:providers:virtplane::ep",
            news=_struct({"kind": "memory", "path": "/x", "allowDataLoss": given}))))["failures"] == []


def test_resources_ask_for_a_refresh_before_update_only_from_an_engine_that_offers_it(raw_plugin: Plugin,
                                                                                     store: Store) -> None:
    raw_plugin.call("Handshake", provider_pb2.ProviderHandshakeRequest(
        engine_address=f"127.0.0.1:{raw_plugin.engine.port}", supports_refresh_before_update=False))
    raw_plugin.configure("lab", {"kind": "memory", "path": str(store.path), "username": "admin", "password": PASSWORD})
    assert raw_plugin.create("VirtualMachine", "web-1", VM)["refreshBeforeUpdate"] is False


def test_a_create_never_deletes_an_object_carrying_its_marker_that_would_need_replacing(plugin: Plugin,
                                                                                       store: Store) -> None:
    state = {"cpus": 2, "memory": 2048, "disks": [{"size": 10, "thin": True, "slot": "disk0"}]}
    object_id = store.add("VirtualMachine", "web-1", state, Owner(STACK_ID, "web-1", "lab"))  # kept by retainOnDelete
    with pytest.raises(grpc.RpcError) as failure:
        plugin.create("VirtualMachine", "web-1", {**VM, "disks": [{"size": 10, "thin": False}]})
    assert failure.value.details() == (
        f"VirtualMachine 'web-1': virtual machine web-1 (id {object_id}) on endpoint 'lab' already carries this "
        "resource's ownership marker (left by an interrupted create, or kept by retainOnDelete) and differs in "
        "disks[disk0].thin, which cannot change in place. Nothing was changed: delete it by hand, or give the "
        "resource its values and run again")
    assert store.read()["objects"]["VirtualMachine"][object_id]["state"] == state


def test_the_plugin_answers_that_it_maps_nothing_from_other_ecosystems(raw_plugin: Plugin) -> None:
    assert as_dict(raw_plugin.call("GetMapping", provider_pb2.GetMappingRequest(key="terraform"))) == {
        "provider": "", "data": ""}
    assert as_dict(raw_plugin.call("GetMappings", provider_pb2.GetMappingsRequest(key="terraform"))) == {
        "providers": []}


def test_a_preview_says_when_a_change_powers_the_vm_off(plugin: Plugin) -> None:
    object_id, outputs = _create(plugin, "web-1", VM)
    plugin.diff("VirtualMachine", "web-1", object_id, outputs, {**VM, "cpus": 4})
    plugin.diff("VirtualMachine", "web-1", object_id, outputs, {**VM, "firmware": "uefi"})
    warnings = [message for severity, message, _ in plugin.engine.logs if severity == engine_pb2.WARNING]
    assert warnings == ["powers off: VirtualMachine 'web-1' is shut down to change firmware, then started again"]
