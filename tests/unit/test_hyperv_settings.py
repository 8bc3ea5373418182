"""Hyper-V endpoint settings (providers/hyperv/settings.py): defaults, Endpoint inputs over HYPERV_* variables,
ports, and Basic authentication over HTTP refused unless allowed. Transport facts from pypsrp's WSMan
(ports 5986/5985; Basic over HTTP only with encryption="never") and Microsoft's "Installation and configuration
for Windows Remote Management" page (HTTP 5985, HTTPS 5986)."""

from __future__ import annotations

import pytest

from virtplane.errors import SpecError
from virtplane.providers.hyperv.settings import settings_from

BASE = {"HYPERV_SERVER": "hv1.lab", "HYPERV_USERNAME": "LAB\\ops", "HYPERV_PASSWORD": "s3cret-pw"}


def test_defaults_are_negotiate_over_verified_tls_on_5986():
    """Negotiate: Kerberos in a domain, NTLM otherwise (pypsrp's auth="negotiate")."""
    settings = settings_from("hv", {}, BASE)
    assert (settings.host, settings.port, settings.auth, settings.tls, settings.insecure) == (
        "hv1.lab", 5986, "negotiate", True, False)
    assert settings.cert_validation is True
    assert settings.address == "https://hv1.lab:5986/wsman"
    assert (settings.operation_timeout, settings.shutdown_timeout) == (120, 120.0)


def test_plain_http_takes_port_5985_and_a_port_in_the_server_wins():
    assert settings_from("hv", {}, {**BASE, "HYPERV_TLS": "false"}).port == 5985
    assert settings_from("hv", {}, {**BASE, "HYPERV_SERVER": "hv1.lab:6000"}).port == 6000


def test_endpoint_inputs_win_over_the_environment():
    settings = settings_from("hv", {"server": "other:5990", "auth": "Negotiate", "switch": "sw1"},
                             {**BASE, "HYPERV_AUTH": "kerberos", "HYPERV_SWITCH": "sw0"})
    assert (settings.host, settings.port, settings.auth, settings.switch) == ("other", 5990, "negotiate", "sw1")


def test_a_ca_file_keeps_verification_on_and_insecure_turns_it_off_only_when_set():
    assert settings_from("hv", {}, {**BASE, "HYPERV_CA_FILE": "/lab/ca.pem"}).cert_validation == "/lab/ca.pem"
    assert settings_from("hv", {}, {**BASE, "HYPERV_INSECURE": "yes"}).cert_validation is False


def test_basic_over_http_is_refused_in_one_sentence_unless_allow_unencrypted():
    env = {**BASE, "HYPERV_AUTH": "basic", "HYPERV_TLS": "false"}
    with pytest.raises(SpecError) as caught:
        settings_from("hv", {}, env)
    message = str(caught.value)
    assert message.startswith("Endpoint 'hv': field 'auth': Basic authentication over HTTP would send the password "
                              "in clear text")
    assert "s3cret-pw" not in message
    assert settings_from("hv", {}, {**env, "HYPERV_ALLOW_UNENCRYPTED": "true"}).allow_unencrypted is True
    assert settings_from("hv", {}, {**BASE, "HYPERV_AUTH": "basic"}).tls is True  # Basic over TLS is fine


def test_missing_and_unknown_settings_are_named():
    with pytest.raises(SpecError) as caught:
        settings_from("hv", {"swtich": "x"}, {"HYPERV_SERVER": "hv1"})
    message = str(caught.value)
    assert "field 'swtich': unknown setting for a Hyper-V endpoint" in message
    assert "field 'username': is required: set it on the Endpoint or in HYPERV_USERNAME" in message
    assert "field 'password': is required" in message


def test_a_bad_port_is_one_error_without_the_password():
    with pytest.raises(SpecError) as caught:
        settings_from("hv", {}, {**BASE, "HYPERV_SERVER": "hv1:99999"})
    assert "field 'port'" in str(caught.value) and "s3cret-pw" not in str(caught.value)


def test_the_password_is_a_secret_that_does_not_print():
    settings = settings_from("hv", {}, BASE)
    assert "s3cret-pw" not in repr(settings) and "s3cret-pw" not in str(settings)
    assert settings.password.get_secret_value() == "s3cret-pw"


def test_a_certificate_failure_on_a_port_holding_401_is_not_taken_for_a_refused_login():
    """requests raises SSLError (CERTIFICATE_VERIFY_FAILED) with the port in its text; 40195 is no HTTP 401."""
    from requests.exceptions import SSLError

    from virtplane.providers.hyperv.client import HypervClient

    client = HypervClient(settings_from("hv", {}, {**BASE, "HYPERV_SERVER": "127.0.0.1:40195"}))
    error = SSLError("HTTPSConnectionPool(host='127.0.0.1', port=40195): Max retries exceeded (Caused by "
                     "SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
                     "failed')))")
    assert str(client._connection_failure(error)).startswith("cannot verify the TLS certificate of Hyper-V endpoint")
    refused = client._connection_failure(Exception("Bad HTTP response returned from server. Code 401"))
    assert "refused the login of user LAB\\ops (negotiate)" in str(refused)


@pytest.mark.parametrize(("server", "host", "port", "address"), [
    ("fe80::1", "fe80::1", 5986, "https://[fe80::1]:5986/wsman"),
    ("[2001:db8::7]:6000", "2001:db8::7", 6000, "https://[2001:db8::7]:6000/wsman"),
    ("[::1]", "::1", 5986, "https://[::1]:5986/wsman"),
    ("hv1.lab:5999", "hv1.lab", 5999, "https://hv1.lab:5999/wsman"),
])
def test_ipv6_addresses_in_hyperv_server_parse_bare_or_in_brackets(server, host, port, address):
    settings = settings_from("hv", {}, {**BASE, "HYPERV_SERVER": server})
    assert (settings.host, settings.port, settings.address) == (host, port, address)


@pytest.mark.parametrize("server", ["[::1", "fe80::zz", "hv1.lab:https"])
def test_a_server_that_is_no_host_or_address_is_one_sentence(server):
    with pytest.raises(SpecError, match="server"):
        settings_from("hv", {}, {**BASE, "HYPERV_SERVER": server})


def test_credssp_is_offered_for_the_double_hop_and_connections_are_an_endpoint_input():
    settings = settings_from("hv", {"connections": 8}, {**BASE, "HYPERV_AUTH": "CredSSP"})
    assert (settings.auth, settings.connections) == ("credssp", 8)
