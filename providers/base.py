"""The driver contract every hypervisor implements, modelled on Crossplane's external client.

A ``Provider`` is one connected endpoint. It hands out one ``KindDriver`` per resource kind. A kind
driver reads live objects in one batched pass (``observe``), normalized into the spec's own shape,
and creates, updates and deletes them. It never computes diffs itself: the engine does, with the
generic diff, and asks the driver only how each changed field can be applied (``rule``).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote, unquote

from pydantic import BaseModel

from virtplane.errors import VirtplaneError
from virtplane.inventory import Host
from virtplane.specs import Spec

MARKER_KEY = "virtplane.owner"


@dataclass(frozen=True)
class Owner:
    """The ownership marker written on every object we create: which stack, endpoint and resource it is.

    ``endpoint`` is the name of the stack's Endpoint that made the object, so two Endpoints of one stack
    never take each other's objects. Markers written before it existed carry none (None) and are claimed
    by any endpoint of their stack. ``source`` is the template or VM a clone was made from (None for a VM
    made from nothing): a live VM cannot tell it otherwise, and a desktop pool recomposes the desktops whose
    source is not the pool's template (virtplane/pools/)."""

    stack: str
    resource: str
    endpoint: str | None = None
    source: str | None = None

    def encode(self) -> str:
        """``stack=…;endpoint=…;resource=…[;source=…]``, each value percent-encoded where it holds ``;``, ``=``,
        ``%``, line breaks or other characters a name may carry on hypervisors that allow them (Hyper-V)."""
        endpoint = f";endpoint={_quote(self.endpoint)}" if self.endpoint is not None else ""
        source = f";source={_quote(self.source)}" if self.source is not None else ""
        return f"stack={_quote(self.stack)}{endpoint};resource={_quote(self.resource)}{source}"

    @classmethod
    def decode(cls, text: str | None) -> Owner | None:
        if not text:
            return None
        parts = {key: unquote(value) for key, value in (item.split("=", 1) for item in text.split(";") if "=" in item)}
        if "stack" not in parts or "resource" not in parts:
            return None
        return cls(parts["stack"], parts["resource"], parts.get("endpoint"), parts.get("source"))

    def belongs_to(self, stack: str, endpoint: str) -> bool:
        """True when this marker names ``stack`` and (if it names one) ``endpoint``."""
        return self.stack == stack and self.endpoint in (None, endpoint)


def _quote(value: str) -> str:
    return quote(value, safe="/@:+-_.,!~*'()[]$`")


def vlan_named(network: str, base: str | None) -> int | None:
    """The VLAN of an undeclared network read back as ``<base>.<vlan>`` (a Proxmox bridge, a Hyper-V switch), so
    the name wires back to where it was read from; None for any other name."""
    if not base or not network.startswith(f"{base}.") or not network[len(base) + 1:].isdigit():
        return None
    return int(network[len(base) + 1:])


DESCRIPTION_PREFIX = f"{MARKER_KEY}: "


def description_marker(owner: Owner) -> str:
    """The marker as a line of a free-text description (a port group's, a Proxmox VM's)."""
    return DESCRIPTION_PREFIX + owner.encode()


def undelivered(driver: KindDriver, spec: Spec, provider: str) -> list[tuple[str, str]]:
    """A problem per digest-only field ``spec`` sets that ``driver`` does not deliver (a provider without
    cloud-init)."""
    from virtplane.kinds import KINDS

    fields = next((kind.digest_only for kind in KINDS if isinstance(spec, kind.spec)), frozenset())
    return [(field, f"is not delivered on {provider} yet (docs/cloud-init.md)") for field in sorted(fields)
            if getattr(spec, field, None) is not None and field not in driver.delivers]


def owner_from_description(text: str | None) -> Owner | None:
    """The marker found on any line of a description, or None."""
    for line in (text or "").splitlines():
        if line.startswith(DESCRIPTION_PREFIX):
            return Owner.decode(line.removeprefix(DESCRIPTION_PREFIX).strip())
    return None


PENDING_PREFIX = "virtplane-pending:"


def pending_name(owner: Owner) -> str:
    """The name a VM has from the call that makes it until its marker is written in its own place (where the
    hypervisor's create call cannot write it: Hyper-V's New-VM, XenServer's VM.clone): it carries the marker itself,
    so an interrupted create is recognised on the next run, and removed (it held no data yet). A clone's source is
    left out (names are short: Hyper-V's hold 100 characters); the create made again writes it."""
    return PENDING_PREFIX + Owner(owner.stack, owner.resource, owner.endpoint).encode()


def owner_from_pending(name: str | None) -> Owner | None:
    if not name or not name.startswith(PENDING_PREFIX):
        return None
    return Owner.decode(name.removeprefix(PENDING_PREFIX))


@dataclass
class Observed:
    """A live object read back, with ``state`` normalized into the spec's shape (``spec.model_dump()``).

    ``handle`` is the driver's own reference. ``owner`` is the parsed marker (None when absent).
    ``marker_complete`` is False when an object carries our marker only in the place written at
    creation time (an apply was interrupted before finishing it): the engine then finishes it.
    ``restore_power`` is set when virtplane switched the VM off for a change and was killed before starting it
    again (providers/marker.py): the engine restores it.
    ``unexpressed`` names what the object has that no spec field can say (a serial port, a USB device, an
    ISO in a CD drive): left as it is, and listed by ``virtplane import`` in a comment on the VM.
    """

    name: str
    handle: Any
    owner: Owner | None
    state: dict[str, Any]
    marker_complete: bool = True
    id: str | None = None  # the hypervisor's stable id: vSphere instance UUID, Proxmox vmid, Hyper-V VMId
    restore_power: str | None = None  # the power state virtplane switched the VM out of, to restore (marker.py)
    unexpressed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Volumes:
    """What deleting an object does to its storage, named for the plan: ``destroyed`` lists each volume that goes
    with it and what it holds; ``kept`` the volumes detached first, which survive (another VM's disk)."""

    destroyed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def disk_volume(disk: dict[str, Any]) -> str:
    """A disk of a VM's state as the plan names it: ``scsi0:1 (100 GiB)``."""
    return f"{disk.get('slot', '?')} ({disk.get('size', '?')} GiB)"


@dataclass(frozen=True)
class Created:
    """What ``create`` returns: the new object's stable id and its outputs (spec-shaped state and extras
    such as ``node``), which a Pulumi provider's Create answers with."""

    id: str
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ObserveResult:
    """``owned``: objects of this stack by resource name (declared or not, so strays can be deleted).
    ``foreign``: same-named objects for declared names that this stack does not own."""

    owned: dict[str, Observed] = field(default_factory=dict)
    foreign: dict[str, Observed] = field(default_factory=dict)


@dataclass(frozen=True)
class GuestState:
    """What the hypervisor knows of a VM's guest, for deciding whether a desktop is in use.

    ``users``: who the guest tools report logged in (VMware Tools' interactive session, the QEMU guest agent's
    ``get-users``); None when nothing reports it (no tools, agent not running, a hypervisor whose guest
    interface has no such fact). ``address``: the guest's IP address where the tools report one. ``told_by``:
    how it was read, for messages ("QEMU guest agent: no user logged in")."""

    power: str
    users: tuple[str, ...] | None = None
    address: str | None = None
    told_by: str = "no guest tools report"

    @property
    def in_use(self) -> bool:
        """Powered on with a user logged in, or powered on with nothing to tell (unknown counts as in use)."""
        return self.power == "on" and (self.users is None or bool(self.users))


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
    """Reads and writes one kind of resource on one endpoint.

    **Thread safety.** apply calls one driver from several threads at once (creates, updates and
    deletes of different objects; never two calls for one object). Drivers must be safe for that:
    shared caches are guarded by locks, and connections are either thread-safe or pooled.
    ``observe``/``observe_ids``/``check``/``place`` are called from one thread, before apply starts."""

    kind: ClassVar[str]
    # Seconds a guest switched off for a change gets to shut down cleanly before it is powered off hard (the
    # power-change protocol of providers/marker.py); the plan says it. None: the driver does not say.
    shutdown_seconds: float | None = None
    # Top-level fields some change of which ``rule`` answers REPLACE for: while such a field's new value is not
    # known yet (a Pulumi preview), the object may be replaced, and the preview says so.
    replaceable: ClassVar[frozenset[str]] = frozenset()
    # The fields compared as a digest of what was delivered (cloud_init) that this driver delivers and reads back; a
    # spec that sets another is refused at plan (core: engine._check_references, the plugin's Check of references).
    delivers: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def observe(self, stack: str, declared: Declared) -> ObserveResult:
        """Read every object of this kind that is ours or is named in ``declared[self.kind]``, in one
        batched pass. The other kinds' declarations help read references back (a Proxmox NIC holds a
        bridge and a VLAN tag; the declared networks give it its name). Empty when destroying."""

    def observe_ids(self, stack: str, ids: list[str], declared: Declared) -> dict[str, Observed]:
        """Read objects by their stable id (a Pulumi Read or import), in one batched pass; ids that do not
        exist are left out. Ownership is not required (an import reads what is there)."""
        raise NotImplementedError(f"{type(self).__name__} cannot read {self.kind} objects by id yet")

    def observe_all(self, stack: str, declared: Declared) -> dict[str, Observed]:
        """Every object of this kind on the endpoint (templates not), by stable id, in one batched pass, whoever owns
        it: what ``virtplane import`` chooses from. Ownership is not required."""
        raise NotImplementedError(f"{type(self).__name__} cannot list every {self.kind} yet")

    def adopt(self, observed: Observed, owner: Owner) -> None:
        """Write ``owner``'s marker on an object that carries none (``virtplane import --adopt``), where a create
        writes it, and change nothing else."""
        raise NotImplementedError(f"{type(self).__name__} cannot adopt {self.kind} objects yet")

    @abstractmethod
    def create(self, owner: Owner, spec: Spec) -> Created:
        """Create the object, writing the ownership marker atomically with the creation; return its id
        and outputs. ``spec`` is as planned: slots resolved, ``node`` filled in by placement."""

    @abstractmethod
    def update(self, observed: Observed, spec: Spec, changes: list[FieldChange]) -> None:
        """Apply ``changes`` in place (powering off first when a rule says so); finish the marker."""

    @abstractmethod
    def delete(self, observed: Observed) -> None:
        """Delete an object we own; tolerate it being gone already."""

    def volumes(self, observed: Observed) -> Volumes:
        """Every volume deleting ``observed`` removes (and any it detaches first and keeps), each named with what it
        holds, for the plan's ``[destroys data]`` and apply's refusal. Default: the disks of its state."""
        return Volumes([disk_volume(disk) for disk in observed.state.get("disks") or []])

    def destroys(self, observed: Observed, change: FieldChange) -> list[str]:
        """What applying ``change`` to ``observed`` destroys besides a disk it removes (a volume re-made to change a
        setting), each named with what it holds; the plan marks the change and apply needs --allow-data-loss.
        Default: nothing."""
        return []

    def check(self, spec: Spec, declared: Declared) -> list[tuple[str, str]]:
        """References the endpoint cannot satisfy and fields it does not support, as (field, message)
        pairs, found at plan time. ``declared`` is what the stack declares on this endpoint (so a
        reference to a network created in the same apply is fine). Default: nothing to check."""
        return []

    def creation_problems(self, spec: Spec, declared: Declared) -> list[tuple[str, str]]:
        """What the call that makes the object cannot honour, as (field, message) pairs, found at plan time for a
        create or a replace (a clone's disks its clone call cannot set: virtplane/clones.py). Default: nothing."""
        return []

    def rule(self, change: FieldChange) -> Rule:
        """How ``change`` is applied; raise RefusedChange when it cannot be. Default: in place."""
        return Rule.IN_PLACE

    def rule_in(self, change: FieldChange, live: Mapping[str, Any] | None) -> Rule:
        """How ``change`` is applied to the object whose observed state is ``live`` (None: not known), where the
        answer depends on it; raise RefusedChange when it cannot be. Default: ``rule``."""
        return self.rule(change)

    def guest_states(self, observed: list[Observed]) -> dict[str, GuestState]:
        """The guest state of each VM (by ``Observed.name``), read in as few round trips as the hypervisor
        allows. Default: the power state only, so a VM that runs counts as in use."""
        return {live.name: GuestState(str(live.state.get("power") or "off")) for live in observed}

    def place(self, spec: Spec, placed: Mapping[str, int]) -> str | None:
        """Where a new object goes, decided at plan time and shown in the plan (a node or host name), or
        None to leave it to the hypervisor (vSphere DRS). ``placed`` counts MiB of memory already placed
        per host by this plan, so one plan spreads its VMs. Default: no choice."""
        return None

    def slots_for(self, spec: Spec) -> Callable[[str, dict[str, Any], set[str]], str]:
        """How new slots are chosen for this spec's disks and NICs (a hypervisor whose default bus depends on the VM,
        like Hyper-V's Generation 1 booting from IDE, looks at the spec). Default: ``new_slot``."""
        return self.new_slot

    def new_slot(self, collection: str, item: dict[str, Any], taken: set[str]) -> str:
        """A free slot for a new item of a slotted list (``collection`` "disks" or "nics"; a container's "mounts"),
        in this hypervisor's own notation (vSphere ``scsi0:1``/``ethernet0``, Proxmox ``scsi1``/``net0``/``mp0``).
        Default: ``disk0``…"""
        prefix = "disk" if collection == "disks" else "nic"
        number = 0
        while f"{prefix}{number}" in taken:
            number += 1
        return f"{prefix}{number}"


class Provider(ABC):
    """One hypervisor endpoint: its settings, its connection and its kind drivers."""

    name: ClassVar[str]
    settings_model: ClassVar[type[BaseModel]]
    # Whether a clone can share its template's disks (vSphere snapshot-based linked clones, Proxmox linked clones
    # of templates, Hyper-V differencing disks): a desktop pool's ``linked_clone=None`` means "where offered".
    offers_linked_clones: ClassVar[bool] = False
    # The Endpoint settings that decide which backend, and which of its objects, the endpoint reaches (besides its
    # kind): a change of one points a stack at other objects — under Pulumi, a replacement of the provider.
    identity_settings: ClassVar[frozenset[str]] = frozenset()
    # Why this hypervisor has no driver for a kind it could have one day (kind -> a clause the plan's refusal ends
    # with); a kind absent here is refused with the shared sentence.
    unserved_reasons: ClassVar[Mapping[str, str]] = {}
    drivers: dict[str, KindDriver]  # kind -> its driver, set when connected

    @classmethod
    @abstractmethod
    def settings_from(cls, endpoint: str, inputs: Mapping[str, Any], environ: Mapping[str, str]) -> BaseModel:
        """Build validated settings from the Endpoint's inputs, falling back to the environment."""

    @classmethod
    @abstractmethod
    def connect(cls, settings: BaseModel) -> Provider:
        """Connect and log in; raise ConnectionFailed with one clear sentence on failure."""

    @classmethod
    def name_problem(cls, kind: str, name: str) -> str | None:
        """Why ``name`` cannot name a ``kind`` object on this hypervisor, or None: the hypervisor's own rule,
        exactly, so a name that passes here is never refused at apply (checked when the stack is evaluated,
        without connecting). Default: only the rule every hypervisor shares (virtplane.specs.validate_name)."""
        return None

    def identity(self) -> str:
        """What makes this backend itself, whatever address reached it (vCenter instance UUID, Proxmox
        cluster name): two Endpoints of one stack with one identity are refused at plan time."""
        raise NotImplementedError

    def hosts(self) -> list[Host]:
        """The endpoint's hosts with their facts (the inventory), read in one batched pass."""
        raise NotImplementedError(f"the {self.name} provider does not read host facts yet")

    def serves(self, kind: str) -> bool:
        """Whether this endpoint has a driver for ``kind`` (vSphere has no containers)."""
        return kind in self.drivers

    def driver(self, kind: str) -> KindDriver:
        """The driver for a resource kind ("VirtualMachine", "Network", "Container")."""
        try:
            return self.drivers[kind]
        except KeyError:
            raise VirtplaneError(f"the {self.name} provider has no driver for kind '{kind}' "
                                 f"(known: {', '.join(self.drivers)})") from None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Log out and release connections."""
