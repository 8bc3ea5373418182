"""A desktop pool's own settings, validated once, and the spec every desktop of the pool gets.

``template`` is the golden image (a template or VM on the endpoint); changing it recomposes the pool. ``size``
desktops are numbered 1..size and named by ``naming``. ``linked_clone`` None means "where the hypervisor offers
them" (every provider that sets ``Provider.offers_linked_clones``). ``spread`` balances the desktops over capable
hosts, ``pack`` fills one host before the next. ``max_unavailable`` desktops are re-cloned at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from virtplane.errors import SpecError
from virtplane.kinds import build_spec
from virtplane.pools.naming import DEFAULT_NAMING, name_of, naming_problem
from virtplane.specs import VirtualMachineSpec, describe_error, validate_name

KIND = "DesktopPool"
# The VirtualMachine fields a pool passes to each desktop (the rest comes from the golden image).
DESKTOP_FIELDS = ("cpus", "sockets", "memory", "gpus", "nics", "power", "tags", "nested_virtualization")


class PoolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    template: str = Field(min_length=1)
    size: int = Field(ge=0, le=10000)
    naming: str = DEFAULT_NAMING
    spread: Literal["spread", "pack"] = "spread"
    max_unavailable: int = Field(default=1, ge=1)
    linked_clone: bool | None = None

    @field_validator("template")
    @classmethod
    def _template(cls, value: str) -> str:
        if value != value.strip():
            raise ValueError("must not start or end with spaces")
        return value


@dataclass
class DeclaredPool:
    """A pool as the CLI collected it: its settings, endpoint, and desktops by number."""

    name: str
    spec: PoolSpec
    endpoint: str
    members: dict[int, str] = field(default_factory=dict)

    def number_of(self, name: str) -> int | None:
        from virtplane.pools.naming import number_of

        return number_of(self.spec.naming, self.name, name)


def build_pool(name: str, inputs: dict[str, Any], desktop: dict[str, Any], linked_by_default: bool
               ) -> tuple[PoolSpec, dict[int, tuple[str, VirtualMachineSpec]]]:
    """The pool's settings and each desktop's (name, spec); SpecError naming the pool and every field at fault."""
    problems: list[tuple[str, str]] = []
    try:
        validate_name(KIND, name)
    except SpecError as error:
        problems += error.problems
    try:
        pool = PoolSpec.model_validate(inputs)
    except ValidationError as exc:
        raise SpecError(KIND, name, problems + [describe_error(PoolSpec, e) for e in exc.errors()]) from None
    if (why := naming_problem(pool.naming, name)) is not None:
        raise SpecError(KIND, name, [*problems, ("naming", why)])
    linked = pool.linked_clone if pool.linked_clone is not None else linked_by_default
    fields = {key: value for key, value in desktop.items() if value is not None}
    fields.update(clone_from=pool.template, linked_clone=linked)
    names = {number: name_of(pool.naming, name, number) for number in range(1, pool.size + 1)}
    try:  # the desktops differ only by name: one of them stands for all (its name checked with the others)
        spec = build_spec("VirtualMachine", names.get(1, name_of(pool.naming, name, 1)), fields)
    except SpecError as error:
        problems += [(path, message) for path, message in error.problems if path != "name"]
        problems += [("naming", f"makes '{error.name}': {message}") for path, message in error.problems
                     if path == "name"]
    for number, member in names.items():
        try:
            validate_name("VirtualMachine", member)
        except SpecError:
            problems.append(("naming", f"makes '{member}' for desktop {number}, which is not a valid VM name"))
            break
    if problems:
        raise SpecError(KIND, name, problems)
    assert isinstance(spec, VirtualMachineSpec)
    return pool, {number: (member, spec) for number, member in names.items()}
