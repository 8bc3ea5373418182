"""The Container kind as a stack author writes it: validation in one sentence per field, unset means not managed,
secrets masked, and the same resource under Pulumi (secret outputs) and under virtplane's own collector."""

from __future__ import annotations

import pulumi
import pytest

import virtplane
from tests.support.plugin import SECRET_SIG, SECRET_VALUE
from virtplane.errors import SpecError
from virtplane.kinds import build_spec, kind, secret_fields
from virtplane.redact import redact

TEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"


def problems(**fields) -> str:
    with pytest.raises(SpecError) as error:
        build_spec("Container", "ct", fields)
    return str(error.value)


@pytest.mark.parametrize(("fields", "message"), [
    ({}, "field 'template': is required: the OS template to make the container from"),
    ({"template": TEMPLATE, "clone_from": "base"}, "field 'clone_from': a container is made either from a template "
                                                   "or as a clone, not both"),
    ({"template": TEMPLATE, "linked_clone": True}, "field 'linked_clone': needs clone_from"),
    ({"template": TEMPLATE, "nics": [{"network": "lan", "adapter": "e1000"}]},
     "field 'nics[0].adapter': a container's NIC is a virtual Ethernet pair (veth), with no adapter type"),
    ({"template": TEMPLATE, "devices": ["/dev/dri/renderD128"]},
     "field 'devices': a host device is on one node: set node= to the node that has /dev/dri/renderD128"),
    ({"template": TEMPLATE, "node": "n", "devices": ["dri/renderD128"]},
     "field 'devices[0]': 'dri/renderD128' must be a host device path under /dev/"),
    ({"template": TEMPLATE, "mounts": [{"path": "srv", "size": 1}]}, "field 'mounts[0].path': 'srv' must be an "
                                                                     "absolute path inside the container"),
    ({"template": TEMPLATE, "mounts": [{"path": "/a", "size": 1}, {"path": "/a/", "size": 2}]},
     "field 'mounts': path '/a' is the mount path of more than one mount point"),
    ({"template": TEMPLATE, "hostname": "web_1"}, "field 'hostname': 'web_1' is not a DNS name"),
    ({"template": TEMPLATE, "rootfs": {"size": 8, "bus": "sata"}}, "field 'rootfs.bus': unknown field"),
    ({"template": TEMPLATE, "swap": -1}, "field 'swap'"),
])
def test_a_mistake_is_one_sentence_naming_the_container_and_the_field(fields, message):
    text = problems(**fields)
    assert text.startswith("Container 'ct': ") and message in text


def test_swap_may_be_zero_and_sizes_are_read_as_memory_and_disk_sizes():
    spec = build_spec("Container", "ct", {"template": TEMPLATE, "memory": "1GiB", "swap": 0,
                                          "rootfs": {"size": "16GiB"}, "mounts": [{"path": "/srv/", "size": 4}]})
    assert (spec.memory, spec.swap, spec.rootfs.size, spec.mounts[0].path) == (1024, 0, 16, "/srv")  # type: ignore


def test_the_password_and_ssh_keys_are_secrets_masked_once_declared():
    assert secret_fields("Container") == {"password", "ssh_keys"}
    assert {"password", "ssh_keys", "template", "docker"} <= kind("Container").create_only
    spec = build_spec("Container", "ct", {"template": TEMPLATE, "password": "Tr0ub4dor&3",
                                          "ssh_keys": ["ssh-ed25519 AAAAC3Nza-key-not-shown"]})
    assert "Tr0ub4dor&3" not in repr(spec) and "key-not-shown" not in str(spec.model_dump())
    assert redact("root password Tr0ub4dor&3, key ssh-ed25519 AAAAC3Nza-key-not-shown") == \
        "root password ***, key ***"


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.registered: list[tuple[str, dict]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.registered.append((args.typ, dict(args.inputs)))
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


def test_under_pulumi_a_container_registers_with_its_parts_and_its_password_as_a_secret():
    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="p", stack="s", preview=False)
    seen: dict[str, bool] = {}

    @pulumi.runtime.test
    def program():
        ep = virtplane.Endpoint("ep", kind="proxmox", endpoint="pve:8006", username="root@pam", password="pw-x")
        net = virtplane.Network("net", vlan=5, opts=pulumi.ResourceOptions(provider=ep))
        ct = virtplane.Container("ct", template=TEMPLATE, rootfs=virtplane.Disk("8GiB"),
                                 mounts=[virtplane.Mount("/srv", 4)], nics=[virtplane.Nic(net)],
                                 features=virtplane.ContainerFeatures(nesting=True), password="Tr0ub4dor&3",
                                 opts=pulumi.ResourceOptions(provider=ep))
        return pulumi.Output.all(ct.id).apply(lambda _: seen.setdefault("done", True))

    program()
    [inputs] = [inputs for typ, inputs in mocks.registered if typ == "virtplane:index:Container"]
    assert inputs["rootfs"] == {"size": "8GiB"} and inputs["mounts"] == [{"path": "/srv", "size": 4}]
    assert inputs["features"] == {"nesting": True} and inputs["nics"] == [{"network": "net"}]
    assert inputs["password"] == {SECRET_SIG: SECRET_VALUE, "value": "Tr0ub4dor&3"}  # the engine gets it secret


def test_a_disk_with_a_bus_is_no_root_filesystem():
    with pytest.raises(SpecError, match=r"Container 'ct': field 'rootfs\.bus': unknown field"):
        virtplane.Container("ct", template=TEMPLATE, rootfs=virtplane.Disk(8, bus="sata"))


def test_a_planned_create_shows_its_secrets_as_secret_and_its_mount_points_as_values():
    import io

    from rich.console import Console

    from virtplane.output import render_plan
    from virtplane.plan import Action, Plan, ResourcePlan

    spec = build_spec("Container", "ct", {"template": TEMPLATE, "password": "Tr0ub4dor&3", "ssh_keys": ["k-1-x"],
                                          "mounts": [{"path": "/srv", "size": 4, "slot": "mp0"}]})
    buffer = io.StringIO()
    render_plan(Console(file=buffer, width=300, no_color=True), Plan("p/s", [ResourcePlan(
        "Container", "ct", "ep", Action.CREATE, spec=spec)]), title="Plan")
    text = buffer.getvalue()
    assert "password=(secret) ssh_keys=(secret)" in text and "Tr0ub4dor&3" not in text and "k-1-x" not in text
    assert "mounts=[{path=/srv, size=4, slot=mp0}]" in text
