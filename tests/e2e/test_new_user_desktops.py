"""Desktop pools tried as a new user would, through the CLI on the lab: each mistake is one clear sentence and
nothing is changed; `virtplane desktops` lists what a broker needs."""

from __future__ import annotations

import json

from tests.support import hyperv, proxmox, vsphere
from tests.support.cli import lab_env, virtplane, write_stack

HEADER = """import pulumi
import virtplane

pve = virtplane.Endpoint("lab-proxmox", kind="proxmox")
esx = virtplane.Endpoint("lab-vsphere", kind="vsphere")
hv = virtplane.Endpoint("lab-hyperv", kind="hyperv")
"""


def pool(name: str, endpoint: str, size: int, template: str = "lab-golden", **extra: str) -> str:
    args = "".join(f", {key}={value}" for key, value in extra.items())
    return (f"virtplane.DesktopPool({name!r}, template={template!r}, size={size}{args}, "
            f"opts=pulumi.ResourceOptions(provider={endpoint}))\n")


def errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_a_pool_larger_than_the_free_vgpu_instances_is_refused_at_plan_with_the_numbers(
        tmp_path, fresh_vcsim, fresh_pve, fresh_hyperv):
    env = lab_env(fresh_vcsim, fresh_pve, fresh_hyperv, golden=True)
    stack = write_stack(tmp_path / "big", HEADER + pool(
        "vdi", "pve", 40, memory="'128MiB'", gpus="[virtplane.Gpu('vgpu', profile='nvidia-471')]"))
    for command in ("plan", "apply"):
        result = virtplane(command, str(stack), "--yes", env=env) if command == "apply" else \
            virtplane(command, str(stack), env=env)
        assert result.returncode == 1, result.stdout + result.stderr
        [sentence] = errors(result)
        assert sentence.startswith("error: DesktopPool 'vdi': 40 new desktops with vGPU profile 'nvidia-471' need a "
                                   "place, but the hosts of endpoint 'lab-proxmox' can take only 10 of them after "
                                   "the stack's other VMs (pve1: 10); desktop vdi-011 and later: ")
        assert "pve1: has no free instance of vGPU profile 'nvidia-471' left" in sentence
        assert "Traceback" not in result.stderr
    assert not [name for name in proxmox.vm_names(proxmox.admin(env)) if name.startswith("vdi-")]


def test_a_golden_image_that_does_not_exist_is_one_sentence_per_pool(tmp_path, fresh_vcsim, fresh_pve, fresh_hyperv):
    env = lab_env(fresh_vcsim, fresh_pve, fresh_hyperv, golden=True)
    stack = write_stack(tmp_path / "missing", HEADER + pool("esx-vdi", "esx", 3, template="win11-gold")
                        + pool("hv-vdi", "hv", 2, template="win11-gold"))
    result = virtplane("apply", str(stack), "--yes", env=env)
    assert result.returncode == 1
    assert errors(result) == [
        "error: DesktopPool 'esx-vdi': field 'template': no VM or template named 'win11-gold' exists in datacenter "
        "DC0",
        "error: DesktopPool 'hv-vdi': field 'template': no VM named 'win11-gold' exists on Hyper-V endpoint "
        "'lab-hyperv'"]
    with vsphere.admin(fresh_vcsim) as si:
        assert not [vm.name for vm in vsphere.all_vms(si) if vm.name.startswith("esx-vdi")]
    assert sorted(hyperv.vm_names(fresh_hyperv)) == ["lab-golden"]


def test_a_shrink_of_desktops_in_use_is_refused_naming_them_and_changes_nothing(
        tmp_path, fresh_vcsim, fresh_pve, fresh_hyperv):
    env = lab_env(fresh_vcsim, fresh_pve, fresh_hyperv, golden=True)
    directory = tmp_path / "shrink"
    write_stack(directory, HEADER + pool("vdi", "esx", 3, memory="'1GiB'"))
    assert virtplane("apply", str(directory), "--yes", env=env).returncode == 0
    write_stack(directory, HEADER + pool("vdi", "esx", 1, memory="'1GiB'"))
    plan = virtplane("plan", str(directory), env=env)
    assert plan.returncode == 2 and "pool vdi: vdi-003" in plan.stdout and "[destroys data]" in plan.stdout
    refused = virtplane("apply", str(directory), "--yes", env=env)
    assert refused.returncode == 1
    [sentence] = errors(refused)
    assert sentence == (
        "error: refusing to apply: pool vdi: shrinking deletes desktops in use: vdi-003 (powered on; VMware Tools are "
        "not running, so it counts as in use), vdi-002 (powered on; VMware Tools are not running, so it counts as in "
        "use); log their users off and shut them down first. Nothing was changed; pass --allow-data-loss to apply it "
        "anyway")
    with vsphere.admin(fresh_vcsim) as si:
        # the pool's desktops, not the lab's own vdi-pool-3
        assert sorted(vm.name for vm in vsphere.all_vms(si) if vm.name.startswith("vdi-0")) == [
            "vdi-001", "vdi-002", "vdi-003"]
        for name in ("vdi-002", "vdi-003"):
            vsphere.wait(vsphere.find_vm(si, name).PowerOffVM_Task())
    shrunk = virtplane("apply", str(directory), "--yes", env=env)
    assert shrunk.returncode == 0, shrunk.stderr
    assert "deleted VirtualMachine vdi-003" in shrunk.stderr and "deleted VirtualMachine vdi-002" in shrunk.stderr


def test_the_desktops_command_lists_a_pool_for_a_broker(tmp_path, fresh_vcsim, fresh_pve, fresh_hyperv):
    env = lab_env(fresh_vcsim, fresh_pve, fresh_hyperv, golden=True)
    directory = write_stack(tmp_path / "list", HEADER + pool("vdi", "pve", 2, memory="'512MiB'",
                                                             gpus="[virtplane.Gpu('vgpu', profile='nvidia-471')]"))
    assert virtplane("apply", str(directory), "--yes", env=env).returncode == 0
    listed = virtplane("desktops", str(directory), "--pool", "vdi", "--format", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert [(d["name"], d["host"], d["power"], d["vgpu"], d["in_use"], d["template"]) for d in document["desktops"]
            ] == [(f"vdi-00{n}", "pve1", "on", ["nvidia-471"], True, "lab-golden") for n in (1, 2)]
    unknown = virtplane("desktops", str(directory), "--pool", "web", env=env)
    assert unknown.returncode == 1 and errors(unknown) == [
        "error: stack scratch/dev declares no DesktopPool 'web' (pools: vdi)"]
