"""Write what ``virtplane import`` read as a stack directory in the house style (stacks/lab): ``Pulumi.yaml`` and a
``__main__.py`` with one Endpoint, the Networks, and one VirtualMachine per VM with every field it has set (slots
included), ``opts.import_`` naming its id, and what no field can say in a comment above it."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from virtplane.importer import Imported, ImportedVm, variable
from virtplane.providers.registry import provider_class

_FIELDS = ("cpus", "sockets", "memory", "node", "machine", "firmware", "secure_boot", "guest_os", "power",
           "nested_virtualization", "tags")  # in the order the lab stack writes them; lists come after memory
_ITEM_ARGUMENTS = {"disks": ("storage", "thin", "bus", "slot"), "nics": ("adapter", "device", "slot"),
                   "gpus": ("profile", "device", "vendor")}


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def project_name(out: Path) -> str:
    """The Pulumi project name of a stack directory: its name, as Pulumi takes project names."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", out.resolve().name).strip("-.") or "imported"


def write(imported: Imported, out: Path, command: str) -> None:
    """Create ``out`` with the stack (``out`` must not exist, or be empty)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        from virtplane.errors import VirtplaneError

        raise VirtplaneError(f"{out} exists and is not empty; give --out a new directory (nothing was written)")
    out.mkdir(parents=True, exist_ok=True)
    (out / "Pulumi.yaml").write_text(pulumi_yaml(imported, out))
    (out / "__main__.py").write_text(program(imported, command))


def pulumi_yaml(imported: Imported, out: Path) -> str:
    runtime = "runtime: python\n"
    if sys.prefix != sys.base_prefix:  # a virtualenv: pulumi up runs the program in it, as virtplane ran here
        relative = os.path.relpath(sys.prefix, out.resolve())
        runtime = (f"runtime:\n  name: python\n  options:\n    toolchain: pip\n    virtualenv: {relative}  # the "
                   "virtualenv virtplane import ran from\n")
    return (f"name: {project_name(out)}\n{runtime}description: {plural(len(imported.vms), 'VM')} imported from a "
            f"{imported.kind} endpoint by virtplane import.\n")


def program(imported: Imported, command: str) -> str:
    taken = {"pulumi", "virtplane", "endpoint", "on_endpoint"}
    variables = {network.name: variable(network.name, taken) for network in imported.networks}
    environment = _environment(imported.kind)
    lines = [
        f'"""{plural(len(imported.vms), "VM")} imported from the {imported.kind} endpoint by `{command}`.',
        "",
        f"Connection settings come from the environment ({environment}), as they did for the import. Each VM names its",
        "id in opts.import_: this stack compares it and changes nothing until `virtplane import --adopt` has written",
        "the ownership marker. What a VM has that no field can say is listed above it and stays as it is.",
        '"""',
        "",
        "import pulumi",
        "",
        "import virtplane",
        "",
        f"endpoint = virtplane.Endpoint({imported.endpoint!r}, kind={imported.kind!r})",
        "",
        "",
        "def on_endpoint(object_id: str) -> pulumi.ResourceOptions:",
        '    """The endpoint, and the id of the existing object the resource stands for."""',
        "    return pulumi.ResourceOptions(provider=endpoint, import_=object_id)",
        "",
    ]
    for network in imported.networks:
        lines += ["", f"{variables[network.name]} = virtplane.Network({network.name!r}, vlan={network.vlan}, "
                      f"opts=on_endpoint({network.id!r}))"]
    for vm in imported.vms:
        lines += ["", *_vm(vm, variable(vm.name, taken), variables)]
    return "\n".join(lines) + "\n"


def _vm(vm: ImportedVm, name: str, networks: dict[str, str]) -> list[str]:
    lines = []
    if vm.owner is not None:
        lines.append(f"# Owned by stack {vm.owner.stack}: this stack compares it, never changes it or adopts it.")
    if vm.not_expressed:
        lines.append("# Not expressed here (left as it is, not managed):")
        lines += [f"#   - {note}" for note in vm.not_expressed]
    lines += [f"{name} = virtplane.VirtualMachine(", f"    {vm.name!r},"]
    inputs = vm.inputs
    for field in ("cpus", "sockets", "memory"):
        if field in inputs:
            lines.append(f"    {field}={_scalar(field, inputs[field])},")
    for collection in ("disks", "nics", "gpus"):
        if collection in inputs:
            lines += _items(collection, inputs[collection], networks)
    for field in _FIELDS[3:]:
        if field in inputs:
            lines.append(f"    {field}={_scalar(field, inputs[field])},")
    lines += [f"    opts=on_endpoint({vm.id!r}),", ")"]
    return lines


def _items(collection: str, items: list[dict[str, Any]], networks: dict[str, str]) -> list[str]:
    if not items:
        return [f"    {collection}=[],"]
    lines = [f"    {collection}=["]
    for item in items:
        if collection == "disks":
            head, cls = _size(item["size"], "GiB"), "Disk"
        elif collection == "nics":
            head, cls = networks.get(item["network"], repr(item["network"])), "Nic"
        else:
            head, cls = repr(item["mode"]), "Gpu"
        arguments = [head, *(f"{key}={item[key]!r}" for key in _ITEM_ARGUMENTS[collection]
                             if item.get(key) is not None)]
        lines.append(f"        virtplane.{cls}({', '.join(arguments)}),")
    return [*lines, "    ],"]


def _scalar(field: str, value: Any) -> str:
    if field == "memory":
        return _size(value, "MiB")
    return repr(value)


def _size(value: int, unit: str) -> str:
    """Whole sizes as the lab writes them: ``"2GiB"`` for 2048 MiB, ``"40GiB"``; others in their unit."""
    if unit == "MiB" and value % 1024 == 0:
        return f'"{value // 1024}GiB"'
    return f'"{value}{unit}"'


def _environment(kind: str) -> str:
    """``VSPHERE_*``: the variables the kind's settings fall back to."""
    names = list(getattr(sys.modules[provider_class(kind).settings_model.__module__], "ENV", {}).values())
    prefixes = {name.split("_", 1)[0] for name in names}
    return f"{prefixes.pop()}_*" if len(prefixes) == 1 else "the endpoint's environment variables"
