"""The one registry of resource kinds: name, spec model, noun for messages, and dependency order.

A kind may reference kinds listed before it (a VM's NICs name Networks), so creates run in this order and
deletes in reverse. Adding a kind is one line here plus its spec and its drivers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr, ValidationError

from virtplane import redact
from virtplane.container_specs import CONTAINER_CREATE_ONLY, ContainerSpec
from virtplane.errors import SpecError
from virtplane.specs import (
    CREATE_ONLY,
    DIGEST_ONLY,
    NetworkSpec,
    Spec,
    VirtualMachineSpec,
    describe_error,
    validate_name,
)


@dataclass(frozen=True)
class Kind:
    """``label`` names one in the plan's sentences ("VM"); ``holds_data`` are the fields whose live contents are
    data (a VM's disks; a container's root filesystem and mount points): removing an item of one, or replacing or
    deleting the object, destroys it."""

    name: str
    spec: type[Spec]
    noun: str
    create_only: frozenset[str] = frozenset()
    label: str = ""
    holds_data: tuple[str, ...] = ()
    digest_only: frozenset[str] = frozenset()  # compared as a digest of what was delivered; never read back as inputs


KINDS: tuple[Kind, ...] = (
    Kind("Network", NetworkSpec, "network", label="network"),
    Kind("VirtualMachine", VirtualMachineSpec, "virtual machine", CREATE_ONLY["VirtualMachine"], "VM", ("disks",),
         DIGEST_ONLY["VirtualMachine"]),
    Kind("Container", ContainerSpec, "container", CONTAINER_CREATE_ONLY, "container", ("rootfs", "mounts")),
)
ORDER: tuple[str, ...] = tuple(kind.name for kind in KINDS)
_BY_NAME = {kind.name: kind for kind in KINDS}
_KIND_OF_SPEC = {kind.spec: kind.name for kind in KINDS}


def kind(name: str) -> Kind:
    return _BY_NAME[name]


def later_kinds(name: str) -> tuple[str, ...]:
    """The kinds that may reference ``name`` (listed after it)."""
    return ORDER[ORDER.index(name) + 1:]


def build_spec(kind_name: str, name: str, inputs: dict[str, Any]) -> Spec:
    """Validate ``inputs`` for a resource of ``kind_name``; raise SpecError naming resource and fields (all of
    them: the name's problem with the fields')."""
    problems: list[tuple[str, str]] = []
    try:
        validate_name(kind_name, name)
    except SpecError as error:
        problems += error.problems
    model = kind(kind_name).spec
    try:
        spec = model.model_validate(inputs)
    except ValidationError as exc:
        raise SpecError(kind_name, name, problems + [describe_error(model, error) for error in exc.errors()]
                        ) from None
    _register_secrets(spec)
    if problems := problems + spec.problems():
        raise SpecError(kind_name, name, problems)
    return spec


def secret_fields(kind_name: str) -> frozenset[str]:
    """The fields of a kind that hold secrets (SecretStr, or lists of them): never shown, compared or kept."""
    model = kind(kind_name).spec
    return frozenset(field for field, info in model.model_fields.items() if "SecretStr" in str(info.annotation))


def _register_secrets(spec: Spec) -> None:
    """Every secret a spec carries is masked in everything virtplane prints from now on."""
    for field in secret_fields(_KIND_OF_SPEC[type(spec)]):
        value = getattr(spec, field)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, SecretStr):
                redact.register(item.get_secret_value())
