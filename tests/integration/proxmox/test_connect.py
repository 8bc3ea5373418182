"""Connecting and logging in: tickets renewed, API tokens, permissions, TLS and unreachable endpoints."""

from __future__ import annotations

import socket

import pytest

from tests.integration.proxmox.conftest import connect
from tests.integration.proxmox.helpers import declared, observe, requests_to, vm_spec
from virtplane.errors import ConnectionFailed, ProviderError
from virtplane.providers.base import Owner

TOKEN_SECRET = "5c1e7f0a-token-secret-sentinel"


def token_environ(environ: dict[str, str], token: str) -> dict[str, str]:
    return {key: value for key, value in environ.items() if "USERNAME" not in key and "PASSWORD" not in key} | {
        "PROXMOX_VE_API_TOKEN": token}


def test_an_api_token_authenticates_without_a_ticket(pve, environ, stack):
    pve.apitokens["root@pam!ci"] = TOKEN_SECRET
    provider = connect(token_environ(environ, f"root@pam!ci={TOKEN_SECRET}"))
    provider.driver("VirtualMachine").create(Owner(stack, "web1"), vm_spec(node="pve1", power="off"))
    assert "web1" in observe(provider, stack, {}).owned
    assert not requests_to(pve, "POST", "/access/ticket")
    provider.close()


def test_a_token_without_a_privilege_gets_one_sentence_naming_it_and_never_the_secret(pve, environ, stack):
    pve.apitokens["ci@pve!deploy"] = TOKEN_SECRET
    pve.grant("ci@pve!deploy", "/", "VM.Audit", "Sys.Audit", "Datastore.Audit")  # may look, not create
    provider = connect(token_environ(environ, f"ci@pve!deploy={TOKEN_SECRET}"))
    spec = vm_spec(node="pve1")
    observe(provider, stack, {"web1": spec})
    assert provider.driver("VirtualMachine").check(spec, declared({"web1": spec})) == []
    with pytest.raises(ProviderError) as denied:
        provider.driver("VirtualMachine").create(Owner(stack, "web1"), spec)
    assert str(denied.value) == ("Proxmox endpoint 'pve' refused to create VM web1 with VMID 100 on node pve1: "
                                 "permission denied for VM.Allocate on /vms/100 (token ci@pve!deploy lacks it)")
    pve.grant("ci@pve!deploy", "/vms", "VM.Allocate")
    with pytest.raises(ProviderError) as denied:
        provider.driver("VirtualMachine").create(Owner(stack, "web1"), spec)
    assert "permission denied for VM.Config." in str(denied.value) and TOKEN_SECRET not in str(denied.value)
    provider.close()


def test_the_token_secret_is_a_secret_setting_and_never_in_the_settings_repr(environ):
    from virtplane.providers.proxmox.provider import ProxmoxProvider

    settings = ProxmoxProvider.settings_from("pve", {}, token_environ(environ, f"root@pam!ci={TOKEN_SECRET}"))
    assert TOKEN_SECRET not in repr(settings) and TOKEN_SECRET not in str(settings.model_dump())


def test_a_revoked_ticket_is_renewed_once_and_the_request_repeated(pve, provider, stack):
    provider.driver("VirtualMachine").create(Owner(stack, "web1"), vm_spec(node="pve1"))
    pve.revoke_tickets()
    assert "web1" in observe(provider, stack, {}).owned
    pve.revoke_tickets()
    provider.driver("VirtualMachine").create(Owner(stack, "web2"), vm_spec(node="pve1"))  # a write renews too
    assert len(requests_to(pve, "POST", "/access/ticket")) == 3


def test_a_wrong_password_is_refused_in_one_sentence(environ):
    with pytest.raises(ConnectionFailed) as refused:
        connect(environ | {"PROXMOX_VE_PASSWORD": "not-the-password"})
    assert str(refused.value).startswith("Proxmox endpoint 'pve' at https://127.0.0.1:")
    assert "refused the login of user root@pam" in str(refused.value) and "not-the-password" not in str(refused.value)


def test_an_unreachable_endpoint_fails_with_one_sentence_naming_its_url(environ):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens there once the socket is closed
    with pytest.raises(ConnectionFailed) as unreachable:
        connect(environ | {"PROXMOX_VE_ENDPOINT": f"https://127.0.0.1:{port}/"})
    assert str(unreachable.value) == (f"cannot reach Proxmox endpoint 'pve' at https://127.0.0.1:{port}/: "
                                      "Connection refused")


def test_an_unverifiable_certificate_names_the_ca_file_setting(environ):
    without_ca = {key: value for key, value in environ.items() if key != "PROXMOX_VE_CA_FILE"}
    with pytest.raises(ConnectionFailed) as untrusted:
        connect(without_ca)
    message = str(untrusted.value)
    assert "presented a certificate that could not be verified" in message and "PROXMOX_VE_CA_FILE" in message
    assert "\n" not in message


def test_a_missing_ca_file_is_named(environ, tmp_path):
    with pytest.raises(ConnectionFailed, match="no such file"):
        connect(environ | {"PROXMOX_VE_CA_FILE": str(tmp_path / "absent.pem")})


def test_a_wrong_api_token_is_refused_at_connect_in_one_sentence_without_the_secret(pve, environ):
    pve.apitokens["root@pam!ci"] = "the-right-one"
    with pytest.raises(ConnectionFailed) as refused:
        connect(token_environ(environ, f"root@pam!ci={TOKEN_SECRET}"))
    assert str(refused.value) == ("Proxmox endpoint 'pve' refused the credentials of token root@pam!ci while trying "
                                  "to read the Proxmox version: authentication failure")
