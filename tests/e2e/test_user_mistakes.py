"""What a new user gets wrong: each mistake is one clear sentence, exit 1, no traceback, no password."""

from __future__ import annotations

import pytest

from tests.support.cli import lab_env, virtplane, write_stack

HEADER = "import pulumi\nimport virtplane\nep = virtplane.Endpoint('ep'{endpoint})\n"
VM = "virtplane.VirtualMachine('web-1', cpus=2, memory={memory}, {extra}opts=pulumi.ResourceOptions(provider=ep))\n"


def program(memory: str = "'2GiB'", extra: str = "", endpoint: str = "") -> str:
    return HEADER.format(endpoint=endpoint) + VM.format(memory=memory, extra=extra)


def assert_one_clear_error(result, *fragments: str, password: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert password not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(("name", "source", "fragments"), [
    ("misspelled-field", program(extra="firmwear='uefi', "),
     ["VirtualMachine 'web-1'", "field 'firmwear'", "did you mean 'firmware'"]),
    ("memory-of-lots", program(memory="'lots'"),
     ["VirtualMachine 'web-1'", "field 'memory'", "'4GiB'", "got 'lots'"]),
    ("wrong-datastore", program(endpoint=", datastore='nosuchds'"),
     ["datastore", "nosuchds", "LocalDS_0"]),
    ("wrong-disk-datastore", program(extra="disks=[virtplane.Disk(10, datastore='nosuchds')], "),
     ["VirtualMachine 'web-1'", "disks", "nosuchds", "LocalDS_0"]),
])
def test_a_stack_mistake_is_one_sentence_naming_resource_and_field(vcsim_instance, tmp_path, name, source,
                                                                     fragments):
    stack = write_stack(tmp_path / name, source)
    result = virtplane("plan", str(stack), env=lab_env(vcsim_instance))
    assert_one_clear_error(result, *fragments, password=vcsim_instance.password)


def test_a_missing_password_names_the_variable_to_set(vcsim_instance, tmp_path):
    stack = write_stack(tmp_path / "s", program())
    result = virtplane("plan", str(stack), env=lab_env(vcsim_instance, VSPHERE_PASSWORD=None))
    assert_one_clear_error(result, "Endpoint 'ep'", "password", "VSPHERE_PASSWORD", password=vcsim_instance.password)


def test_a_wrong_password_is_refused_without_echoing_it(vcsim_instance, tmp_path):
    stack = write_stack(tmp_path / "s", program())
    wrong = "Wr0ng-Passw0rd-Sentinel"
    result = virtplane("plan", str(stack), env=lab_env(vcsim_instance, VSPHERE_PASSWORD=wrong))
    assert_one_clear_error(result, "refused the login", password=wrong)


def test_an_unreachable_server_says_so_in_one_sentence(vcsim_instance, tmp_path, closed_port):
    stack = write_stack(tmp_path / "s", program())
    server = f"127.0.0.1:{closed_port}"
    result = virtplane("plan", str(stack), env=lab_env(vcsim_instance, VSPHERE_SERVER=server))
    assert_one_clear_error(result, f"cannot reach vSphere at {server}", "Connection refused",
                           password=vcsim_instance.password)


def test_an_untrusted_certificate_points_at_the_ca_setting(vcsim_instance, tmp_path):
    stack = write_stack(tmp_path / "s", program())
    result = virtplane("plan", str(stack), env=lab_env(vcsim_instance, VSPHERE_CA_FILE=None))
    assert_one_clear_error(result, "VSPHERE_CA_FILE", password=vcsim_instance.password)


def test_a_failing_stack_program_reports_its_line_not_a_traceback(vcsim_instance, tmp_path):
    stack = write_stack(tmp_path / "s", program() + "raise RuntimeError('boom')\n")
    result = virtplane("plan", str(stack), env=lab_env(vcsim_instance))
    assert_one_clear_error(result, "__main__.py line 5", "RuntimeError: boom", password=vcsim_instance.password)


def test_a_directory_without_a_stack_is_one_sentence(tmp_path, vcsim_instance):
    result = virtplane("plan", str(tmp_path), env=lab_env(vcsim_instance))
    assert_one_clear_error(result, "has no Pulumi.yaml", password=vcsim_instance.password)
