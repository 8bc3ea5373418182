"""Under `pulumi up` the resources are ordinary Pulumi resources of package virtplane."""

import pulumi
import pytest

import virtplane
from virtplane.errors import SpecError


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.registered: list[tuple[str, str, dict]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.registered.append((args.typ, args.name, dict(args.inputs)))
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


@pytest.fixture
def mocks():
    recording = RecordingMocks()
    pulumi.runtime.set_mocks(recording, project="p", stack="s", preview=False)
    return recording


def test_a_vm_registers_as_a_virtplane_custom_resource_with_its_inputs(mocks):
    @pulumi.runtime.test
    def program():
        ep = virtplane.Endpoint("ep", server="vc:443", username="u", password="pw-not-shown")
        net = virtplane.Network("net", vlan=5, opts=pulumi.ResourceOptions(provider=ep))
        vm = virtplane.VirtualMachine("vm", cpus=2, memory="1GiB", nics=[virtplane.Nic(net)],
                                      opts=pulumi.ResourceOptions(provider=ep))
        return vm.id.apply(lambda _: None)

    program()
    types = {typ: inputs for typ, _, inputs in mocks.registered}
    assert types["virtplane:index:VirtualMachine"]["cpus"] == 2
    assert types["virtplane:index:VirtualMachine"]["nics"] == [{"network": "net"}]
    assert types["virtplane:index:Network"]["vlan"] == 5
    assert "pulumi:providers:virtplane" in types


def test_an_endpoint_allowing_data_loss_passes_it_to_the_plugin_as_allow_data_loss(mocks):
    @pulumi.runtime.test
    def program():
        ep = virtplane.Endpoint("ep", server="vc:443", username="u", password="pw-not-shown", allow_data_loss=True)
        return ep.id.apply(lambda _: None)

    program()
    [provider_inputs] = [inputs for typ, _, inputs in mocks.registered if typ == "pulumi:providers:virtplane"]
    assert provider_inputs["allowDataLoss"] is True


def test_invalid_plain_inputs_fail_at_declaration_under_pulumi_too(mocks):
    with pytest.raises(SpecError, match="VirtualMachine 'vm': field 'memory'"):
        virtplane.VirtualMachine("vm", cpus=2, memory="lots")


def test_an_unknown_keyword_is_named_with_a_suggestion(mocks):
    with pytest.raises(SpecError, match="field 'cpu': unknown field \\(did you mean 'cpus'\\?\\)"):
        virtplane.VirtualMachine("vm", cpu=2)


def test_a_vm_depends_on_the_networks_its_nics_name_so_pulumi_creates_them_first(mocks):
    from pulumi.runtime import settings

    monitor = settings.SETTINGS.monitor
    dependencies: dict[str, list[str]] = {}
    register = monitor.RegisterResource

    def recording(request):
        dependencies[request.name] = list(request.dependencies)
        return register(request)

    monitor.RegisterResource = recording

    @pulumi.runtime.test
    def program():
        net = virtplane.Network("app", vlan=5)
        vm = virtplane.VirtualMachine("vm", cpus=2, nics=[virtplane.Nic(net), virtplane.Nic("existing")])
        return vm.id.apply(lambda _: None)

    program()
    assert dependencies["vm"] == ["urn:pulumi:s::p::pulumi:pulumi:Stack$virtplane:index:Network::app"]


def test_a_vm_registers_pulumis_camel_case_names_and_its_cloud_init_as_a_secret_when_a_secret_went_in(mocks,
                                                                                                       tmp_path,
                                                                                                       monkeypatch):
    from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret

    (tmp_path / "web.yaml.j2").write_text("#cloud-config\nhostname: {{ vm_name }}\nwrite_files:\n"
                                          "  - {path: /etc/token, content: '{{ token }}'}\n")
    monkeypatch.chdir(tmp_path)  # pulumi up runs the program in the project directory

    @pulumi.runtime.test
    def program():
        vm = virtplane.VirtualMachine("vm", cpus=2, secure_boot=False, firmware=virtplane.VirtualMachineFirmware.UEFI,
                                      cloud_init=virtplane.CloudInit(
                                          user_data="web.yaml.j2", vars={"token": pulumi.Output.secret("t0k3n")}))
        return vm.id.apply(lambda _: None)

    program()
    [inputs] = [inputs for typ, _, inputs in mocks.registered if typ == "virtplane:index:VirtualMachine"]
    assert inputs["secureBoot"] is False and inputs["firmware"] == "uefi" and "secure_boot" not in inputs
    assert is_rpc_secret(inputs["cloudInit"])
    documents = unwrap_rpc_secret(inputs["cloudInit"])
    assert {"userData", "metaData"} <= set(documents) <= {"userData", "metaData", "networkConfig"}
    assert "content: 't0k3n'" in documents["userData"] and "hostname: vm" in documents["userData"]
