"""Evaluating a stack program without the Pulumi engine."""

import pytest

from tests.support.cli import write_stack
from virtplane.errors import SpecError, VirtplaneError
from virtplane.evaluate import evaluate

PROGRAM = """
import pulumi
import virtplane
config = pulumi.Config()
ep = virtplane.Endpoint("ep", server="vc.example", username="u", password="p")
net = virtplane.Network("net", vlan=config.get_int("vlan") or 1)
vm = virtplane.VirtualMachine("vm", cpus=config.get_int("cpus") or 1, memory="1GiB",
                              nics=[virtplane.Nic(net)], opts=pulumi.ResourceOptions(provider=ep))
pulumi.export("vm_id", vm.id)
"""


def test_a_program_yields_its_endpoints_resources_and_dependencies(tmp_path):
    desired = evaluate(write_stack(tmp_path, PROGRAM, project="demo"))
    assert desired.identity == "demo/dev"
    assert list(desired.endpoints) == ["ep"]
    vm = desired.resources["VirtualMachine/vm"]
    assert vm.endpoint == "ep" and vm.depends_on == {"Network/net"}
    assert desired.resources["Network/net"].endpoint == "ep"  # the only endpoint is the default


def test_stack_config_is_read_from_the_named_stack_file(tmp_path):
    stack = write_stack(tmp_path, PROGRAM, project="demo")
    (stack / "Pulumi.prod.yaml").write_text("config:\n  demo:cpus: '8'\n  vlan: 42\n")
    (stack / "Pulumi.test.yaml").write_text("config: {}\n")
    desired = evaluate(stack, "prod")
    assert desired.identity == "demo/prod"
    assert desired.resources["VirtualMachine/vm"].spec.cpus == 8
    assert desired.resources["Network/net"].spec.vlan == 42


def test_a_secret_config_value_explains_how_to_give_credentials_instead(tmp_path):
    stack = write_stack(tmp_path, "import pulumi\npulumi.Config().require_secret('token')\n", project="demo")
    (stack / "Pulumi.dev.yaml").write_text("config:\n  demo:token:\n    secure: v1:abcdef\n")
    with pytest.raises(VirtplaneError, match=r"needs config 'demo:token'.*cannot decrypt Pulumi secrets"):
        evaluate(stack)


def test_an_invalid_resource_stops_evaluation_naming_it(tmp_path):
    stack = write_stack(tmp_path, PROGRAM.replace('memory="1GiB"', 'memory="lots"'))
    with pytest.raises(SpecError, match="VirtualMachine 'vm': field 'memory'"):
        evaluate(stack)


def test_a_resource_without_an_endpoint_among_several_is_an_error(tmp_path):
    program = PROGRAM + "virtplane.Endpoint('other', server='x', username='u', password='p')\n"
    with pytest.raises(SpecError, match=r"Network 'net': field 'opts.provider': no endpoint"):
        evaluate(write_stack(tmp_path, program))


def test_the_same_name_twice_is_an_error(tmp_path):
    with pytest.raises(SpecError, match="Network 'net': field 'name': is declared twice"):
        evaluate(write_stack(tmp_path, PROGRAM + "virtplane.Network('net')\n"))


def test_a_crashing_program_is_reported_with_its_line(tmp_path):
    with pytest.raises(VirtplaneError, match=r"failed at __main__.py line 2: ZeroDivisionError"):
        evaluate(write_stack(tmp_path, "x = 1\ny = 1 / 0\n"))
