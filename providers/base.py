"""The driver contract every hypervisor implements, modelled on Crossplane's external client.

A ``Provider`` is one connected endpoint. It hands out one ``KindDriver`` per resource kind. A kind
driver reads live objects in one batched pass (``observe``), normalized into the spec's own shape,
and creates, updates and deletes them. It never computes diffs itself: the engine does, with the
generic diff, and asks the driver only how each changed field can be applied (``rule``).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel

from virtplane.errors import VirtplaneError
from virtplane.specs import Spec

MARKER_KEY = "virtplane.owner"


@dataclass(frozen=True)
class Owner:
    """The ownership marker written on every object we create: which stack and resource it is."""

    stack: str
    resource: str

    def encode(self) -> str:
        return f"stack={self.stack};resource={self.resource}"

    @classmethod
    def decode(cls, text: str | None) -> Owner | None:
        if not text:
            return None
        parts = dict(item.split("=", 1) for item in text.split(";") if "=" in item)
        if "stack" not in parts or "resource" not in parts:
            return None
        return cls(parts["stack"], parts["resource"])


DESCRIPTION_PREFIX = f"{MARKER_KEY}: "


def description_marker(owner: Owner) -> str:
    """The marker as a line of a free-text description (a port group's, a Proxmox VM's)."""
    return DESCRIPTION_PREFIX + owner.encode()


def owner_from_description(text: str | None) -> Owner | None:
    """The marker found on any line of a description, or None."""
    for line in (text or "").splitlines():
        if line.startswith(DESCRIPTION_PREFIX):
            return Owner.decode(line.removeprefix(DESCRIPTION_PREFIX).strip())
    return None


@dataclass
class Observed:
    """A live object read back, with ``state`` normalized into the spec's shape (``spec.model_dump()``).

    ``handle`` is the driver's own reference. ``owner`` is the parsed marker (None when absent).
    ``marker_complete`` is False when an object carries our marker only in the place written at
    creation time (an apply was interrupted before finishing it): the engine then finishes it.
    """

    name: str
    handle: Any
    owner: Owner | None
    state: dict[str, Any]
    marker_complete: bool = True


@dataclass
class ObserveResult:
    """``owned``: objects of this stack by resource name (declared or not, so strays can be deleted).
    ``foreign``: same-named objects for declared names that this stack does not own."""

    owned: dict[str, Observed] = field(default_factory=dict)
    foreign: dict[str, Observed] = field(default_factory=dict)


class Rule(enum.StrEnum):
    """How one changed field can be applied to a live object."""

    IN_PLACE = "in-place"
    POWER_OFF = "power-off"
    REPLACE = "replace"


@dataclass(frozen=True)
class FieldChange:
    """One field that differs: ``path`` like ``memory`` or ``disks[1].size``; ``old`` is live."""

    path: str
    old: Any
    new: Any


class RefusedChange(Exception):
    """A change the hypervisor cannot make at all (e.g. shrinking a disk); the message says why."""


Declared = Mapping[str, Mapping[str, Spec]]
"""What a stack declares on one endpoint: kind -> resource name -> spec."""


class KindDriver(ABC):
    """Reads and writes one kind of resource on one endpoint."""

    kind: ClassVar[str]

    @abstractmethod
    def observe(self, stack: str, declared: Declared) -> ObserveResult:
        """Read every object of this kind that is ours or is named in ``declared[self.kind]``, in one
        batched pass. The other kinds' declarations help read references back (a Proxmox NIC holds a
        bridge and a VLAN tag; the declared networks give it its name). Empty when destroying."""

    @abstractmethod
    def create(self, owner: Owner, spec: Spec) -> None:
        """Create the object, writing the ownership marker atomically with the creation."""

    @abstractmethod
    def update(self, observed: Observed, spec: Spec, changes: list[FieldChange]) -> None:
        """Apply ``changes`` in place (powering off first when a rule says so); finish the marker."""

    @abstractmethod
    def delete(self, observed: Observed) -> None:
        """Delete an object we own; tolerate it being gone already."""

    def check(self, spec: Spec, declared: Declared) -> list[tuple[str, str]]:
        """References the endpoint cannot satisfy and fields it does not support, as (field, message)
        pairs, found at plan time. ``declared`` is what the stack declares on this endpoint (so a
        reference to a network created in the same apply is fine). Default: nothing to check."""
        return []

    def rule(self, change: FieldChange) -> Rule:
        """How ``change`` is applied; raise RefusedChange when it cannot be. Default: in place."""
        return Rule.IN_PLACE


class Provider(ABC):
    """One hypervisor endpoint: its settings, its connection and its kind drivers."""

    name: ClassVar[str]
    settings_model: ClassVar[type[BaseModel]]
    drivers: dict[str, KindDriver]  # kind -> its driver, set when connected

    @classmethod
    @abstractmethod
    def settings_from(cls, endpoint: str, inputs: Mapping[str, Any], environ: Mapping[str, str]) -> BaseModel:
        """Build validated settings from the Endpoint's inputs, falling back to the environment."""

    @classmethod
    @abstractmethod
    def connect(cls, settings: BaseModel) -> Provider:
        """Connect and log in; raise ConnectionFailed with one clear sentence on failure."""

    def driver(self, kind: str) -> KindDriver:
        """The driver for a resource kind ("VirtualMachine", "Network")."""
        try:
            return self.drivers[kind]
        except KeyError:
            raise VirtplaneError(f"the {self.name} provider has no driver for kind '{kind}' "
                                 f"(known: {', '.join(self.drivers)})") from None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Log out and release connections."""
