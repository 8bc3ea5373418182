"""Hypervisor-neutral desired-state models, one per resource kind.

Specs are validated and normalized here once: sizes become whole MiB (memory) or GiB (disks), enums are
closed sets, defaults are filled. Drivers translate specs to their hypervisor and read live objects
back into the same shape, so one generic diff serves every provider.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
)

from virtplane import cloudinit
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

_ANY_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,100}$")

# Provider-specific names accepted for the neutral ones, so users can write what they know.
_ADAPTER_ALIASES = {"vmxnet3": "paravirtual", "virtio": "paravirtual"}
_BUS_ALIASES = {"pvscsi": "paravirtual", "virtio-scsi": "paravirtual"}


def _alias(table: dict[str, str]):
    return BeforeValidator(lambda v: table.get(v, v) if isinstance(v, str) else v)


def _normalize_tags(tags: list[str] | None) -> list[str] | None:
    if tags is None:
        return None
    for tag in tags:
        if not tag or "," in tag or ";" in tag or tag != tag.strip():
            raise ValueError(f"tag {tag!r} must be non-empty, without ',' or ';' or surrounding spaces")
    return sorted(set(tags))


class Spec(BaseModel):
    """Base of all specs: unknown fields are errors, values are re-validated on assignment."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    slotted: ClassVar[tuple[str, ...]] = ()  # lists whose items are identified by slot (virtplane/slots.py)

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field checks, as (field, message) pairs; empty when the spec is consistent."""
        return []

    def with_creation_defaults(self) -> Spec:
        """The spec an object made from nothing gets (defaults for what the stack leaves unset); itself here."""
        return self


class DiskSpec(BaseModel):
    """``storage`` is where the disk lives (a vSphere datastore, a Proxmox storage); ``datastore`` is
    accepted as its other name. ``bus``: ``paravirtual`` is PVSCSI on vSphere and VirtIO SCSI on Proxmox;
    ``virtio-blk`` exists on Proxmox only, ``nvme`` on vSphere only. ``slot`` is the disk's place on the
    hypervisor (vSphere ``scsi0:1``, Proxmox ``scsi1``/``virtio0``, Hyper-V ``scsi0:1``): a disk is
    identified by it; unset, the driver derives it (see virtplane/slots.py). Unset fields (None) are not
    managed: ``thin`` and ``bus`` take the creation defaults only when the disk is made."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    size: GiB
    storage: str | None = Field(default=None, validation_alias=AliasChoices("storage", "datastore"))
    thin: bool | None = None
    bus: Annotated[Literal["paravirtual", "lsilogic", "sata", "nvme", "ide", "virtio-blk"] | None,
                   _alias(_BUS_ALIASES)] = None
    slot: str | None = None


class NicSpec(BaseModel):
    """``adapter`` ``sriov`` is a virtual function of an SR-IOV physical function (``device`` may name the
    PF's PCI address or, on Proxmox, a resource mapping). ``slot``: vSphere ``ethernet0``, Proxmox ``net0``,
    Hyper-V the adapter's index ``nic0``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    network: str
    adapter: Annotated[Literal["paravirtual", "e1000", "e1000e", "sriov"] | None, _alias(_ADAPTER_ALIASES)] = None
    device: str | None = None
    slot: str | None = None


class GpuSpec(BaseModel):
    """A GPU for a VM. ``passthrough``: a whole device (``device`` names a PCI address such as
    ``0000:3b:00.0`` or, on Proxmox, a resource mapping; unset: any capable GPU, filtered by ``vendor``).
    ``vgpu``: a slice by ``profile`` (vSphere ``grid_a100-20c``, Proxmox mdev type ``nvidia-471``,
    Hyper-V GPU partition)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["passthrough", "vgpu"]
    profile: str | None = None
    device: str | None = None
    vendor: Literal["nvidia", "amd", "intel"] | None = None


class CloudInitSpec(BaseModel):
    """Cloud-init for the VM's guest, delivered the hypervisor's own way at creation and whenever it changes:
    ``user_data`` (cloud-config YAML, a script or a MIME multipart message), ``meta_data`` (a YAML mapping with an
    ``instance-id``) and ``network_config`` (network configuration version 1 or 2). ``virtplane.CloudInit`` renders
    them from the stack's Jinja2 templates. Only their digest (``sha256:…``) is ever shown or compared: they may
    hold secrets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_data: str
    meta_data: str
    network_config: str | None = None

    @field_validator("user_data")
    @classmethod
    def _user_data(cls, text: str) -> str:
        _document(cloudinit.user_data_format, text)
        return text

    @field_validator("meta_data")
    @classmethod
    def _meta_data(cls, text: str) -> str:
        _document(cloudinit.meta_mapping, text)
        return text

    @field_validator("network_config")
    @classmethod
    def _network_config(cls, text: str | None) -> str | None:
        if text is not None:
            _document(cloudinit.network_mapping, text)
        return text

    @property
    def documents(self) -> cloudinit.Documents:
        return cloudinit.Documents(self.user_data, cloudinit.meta_mapping(self.meta_data),
                                   None if self.network_config is None else cloudinit.network_mapping(
                                       self.network_config))

    @property
    def digest(self) -> str:
        return self.documents.digest

    @model_serializer
    def _as_digest(self) -> str:
        """In a VM's state (what plans, drift and Pulumi outputs carry) cloud-init is its digest."""
        return self.digest


def _document(check: Any, text: str) -> None:
    try:
        check(text)
    except cloudinit.DocumentError as exc:
        raise ValueError(str(exc)) from None


class NetworkSpec(Spec):
    vlan: int = Field(default=0, ge=0, le=4094)


class VirtualMachineSpec(Spec):
    """``cpus`` is the total number of virtual CPUs, spread over ``sockets`` (which must divide it;
    None keeps the hypervisor's layout: one core per socket on vSphere, so CPUs can be hot-added).
    ``node`` is the host to run on (a Proxmox node, an ESXi host); None lets placement choose.
    ``machine`` is the virtual hardware platform (a Proxmox machine type such as ``q35``, a vSphere
    hardware version such as ``vmx-19``); None keeps the hypervisor's default.
    ``linked_clone`` makes ``clone_from`` share the template's disks instead of copying them.
    ``cloud_init`` is the guest's first-boot customization; in the VM's state it is the digest of what was
    delivered (``sha256:…``), so a changed template shows as a changed digest and re-initializes the guest.

    **Unset means not managed**: every field left None is neither compared nor changed, so a clone keeps
    its template's values. A VM made from nothing takes CREATION_DEFAULTS for what is unset."""

    slotted: ClassVar[tuple[str, ...]] = ("disks", "nics")

    cpus: int | None = Field(default=None, ge=1, le=768)
    sockets: int | None = Field(default=None, ge=1, le=16)
    memory: MiB | None = None
    node: str | None = None
    machine: str | None = None
    disks: list[DiskSpec] | None = None
    nics: list[NicSpec] | None = None
    gpus: list[GpuSpec] | None = None
    firmware: Literal["bios", "uefi"] | None = None
    secure_boot: bool | None = None
    guest_os: str | None = None
    power: Literal["on", "off"] | None = None
    nested_virtualization: bool | None = None
    clone_from: str | None = None
    linked_clone: bool = False
    tags: Annotated[list[str] | None, AfterValidator(_normalize_tags)] = None
    cloud_init: CloudInitSpec | None = None

    def problems(self) -> list[tuple[str, str]]:
        found = []
        firmware = self.firmware or (None if self.clone_from else CREATION_DEFAULTS["firmware"])
        if self.secure_boot and firmware is not None and firmware != "uefi":
            found.append(("secure_boot", "needs firmware='uefi'"))
        if self.sockets is not None:
            cpus = self.cpus if self.cpus is not None else (None if self.clone_from else CREATION_DEFAULTS["cpus"])
            if cpus is None:
                found.append(("sockets", "needs cpus (the number of CPUs the sockets divide)"))
            elif cpus % self.sockets:
                found.append(("sockets", f"{self.sockets} sockets do not divide {cpus} cpus evenly"))
        if self.linked_clone and self.clone_from is None:
            found.append(("linked_clone", "needs clone_from (the template whose disks are shared)"))
        for collection, items in (("disks", self.disks or []), ("nics", self.nics or [])):
            slots = [item.slot for item in items if item.slot is not None]
            for slot in sorted({s for s in slots if slots.count(s) > 1}):
                found.append((collection, f"slot {slot!r} is given to more than one item"))
        for index, gpu in enumerate(self.gpus or []):
            if gpu.mode == "vgpu" and not gpu.profile:
                found.append((f"gpus[{index}].profile", "is required for mode='vgpu' (e.g. 'grid_a100-20c')"))
            if gpu.mode == "passthrough" and gpu.profile:
                found.append((f"gpus[{index}].profile", "is for mode='vgpu'; a passthrough GPU is a whole device"))
        for index, nic in enumerate(self.nics or []):
            if nic.device is not None and nic.adapter != "sriov":
                found.append((f"nics[{index}].device", "names an SR-IOV physical function: needs adapter='sriov'"))
        return found

    def keeping(self, live: dict[str, Any]) -> tuple[VirtualMachineSpec, dict[str, Any]]:
        """For a replace: this spec with the live VM's value for every field the stack leaves unset ("unset means
        not managed" holds through a replace), and those values by field. Create-only fields are not kept; a
        live value this spec cannot hold is left out (the creation default applies). Kept disks and NICs are new
        items of the same sizes, storages, networks and adapters: their slots (and a disk's bus) are the new VM's
        own, as a create chooses them (a Generation 1 VM's IDE disk cannot be a Generation 2 VM's)."""
        kept = {name: value for name, value in live.items()
                if name in type(self).model_fields and name not in CREATE_ONLY["VirtualMachine"]
                and getattr(self, name) is None and value not in (None, [])}
        for name, dropped in (("disks", ("slot", "bus")), ("nics", ("slot",))):
            if name in kept:
                kept[name] = [{key: value for key, value in item.items() if key not in dropped}
                              for item in kept[name]]
        while kept:
            try:
                spec = type(self).model_validate({**self.model_dump(exclude_none=True), **kept})
            except ValidationError as error:
                bad = {str(e["loc"][0]) for e in error.errors() if e["loc"]}
                if not bad & set(kept):
                    return self, {}
                kept = {name: value for name, value in kept.items() if name not in bad}
                continue
            if spec.problems():  # e.g. kept sockets that do not divide declared cpus
                bad = {field.split("[")[0].split(".")[0] for field, _ in spec.problems()}
                if not bad & set(kept):
                    return spec, kept
                kept = {name: value for name, value in kept.items() if name not in bad}
                continue
            return spec, kept
        return self, {}

    def with_creation_defaults(self) -> VirtualMachineSpec:
        """The spec a VM made from nothing gets: CREATION_DEFAULTS for every unset field (not for clones,
        which keep their template's values)."""
        if self.clone_from:
            return self
        values = {key: value for key, value in CREATION_DEFAULTS.items() if getattr(self, key) is None}
        values["disks"] = [disk.model_copy(update={k: v for k, v in DISK_DEFAULTS.items()
                                                   if getattr(disk, k) is None}) for disk in self.disks or []]
        values["nics"] = [nic.model_copy(update={k: v for k, v in NIC_DEFAULTS.items() if getattr(nic, k) is None})
                          for nic in self.nics or []]
        if self.gpus is None:
            values["gpus"] = []
        return self.model_copy(update=values)


# What a VM made from nothing (no clone_from) gets for each field its stack leaves unset. Never compared:
# after creation an unset field is not managed.
CREATION_DEFAULTS: dict[str, Any] = {"cpus": 1, "memory": 1024, "firmware": "bios", "secure_boot": False,
                                     "guest_os": "linux", "power": "on", "nested_virtualization": False,
                                     "tags": []}
DISK_DEFAULTS: dict[str, Any] = {"thin": True, "bus": "paravirtual"}
NIC_DEFAULTS: dict[str, Any] = {"adapter": "paravirtual"}


# Fields read only when an object is created; a live object cannot tell them, so they are not diffed.
CREATE_ONLY: dict[str, frozenset[str]] = {"VirtualMachine": frozenset({"clone_from", "linked_clone"})}
# Fields a live object holds only as a digest of what was delivered (cloud-init): compared, never read back as
# inputs (an import leaves them unset, so not managed).
DIGEST_ONLY: dict[str, frozenset[str]] = {"VirtualMachine": frozenset({"cloud_init"})}


def validate_name(kind: str, name: str) -> None:
    """The rule of every hypervisor: 1 to 100 characters, no control characters, not blank. Each provider
    adds its own rule (Provider.name_problem, see virtplane/names.py), checked when the stack is evaluated."""
    if not isinstance(name, str) or not _ANY_NAME.match(name) or not name.strip() or name != name.strip():
        raise SpecError(kind, str(name), [(
            "name", "must be 1 to 100 characters without control characters or surrounding spaces")])


def field_path(location: tuple[Any, ...] | list[Any]) -> str:
    """A field's path as every message writes it: ``("disks", 1, "size")`` -> ``disks[1].size``."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def describe_error(model: type[BaseModel], error: Any) -> tuple[str, str]:
    location = field_path(error["loc"]) or "(all)"
    kind = error["type"]
    if kind == "extra_forbidden":
        field = str(error["loc"][-1])
        known = _known_fields(model, error["loc"][:-1])
        close = difflib.get_close_matches(field, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f"; known fields: {', '.join(sorted(known))}"
        return location, f"unknown field{hint}"
    if kind == "missing":
        return location, "is required"
    if kind == "list_type":
        return location, _not_a_list(error["input"])
    message = error["msg"].removeprefix("Value error, ")
    if kind == "literal_error":
        message = f"got {error['input']!r}; {message[0].lower()}{message[1:]}"
    return location, message


def _not_a_list(value: Any) -> str:
    if isinstance(value, str):
        return f"expected a list, got the string {value!r}; write [{value!r}]"
    return f"expected a list, got {type(value).__name__} {value!r}"


def _known_fields(model: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in path:
        if isinstance(part, int):
            continue
        annotation = current.model_fields[part].annotation
        args = getattr(annotation, "__args__", ())
        current = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), annotation)
    return list(current.model_fields)
