"""`virtplane check` as a user runs it: a stack directory, a committed inventory, each format and exit code.
With --inventory nothing is contacted, so no simulator is needed."""

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.support.cli import write_stack
from tests.unit.policy.inventories import BOTH
from virtplane.inventory import Inventory

REPO = Path(__file__).resolve().parents[3]

PROGRAM = '''import pulumi
import virtplane

vc = virtplane.Endpoint("vc", kind="vsphere")
pve = virtplane.Endpoint("pve", kind="proxmox")
virtplane.VirtualMachine("web", cpus=2, memory=2048, node="esx-gpu", opts=pulumi.ResourceOptions(provider=vc))
virtplane.VirtualMachine("gpu-box", cpus=8, memory="32GiB", node="esx-gpu", machine="vmx-19", firmware="uefi",
                         gpus=[virtplane.Gpu("passthrough", device="0000:af:00.0")],
                         opts=pulumi.ResourceOptions(provider=vc))
virtplane.VirtualMachine("nested", cpus=2, memory=4096, node="pve2", nested_virtualization=True,
                         opts=pulumi.ResourceOptions(provider=pve))
'''
GOOD = '''import pulumi
import virtplane

vc = virtplane.Endpoint("vc", kind="vsphere")
virtplane.VirtualMachine("web", cpus=2, memory=2048, node="esx-gpu", opts=pulumi.ResourceOptions(provider=vc))
'''


def check(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VSPHERE_", "PROXMOX_VE_"))}
    env["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "virtplane", "check", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    write_stack(tmp_path / "stacks" / "bad", PROGRAM)
    write_stack(tmp_path / "stacks" / "good", GOOD)
    (tmp_path / "inventory.json").write_text(BOTH.to_json())
    return tmp_path


def test_mandatory_findings_exit_2_and_name_the_vm_host_and_field_in_text(workspace):
    result = check("stacks/bad", "--inventory", "inventory.json", cwd=workspace)
    assert result.returncode == 2, result.stderr
    assert "mandatory hw.device-in-use VM gpu-box on esx-gpu field 'gpus[0]' stacks/bad/__main__.py:7" \
        in result.stdout
    assert "0000:af:00.0 is in use by other-team-vm" in result.stdout
    assert "host pve2 does not support nested virtualization" in result.stdout


def test_a_stack_without_mandatory_findings_exits_0(workspace):
    result = check("stacks/good", "--inventory", "inventory.json", cwd=workspace)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed: 0 mandatory" in result.stdout


def test_json_lists_each_finding_with_its_declaring_line(workspace):
    result = check("stacks/bad", "--inventory", "inventory.json", "--format", "json", cwd=workspace)
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document["schema"] == 1 and document["command"] == "check"
    nested = [f for f in document["findings"] if f["rule"] == "hw.nested"]
    assert nested == [{"rule": "hw.nested", "level": "mandatory", "kind": "VirtualMachine", "resource": "nested",
                       "endpoint": "pve", "host": "pve2", "field": "nested_virtualization",
                       "message": "host pve2 does not support nested virtualization",
                       "remediation": nested[0]["remediation"], "file": "stacks/bad/__main__.py", "line": 10}]
    assert document["summary"]["mandatory"] == 2


def _require(node: dict, *keys: str) -> None:
    missing = [key for key in keys if key not in node]
    assert not missing, f"missing {missing} in {sorted(node)}"


def test_sarif_has_the_fields_sarif_2_1_0_and_github_code_scanning_require(workspace):
    result = check("stacks/bad", "--inventory", "inventory.json", "--format", "sarif", "--out", "x.sarif",
                   cwd=workspace)
    assert result.returncode == 2, result.stderr
    log = json.loads((workspace / "x.sarif").read_text())
    _require(log, "version", "runs")
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    [run] = log["runs"]
    _require(run, "tool", "results")
    driver = run["tool"]["driver"]
    _require(driver, "name", "rules")
    assert driver["name"] == "virtplane"
    ids = []
    for rule in driver["rules"]:
        _require(rule, "id", "shortDescription", "help", "helpUri", "defaultConfiguration")
        _require(rule["help"], "text")
        assert rule["helpUri"].startswith("https://")
        ids.append(rule["id"])
    assert len(ids) == len(set(ids))
    levels = set()
    for result_ in run["results"]:
        _require(result_, "ruleId", "message", "locations", "level")
        _require(result_["message"], "text")
        assert ids[result_["ruleIndex"]] == result_["ruleId"]
        [location] = result_["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == "stacks/bad/__main__.py"
        assert physical["region"]["startLine"] >= 1
        levels.add((result_["ruleId"], result_["level"]))
    assert ("hw.device-in-use", "error") in levels and ("hw.mobility", "warning") in levels


def test_junit_has_a_case_per_vm_and_rule_and_a_failure_per_mandatory_finding(workspace):
    result = check("stacks/bad", "--inventory", "inventory.json", "--format", "junit", cwd=workspace)
    assert result.returncode == 2
    root = ElementTree.fromstring(result.stdout)
    cases = root.findall(".//testcase")
    names = {(case.get("classname"), case.get("name")) for case in cases}
    assert ("vc.web", "hw.virtualization") in names and ("vc.gpu-box", "hw.gpu-passthrough") in names
    assert ("vc.web", "hw.gpu-passthrough") not in names  # the rule has nothing to say about a VM without GPUs
    failures = root.findall(".//failure")
    assert len(failures) == int(root.get("failures")) == 2
    assert int(root.get("tests")) == len(cases)


def test_a_missing_inventory_file_is_one_sentence_and_exit_1(workspace):
    result = check("stacks/bad", "--inventory", "nope.json", cwd=workspace)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: cannot read inventory nope.json")
    assert "Traceback" not in result.stderr


def test_a_waived_mandatory_rule_is_reported_as_waived_with_its_reason_and_does_not_block(workspace):
    (workspace / "stacks" / "bad" / "Pulumi.dev.yaml").write_text(
        "config:\n  virtplane:policy:\n    waive:\n      hw.device-in-use@gpu-box: \"freed in the change window\"\n"
        "    downgrade:\n      - hw.nested\n")
    result = check("stacks/bad", "--inventory", "inventory.json", "--format", "json", cwd=workspace)
    assert result.returncode == 0, result.stdout
    findings = json.loads(result.stdout)["findings"]
    [waived] = [f for f in findings if f["rule"] == "hw.device-in-use"]
    assert waived["waived"] == "freed in the change window" and waived["level"] == "mandatory"
    [downgraded] = [f for f in findings if f["rule"] == "hw.nested"]
    assert downgraded["level"] == "advisory"
    text = check("stacks/bad", "--inventory", "inventory.json", cwd=workspace).stdout
    assert "waived (freed in the change window) hw.device-in-use" in text


def test_waiving_a_mandatory_rule_without_a_reason_is_refused(workspace):
    (workspace / "stacks" / "bad" / "Pulumi.dev.yaml").write_text(
        "config:\n  virtplane:policy:\n    waive:\n      - hw.gpu-passthrough\n")
    result = check("stacks/bad", "--inventory", "inventory.json", cwd=workspace)
    assert result.returncode == 1
    assert "mandatory rule 'hw.gpu-passthrough' can only be waived with a written reason" in result.stderr


def test_the_pull_request_workflow_steps_pass_on_the_committed_example(tmp_path):
    """The same command examples/github-actions/virtplane-check.yml runs, from the repository root."""
    out = tmp_path / "x.sarif"
    result = check("stacks/hardware", "--inventory", "stacks/hardware/inventory.json", "--format", "sarif",
                   "--out", str(out), cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    log = json.loads(out.read_text())
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in log["runs"][0]["results"]}
    assert uris == {"stacks/hardware/__main__.py"}
    workflow = (REPO / "examples" / "github-actions" / "virtplane-check.yml").read_text()
    assert "virtplane check stacks/hardware --inventory stacks/hardware/inventory.json --format sarif" in workflow
    assert "github/codeql-action/upload-sarif" in workflow


def test_without_inventory_check_reads_the_live_endpoints_and_an_unreachable_one_is_exit_1(workspace):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VSPHERE_", "PROXMOX_VE_"))}
    env.update(VSPHERE_SERVER="127.0.0.1:1", VSPHERE_USER="u", VSPHERE_PASSWORD="hunter2-live")
    result = subprocess.run([sys.executable, "-m", "virtplane", "check", "stacks/good"], cwd=workspace, env=env,
                            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: cannot reach vSphere at 127.0.0.1:1: Connection refused"
    assert "hunter2-live" not in result.stdout + result.stderr


@pytest.mark.parametrize(("document", "said"), [
    ("{}", "is not a virtplane.inventory/1 document: it names no schema"),
    ('{"schema": "virtplane.inventory/0", "hosts": []}',
     "is not a virtplane.inventory/1 document: its schema is 'virtplane.inventory/0'"),
    ("[]", "is not a virtplane.inventory/1 document: it names no schema"),
    ("not json", "is not JSON"),
])
def test_an_inventory_that_is_not_one_is_an_error_naming_the_file_not_a_pass(workspace, document, said):
    (workspace / "wrong.json").write_text(document)
    result = check("stacks/good", "--inventory", "wrong.json", cwd=workspace)
    assert result.returncode == 1, result.stdout
    assert result.stderr.strip().startswith(f"error: inventory wrong.json {said}")
    assert "\n" not in result.stderr.strip() and "Traceback" not in result.stderr


def test_an_inventory_without_hosts_for_an_endpoint_the_stack_uses_is_an_error_naming_it(workspace):
    only_vsphere = Inventory(hosts=[h for h in BOTH.hosts if h.endpoint == "vc"])
    (workspace / "vc-only.json").write_text(only_vsphere.to_json())
    result = check("stacks/bad", "--inventory", "vc-only.json", cwd=workspace)
    assert result.returncode == 1, result.stdout
    assert result.stderr.strip() == (
        "error: inventory vc-only.json has no hosts of endpoint 'pve', which the stack's VMs use (it has hosts of "
        "'vc'); write it with `virtplane inventory --out FILE` for this stack")


def test_an_inventory_of_another_stacks_endpoints_cannot_turn_a_mandatory_finding_into_a_pass(workspace):
    renamed = Inventory(hosts=[h.model_copy(update={"endpoint": "prod-" + h.endpoint}) for h in BOTH.hosts])
    (workspace / "other.json").write_text(renamed.to_json())
    result = check("stacks/bad", "--inventory", "other.json", cwd=workspace)
    assert result.returncode == 1
    assert "has no hosts of endpoint 'pve', 'vc', which the stack's VMs use (it has hosts of 'prod-pve', " \
           "'prod-vc')" in result.stderr


def test_an_inventory_whose_hosts_are_another_hypervisors_is_an_error(workspace):
    swapped = Inventory(hosts=[h.model_copy(update={"endpoint": {"vc": "pve", "pve": "vc"}[h.endpoint]})
                               for h in BOTH.hosts])
    (workspace / "swapped.json").write_text(swapped.to_json())
    result = check("stacks/bad", "--inventory", "swapped.json", cwd=workspace)
    assert result.returncode == 1
    assert result.stderr.strip() == ("error: inventory swapped.json lists vsphere hosts for endpoint 'pve', which the "
                                     "stack declares as proxmox")
