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
net = virtplane.Network("net", vlan=config.get_int("vlan") or 1, opts=pulumi.ResourceOptions(provider=ep))
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
    assert desired.resources["Network/net"].endpoint == "ep"


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


DEFAULT_PROVIDER_STYLE = """
import virtplane
net = virtplane.Network("net", vlan=7)
virtplane.VirtualMachine("vm", cpus=1, nics=[virtplane.Nic(net)])
"""


def test_resources_without_a_provider_go_to_the_default_endpoint_configured_by_virtplane_stack_config(tmp_path):
    """As under `pulumi up`: the default provider, named `default`, takes its settings from `virtplane:*` config;
    secure keys are left to the environment, `virtplane:policy` to the policy layer and `virtplane:allowDataLoss`
    to `pulumi up` (the CLI asks for --allow-data-loss on each run)."""
    stack = write_stack(tmp_path, DEFAULT_PROVIDER_STYLE, project="demo")
    (stack / "Pulumi.dev.yaml").write_text(
        "config:\n  virtplane:kind: proxmox\n  virtplane:endpoint: https://pve.example:8006/\n"
        "  virtplane:node: pve2\n  virtplane:insecure: true\n  virtplane:password:\n    secure: v1:abc\n"
        "  virtplane:policy:\n    waive: {}\n  virtplane:allowDataLoss: true\n")
    desired = evaluate(stack)
    assert {key: r.endpoint for key, r in desired.resources.items()} == {"Network/net": "default",
                                                                         "VirtualMachine/vm": "default"}
    default = desired.endpoints["default"]
    assert default.kind == "proxmox"
    assert default.inputs == {"endpoint": "https://pve.example:8006/", "node": "pve2", "insecure": "true"}


def test_without_virtplane_config_the_default_endpoint_is_the_plugins_default_kind(tmp_path):
    desired = evaluate(write_stack(tmp_path, DEFAULT_PROVIDER_STYLE))
    assert (desired.endpoints["default"].kind, desired.endpoints["default"].inputs) == ("vsphere", {})


def test_a_stack_config_key_that_is_no_setting_of_the_default_endpoint_is_an_error(tmp_path):
    stack = write_stack(tmp_path, DEFAULT_PROVIDER_STYLE)
    (stack / "Pulumi.dev.yaml").write_text("config:\n  virtplane:kind: proxmox\n  virtplane:servr: x\n")
    with pytest.raises(SpecError, match=r"Endpoint 'default': field 'virtplane:servr': is not a setting of a "
                                        r"proxmox endpoint; known: endpoint, "):
        evaluate(stack)


def test_a_stack_with_explicit_endpoints_still_sends_resources_without_a_provider_to_the_default_one(tmp_path):
    program = PROGRAM + "virtplane.Network('loose')\n"
    desired = evaluate(write_stack(tmp_path, program))
    assert desired.resources["Network/loose"].endpoint == "default"
    assert desired.resources["Network/net"].endpoint == "ep"


def test_an_endpoint_named_default_cannot_be_mixed_with_the_default_provider_style(tmp_path):
    program = "import virtplane\nvirtplane.Endpoint('default', server='x', username='u', password='p')\n" \
              "virtplane.Network('loose')\n"
    with pytest.raises(SpecError, match=r"Network 'loose': field 'opts.provider': is not given, .* 'default'"):
        evaluate(write_stack(tmp_path, program))


def test_the_same_name_twice_is_an_error(tmp_path):
    with pytest.raises(SpecError, match="Network 'net': field 'name': is declared twice"):
        evaluate(write_stack(tmp_path, PROGRAM + "virtplane.Network('net')\n"))


def test_a_crashing_program_is_reported_with_its_line(tmp_path):
    with pytest.raises(VirtplaneError, match=r"failed at __main__.py line 2: ZeroDivisionError"):
        evaluate(write_stack(tmp_path, "x = 1\ny = 1 / 0\n"))


def test_every_endpoints_missing_settings_are_reported_at_once_before_any_is_contacted(tmp_path):
    from virtplane.engine import connected
    from virtplane.errors import StackInvalid

    program = ("import virtplane\n"
               "virtplane.Endpoint('esx', kind='vsphere', server='127.0.0.1:1', username='u')\n"
               "virtplane.Endpoint('pve', kind='proxmox')\n")
    desired = evaluate(write_stack(tmp_path, program))
    with pytest.raises(StackInvalid) as caught, connected(desired, environ={}):
        pass
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("Endpoint 'esx': field 'password': is not set") and "VSPHERE_PASSWORD" in lines[0]
    assert lines[1].startswith("Endpoint 'pve': ") and "PROXMOX_VE_ENDPOINT" in lines[1]


def test_a_program_that_fails_after_invalid_resources_reports_them_and_its_failure(tmp_path):
    from virtplane.errors import StackInvalid

    program = "import virtplane\nvirtplane.Network('net', vlan=-1)\nraise RuntimeError('boom')\n"
    with pytest.raises(StackInvalid) as caught:
        evaluate(write_stack(tmp_path, program))
    assert str(caught.value).splitlines() == [
        "Network 'net': field 'vlan': Input should be greater than or equal to 0",
        "stack program failed at __main__.py line 3: RuntimeError: boom"]


def test_a_stack_whose_resources_all_name_their_endpoint_imports_no_other_driver(tmp_path):
    """The default endpoint (vSphere unless configured) is asked for only when a resource names no Endpoint: a
    Proxmox stack does not pay for importing the vSphere driver."""
    import subprocess
    import sys

    stack = write_stack(tmp_path, PROGRAM.replace('server="vc.example", username="u", password="p"',
                                                  'kind="proxmox", endpoint="https://pve.example:8006"'))
    code = ("import sys; from virtplane.evaluate import evaluate; "
            f"evaluate(__import__('pathlib').Path({str(stack)!r})); "
            "print(' '.join(sorted({m.split('.')[2] for m in sys.modules if m.startswith('virtplane.providers.')})))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "proxmox" in loaded
    assert not {"vsphere", "hyperv", "xenserver"} & set(loaded)
