"""stacks/lab-refused against the lab's simulators: each VM is refused by exactly the rule its hardware fact
belongs to, live and from an inventory file alike, and `apply` makes none of them."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_new_user_devices import live_and_offline
from tests.support import proxmox, vsphere
from tests.support.cli import REPO, lab_env, virtplane

REFUSED_STACK = REPO / "stacks" / "lab-refused"
REFUSALS = {("refused-gpu-in-use", "hw.device-in-use"), ("refused-vgpu-size-mix", "hw.vgpu-size"),
            ("refused-large-bar-bios", "hw.mmio"), ("refused-pve-gpu-in-use", "hw.device-in-use"),
            ("refused-pve-iommu-group", "hw.device-group")}


def test_check_refuses_exactly_the_lab_refused_vms_with_their_rules_live_and_offline(fresh_vcsim, fresh_pve,
                                                                                     tmp_path: Path):
    env = lab_env(fresh_vcsim, fresh_pve)
    live, offline = live_and_offline(REFUSED_STACK, env, tmp_path / "inventory.json")
    assert live == offline
    mandatory = [f for f in live if f["level"] == "mandatory"]
    assert {(f["resource"], f["rule"]) for f in mandatory} == REFUSALS
    assert len(mandatory) == len(REFUSALS)  # one each
    said = {f["resource"]: f["message"] for f in mandatory}
    assert "0000:61:00.0 is the last free device that render-farm-7 can take when it starts" in said[
        "refused-gpu-in-use"]
    assert "GPU 0000:3b:00.0 already hosts vGPU profile grid_a100-20c" in said["refused-vgpu-size-mix"]
    assert "0000:af:00.0 maps more than 16 GB (a 32 GiB BAR) and needs UEFI firmware" in said["refused-large-bar-bios"]
    assert "0000:d8:00.0 is in use by render-9" in said["refused-pve-gpu-in-use"]
    assert "0000:86:00.0 shares IOMMU group 70 with 0000:87:00.0" in said["refused-pve-iommu-group"]
    [mmio] = [f for f in mandatory if f["rule"] == "hw.mmio"]
    assert "virtplane then writes pciPassthru.use64bitMMIO=TRUE and pciPassthru.64bitMMIOSizeGB" in mmio["remediation"]


def test_plan_and_apply_refuse_the_lab_refused_stack_in_one_sentence_before_making_anything(fresh_vcsim, fresh_pve):
    env = lab_env(fresh_vcsim, fresh_pve)
    plan = virtplane("plan", str(REFUSED_STACK), env=env)
    assert plan.returncode == 1
    assert plan.stderr.strip().startswith(
        "error: VM refused-gpu-in-use: field 'node': host 'DC0_C0_H1' cannot serve it")
    assert "\n" not in plan.stderr.strip() and "Traceback" not in plan.stderr
    applied = virtplane("apply", str(REFUSED_STACK), "--yes", env=env)
    assert applied.returncode == 1 and applied.stderr == plan.stderr
    with vsphere.admin(fresh_vcsim) as si:
        assert not {vm.name for vm in vsphere.all_vms(si)} & {name for name, _ in REFUSALS}
    assert not set(proxmox.vm_names(proxmox.admin(env))) & {name for name, _ in REFUSALS}
