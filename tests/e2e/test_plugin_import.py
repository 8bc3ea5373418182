"""`pulumi import virtplane:index:VirtualMachine NAME ID` through the plugin, on every protocol peer, as the engine
does it (a Read with the id alone): the inputs it answers are what `virtplane import` writes for the same VM, and the
program Pulumi generates from them — snake_case arguments, nested objects as dicts, enum members — runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.cli import user_env, virtplane, write_stack
from tests.support.plugin import unwrap
from tests.support.plugin_peers import Endpoint, id_of, started, stopped
from virtplane.endpoint_settings import endpoint_settings
from virtplane.enums import enum_name, enums, member_name
from virtplane.evaluate import evaluate
from virtplane.kinds import build_spec
from virtplane.providers.registry import provider_class
from virtplane.specs import DiskSpec, GpuSpec, NicSpec, VirtualMachineSpec
from virtplane.wire_names import from_wire

ON = "opts=pulumi.ResourceOptions(provider=ep)"
MODELS = {"disks": DiskSpec, "nics": NicSpec, "gpus": GpuSpec}


def environment(config: dict[str, Any]) -> dict[str, str]:
    """The Endpoint settings the plugin is configured with, as the environment variables the CLI reads."""
    settings = endpoint_settings(provider_class(config["kind"]))
    return user_env({setting.environment: str(config[setting.name]).lower() if isinstance(config[setting.name], bool)
                     else str(config[setting.name])
                     for setting in settings if setting.environment and setting.name in config})


def pulumi_program(name: str, inputs: dict[str, Any]) -> str:
    """The program `pulumi import` writes for a VirtualMachine with these (wire) inputs: Python names, dicts for
    nested objects, enum members for enum values, `protect=True`."""
    def value(model: Any, field: str, item: Any) -> str:
        enum = enum_name(model, field)
        if isinstance(item, str) and enum in enums():
            return f"virtplane.{enum}.{member_name(item)}"
        if isinstance(item, list):
            nested = MODELS.get(field)
            if nested is None:
                return repr(item)
            rows = ["{" + ", ".join(f"{from_wire(k)!r}: {value(nested, from_wire(k), v)}" for k, v in row.items())
                    + "}" for row in item]
            return "[" + ", ".join(rows) + "]"
        return repr(item)

    arguments = ",\n    ".join(f"{from_wire(key)}={value(VirtualMachineSpec, from_wire(key), item)}"
                               for key, item in inputs.items())
    return ("import pulumi\nimport virtplane\n\nep = virtplane.Endpoint('lab', kind=KIND)\n"
            f"{name.replace('-', '_')} = virtplane.VirtualMachine({name!r},\n    {arguments},\n"
            "    opts=pulumi.ResourceOptions(provider=ep, protect=True))\n")


def test_pulumi_import_answers_the_inputs_virtplane_import_writes_and_its_generated_program_runs(
        endpoint: Endpoint, tmp_path: Path) -> None:
    peer, config, password = endpoint
    kind = config["kind"]
    env = environment(config)
    program = (f"import pulumi\nimport virtplane\nep = virtplane.Endpoint('oob', kind='{kind}')\n"
               f"net = virtplane.Network('imp-net', vlan=110, {ON})\n"
               f"virtplane.VirtualMachine('imp-pi', cpus=2, memory='1GiB', disks=[virtplane.Disk(8)], "
               f"nics=[virtplane.Nic(net)], {ON})\n")
    made = virtplane("apply", str(write_stack(tmp_path / "oob", program, project="oob")), "--yes", env=env)
    assert made.returncode == 0, made.stderr + made.stdout
    vm_id = id_of(peer, "imp-pi")

    result = virtplane("import", "--endpoint-kind", kind, "--endpoint", "lab", "--id", vm_id, "--out",
                       str(tmp_path / "imported"), env=env)
    assert result.returncode == 0, result.stderr
    written = evaluate(tmp_path / "imported").resources["VirtualMachine/imp-pi"].spec

    plugin = started(tmp_path / "plugin", config)
    try:
        reply = plugin.read("VirtualMachine", "imp-pi", vm_id)  # the id alone: an import
    finally:
        stopped(plugin, password)
    assert reply["id"] == vm_id
    wire_inputs = {key: value for key, value in reply["inputs"].items()}
    assert all("_" not in key for key in wire_inputs)  # Pulumi's camelCase names
    answered = build_spec("VirtualMachine", "imp-pi", unwrap(reply["inputs"]))
    assert answered.model_dump() == written.model_dump()

    code = pulumi_program("imp-pi", unwrap_wire(reply["inputs"])).replace("KIND", repr(kind))
    assert "secure_boot=False" in code or kind in ("hyperv", "xenserver")  # snake_case arguments
    assert "virtplane.DiskBus." in code or kind == "xenserver"
    generated = write_stack(tmp_path / "generated", code)
    assert evaluate(generated).resources["VirtualMachine/imp-pi"].spec.model_dump() == written.model_dump()


def unwrap_wire(values: dict[str, Any]) -> dict[str, Any]:
    """Reply inputs as plain values, keeping the wire's names (what Pulumi's code generation reads): ``unwrap`` under
    a key no name translation touches."""
    return unwrap({"wire": values})["wire"]
