"""Proxmox endpoint settings, the change rules, and how PVE's errors become one sentence."""

from __future__ import annotations

import pytest

from virtplane.errors import SpecError
from virtplane.providers.base import FieldChange, RefusedChange, Rule
from virtplane.providers.proxmox.faults import explain, pve_text, refusal
from virtplane.providers.proxmox.settings import settings_from
from virtplane.providers.proxmox.vm_rules import vm_rule

ENV = {"PROXMOX_VE_ENDPOINT": "https://pve.example.com:8006/", "PROXMOX_VE_USERNAME": "root@pam",
       "PROXMOX_VE_PASSWORD": "hunter2-sentinel"}


def test_the_environment_fills_what_the_endpoint_does_not_give_and_inputs_win():
    settings = settings_from("pve", {"node": "pve2", "bridge": "vmbr1"}, ENV | {"PROXMOX_VE_NODE": "pve3"})
    assert (settings.host, settings.port, settings.username, settings.node, settings.bridge) == (
        "pve.example.com", 8006, "root@pam", "pve2", "vmbr1")
    assert settings.verify is True and settings.url == "https://pve.example.com:8006/"


@pytest.mark.parametrize(("endpoint", "host", "port"), [
    ("pve.example.com", "pve.example.com", 8006), ("10.0.0.5:443", "10.0.0.5", 443),
    ("https://[fd00::5]:8006/api2/json", "fd00::5", 8006)])
def test_an_endpoint_may_be_a_url_or_host_and_port(endpoint, host, port):
    settings = settings_from("pve", {"endpoint": endpoint}, ENV)
    assert (settings.host, settings.port) == (host, port)


def test_tls_is_verified_against_the_ca_file_and_off_only_when_asked():
    assert settings_from("pve", {"ca_file": "/etc/pve-ca.pem"}, ENV).verify == "/etc/pve-ca.pem"
    assert settings_from("pve", {}, ENV | {"PROXMOX_VE_INSECURE": "true"}).verify is False
    with pytest.raises(SpecError, match="'maybe' is not a boolean"):
        settings_from("pve", {}, ENV | {"PROXMOX_VE_INSECURE": "maybe"})


def test_an_api_token_is_split_into_its_id_and_a_secret_that_never_shows():
    secret = "0b5e7a52-9d51-token-sentinel"
    settings = settings_from("pve", {"api_token": f"ci@pve!deploy={secret}"}, ENV)
    assert settings.api_token_id == "ci@pve!deploy" and settings.principal == "token ci@pve!deploy"
    assert settings.api_token_secret is not None and settings.api_token_secret.get_secret_value() == secret
    assert secret not in repr(settings) and "hunter2-sentinel" not in repr(settings)


def test_a_password_given_beside_a_token_is_unused_but_kept_secret_so_that_it_is_masked_too():
    settings = settings_from("pve", {"api_token": "ci@pve!deploy=0b5e7a52-token-sentinel"}, ENV)
    assert settings.principal == "token ci@pve!deploy"
    assert settings.password is not None and settings.password.get_secret_value() == "hunter2-sentinel"


def test_a_malformed_token_names_the_expected_form_without_echoing_it():
    with pytest.raises(SpecError) as bad:
        settings_from("pve", {}, ENV | {"PROXMOX_VE_API_TOKEN": "just-a-secret-sentinel"})
    assert "user@realm!tokenid=secret" in str(bad.value) and "just-a-secret-sentinel" not in str(bad.value)


@pytest.mark.parametrize(("missing", "field", "variable"), [
    (("PROXMOX_VE_PASSWORD",), "password", "PROXMOX_VE_PASSWORD"),
    (("PROXMOX_VE_USERNAME",), "username", "PROXMOX_VE_USERNAME"),
    (("PROXMOX_VE_USERNAME", "PROXMOX_VE_PASSWORD"), "api_token", "PROXMOX_VE_API_TOKEN"),
    (("PROXMOX_VE_ENDPOINT",), "endpoint", "PROXMOX_VE_ENDPOINT"),
])
def test_a_missing_setting_names_the_endpoint_the_field_and_the_variable(missing, field, variable):
    with pytest.raises(SpecError) as bad:
        settings_from("pve", {}, {k: v for k, v in ENV.items() if k not in missing})
    assert str(bad.value).startswith(f"Endpoint 'pve': field '{field}': ") and variable in str(bad.value)


def test_a_user_without_realm_logs_in_on_pam_and_unknown_settings_are_named():
    assert settings_from("pve", {"username": "root"}, ENV).username == "root@pam"
    with pytest.raises(SpecError, match="field 'datastore': unknown setting"):
        settings_from("pve", {"datastore": "x"}, ENV)


@pytest.mark.parametrize(("path", "old", "new", "rule"), [
    ("cpus", 2, 4, Rule.POWER_OFF), ("memory", 1024, 512, Rule.POWER_OFF), ("sockets", 1, 2, Rule.POWER_OFF),
    ("firmware", "bios", "uefi", Rule.POWER_OFF), ("node", "pve1", "pve2", Rule.POWER_OFF),
    ("machine", "pc", "q35", Rule.POWER_OFF), ("power", "off", "on", Rule.IN_PLACE), ("tags", [], ["a"], Rule.IN_PLACE),
    ("disks[1]", None, {"size": 4}, Rule.IN_PLACE), ("disks[0].size", 8, 16, Rule.IN_PLACE),
    ("disks[0].storage", "a", "b", Rule.REPLACE), ("disks[0].bus", "sata", "ide", Rule.REPLACE),
    ("nics[0].network", "a", "b", Rule.IN_PLACE), ("nics[0].adapter", "e1000", "paravirtual", Rule.POWER_OFF),
    ("nics[2]", {"network": "a"}, None, Rule.IN_PLACE),
])
def test_each_change_has_its_proxmox_rule(path, old, new, rule):
    assert vm_rule(FieldChange(path, old, new)) is rule


def test_shrinking_a_disk_is_refused():
    with pytest.raises(RefusedChange, match="from 40 GiB to 20 GiB is not possible on Proxmox"):
        vm_rule(FieldChange("disks[0].size", 40, 20))


def test_pves_message_and_field_errors_become_one_line():
    text = pve_text("Parameter verification failed.\n", {"memory": "invalid format - format error\nmemory.current: "
                                                                    "value must have a minimum value of 16\n"})
    assert text == ("parameter verification failed: memory: invalid format - format error / memory.current: value "
                    "must have a minimum value of 16")
    assert pve_text("VM is locked (backup)") == "VM is locked (backup)"


def test_a_permission_failure_names_what_was_being_done_the_privilege_the_path_and_who_lacks_it():
    error = refusal("pve", "token root@pam!ci", "create VM web1", 403,
                    "permission check failed (/vms/101, VM.Allocate)")
    assert str(error) == ("Proxmox endpoint 'pve' refused to create VM web1: permission denied for VM.Allocate on "
                          "/vms/101 (token root@pam!ci lacks it)")


def test_locks_lost_quorum_and_offline_nodes_are_explained():
    assert "retry when it has finished" in explain("VM is locked (backup)")
    lock_file = "/var/lock/qemu-server/lock-100.conf"
    assert "configuration lock too long" in explain(f"can't lock file '{lock_file}' - got timeout")
    assert "lost quorum" in explain("cluster not ready - no quorum?")
    assert "offline" in str(refusal("pve", "user root@pam", "start VM a", 595, "No route to host"))
