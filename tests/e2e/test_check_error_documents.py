"""A `virtplane check` that cannot run still writes a document of the format CI asked for, naming the error."""

from __future__ import annotations

import json
from xml.etree import ElementTree

from tests.support.cli import user_env, virtplane, write_stack

BROKEN = """import pulumi
import virtplane

pve = virtplane.Endpoint("pve", kind="proxmox", endpoint="127.0.0.1:8006", password="hunter2-secret", bogus=1)
virtplane.VirtualMachine("web-1", cpus=0, opts=pulumi.ResourceOptions(provider=pve))
"""


def _check(tmp_path, fmt, *extra):
    stack = write_stack(tmp_path / "s", BROKEN)
    return virtplane("check", str(stack), "--format", fmt, *extra,
                     env=user_env({}, VIRTPLANE_LOCK_DIR=str(tmp_path / "locks")))


def test_check_as_json_prints_an_error_document_naming_every_resource_and_field(tmp_path):
    result = _check(tmp_path, "json")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["command"] == "check"
    assert {(e["resource"], e["field"]) for e in document["errors"]} == {("Endpoint/pve", "bogus"),
                                                                         ("VirtualMachine/web-1", "cpus")}
    assert "hunter2-secret" not in result.stdout + result.stderr


def test_check_as_sarif_marks_the_invocation_unsuccessful_with_the_error(tmp_path):
    result = _check(tmp_path, "sarif")
    assert result.returncode == 1
    run = json.loads(result.stdout)["runs"][0]
    assert run["results"] == []
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False
    message = invocation["toolExecutionNotifications"][0]["message"]["text"]
    assert "Endpoint 'pve': field 'bogus'" in message and "VirtualMachine 'web-1': field 'cpus'" in message


def test_check_as_junit_written_to_a_file_is_one_test_case_in_error(tmp_path):
    report = tmp_path / "check.xml"
    result = _check(tmp_path, "junit", "--out", str(report))
    assert result.returncode == 1
    suites = ElementTree.parse(report).getroot()
    assert suites.get("errors") == "1" and suites.get("failures") == "0"
    error = suites.find("testsuite/testcase/error")
    assert error is not None and "VirtualMachine 'web-1': field 'cpus'" in error.get("message", "")
    assert "hunter2-secret" not in report.read_text()


def test_check_as_text_prints_only_the_sentences_on_stderr(tmp_path):
    result = _check(tmp_path, "text")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "error: VirtualMachine 'web-1': field 'cpus'" in result.stderr
