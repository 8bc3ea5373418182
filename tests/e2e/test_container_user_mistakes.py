"""What a new user gets wrong with containers, through the CLI on the lab's Proxmox cluster: one clear sentence each
naming the container and the field, exit 1, no traceback, no secret, and nothing made or changed."""

from __future__ import annotations

from typing import Any

from tests.conformance.peers import ProxmoxPeer
from tests.e2e.test_user_mistakes import assert_one_clear_error
from tests.support.cli import lab_env, virtplane, write_stack

ROOT_PASSWORD = "ct-root-Pw7-never-shown"


def program(container: str) -> str:
    return ("import pulumi\nimport virtplane\n"
            "ep = virtplane.Endpoint('pve', kind='proxmox')\n"
            "on = pulumi.ResourceOptions(provider=ep)\n"
            f"virtplane.Container('app-ct', {container}, password='{ROOT_PASSWORD}', opts=on)\n")


def admin(fakepve: Any, fakepve_cafile: str) -> ProxmoxPeer:
    return ProxmoxPeer(fakepve.url, fakepve.user, fakepve.password, fakepve_cafile)


def test_a_template_that_does_not_exist_is_one_sentence_and_nothing_is_made(vcsim_instance, fakepve, fresh_pve,
                                                                            fakepve_cafile, tmp_path):
    stack = write_stack(tmp_path / "s", program("template='debian-13-standard_13.1-1_amd64.tar.zst'"))
    result = virtplane("apply", str(stack), "--yes", env=lab_env(vcsim_instance, fresh_pve))
    assert_one_clear_error(result, "Container 'app-ct'", "field 'template'", "debian-13-standard_13.1-1_amd64.tar.zst",
                           "does not exist on node pve1", "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
                           password=fresh_pve["PROXMOX_VE_PASSWORD"])
    assert ROOT_PASSWORD not in result.stdout + result.stderr
    assert admin(fakepve, fakepve_cafile).count_containers("app-ct") == 0


def test_shrinking_a_root_filesystem_is_one_sentence_and_the_container_is_left_as_it_is(
        vcsim_instance, fakepve, fresh_pve, fakepve_cafile, tmp_path):
    env = lab_env(vcsim_instance, fresh_pve)
    template = "template='debian-12-standard_12.7-1_amd64.tar.zst'"
    stack = write_stack(tmp_path / "s", program(f"{template}, rootfs=virtplane.Disk('8GiB')"))
    made = virtplane("apply", str(stack), "--yes", env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    write_stack(stack, program(f"{template}, rootfs=virtplane.Disk('4GiB')"))
    result = virtplane("apply", str(stack), "--yes", env=env)
    assert_one_clear_error(result, "Container 'app-ct'", "field 'rootfs.size'", "shrinking the root filesystem from "
                           "8 GiB to 4 GiB is not possible", password=fresh_pve["PROXMOX_VE_PASSWORD"])
    assert ROOT_PASSWORD not in made.stdout + made.stderr + result.stdout + result.stderr
    config = admin(fakepve, fakepve_cafile)._lxc("app-ct").config.get()
    assert "size=8G" in config["rootfs"]


def test_a_privileged_container_without_a_waiver_is_refused_in_one_sentence_and_made_with_one(
        vcsim_instance, fakepve, fresh_pve, fakepve_cafile, tmp_path):
    env = lab_env(vcsim_instance, fresh_pve)
    stack = write_stack(tmp_path / "s", program("template='debian-12-standard_12.7-1_amd64.tar.zst', "
                                                "unprivileged=False"))
    result = virtplane("apply", str(stack), "--yes", env=env)
    assert_one_clear_error(result, "apply refused by policy: container app-ct: ct.privileged: the container is "
                                   "privileged", password=fresh_pve["PROXMOX_VE_PASSWORD"])
    assert "mandatory ct.privileged container app-ct field 'unprivileged'" in result.stdout
    assert admin(fakepve, fakepve_cafile).count_containers("app-ct") == 0
    (stack / "Pulumi.dev.yaml").write_text("config:\n  virtplane:policy:\n    waive:\n"
                                           "      ct.privileged@app-ct: \"legacy NFS client, on an isolated VLAN\"\n")
    waived = virtplane("apply", str(stack), "--yes", env=env)
    assert waived.returncode == 0, waived.stdout + waived.stderr
    assert "waived (legacy NFS client, on an isolated VLAN) ct.privileged container app-ct" in waived.stdout
    assert admin(fakepve, fakepve_cafile)._lxc("app-ct").config.get().get("unprivileged", 0) in (0, "0")
