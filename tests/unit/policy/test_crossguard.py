"""The CrossGuard pack, run as the Pulumi CLI runs it (``python -u -m pulumi.policy ENGINE_ADDR PACK_DIR`` in the
pack's directory, port on stdout) and called over gRPC with the SDK's analyzer stubs."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from tests.unit.policy.inventories import BOTH

PACK = Path(__file__).resolve().parents[3] / "policies" / "crossguard"


@pytest.fixture
def analyzer(tmp_path: Path) -> Iterator[tuple[analyzer_pb2_grpc.AnalyzerStub, Path]]:
    inventory = tmp_path / "inventory.json"
    inventory.write_text(BOTH.to_json())
    env = dict(os.environ, PULUMI_PROJECT="hw", PULUMI_STACK="dev", PULUMI_DRY_RUN="true", PULUMI_CONFIG="{}")
    env.pop("VIRTPLANE_INVENTORY", None)
    process = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(PACK)], cwd=PACK,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().strip())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=60)
        yield analyzer_pb2_grpc.AnalyzerStub(channel), inventory
        channel.close()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def struct(values: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def provider(name: str, kind: str) -> analyzer_pb2.AnalyzerProviderResource:
    return analyzer_pb2.AnalyzerProviderResource(
        type="pulumi:providers:virtplane", name=name, urn=f"urn:pulumi:dev::hw::pulumi:providers:virtplane::{name}",
        properties=struct({"kind": kind}))


def vm(name: str, endpoint: str, kind: str, **props) -> analyzer_pb2.AnalyzerResource:
    return analyzer_pb2.AnalyzerResource(
        type="virtplane:index:VirtualMachine", name=name,
        urn=f"urn:pulumi:dev::hw::pulumi:pulumi:Stack$virtplane:index:VirtualMachine::{name}",
        properties=struct({"cpus": 2.0, "memory": 4096.0, **props}), provider=provider(endpoint, kind))


def configure(stub: analyzer_pb2_grpc.AnalyzerStub, inventory: Path) -> list[dict]:
    """As the CLI does: every policy gets an entry; only hw.placement carries the inventory (the others share it)."""
    stub.ConfigureStack(analyzer_pb2.AnalyzerStackConfigureRequest(stack="dev", project="hw", dry_run=True))
    info = json_format.MessageToDict(stub.GetAnalyzerInfo(empty_pb2.Empty()))
    config = {p["name"]: analyzer_pb2.PolicyConfig(
        enforcementLevel=p.get("enforcementLevel", "ADVISORY"),
        properties=struct({"inventory": str(inventory)} if p["name"] == "hw.placement" else {}))
        for p in info["policies"]}
    stub.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig=config))
    return info["policies"]


def test_the_pack_lists_every_rule_at_its_level(analyzer):
    stub, inventory = analyzer
    policies = {p["name"]: p.get("enforcementLevel", "ADVISORY") for p in configure(stub, inventory)}
    assert policies["hw.gpu-passthrough"] == "MANDATORY" and policies["hw.mobility"] == "ADVISORY"
    assert policies["hw.gpu-passthrough.advisory"] == "ADVISORY" and policies["virtplane-spec"] == "MANDATORY"


def test_analyze_stack_reports_mandatory_findings_against_the_vms_urn(analyzer):
    stub, inventory = analyzer
    configure(stub, inventory)
    resources = [vm("gpu-box", "vc", "vsphere", node="esx-gpu", machine="vmx-19", firmware="uefi",
                    gpus=[{"mode": "passthrough", "device": "0000:af:00.0"}]),
                 *[vm(f"edge-{i}", "vc", "vsphere", node="esx-gpu", machine="vmx-19",
                      nics=[{"network": "n", "adapter": "sriov"}]) for i in range(3)],
                 vm("ok", "pve", "proxmox", node="pve1")]
    reply = json_format.MessageToDict(stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources)))
    mandatory = {(d["policyName"], d["urn"].rsplit("::", 1)[-1]) for d in reply.get("diagnostics", [])
                 if d.get("enforcementLevel") == "MANDATORY"}
    assert mandatory == {("hw.device-in-use", "gpu-box"), ("hw.sriov", "edge-2")}
    messages = " ".join(d["message"] for d in reply["diagnostics"])
    assert "0000:af:00.0 is in use by other-team-vm" in messages


def test_analyze_checks_each_vms_inputs(analyzer):
    stub, inventory = analyzer
    configure(stub, inventory)
    bad = vm("bad", "vc", "vsphere", gpus=[{"mode": "vgpu"}])
    request = analyzer_pb2.AnalyzeRequest(type=bad.type, name=bad.name, urn=bad.urn, properties=bad.properties,
                                          provider=bad.provider)
    reply = json_format.MessageToDict(stub.Analyze(request))
    [diagnostic] = reply["diagnostics"]
    assert diagnostic["policyName"] == "virtplane-spec" and diagnostic["enforcementLevel"] == "MANDATORY"
    assert "gpus[0].profile" in diagnostic["message"]
    good = vm("good", "vc", "vsphere", node="esx-gpu")
    assert not json_format.MessageToDict(stub.Analyze(analyzer_pb2.AnalyzeRequest(
        type=good.type, name=good.name, urn=good.urn, properties=good.properties))).get("diagnostics")


def container(name: str, endpoint: str, kind: str, **props) -> analyzer_pb2.AnalyzerResource:
    return analyzer_pb2.AnalyzerResource(
        type="virtplane:index:Container", name=name,
        urn=f"urn:pulumi:dev::hw::pulumi:pulumi:Stack$virtplane:index:Container::{name}",
        properties=struct({"template": "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst", **props}),
        provider=provider(endpoint, kind))


def test_the_container_rules_run_in_the_pack_against_the_containers_urn(analyzer):
    stub, inventory = analyzer
    assert {"ct.privileged", "ct.docker", "ct.devices"} <= {p["name"] for p in configure(stub, inventory)}
    resources = [container("legacy", "pve", "proxmox", unprivileged=False),
                 container("builder", "pve", "proxmox", docker=True, features={"nesting": True}),
                 container("fine", "pve", "proxmox", docker=True, features={"nesting": True, "keyctl": True})]
    reply = json_format.MessageToDict(stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources)))
    mandatory = {(d["policyName"], d["urn"].rsplit("::", 1)[-1]) for d in reply.get("diagnostics", [])
                 if d.get("enforcementLevel") == "MANDATORY"}
    assert mandatory == {("ct.privileged", "legacy"), ("ct.docker", "builder")}
    assert any("\ncontainer legacy: field 'unprivileged': the container is privileged" in d["message"]
               for d in reply["diagnostics"])
    bad = container("bad", "pve", "proxmox", mounts=[{"path": "srv", "size": 1.0}])
    spec = json_format.MessageToDict(stub.Analyze(analyzer_pb2.AnalyzeRequest(
        type=bad.type, name=bad.name, urn=bad.urn, properties=bad.properties, provider=bad.provider)))
    assert [d["policyName"] for d in spec["diagnostics"]] == ["virtplane-spec"]


def test_an_inventory_without_the_stacks_endpoint_is_a_mandatory_violation_not_a_pass(analyzer):
    stub, inventory = analyzer
    inventory.write_text('{"schema": "virtplane.inventory/1", "hosts": []}')
    configure(stub, inventory)
    reply = json_format.MessageToDict(stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(
        resources=[vm("gpu-box", "vc", "vsphere", gpus=[{"mode": "passthrough"}])])))
    [diagnostic] = [d for d in reply["diagnostics"] if d.get("enforcementLevel") == "MANDATORY"]
    assert diagnostic["policyName"] == "hw.placement"
    assert "has no hosts of endpoint 'vc', which the stack's VMs use (it has no hosts)" in diagnostic["message"]
