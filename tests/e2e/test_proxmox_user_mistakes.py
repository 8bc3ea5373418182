"""What a new Proxmox user gets wrong: one clear sentence each, exit 1, no traceback, no secret."""

from __future__ import annotations

import pytest

from tests.e2e.test_user_mistakes import assert_one_clear_error
from tests.support.cli import lab_env, virtplane, write_stack

TOKEN_SECRET = "0b5e7a52-9d51-4c1f-8c55-token-sentinel"


def program(vm: str = "", endpoint: str = "", vlan: int = 30) -> str:
    return (
        "import pulumi\nimport virtplane\n"
        f"ep = virtplane.Endpoint('pve', kind='proxmox'{endpoint})\n"
        "on = pulumi.ResourceOptions(provider=ep)\n"
        f"net = virtplane.Network('app', vlan={vlan}, opts=on)\n"
        f"virtplane.VirtualMachine('web-1', cpus=2, memory='2GiB', nics=[virtplane.Nic(net)], {vm}opts=on)\n"
    )


@pytest.mark.parametrize(("name", "source", "fragments"), [
    ("wrong-node", program(vm="node='pve9', "), ["VirtualMachine 'web-1'", "node", "pve9", "pve1"]),
    ("missing-storage", program(vm="disks=[virtplane.Disk(10, storage='fast-nvme')], "),
     ["VirtualMachine 'web-1'", "disks[0].storage", "fast-nvme", "local-lvm"]),
    ("vlan-5000", program(vlan=5000), ["Network 'app'", "field 'vlan'", "4094"]),
])
def test_a_proxmox_stack_mistake_is_one_sentence_naming_resource_and_field(vcsim_instance, fresh_pve, tmp_path,
                                                                             name, source, fragments):
    stack = write_stack(tmp_path / name, source)
    result = virtplane("plan", str(stack), env=lab_env(vcsim_instance, fresh_pve))
    assert_one_clear_error(result, *fragments, password=fresh_pve["PROXMOX_VE_PASSWORD"])


def test_an_api_token_without_the_privilege_is_one_sentence_without_the_secret(
        vcsim_instance, fakepve, fresh_pve, tmp_path):
    fakepve.apitokens["ci@pve!deploy"] = TOKEN_SECRET
    fakepve.grant("ci@pve!deploy", "/", "VM.Audit", "Sys.Audit", "Datastore.Audit")  # may look, not create
    stack = write_stack(tmp_path / "s", program())
    env = lab_env(vcsim_instance, fresh_pve, PROXMOX_VE_USERNAME=None, PROXMOX_VE_PASSWORD=None,
                  PROXMOX_VE_API_TOKEN=f"ci@pve!deploy={TOKEN_SECRET}")
    assert virtplane("plan", str(stack), env=env).returncode == 2  # reading is allowed
    result = virtplane("apply", str(stack), "--yes", env=env)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "Traceback" not in output and TOKEN_SECRET not in output
    assert "VM.Allocate" in output and "permission" in output.lower()


def test_an_unreachable_proxmox_endpoint_says_so_in_one_sentence(vcsim_instance, fresh_pve, tmp_path, closed_port):
    stack = write_stack(tmp_path / "s", program())
    env = lab_env(vcsim_instance, fresh_pve, PROXMOX_VE_ENDPOINT=f"https://127.0.0.1:{closed_port}/")
    result = virtplane("plan", str(stack), env=env)
    assert_one_clear_error(result, f"127.0.0.1:{closed_port}", "Connection refused",
                           password=fresh_pve["PROXMOX_VE_PASSWORD"])


def test_a_missing_proxmox_credential_names_the_variables_to_set(vcsim_instance, fresh_pve, tmp_path):
    stack = write_stack(tmp_path / "s", program())
    env = lab_env(vcsim_instance, fresh_pve, PROXMOX_VE_PASSWORD=None)
    result = virtplane("plan", str(stack), env=env)
    assert_one_clear_error(result, "Endpoint 'pve'", "PROXMOX_VE_PASSWORD", password=fresh_pve["PROXMOX_VE_PASSWORD"])
