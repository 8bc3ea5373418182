"""Issues 9 and 10 tried as a new user would, through the CLI against the lab's simulators, one small stack per case:
asking for hardware the lab's hosts cannot give is one sentence at plan time naming the VM, the field, the hosts
and the choices (exit 1), and nothing is made; `virtplane check` reports it as a mandatory finding with a remedy
(exit 2), `apply` refuses a policy finding before changing anything, a waiver with a reason in Pulumi.dev.yaml
turns it into a reported waiver, and the check gives the same verdicts live and from an inventory file.

The lab's hardware: README "Host facts (vSphere)" (DC0_C0_H0 has an enabled A100 with grid_a100-* profiles and
an X710 with 8 VFs; DC0_C0_H1's A100 is capable, not enabled), lab/virtplane_lab/pve_hardware.py (pve1's A100 offers
mdev types nvidia-471..474) and the Hyper-V lab host (a partitionable GPU split in 1, 2, 4 or 8)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support import hyperv, proxmox, vsphere
from tests.support import xenserver as xen
from tests.support.cli import LAB_STACK, lab_env, virtplane, write_stack

ON = "opts=pulumi.ResourceOptions(provider=ep)"
HOST_REASON = re.compile(r"^(DC0_C0_H\d|pve\d|LAB-HV1|xs-\w+): ")  # "<host>: <why not>" in a sentence


def stack_dir(tmp_path: Path, kind: str, vm: str) -> Path:
    program = (f"import pulumi\nimport virtplane\nep = virtplane.Endpoint('ep', kind='{kind}')\n"
               f"virtplane.VirtualMachine({vm}, {ON})\n")
    return write_stack(tmp_path / "s", program)


def waive(stack: Path, key: str, reason: str) -> None:
    (stack / "Pulumi.dev.yaml").write_text(f"config:\n  virtplane:policy:\n    waive:\n      {key}: \"{reason}\"\n")


def mandatory(result: Any) -> list[dict[str, Any]]:
    return [f for f in json.loads(result.stdout)["findings"] if f["level"] == "mandatory"]


def vsphere_names(instance: Any) -> set[str]:
    with vsphere.admin(instance) as si:
        return {vm.name for vm in vsphere.all_vms(si)}


# kind, VM arguments, VM name, field in the sentence, what the sentence must name (hosts and choices)
MISTAKES = {
    "a vGPU profile no host offers": (
        "vsphere", "'ws-1', memory='4GiB', firmware='uefi', gpus=[virtplane.Gpu('vgpu', profile='grid_h100-80c')]",
        "ws-1", "gpus",
        ["DC0_C0_H0: offers no vGPU profile 'grid_h100-80c' (offered: grid_a100-10c, grid_a100-20c, grid_a100-40c, "
         "grid_a100-4c)", "DC0_C0_H1: offers no vGPU profile 'grid_h100-80c' (offered: grid_a100-1-5c",
         "DC0_C0_H2: has no hardware virtualization (VT-x / AMD-V) enabled, offers no vGPU profile 'grid_h100-80c' "
         "(it offers no vGPU profiles)"]),
    "a passthrough GPU on a host where it is not enabled": (
        "vsphere", "'render-1', memory='4GiB', firmware='uefi', node='DC0_C0_H1', "
                   "gpus=[virtplane.Gpu('passthrough')]",
        "render-1", "node",
        ["host 'DC0_C0_H1' cannot serve it", "DC0_C0_H1: 0000:41:00.0 is not enabled for passthrough",
         "hosts that can: DC0_C0_H0"]),
    "more SR-IOV NICs than free virtual functions": (
        "vsphere", "'nfv-1', memory='4GiB', nics=[virtplane.Nic('DC0_DVPG0', adapter='sriov') for _ in range(9)]",
        "nfv-1", "nics",
        ["DC0_C0_H0: 0000:5e:00.0 has no free virtual function left (8 free, 8 taken by this plan);",
         "DC0_C0_H1: SR-IOV is not enabled on 0000:c1:00.0;",
         "DC0_C0_H2: has no hardware virtualization (VT-x / AMD-V) enabled, has no SR-IOV physical function"]),
    "a misspelled mdev profile": (
        "proxmox", "'vdi-1', memory='2GiB', machine='q35', gpus=[virtplane.Gpu('vgpu', profile='nvidia-47l')]",
        "vdi-1", "gpus",
        ["pve1: offers no vGPU profile 'nvidia-47l' (offered: nvidia-471, nvidia-472, nvidia-473, nvidia-474)",
         "pve2: offers no vGPU profile 'nvidia-47l' (it offers no vGPU profiles)"]),
    "a GPU partition count the GPU does not allow": (
        "hyperv", "'desk-1', memory='2GiB', firmware='uefi', gpus=[virtplane.Gpu('vgpu', profile='gpu-p/3')]",
        "desk-1", "gpus",
        ["LAB-HV1: offers no vGPU profile 'gpu-p/3' (offered: gpu-p/1, gpu-p/2, gpu-p/4, gpu-p/8)"]),
    "a vGPU type the XenServer pool lacks": (
        "xenserver", "'xs-vdi-1', memory='2GiB', gpus=[virtplane.Gpu('vgpu', profile='GRID A100-40C')]",
        "xs-vdi-1", "gpus",
        ["xs-gpu: offers no vGPU profile 'GRID A100-40C' (offered: GRID A100-10C, GRID A100-20C, GRID A100-4C)",
         "xs-plain: offers no vGPU profile 'GRID A100-40C' (it offers no vGPU profiles)",
         "xs-sriov: offers no vGPU profile 'GRID A100-40C' (it offers no vGPU profiles)"]),
}


@pytest.mark.parametrize("case", list(MISTAKES))
def test_hardware_the_lab_cannot_give_is_one_sentence_at_plan_time_and_nothing_is_made(
        case, fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver, tmp_path):
    kind, arguments, name, field, named = MISTAKES[case]
    env = lab_env(fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver)
    stack = stack_dir(tmp_path, kind, arguments)
    before = vsphere_names(fresh_vcsim)

    plan = virtplane("plan", str(stack), env=env)
    assert plan.returncode == 1, plan.stdout + plan.stderr
    sentence = plan.stderr.strip()
    assert "\n" not in sentence and "Traceback" not in sentence
    assert sentence.startswith(f"error: VM {name}: field '{field}': ")
    for part in named:
        assert part in sentence

    applied = virtplane("apply", str(stack), "--yes", env=env)
    assert applied.returncode == 1 and applied.stderr.strip() == sentence
    assert vsphere_names(fresh_vcsim) == before
    assert name not in proxmox.vm_names(proxmox.admin(env))
    assert hyperv.vm_names(fresh_hyperv) == []
    assert xen.vm_names(fresh_xenserver) == []


@pytest.mark.parametrize("case", list(MISTAKES))
def test_check_reports_what_the_lab_cannot_give_as_a_mandatory_finding_with_a_remedy(
        case, fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver, tmp_path):
    kind, arguments, name, _, named = MISTAKES[case]
    stack = stack_dir(tmp_path, kind, arguments)
    env = lab_env(fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver)
    result = virtplane("check", str(stack), "--format", "json", env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    findings = mandatory(result)
    assert findings and all(f["resource"] == name and f["endpoint"] == "ep" for f in findings)
    for finding in findings:
        assert finding["field"] and finding["remediation"] and finding["line"] == 4
        assert finding["host"] or "no host of endpoint 'ep' can serve it" in finding["message"]
    hosts = {match.group(1) for part in named if (match := HOST_REASON.match(part))}
    assert hosts
    assert all(any(host in (f["host"] or "") + f["message"] for f in findings) for host in hosts)


def test_a_pinned_host_that_cannot_pass_a_gpu_through_is_the_host_the_finding_names(fresh_vcsim, tmp_path):
    stack = stack_dir(tmp_path, "vsphere", MISTAKES["a passthrough GPU on a host where it is not enabled"][1])
    result = virtplane("check", str(stack), "--format", "json", env=lab_env(fresh_vcsim))
    # H1's GPUs: the A100 is not enabled, the A30 waits for a reboot, the A10 is the one a powered-off Dynamic
    # DirectPath VM takes at power-on; the one that got furthest (the A10) says which rule refuses.
    [finding] = [f for f in mandatory(result) if f["rule"] == "hw.device-in-use"]
    assert (finding["host"], finding["field"]) == ("DC0_C0_H1", "gpus[0]")
    for why in ("0000:41:00.0 is not enabled for passthrough",
                "0000:61:00.0 is the last free device that render-farm-7 can take when it starts",
                "0000:a1:00.0 is enabled for passthrough but not active until the host reboots"):
        assert why in finding["message"]
    assert "free the GPU" in finding["remediation"]


def test_a_waiver_with_a_reason_turns_a_mandatory_finding_into_a_reported_waiver(fresh_vcsim, tmp_path):
    stack = stack_dir(tmp_path, "vsphere", MISTAKES["a vGPU profile no host offers"][1])
    env = lab_env(fresh_vcsim)
    assert virtplane("check", str(stack), env=env).returncode == 2
    waive(stack, "hw.placement@ws-1", "the H100 hosts join the cluster next week")
    result = virtplane("check", str(stack), "--format", "json", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    [finding] = [f for f in json.loads(result.stdout)["findings"] if f["rule"] == "hw.placement"]
    assert finding["waived"] == "the H100 hosts join the cluster next week"
    assert json.loads(result.stdout)["summary"]["waived"] == 1
    text = virtplane("check", str(stack), env=env)
    assert text.returncode == 0 and "the H100 hosts join the cluster next week" in text.stdout


def test_a_waiver_without_a_reason_is_refused(fresh_vcsim, tmp_path):
    stack = stack_dir(tmp_path, "vsphere", MISTAKES["a vGPU profile no host offers"][1])
    waive(stack, "hw.placement@ws-1", " ")
    result = virtplane("check", str(stack), env=lab_env(fresh_vcsim))
    assert result.returncode == 1
    assert "mandatory rule 'hw.placement@ws-1' can only be waived with a written reason" in result.stderr


def test_apply_refuses_a_mandatory_finding_before_changing_anything_until_it_is_waived(fresh_vcsim, tmp_path):
    # A vGPU and nested virtualization in one VM: placement finds a host (H0 has both), the policy does not allow it.
    stack = stack_dir(tmp_path, "vsphere", "'lab-1', memory='4GiB', firmware='uefi', nested_virtualization=True, "
                                           "gpus=[virtplane.Gpu('vgpu', profile='grid_a100-20c')]")
    env = lab_env(fresh_vcsim)
    plan = virtplane("plan", str(stack), env=env)
    assert plan.returncode == 2 and "→ host DC0_C0_H0" in plan.stdout and "hw.nested-with-devices" in plan.stdout
    [finding] = mandatory(virtplane("check", str(stack), "--format", "json", env=env))
    assert (finding["rule"], finding["host"], finding["field"]) == (
        "hw.nested-with-devices", "DC0_C0_H0", "nested_virtualization")

    refused = virtplane("apply", str(stack), "--yes", env=env)
    assert refused.returncode == 1
    assert "apply refused by policy: VM lab-1: hw.nested-with-devices:" in refused.stderr
    assert "lab-1" not in vsphere_names(fresh_vcsim)

    waive(stack, "hw.nested-with-devices@lab-1", "the nested hypervisor only runs CPU jobs")
    applied = virtplane("apply", str(stack), "--yes", env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "waived" in applied.stdout and "the nested hypervisor only runs CPU jobs" in applied.stdout
    assert "lab-1" in vsphere_names(fresh_vcsim)


def findings_of(result: Any) -> list[dict[str, Any]]:
    assert result.returncode in (0, 2), result.stdout + result.stderr
    return json.loads(result.stdout)["findings"]


def offline_env(env: dict[str, str]) -> dict[str, str]:
    """No endpoint settings or credentials: an offline check must not need them."""
    return {k: v for k, v in env.items() if not k.startswith(("VSPHERE_", "PROXMOX_VE_", "HYPERV_"))}


def live_and_offline(stack: Path, env: dict[str, str], snapshot: Path) -> tuple[list[Any], list[Any]]:
    assert virtplane("inventory", str(stack), "--out", str(snapshot), env=env).returncode == 0
    live = findings_of(virtplane("check", str(stack), "--format", "json", env=env))
    offline = findings_of(virtplane("check", str(stack), "--inventory", str(snapshot), "--format", "json",
                                    env=offline_env(env)))
    return live, offline


def test_the_lab_stack_gets_the_same_verdicts_live_and_from_its_inventory_file(fresh_vcsim, fresh_pve,
                                                                               fresh_hyperv, fresh_xenserver, tmp_path):
    env = lab_env(fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver, golden=True)
    live, offline = live_and_offline(LAB_STACK, env, tmp_path / "before.json")
    assert live == offline
    assert {f["resource"] for f in live} >= {"lab-gpu-ws", "lab-sriov", "lab-pve-gpu-ws", "lab-pve-sriov",
                                             "lab-hv-gpu-ws", "lab-xs-gpu-ws", "lab-xs-sriov"}
    assert not [f for f in live if f["level"] == "mandatory"]
    # Once applied, the inventory shows the lab's VMs holding their devices: still the same verdicts, both ways.
    assert virtplane("apply", str(LAB_STACK), "--yes", env=env).returncode == 0
    after = tmp_path / "after.json"
    live_after, offline_after = live_and_offline(LAB_STACK, env, after)
    assert "lab-gpu-ws" in after.read_text() and live_after == offline_after == live


def test_a_stack_with_mandatory_findings_gets_the_same_verdicts_live_and_offline(fresh_vcsim, tmp_path):
    stack = stack_dir(tmp_path, "vsphere", MISTAKES["a passthrough GPU on a host where it is not enabled"][1])
    live, offline = live_and_offline(stack, lab_env(fresh_vcsim), tmp_path / "inventory.json")
    assert live == offline and [f for f in live if f["level"] == "mandatory"]
