"""A plan: per resource, the action to take and each changed field with how it will be applied."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

from virtplane.kinds import KINDS
from virtplane.kinds import kind as registered_kind
from virtplane.providers.base import FieldChange, GuestState, Observed, Rule, Volumes, disk_volume
from virtplane.specs import Spec


class Action(enum.StrEnum):
    NOOP = "noop"
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"


# The list fields whose items hold data (a VM's disks, a container's mount points), and what one item is called.
_DATA_LISTS = sorted({field for kind in KINDS for field in kind.holds_data if field in ("disks", "mounts")})
_DATA_ITEM = re.compile(rf"^({'|'.join(_DATA_LISTS)})\[([^\]]+)\]$")
_ITEM_NOUN = {"disks": "disk", "mounts": "mount point", "rootfs": "root filesystem"}
GUEST_INIT_FIELDS = frozenset({"cloud_init"})  # fields a change of which the guest takes as a new instance


@dataclass(frozen=True)
class PlannedChange:
    """One changed field and how it is applied. ``refused`` says why the hypervisor cannot make it at all (a disk
    shrunk): such a change is reported like any other (drift, plan) but never applied, and apply refuses its
    resource. ``destroys`` names what else applying it destroys, as the driver says (a Proxmox EFI vars disk
    re-made for secure boot)."""

    change: FieldChange
    rule: Rule
    refused: str | None = None
    destroys: tuple[str, ...] = ()

    @property
    def removed_disk(self) -> dict[str, Any] | None:
        """The live disk or mount point this change removes (``disks[scsi0:1]`` -> None), or None."""
        if _DATA_ITEM.match(self.change.path) and self.change.new is None and isinstance(self.change.old, dict):
            return self.change.old
        return None

    @property
    def removed_noun(self) -> str:
        """What the removed item is called ("disk", "mount point")."""
        found = _DATA_ITEM.match(self.change.path)
        return _ITEM_NOUN[found.group(1)] if found else "item"

    @property
    def destroys_data(self) -> bool:
        return self.refused is None and (self.removed_disk is not None or bool(self.destroys))

    @property
    def how(self) -> str:
        """``in-place``, ``power-off``, ``replace`` or ``refused``."""
        return "refused" if self.refused is not None else self.rule.value

    @property
    def reinitializes_guest(self) -> bool:
        """New cloud-init documents for a VM that exists: its guest runs cloud-init's per-instance steps again at its
        next boot (the instance-id changes with them), as if it were new."""
        return self.change.path in GUEST_INIT_FIELDS

    def to_json(self) -> dict[str, Any]:
        document = {"field": self.change.path, "old": self.change.old, "new": self.change.new, "apply": self.how,
                    "destroys_data": self.destroys_data, "guest_reinit": self.reinitializes_guest}
        if self.refused is not None:
            document["cannot_apply"] = self.refused
        if self.destroys:
            document["destroys"] = list(self.destroys)
        return document


@dataclass
class ResourcePlan:
    kind: str
    name: str
    endpoint: str
    action: Action
    spec: Spec | None = None
    observed: Observed | None = None
    changes: list[PlannedChange] = field(default_factory=list)
    depends_on: set[str] = field(default_factory=set)
    note: str = ""
    placement: str | None = None  # the host a new VM goes to, decided at plan time
    assignment: Any = None  # virtplane.placement.Assignment: the devices chosen there, for VMs that need them
    destroying: bool = False  # part of a ``destroy``: deleting is what was asked for
    kept: dict[str, Any] = field(default_factory=dict)  # a replace: live values kept for fields left unset
    volumes: Volumes | None = None  # a delete or replace: what it destroys and keeps, as the driver names them
    shutdown_seconds: float | None = None  # a power-off change: the clean shutdown's time before a hard one
    pool: str | None = None  # the DesktopPool this VM is a desktop of (virtplane/pools/planning.py)
    pool_number: int | None = None
    guest: GuestState | None = None  # read for desktops a shrink deletes or a recompose re-clones
    deferred: str = ""  # why a change of this desktop is left for a later run
    unowned: bool = False  # an object that exists (opts.import_) without this stack's marker: compared, never changed

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def needs_power_off(self) -> bool:
        return any(c.rule is Rule.POWER_OFF for c in self.changes if c.refused is None)

    @property
    def refused(self) -> list[PlannedChange]:
        """The changes the hypervisor cannot make: apply refuses this resource while any is left."""
        return [c for c in self.changes if c.refused is not None]

    def refusal(self) -> str:
        """The one sentence apply reports for a resource it refuses (every impossible field named)."""
        fields = "; ".join(f"field '{c.change.path}': cannot apply: {c.refused}" for c in self.refused)
        return f"{self.kind} '{self.name}': {fields}; none of its changes were made"

    def data_loss(self) -> list[str]:
        """One sentence per part of this change that destroys data (empty when none does)."""
        kind = registered_kind(self.kind)
        if not kind.holds_data:
            return []
        if self.pool is not None and self.action in (Action.DELETE, Action.REPLACE) and not self.destroying:
            # a desktop not in use is disposable; one in use is deferred (recompose) or blocks the shrink (Plan)
            return [] if self.guest is None or not self.guest.in_use or self.action is Action.REPLACE else [
                f"pool {self.pool}: desktop {self.name} is in use"]
        label = kind.label
        if self.action in (Action.REPLACE, Action.DELETE):
            if self.volumes is not None:  # named by the driver: what goes, and what is detached first and kept
                held = f"disks ({', '.join(self.volumes.destroyed) or 'none'})"
                if self.volumes.kept:
                    held += f"; it keeps {', '.join(self.volumes.kept)}, detached first"
            else:
                held = self._held_data(kind.holds_data)
            if self.action is Action.REPLACE:
                fields = ", ".join(c.change.path for c in self.changes if c.rule is Rule.REPLACE)
                return [f"{label} {self.name} on {self.endpoint} would be replaced (deleted and created again) to "
                        f"change {fields}, destroying its {held}"]
            if not self.destroying:
                return [f"{label} {self.name} on {self.endpoint} is no longer declared; deleting it destroys its "
                        f"{held}"]
            return []
        lost = [f"{label} {self.name} on {self.endpoint}: {c.removed_noun} {disk_volume(c.removed_disk)} is no longer "
                "declared; removing it destroys its data" for c in self.changes if c.removed_disk is not None]
        return lost + [f"{label} {self.name} on {self.endpoint}: changing {c.change.path} destroys {what}"
                       for c in self.changes if c.refused is None for what in c.destroys]

    def _held_data(self, fields: tuple[str, ...]) -> str:
        """``disks (scsi0 (40 GiB))``; ``root filesystem and mount points (rootfs (8 GiB), mp0 (10 GiB))``."""
        state = self.observed.state if self.observed is not None else {}
        items: list[str] = []
        for name in fields:
            value = state.get(name)
            if isinstance(value, dict):
                items.append(disk_volume({**value, "slot": value.get("slot", name)}))
            else:
                items.extend(disk_volume(item) for item in value or [])
        nouns = [_ITEM_NOUN[name] + ("s" if name in _DATA_LISTS else "") for name in fields]
        return f"{' and '.join(nouns)} ({', '.join(items) or 'none'})"

    @property
    def destroys_data(self) -> bool:
        return bool(self.data_loss())

    def to_json(self) -> dict[str, Any]:
        document = {"kind": self.kind, "name": self.name, "endpoint": self.endpoint, "action": self.action.value,
                    "power_off": self.needs_power_off, "note": self.note or None, "placement": self.placement,
                    "destroys_data": self.destroys_data, "owned": not self.unowned,
                    "changes": [c.to_json() for c in self.changes],
                    **({"shutdown_seconds": self.shutdown_seconds} if self.needs_power_off and self.shutdown_seconds
                       else {}),
                    **({"kept": self.kept} if self.kept else {}),
                    **({"volumes": {"destroyed": self.volumes.destroyed, "kept": self.volumes.kept}}
                       if self.volumes is not None else {})}
        if self.pool is not None:
            document.update(pool=self.pool, in_use=self.guest.in_use if self.guest else None,
                            deferred=self.deferred or None)
        return document


@dataclass
class Plan:
    stack: str
    resources: list[ResourcePlan] = field(default_factory=list)
    destroy: bool = False

    def data_loss(self) -> list[str]:
        """Every sentence of data this plan would destroy (apply needs --allow-data-loss for them); a pool's
        desktops in use are named in one sentence per pool."""
        from virtplane.pools.planning import pool_data_loss

        return [sentence for item in self.pending if item.pool is None or item.destroying
                for sentence in item.data_loss()] + ([] if self.destroy else pool_data_loss(self))

    @property
    def pending(self) -> list[ResourcePlan]:
        return [r for r in self.resources if r.action is not Action.NOOP]

    @property
    def deferred(self) -> list[ResourcePlan]:
        """Changes left for a later run (a desktop in use whose recompose waits): the stack is not converged."""
        return [r for r in self.resources if r.deferred]

    def counts(self) -> dict[str, int]:
        counts = {action.value: 0 for action in Action}
        for resource in self.resources:
            counts[resource.action.value] += 1
        counts["not_owned"] = sum(1 for resource in self.resources if resource.unowned)
        return counts

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "summary": self.counts(),
                "resources": [r.to_json() for r in self.resources]}
