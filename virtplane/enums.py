"""The enum types of the Pulumi package schema as Python enums (``virtplane.VirtualMachineFirmware.UEFI``), which code
generated from the schema — ``pulumi import``'s program, a generated SDK's examples — writes; each member is its value
(a ``str``), so ``firmware=virtplane.VirtualMachineFirmware.UEFI`` is ``firmware="uefi"``. The names are the schema's
(virtplane/plugin/schema.py takes them from here): type ``<Type><Field>``, member the value in upper snake case."""

from __future__ import annotations

import enum
import re
import typing
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel


def type_name(model: type[BaseModel]) -> str:
    """``DiskSpec`` -> ``Disk``."""
    return model.__name__.removesuffix("Spec")


def pascal(text: str) -> str:
    """``secure_boot`` / ``virtio-blk`` -> ``SecureBoot`` / ``VirtioBlk``."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\-]", text) if part)


def enum_name(model: type[BaseModel], field: str) -> str:
    return f"{type_name(model)}{pascal(field)}"


def member_name(value: str) -> str:
    """``virtio-blk`` -> ``VIRTIO_BLK`` (as Pulumi's Python code generation names enum members)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", value).upper()


def literal_values(annotation: Any) -> tuple[str, ...] | None:
    """The values of a (possibly optional, annotated) Literal, or None."""
    if typing.get_origin(annotation) is Literal:
        return tuple(v for v in typing.get_args(annotation) if v is not None)
    for arg in typing.get_args(annotation):
        found = literal_values(arg)
        if found:
            return found
    return None


@cache
def enums() -> dict[str, type[enum.Enum]]:
    from virtplane.kinds import KINDS

    found: dict[str, type[enum.Enum]] = {}
    seen: set[type[BaseModel]] = set()

    def visit(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        for field, info in model.model_fields.items():
            annotation = info.annotation if not info.metadata else typing.Annotated[(info.annotation, *info.metadata)]
            values = literal_values(annotation)
            if values:
                name = enum_name(model, field)
                found[name] = enum.Enum(name, {member_name(v): v for v in values}, type=str,  # type: ignore[misc]
                                        module="virtplane")
            for arg in _nested(info.annotation):
                visit(arg)

    for kind in KINDS:
        visit(kind.spec)
    return found


def _nested(annotation: Any) -> list[type[BaseModel]]:
    """The models inside an annotation (``list[DiskSpec] | None`` -> DiskSpec)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _nested(arg)]
