"""Connecting: clear one-sentence failures, never leaking the password; placement choices."""

from __future__ import annotations

import socket

import pytest

from virtplane.errors import ConnectionFailed, VirtplaneError
from virtplane.providers.vsphere.provider import VsphereProvider


def settings(simulator, **inputs):
    return VsphereProvider.settings_from("lab", inputs, simulator.environ())


def test_an_unreachable_server_fails_with_connection_failed():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        with pytest.raises(ConnectionFailed, match=f"cannot reach vSphere at 127.0.0.1:{port}"):
            VsphereProvider.connect(VsphereProvider.settings_from(
                "lab", {"server": f"127.0.0.1:{port}", "username": "u", "password": "p"}, {}))


def test_a_wrong_password_fails_without_showing_the_password(simulator):
    secret = "not-the-password-4711"
    with pytest.raises(ConnectionFailed, match="refused the login for user virtplane") as failure:
        VsphereProvider.connect(settings(simulator, password=secret))
    assert secret not in str(failure.value)
    assert simulator.password not in str(failure.value)


def test_a_certificate_that_cannot_be_verified_names_the_ca_setting(simulator, tmp_path):
    with pytest.raises(ConnectionFailed, match="VSPHERE_CA_FILE"):
        VsphereProvider.connect(VsphereProvider.settings_from(
            "lab", {"ca_file": None}, {k: v for k, v in simulator.environ().items() if k != "VSPHERE_CA_FILE"}))


def test_unverified_tls_is_used_only_when_asked_for(simulator):
    environ = {k: v for k, v in simulator.environ().items() if k != "VSPHERE_CA_FILE"}
    provider = VsphereProvider.connect(VsphereProvider.settings_from("lab", {"insecure": True}, environ))
    provider.close()


def test_a_wrong_datastore_name_lists_the_choices(simulator):
    with pytest.raises(VirtplaneError, match=r"no datastore named 'nope'.*choices: LocalDS_0"):
        VsphereProvider.connect(settings(simulator, datastore="nope"))


def test_a_wrong_datacenter_name_lists_the_choices(simulator):
    with pytest.raises(VirtplaneError, match=r"no datacenter named 'DC9'.*choices: DC0"):
        VsphereProvider.connect(settings(simulator, datacenter="DC9"))


def test_the_only_datacenter_cluster_and_datastore_are_the_defaults(provider):
    placement = provider.inventory.placement
    assert (placement.datacenter_name, placement.cluster_name, placement.datastore_name) == (
        "DC0", "DC0_C0", "LocalDS_0")


def test_an_unknown_kind_is_an_error(provider):
    with pytest.raises(VirtplaneError, match="no driver for kind 'Disk'"):
        provider.driver("Disk")
