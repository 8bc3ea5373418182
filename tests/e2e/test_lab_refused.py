"""stacks/lab-refused against the lab's simulators: each VM is refused by exactly the rule its hardware fact
belongs to, live and from an inventory file alike, and `apply` makes none of them."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_new_user_devices import live_and_offline
from tests.support import proxmox, vsphere
from tests.support.cli import REPO, lab_env, virtplane, write_stack

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


FACTS = '''import pulumi
import virtplane

esx = virtplane.Endpoint("lab-vsphere", kind="vsphere")
on_esx = pulumi.ResourceOptions(provider=esx)
pve = virtplane.Endpoint("lab-proxmox", kind="proxmox")
on_pve = pulumi.ResourceOptions(provider=pve)
VM = virtplane.VirtualMachine

VM("vtx-off", cpus=2, memory="2GiB", node="DC0_C0_H2", opts=on_esx)
VM("pending-reboot", cpus=2, memory="2GiB", firmware="uefi", node="DC0_C0_H1",
   gpus=[virtplane.Gpu("passthrough", device="0000:a1:00.0")], opts=on_esx)
VM("too-new-vmx", cpus=2, memory="2GiB", machine="vmx-21", node="DC0_C0_H1", opts=on_esx)
VM("unreserved", cpus=2, memory="510GiB", firmware="uefi", node="DC0_C0_H0",
   nics=[virtplane.Nic("DC0_DVPG0", adapter="sriov")], opts=on_esx)
VM("too-new-qemu", cpus=2, memory="1GiB", machine="pc-q35-9.2+pve1", node="pve3", opts=on_pve)
VM("five-vfs", cpus=2, memory="1GiB", machine="q35", node="pve2",
   nics=[virtplane.Nic("vmbr0", adapter="sriov", device="0000:5e:00.0") for _ in range(5)], opts=on_pve)
VM("mdev-by-mapping", cpus=2, memory="1GiB", machine="q35", firmware="uefi", node="pve1",
   gpus=[virtplane.Gpu("vgpu", profile="nvidia-471", device="a100")], opts=on_pve)
'''
EXPECTED = {
    "vtx-off": ("hw.virtualization", "host DC0_C0_H2 has no hardware virtualization (VT-x / AMD-V) enabled"),
    "pending-reboot": ("hw.gpu-passthrough", "0000:a1:00.0 is enabled for passthrough but not active until the host "
                                             "reboots"),
    "too-new-vmx": ("hw.hardware-version", "host DC0_C0_H1 runs hardware versions up to vmx-19; the VM declares "
                                           "vmx-21"),
    # vdi-pool-3 and vdi-pool-4 reserve 8 GiB each on DC0_C0_H0
    "unreserved": ("hw.memory-reservation", "host DC0_C0_H0 has 507904 MiB of memory unreserved"),
    "too-new-qemu": ("hw.hardware-version", "host pve3 offers QEMU machine versions up to pc-q35-8.1+pve1; the VM asks "
                                            "for pc-q35-9.2+pve1"),
    "five-vfs": ("hw.sriov", "0000:5e:00.0 has no free virtual function left (4 free, 4 taken by this plan)"),
}


def test_each_hardware_fact_of_the_lab_gets_the_same_verdict_live_and_offline(fresh_vcsim, fresh_pve, tmp_path: Path):
    stack = write_stack(tmp_path / "facts", FACTS)
    live, offline = live_and_offline(stack, lab_env(fresh_vcsim, fresh_pve), tmp_path / "inventory.json")
    assert live == offline
    mandatory = {(f["resource"], f["rule"]): f["message"] for f in live if f["level"] == "mandatory"}
    assert set(mandatory) == {(vm, rule) for vm, (rule, _) in EXPECTED.items()}
    for vm, (rule, said) in EXPECTED.items():
        assert said in mandatory[(vm, rule)], mandatory[(vm, rule)]
    # A vGPU asked for by mapping is looked up on the mapping's device: no refusal for it.
    assert not [f for f in live if f["resource"] == "mdev-by-mapping" and f["level"] == "mandatory"]
