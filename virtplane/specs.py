"""Hypervisor-neutral desired-state models, one per resource kind.

Specs are validated and normalized here once: sizes become whole MiB (memory) or GiB (disks), enums are
closed sets, defaults are filled. Drivers translate specs to their hypervisor and read live objects
back into the same shape, so one generic diff serves every provider.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from virtplane.errors import SpecError
from virtplane.units import SizeError, parse_size


def _size_in(unit: str):
    def convert(value: Any) -> int:
        try:
            return parse_size(value, unit)
        except SizeError as exc:
            raise ValueError(str(exc)) from None

    return BeforeValidator(convert)


MiB = Annotated[int, _size_in("MiB")]
GiB = Annotated[int, _size_in("GiB")]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

# Provider-specific names accepted for the neutral ones, so users can write what they know.
_ADAPTER_ALIASES = {"vmxnet3": "paravirtual", "virtio": "paravirtual"}
_BUS_ALIASES = {"pvscsi": "paravirtual", "virtio-scsi": "paravirtual"}


def _alias(table: dict[str, str]):
    return BeforeValidator(lambda v: table.get(v, v) if isinstance(v, str) else v)


def _normalize_tags(tags: list[str]) -> list[str]:
    for tag in tags:
        if not tag or "," in tag or ";" in tag or tag != tag.strip():
            raise ValueError(f"tag {tag!r} must be non-empty, without ',' or ';' or surrounding spaces")
    return sorted(set(tags))


class Spec(BaseModel):
    """Base of all specs: unknown fields are errors, values are re-validated on assignment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field checks, as (field, message) pairs; empty when the spec is consistent."""
        return []


class DiskSpec(BaseModel):
    """``storage`` is where the disk lives (a vSphere datastore, a Proxmox storage); ``datastore`` is
    accepted as its other name. ``bus``: ``paravirtual`` is PVSCSI on vSphere and VirtIO SCSI on Proxmox;
    ``virtio-blk`` exists on Proxmox only, ``nvme`` on vSphere only."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    size: GiB
    storage: str | None = Field(default=None, validation_alias=AliasChoices("storage", "datastore"))
    thin: bool = True
    bus: Annotated[Literal["paravirtual", "lsilogic", "sata", "nvme", "ide", "virtio-blk"],
                   _alias(_BUS_ALIASES)] = "paravirtual"


class NicSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    network: str
    adapter: Annotated[Literal["paravirtual", "e1000", "e1000e"], _alias(_ADAPTER_ALIASES)] = "paravirtual"


class NetworkSpec(Spec):
    vlan: int = Field(default=0, ge=0, le=4094)


class VirtualMachineSpec(Spec):
    """``cpus`` is the total number of virtual CPUs, spread over ``sockets`` (which must divide it;
    None keeps the hypervisor's layout: one core per socket on vSphere, so CPUs can be hot-added).
    ``node`` is the host to run on (a Proxmox node, an ESXi host); None lets the driver choose.
    ``machine`` is the virtual hardware platform (a Proxmox machine type such as ``q35``, a vSphere
    hardware version such as ``vmx-19``); None keeps the hypervisor's default.
    ``linked_clone`` makes ``clone_from`` share the template's disks instead of copying them."""

    cpus: int = Field(ge=1, le=768)
    sockets: int | None = Field(default=None, ge=1, le=16)
    memory: MiB
    node: str | None = None
    machine: str | None = None
    disks: list[DiskSpec] = Field(default_factory=list)
    nics: list[NicSpec] = Field(default_factory=list)
    firmware: Literal["bios", "uefi"] = "bios"
    secure_boot: bool = False
    guest_os: str = "linux"
    power: Literal["on", "off"] = "on"
    nested_virtualization: bool = False
    clone_from: str | None = None
    linked_clone: bool = False
    tags: Annotated[list[str], AfterValidator(_normalize_tags)] = Field(default_factory=list)

    def problems(self) -> list[tuple[str, str]]:
        found = []
        if self.secure_boot and self.firmware != "uefi":
            found.append(("secure_boot", "needs firmware='uefi'"))
        if self.sockets is not None and self.cpus % self.sockets:
            found.append(("sockets", f"{self.sockets} sockets do not divide {self.cpus} cpus evenly"))
        if self.linked_clone and self.clone_from is None:
            found.append(("linked_clone", "needs clone_from (the template whose disks are shared)"))
        return found


SPECS: dict[str, type[Spec]] = {"Network": NetworkSpec, "VirtualMachine": VirtualMachineSpec}

# Fields read only when an object is created; a live object cannot tell them, so they are not diffed.
CREATE_ONLY: dict[str, frozenset[str]] = {"VirtualMachine": frozenset({"clone_from", "linked_clone"})}


def validate_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecError(kind, str(name), [(
            "name",
            "must start with a letter or digit and hold only letters, digits, '-', '_' and '.', "
            "at most 63 characters",
        )])


def build_spec(kind: str, name: str, inputs: dict[str, Any]) -> Spec:
    """Validate ``inputs`` for a resource of ``kind``; raise SpecError naming resource and fields."""
    validate_name(kind, name)
    model = SPECS[kind]
    try:
        spec = model.model_validate(inputs)
    except ValidationError as exc:
        raise SpecError(kind, name, [_describe(model, error) for error in exc.errors()]) from None
    if problems := spec.problems():
        raise SpecError(kind, name, problems)
    return spec


def _describe(model: type[BaseModel], error: Any) -> tuple[str, str]:
    location = ".".join(str(part) for part in error["loc"]) or "(all)"
    kind = error["type"]
    if kind == "extra_forbidden":
        field = str(error["loc"][-1])
        known = _known_fields(model, error["loc"][:-1])
        close = difflib.get_close_matches(field, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f"; known fields: {', '.join(sorted(known))}"
        return location, f"unknown field{hint}"
    if kind == "missing":
        return location, "is required"
    message = error["msg"].removeprefix("Value error, ")
    if kind == "literal_error":
        message = f"got {error['input']!r}; {message[0].lower()}{message[1:]}"
    return location, message


def _known_fields(model: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in path:
        if isinstance(part, int):
            continue
        annotation = current.model_fields[part].annotation
        args = getattr(annotation, "__args__", ())
        current = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), annotation)
    return list(current.model_fields)
