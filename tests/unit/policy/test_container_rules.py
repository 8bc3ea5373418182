"""The container rules, table-driven: container request x node facts -> verdict (policies/rules/container_*.py), and
how their findings reach the report, waivers and the plan/apply gate."""

import pytest

from tests.unit.policy.inventories import L4, PROXMOX, gpu, pve
from virtplane.declared import DeclaredEndpoint, DeclaredResource, DesiredStack
from virtplane.inventory import Inventory, PciDevice
from virtplane.kinds import build_spec
from virtplane.policies.evaluate import DeclaredVm, check_stack, check_vms
from virtplane.policies.waivers import PolicyConfig

TEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"
DOCKER_READY = {"docker": True, "features": {"nesting": True, "keyctl": True}}
NO_GPU = Inventory(hosts=[pve("pve1", pci_devices=[PciDevice(address="0000:02:00.0", class_id="0x0c03",
                                                             vendor_id="0x1022", device_id="0x149c")])])
GPU_HELD = Inventory(hosts=[pve("pve1", pci_devices=[gpu(L4, "AD104GL [L4]", used=("render-vm",))])])


def stack(*containers: tuple[str, dict], vms: tuple[tuple[str, dict], ...] = ()) -> DesiredStack:
    desired = DesiredStack("proj", "dev")
    desired.endpoints["pve"] = DeclaredEndpoint("pve", "proxmox", {})
    for name, fields in containers:
        desired.resources[f"Container/{name}"] = DeclaredResource(
            "Container", name, build_spec("Container", name, {"template": TEMPLATE, **fields}), "pve")
    for name, fields in vms:
        desired.resources[f"VirtualMachine/{name}"] = DeclaredResource(
            "VirtualMachine", name, build_spec("VirtualMachine", name, {"memory": 1024, **fields}), "pve")
    return desired


def verdict(rule: str, fields: dict, inventory: Inventory = PROXMOX, **desired) -> str:
    findings = check_stack(stack(("ct", fields), **desired), inventory).findings
    levels = sorted({f.level for f in findings if f.rule == rule})
    return "+".join(levels) or "pass"


CASES = [
    # ct.privileged — PVE: privileged containers only in trusted environments; new ones are unprivileged
    ("ct.privileged", {}, "pass"),
    ("ct.privileged", {"unprivileged": True}, "pass"),
    ("ct.privileged", {"unprivileged": False}, "mandatory"),
    ("ct.privileged", {"clone_from": "base", "template": None}, "advisory"),  # the source's: unknown
    # ct.docker — Docker in an unprivileged container needs nesting and keyctl (PVE API: keyctl)
    ("ct.docker", DOCKER_READY, "pass"),
    ("ct.docker", {"docker": True}, "mandatory"),  # made from a template: features default to off
    ("ct.docker", {"docker": True, "features": {"nesting": True}}, "mandatory"),
    ("ct.docker", {"docker": True, "unprivileged": False}, "pass"),  # privileged: the other rule speaks
    ("ct.docker", {"docker": True, "clone_from": "base", "template": None, "unprivileged": True,
                   "features": {"nesting": True}}, "advisory"),  # keyctl: the source's
    ("ct.docker", {"features": {"nesting": False}}, "pass"),  # no Docker declared
    # ct.devices — a device on the container's node, a GPU there that no VM holds
    ("ct.devices", {"node": "pve1", "devices": ["/dev/dri/renderD128"]}, "pass"),
    ("ct.devices", {"node": "pve1", "devices": ["/dev/net/tun"]}, "pass"),
    ("ct.devices", {"node": "pve1", "devices": ["/dev/ttyUSB0"]}, "advisory"),
    ("ct.devices", {"node": "pve9", "devices": ["/dev/net/tun"]}, "mandatory"),
]


@pytest.mark.parametrize(("rule", "fields", "expected"), CASES)
def test_container_rule_verdicts_follow_the_vendor_documents(rule, fields, expected):
    assert verdict(rule, fields) == expected


def test_a_gpu_device_node_on_a_node_without_a_gpu_is_refused_naming_the_device():
    [finding] = [f for f in check_stack(stack(("ct", {"node": "pve1", "devices": ["/dev/dri/renderD128"]})),
                                        NO_GPU).findings if f.rule == "ct.devices"]
    assert (finding.level, finding.field, finding.kind) == ("mandatory", "devices[0]", "Container")
    assert finding.message == "node pve1 has no GPU, so no /dev/dri/renderD128"


def test_a_gpu_held_by_a_vm_is_not_the_hosts_to_give_a_container():
    [finding] = [f for f in check_stack(stack(("ct", {"node": "pve1", "devices": ["/dev/nvidia0"]})),
                                        GPU_HELD).findings if f.rule == "ct.devices"]
    assert "every NVIDIA GPU of node pve1 is passed through to a VM (render-vm)" in finding.message


def test_a_gpu_this_plan_passes_to_a_vm_is_not_counted_free_for_a_container():
    desired = stack(("ct", {"node": "pve1", "devices": ["/dev/dri/renderD128"]}),
                    vms=(("render", {"node": "pve1", "firmware": "uefi",  # the L4's large BAR needs UEFI
                                     "gpus": [{"mode": "passthrough"}]}),))
    assert verdict("ct.devices", {"node": "pve1", "devices": ["/dev/dri/renderD128"]}) == "pass"
    found = [f for f in check_stack(desired, Inventory(hosts=[pve("pve1", pci_devices=[gpu(L4, "AD104GL [L4]")])]))
             .findings if f.rule == "ct.devices"]
    assert [f.level for f in found] == ["mandatory"]


def test_a_privileged_container_is_waived_only_with_a_written_reason_and_then_does_not_block():
    desired = stack(("legacy", {"unprivileged": False}))
    config = PolicyConfig.parse({"waive": {"ct.privileged@legacy": "needs NFS mounts inside; isolated VLAN"}})
    [finding] = check_stack(desired, PROXMOX, config).findings
    assert finding.waived == "needs NFS mounts inside; isolated VLAN" and not finding.blocking
    with pytest.raises(Exception, match=r"mandatory rule 'ct\.privileged@legacy' can only be waived with a written "
                                        "reason"):
        PolicyConfig.parse({"waive": {"ct.privileged@legacy": ""}})


def test_container_findings_are_counted_and_named_as_containers_in_the_report():
    report = check_stack(stack(("a", {"unprivileged": False}), ("b", {})), PROXMOX)
    assert (report.vms, report.containers) == (0, 2)
    assert [(f.resource, f.noun, f.to_json()["kind"]) for f in report.findings] == [("a", "container", "Container")]
    assert ("b", "pve", "ct.privileged") not in report.evaluated  # unprivileged: the rule has nothing to say
    assert ("a", "pve", "ct.privileged") in report.evaluated


def test_vm_rules_see_no_containers_and_container_rules_no_vms():
    report = check_vms("proj/dev", [DeclaredVm("v", "pve", build_spec("VirtualMachine", "v", {"memory": 1024}))],
                       PROXMOX)
    assert not [f for f in report.findings if f.rule.startswith("ct.")] and report.containers == 0
