"""The Pulumi package schema, generated from the spec models and the providers' settings (never by hand).

Every kind in virtplane/kinds.py becomes a resource ``virtplane:index:<Kind>``; nested models (DiskSpec,
NicSpec, GpuSpec) become object types named without their ``Spec`` suffix; Literals become enum types; a
size field (an integer with a before-validator that also reads strings like ``"4GiB"``) is integer or string.
Descriptions are the docstrings: a model's docstring describes the resource, and the sentences of it that
name a field (````cpus````) describe that field. The provider's inputs and the stack config are the union of
the Endpoint settings of every registered endpoint kind, with the secret ones marked secret.

Property names are Pulumi's camelCase (``secureBoot``, ``cloudInit.userData``, ``caFile``): generated SDKs and
``pulumi import``'s code name them in snake_case again, as the ``virtplane`` module users import does
(virtplane/wire_names.py); ``language.python.packageName`` is that module.
"""

from __future__ import annotations

import inspect
import logging
import re
import types
import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator

from virtplane.endpoint_settings import endpoint_settings
from virtplane.enums import enum_name, pascal
from virtplane.kinds import KINDS
from virtplane.kinds import kind as registered_kind
from virtplane.providers.registry import KINDS as ENDPOINT_KINDS
from virtplane.providers.registry import provider_class
from virtplane.wire_names import to_wire

log = logging.getLogger("virtplane.plugin")
PACKAGE = "virtplane"
MODULE = "index"


def token(name: str) -> str:
    return f"{PACKAGE}:{MODULE}:{name}"


def _sentences(doc: str) -> list[str]:
    text = " ".join(doc.split())
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z`*])", text) if s.strip()]


def _own_doc(cls: type) -> str:
    """A class's own docstring (not one inherited from its base)."""
    return inspect.cleandoc(cls.__dict__.get("__doc__") or "")


def _docs(model: type[BaseModel]) -> list[str]:
    """The spec model's docstring, then the docstring of the class stack authors write for it."""
    import virtplane

    written = getattr(virtplane, _type_name(model), None) if _type_name(model) in virtplane.__all__ else None
    return [doc for doc in (_own_doc(model), _own_doc(written) if written else "") if doc]


def _field_description(model: type[BaseModel], field: str) -> str | None:
    for doc in _docs(model):  # the first docstring that speaks of the field
        if named := [s for s in _sentences(doc) if f"``{field}``" in s]:
            return " ".join(named).replace("``", "`")
    return None


def _description(model: type[BaseModel], fallback: str) -> str:
    docs = _docs(model)
    return (docs[-1] if docs else fallback).replace("``", "`")


def _type_name(model: type[BaseModel]) -> str:
    return model.__name__.removesuffix("Spec")


def _camel(field: str) -> str:
    return "".join(part.capitalize() for part in field.split("_"))


class SchemaBuilder:
    def __init__(self) -> None:
        self.types: dict[str, dict[str, Any]] = {}

    def property(self, owner: type[BaseModel], field: str, annotation: Any) -> dict[str, Any]:
        """The schema of one field (without description)."""
        metadata: list[Any] = []
        while True:
            origin = typing.get_origin(annotation)
            if origin is Annotated:
                annotation, *extra = typing.get_args(annotation)
                metadata.extend(extra)
            elif isinstance(annotation, types.UnionType) or origin is typing.Union:
                members = [a for a in typing.get_args(annotation) if a is not type(None)]
                annotation = members[0] if len(members) == 1 else annotation
                if len(members) != 1:
                    return {"type": "string"}
            else:
                break
        origin = typing.get_origin(annotation)
        if origin is Literal:
            return {"$ref": f"#/types/{self.enum(owner, field, typing.get_args(annotation))}"}
        if origin is list:
            (item,) = typing.get_args(annotation)
            return {"type": "array", "items": self.property(owner, field, item)}
        if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
            return {"$ref": f"#/types/{self.object(annotation)}"}
        if annotation is bool:
            return {"type": "boolean"}
        if annotation is int:
            if any(isinstance(m, BeforeValidator) for m in metadata):  # a size: 40 (GiB/MiB) or "40GiB"
                return {"oneOf": [{"type": "integer"}, {"type": "string"}]}
            return {"type": "integer"}
        if annotation is float:
            return {"type": "number"}
        return {"type": "string"}

    def enum(self, owner: type[BaseModel], field: str, values: tuple[Any, ...]) -> str:
        name = token(enum_name(owner, field))  # the Python module exports the same enums (virtplane/enums.py)
        self.types[name] = {"type": "string", "enum": [{"value": v, "name": pascal(str(v))}
                                                       for v in values if v is not None]}
        return name

    def object(self, model: type[BaseModel]) -> str:
        name = token(_type_name(model))
        if name not in self.types:
            self.types[name] = {}  # reserve against recursion
            properties, required = self.properties(model)
            self.types[name] = {"type": "object", "description": _description(model, _type_name(model)),
                                "properties": properties, **({"required": required} if required else {})}
        return name

    def properties(self, model: type[BaseModel]) -> tuple[dict[str, Any], list[str]]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        for field, info in model.model_fields.items():
            spec = self.property(model, field, info.annotation if not info.metadata
                                 else Annotated[(info.annotation, *info.metadata)])
            if description := _field_description(model, field):
                spec["description"] = description
            if "SecretStr" in str(info.annotation):  # a container's password: the engine keeps it secret
                spec["secret"] = True
            if info.is_required():
                required.append(to_wire(field))
            elif info.default is not None and isinstance(info.default, bool | int | str | float):
                spec["default"] = info.default
            properties[to_wire(field)] = spec
        return properties, required


def _settings_properties() -> dict[str, dict[str, Any]]:
    kinds = list(ENDPOINT_KINDS)
    properties: dict[str, dict[str, Any]] = {
        "kind": {"type": "string", "description": f"The hypervisor behind the endpoint: {', '.join(kinds)}.",
                 "default": kinds[0]}}
    for kind in kinds:
        try:
            cls = provider_class(kind)
        except ImportError as missing:  # a provider whose client library is not installed: leave it out
            log.warning("the %s endpoint kind is left out of the schema: %s", kind, missing)
            continue
        for setting in endpoint_settings(cls):
            entry = properties.setdefault(to_wire(setting.name), {"type": setting.type, "description": ""})
            used = f"{kind}" + (f" (environment variable {setting.environment})" if setting.environment else "")
            entry["description"] = (entry["description"] + "; " if entry["description"] else "Used by ") + used
            if setting.secret:
                entry["secret"] = True
    for entry in properties.values():
        if entry["description"].startswith("Used by") and not entry["description"].endswith("."):
            entry["description"] += "."
    properties["allowDataLoss"] = {
        "type": "boolean", "default": False,
        "description": "Let a change that destroys data (a disk no longer declared, a VM replaced, the Endpoint "
                       "pointed at another backend) go ahead; without it, preview and up refuse such a change in one "
                       "sentence. Also VIRTPLANE_ALLOW_DATA_LOSS=1."}
    return properties


def _outputs(kind: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """A resource's output properties: its inputs (a digest for what is compared as one: a VM's cloud-init), and for a
    VM or a container the Networks its NICs are on."""
    if "nics" not in registered_kind(kind).spec.model_fields:
        return dict(inputs)
    digests = {to_wire(field): {"type": "string", "description": "The digest (`sha256:...`) of the documents "
                                "delivered: the documents themselves are never an output."}
               for field in registered_kind(kind).digest_only}
    return {**inputs, **digests, "networks": {
        "type": "object", "additionalProperties": {"type": "object", "additionalProperties": {"type": "integer"}},
        "description": "The Networks the NICs are on, with their settings (`{\"app\": {\"vlan\": 120}}`): "
                       "how a refresh names the NICs where a network is a VLAN tag (Proxmox, Hyper-V)."}}


def download_url() -> str | None:
    """Where ``pulumi up`` downloads this plugin when it is not installed: the ``server`` of the installed package's
    pulumi-plugin.json (set when the package is built for a release: virtplane/plugin/package.py), or None."""
    import json
    from importlib import resources

    try:
        return json.loads((resources.files("virtplane") / "pulumi-plugin.json").read_text()).get("server") or None
    except (OSError, ValueError):
        return None


def package_schema(version: str) -> dict[str, Any]:
    builder = SchemaBuilder()
    resources: dict[str, Any] = {}
    for kind in KINDS:
        properties, required = builder.properties(kind.spec)
        resources[token(kind.name)] = {
            "description": _description(kind.spec, f"A {kind.noun}."),
            "inputProperties": properties,
            "requiredInputs": required,
            "properties": _outputs(kind.name, properties),
            "required": required,
        }
    settings = _settings_properties()
    return {
        "name": PACKAGE,
        "displayName": "virtplane",
        "version": version,
        "description": "Virtual machines and networks on vSphere, Proxmox VE and Hyper-V, declared once.",
        "keywords": ["pulumi", "virtplane", "vsphere", "proxmox", "category/infrastructure"],
        "license": "Apache-2.0",
        "config": {"variables": settings},
        "provider": {"description": "A hypervisor endpoint: the settings of one vCenter/ESXi or Proxmox VE "
                                    "cluster. Each falls back to its environment variable.",
                     "inputProperties": settings},
        "resources": resources,
        "types": builder.types,
        "language": {"python": {"packageName": "virtplane"}},
        **({"pluginDownloadURL": url} if (url := download_url()) else {}),
    }
