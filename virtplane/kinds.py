"""The one registry of resource kinds: name, spec model, noun for messages, and dependency order.

A kind may reference kinds listed before it (a VM's NICs name Networks), so creates run in this order and
deletes in reverse. Adding a kind is one line here plus its spec and its drivers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from virtplane.errors import SpecError
from virtplane.specs import CREATE_ONLY, NetworkSpec, Spec, VirtualMachineSpec, describe_error, validate_name


@dataclass(frozen=True)
class Kind:
    name: str
    spec: type[Spec]
    noun: str
    create_only: frozenset[str] = frozenset()


KINDS: tuple[Kind, ...] = (
    Kind("Network", NetworkSpec, "network"),
    Kind("VirtualMachine", VirtualMachineSpec, "virtual machine", CREATE_ONLY["VirtualMachine"]),
)
ORDER: tuple[str, ...] = tuple(kind.name for kind in KINDS)
_BY_NAME = {kind.name: kind for kind in KINDS}


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
    if problems := problems + spec.problems():
        raise SpecError(kind_name, name, problems)
    return spec
