"""A Proxmox Endpoint takes every setting of the README's table as an argument; its secrets stay secret."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret

import virtplane
from virtplane import declared
from virtplane.errors import SpecError
from virtplane.wire_names import from_wire

TOKEN = "root@pam!ci=3f9a-token-secret"
EVERY_SETTING: dict[str, Any] = {
    "endpoint": "https://pve.example.com:8006/", "api_token": TOKEN, "username": "root@pam", "password": "pw-secret",
    "ca_file": "/etc/ssl/pve.pem", "insecure": False, "node": "pve2", "storage": "local-lvm", "bridge": "vmbr1",
    "task_timeout": 120, "request_timeout": 30}


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.registered: dict[str, dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.registered[args.typ] = dict(args.inputs)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


@pytest.fixture
def mocks() -> RecordingMocks:
    recording = RecordingMocks()
    pulumi.runtime.set_mocks(recording, project="p", stack="s", preview=False)
    return recording


def test_every_proxmox_setting_is_an_endpoint_argument_in_pulumis_camel_case_and_the_token_and_password_are_secret(
        mocks):
    @pulumi.runtime.test
    def program() -> Any:
        endpoint = virtplane.Endpoint("pve", kind="proxmox", **EVERY_SETTING)
        return endpoint.urn.apply(lambda _: None)

    program()
    inputs = mocks.registered["pulumi:providers:virtplane"]
    assert inputs["kind"] == "proxmox"
    secret = {key for key, value in inputs.items() if is_rpc_secret(value)}
    assert secret == {"apiToken", "password"}
    plain = {key: unwrap_rpc_secret(value) if key in secret else value for key, value in inputs.items()}
    assert {from_wire(key): value for key, value in plain.items() if key != "kind"} == EVERY_SETTING
    assert "caFile" in plain and "ca_file" not in plain  # every value reaches the provider, by Pulumi's name


def test_every_proxmox_setting_is_recorded_as_an_endpoint_input_by_virtplanes_own_cli():
    collector = declared.Collector()
    declared.set_collector(collector)
    try:
        virtplane.Endpoint("pve", kind="proxmox", **EVERY_SETTING)
    finally:
        declared.set_collector(None)
    assert collector.endpoints["pve"].inputs == EVERY_SETTING


def test_an_unknown_proxmox_argument_is_named_with_a_suggestion_and_the_parsed_field_names_are_not_arguments(mocks):
    with pytest.raises(SpecError, match="field 'api_key': unknown field \\(did you mean 'api_token'\\?\\)"):
        virtplane.Endpoint("pve", kind="proxmox", api_key=TOKEN)
    with pytest.raises(SpecError, match="field 'api_token_secret'"):
        virtplane.Endpoint("pve", kind="proxmox", api_token_secret="x")
