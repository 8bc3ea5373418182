"""Cloud-init from Jinja2 templates: rendering in a sandbox with strict variables, checking what it renders, and
keeping secrets out of everything virtplane prints."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from tests.support.cli import write_stack
from tests.unit.memory_hypervisor import MemoryProvider
from virtplane import cloudinit, redact
from virtplane.engine import build_plan
from virtplane.errors import SpecError, VirtplaneError
from virtplane.evaluate import evaluate
from virtplane.kinds import build_spec
from virtplane.output import emit_json, render_plan
from virtplane.providers.base import Owner

WEB = """#cloud-config
hostname: {{ vm_name }}
users:
  - name: ops
    ssh_authorized_keys: [{{ ssh_key }}]
chpasswd:
  list: |
    ops:{{ password }}
"""

PROGRAM = """
import pulumi
import virtplane
config = pulumi.Config()
virtplane.VirtualMachine("web-1", cpus=2, cloud_init=virtplane.CloudInit(
    user_data="templates/web.yaml.j2", network_config={network},
    vars={{"ssh_key": "ssh-ed25519 AAAAC3 ops@lab", {password}}}))
"""


def stack_with(tmp_path, template: str = WEB, password: str = '"password": pulumi.Output.secret("s3cr3t-Pa55")',
               network: str | None = None, network_template: str | None = None):
    stack = write_stack(tmp_path / "stack", PROGRAM.format(
        password=password, network=repr("templates/net.yaml.j2") if network_template else "None"))
    (stack / "templates").mkdir()
    (stack / "templates" / "web.yaml.j2").write_text(template)
    if network_template:
        (stack / "templates" / "net.yaml.j2").write_text(network_template)
    return stack


def test_templates_render_with_the_stacks_variables_and_the_vm_name(tmp_path):
    desired = evaluate(stack_with(tmp_path))
    spec = desired.resources["VirtualMachine/web-1"].spec
    assert "hostname: web-1\n" in spec.cloud_init.user_data
    assert "ssh_authorized_keys: [ssh-ed25519 AAAAC3 ops@lab]" in spec.cloud_init.user_data
    meta = cloudinit.meta_mapping(spec.cloud_init.meta_data)
    assert meta["local-hostname"] == "web-1" and meta["instance-id"].startswith("web-1-")


def test_a_missing_variable_names_the_template_its_line_and_the_variable(tmp_path):
    stack = stack_with(tmp_path, password='"other": 1')
    with pytest.raises(SpecError) as caught:
        evaluate(stack)
    assert str(caught.value) == (
        "VirtualMachine 'web-1': field 'cloud_init.user_data': template templates/web.yaml.j2 line 8: variable "
        "'password' is not defined (variables given: other, ssh_key, vm_name)")


def test_a_yaml_syntax_error_in_the_rendered_user_data_is_one_sentence_without_the_text(tmp_path):
    stack = stack_with(tmp_path, template="#cloud-config\nhostname: {{ vm_name }}\nruncmd: [echo {{ password }}: x]\n"
                                          "  bad: indentation\n")
    with pytest.raises(SpecError) as caught:
        evaluate(stack)
    message = str(caught.value)
    assert message.startswith("VirtualMachine 'web-1': field 'cloud_init.user_data': template templates/web.yaml.j2 "
                              "renders user-data that is not valid cloud-config YAML: ")
    assert "(rendered line 4, column" in message and "s3cr3t" not in message


def test_user_data_without_a_cloud_init_header_is_refused_saying_what_would_work(tmp_path):
    with pytest.raises(SpecError, match=r"must begin with '#cloud-config' \(cloud-config YAML\), '#!' \(a script\)"):
        evaluate(stack_with(tmp_path, template="hostname: {{ vm_name }}\n"))


def test_a_script_and_a_multipart_message_are_user_data_too():
    assert cloudinit.user_data_format("#!/bin/sh\necho hi\n") == "script"
    multipart = ("Content-Type: multipart/mixed; boundary=\"B\"\nMIME-Version: 1.0\n\n--B\n"
                 "Content-Type: text/cloud-config\n\nhostname: a\n--B\nContent-Type: text/x-shellscript\n\n"
                 "#!/bin/sh\necho hi\n--B--\n")
    assert cloudinit.user_data_format(multipart) == "multipart"
    broken = multipart.replace("hostname: a", "hostname: [a")
    with pytest.raises(cloudinit.DocumentError, match=r"part 1 \(text/cloud-config\) is not valid cloud-config YAML"):
        cloudinit.user_data_format(broken)


def test_network_config_must_be_version_1_or_2(tmp_path):
    with pytest.raises(SpecError, match=r"field 'cloud_init.network_config': template templates/net.yaml.j2 renders "
                                        r"network-config that is not network configuration cloud-init takes"):
        evaluate(stack_with(tmp_path, network_template="ethernets: {}\n"))
    desired = evaluate(stack_with(tmp_path / "ok", network_template="version: 2\nethernets: {eth0: {dhcp4: true}}\n"))
    assert desired.resources["VirtualMachine/web-1"].spec.cloud_init.network_config.startswith("version: 2")


def test_the_sandbox_refuses_reaching_into_python_objects(tmp_path):
    stack = stack_with(tmp_path, template="#cloud-config\nx: {{ vm_name.__class__.__mro__ }}\n")
    with pytest.raises(SpecError, match=r"template templates/web.yaml.j2 line 2: .*unsafe|sandbox"):
        evaluate(stack)


def test_every_cloud_init_mistake_of_a_stack_is_reported_at_once(tmp_path):
    stack = stack_with(tmp_path, password='"other": 1')
    (stack / "__main__.py").write_text((stack / "__main__.py").read_text() + (
        "virtplane.VirtualMachine('web-2', cloud_init=virtplane.CloudInit(user_data='templates/none.j2'))\n"))
    with pytest.raises(VirtplaneError) as caught:
        evaluate(stack)
    lines = str(caught.value).splitlines()
    assert len(lines) == 2 and "web-1" in lines[0] and "template templates/none.j2 does not exist" in lines[1]


def on_memory(tmp_path):
    """The rendered stack's resources on one in-memory endpoint 'ep'."""
    desired = evaluate(stack_with(tmp_path))
    for resource in desired.resources.values():
        resource.endpoint = "ep"
    desired.endpoints.clear()
    return desired


def test_a_secret_rendered_into_user_data_appears_in_no_plan_and_the_plan_shows_the_digest(tmp_path):
    desired = on_memory(tmp_path)
    provider = MemoryProvider()
    plan = build_plan(desired, {"ep": provider})
    text = io.StringIO()
    render_plan(Console(file=text, width=200), plan, title="Plan")
    document = emit_json("plan", plan)
    digest = desired.resources["VirtualMachine/web-1"].spec.cloud_init.digest
    assert f"cloud_init={cloudinit.short(digest)}" in text.getvalue()
    for shown in (text.getvalue(), document):
        assert "s3cr3t-Pa55" not in shown and "ssh-ed25519" not in shown
    assert redact.redact("password is s3cr3t-Pa55") == "password is ***"


def test_a_changed_template_is_a_changed_digest_flagged_as_guest_re_init(tmp_path):
    desired = on_memory(tmp_path)
    spec = desired.resources["VirtualMachine/web-1"].spec
    provider = MemoryProvider()
    before = build_spec("VirtualMachine", "web-1", {"cpus": 2, "cloud_init": {
        "user_data": "#cloud-config\nhostname: old\n", "meta_data": "instance-id: web-1-old\n"}})
    provider.drivers["VirtualMachine"].objects["web-1"] = (Owner("scratch/dev", "web-1", "ep"), before.model_dump())
    plan = build_plan(desired, {"ep": provider})
    [change] = plan.resources[0].changes
    assert change.change.path == "cloud_init" and change.reinitializes_guest
    text = io.StringIO()
    render_plan(Console(file=text, width=200), plan, title="Plan")
    assert f"cloud_init: {cloudinit.short(spec.cloud_init.digest)} (changed) [in-place] [guest re-init]" in \
        text.getvalue()
    assert json.loads(emit_json("plan", plan))["resources"][0]["changes"][0]["guest_reinit"] is True


def test_the_digest_is_of_the_documents_meaning_so_re_encoding_the_mappings_keeps_it():
    docs = cloudinit.documents("#cloud-config\na: 1\n", "instance-id: i\nlocal-hostname: h\n",
                               "version: 2\nethernets: {}\n")
    again = cloudinit.documents("#cloud-config\na: 1\n", "{local-hostname: h, instance-id: i}",
                                cloudinit.dump({"version": 2, "ethernets": {}}))
    assert docs.digest == again.digest
    assert docs.digest != cloudinit.documents("#cloud-config\na: 2\n", "instance-id: i\nlocal-hostname: h\n",
                                              "version: 2\nethernets: {}\n").digest


def test_a_provider_that_does_not_deliver_cloud_init_refuses_it_at_plan_in_one_sentence(tmp_path):
    desired = on_memory(tmp_path)
    provider = MemoryProvider()
    provider.drivers["VirtualMachine"].delivers = frozenset()
    with pytest.raises(SpecError) as caught:
        build_plan(desired, {"ep": provider})
    assert str(caught.value) == ("VirtualMachine 'web-1': field 'cloud_init': is not delivered on memory yet "
                                 "(docs/cloud-init.md)")
