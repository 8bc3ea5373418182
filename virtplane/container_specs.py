"""The Container kind's desired state: a system container (Proxmox VE LXC; libvirt-lxc), hypervisor-neutral.

A container shares its host's kernel: it has CPUs, memory and swap, a root filesystem (``rootfs``) and mount
points (``mounts``, identified by slot like a VM's disks), NICs (by slot), and the settings only containers have:
whether it runs ``unprivileged`` (its root is an unprivileged user on the host), the kernel ``features`` it may use
(nesting, keyctl, FUSE) and host ``devices`` passed into it. It is made from an OS ``template`` or cloned from
another container (``clone_from``). **Unset means not managed**, as for VMs: a field left None is neither compared
nor changed; a container made from a template takes CONTAINER_DEFAULTS for what is unset.

``password`` and ``ssh_keys`` are secrets used once, when the container is made: they are never read back, compared,
shown, or kept in outputs. ``docker`` is not a hypervisor setting: it says the container will run Docker (or another
OCI runtime), so the policy layer checks that it can (policies/rules/container_docker.py).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

from virtplane.specs import GiB, MiB, NicSpec, Spec, _normalize_tags
from virtplane.units import SizeError, parse_size


def _mib_or_zero(value: Any) -> int:
    if value in (0, "0"):
        return 0
    try:
        return parse_size(value, "MiB")
    except SizeError as exc:
        raise ValueError(str(exc)) from None


MiBOrZero = Annotated[int, BeforeValidator(_mib_or_zero)]


def _absolute_path(path: str) -> str:
    if not path.startswith("/") or path != path.strip() or "," in path or "\n" in path or path.rstrip("/") == "":
        raise ValueError(f"{path!r} must be an absolute path inside the container, other than '/' (like '/srv/data'), "
                         "without commas")
    return path.rstrip("/")


_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def _hostname(name: str | None) -> str | None:
    if name is not None and (len(name) > 253 or not all(_LABEL.match(label) for label in name.split("."))):
        raise ValueError(f"{name!r} is not a DNS name: labels of letters, digits and inner '-', joined by '.'")
    return name


def _device_path(path: str) -> str:
    if not path.startswith("/dev/") or "," in path or path != path.strip():
        raise ValueError(f"{path!r} must be a host device path under /dev/ (like '/dev/dri/renderD128'), "
                         "without commas")
    return path


class ContainerDiskSpec(BaseModel):
    """A container's root filesystem: ``size`` in GiB (or a string like ``"8GiB"``) on ``storage`` (a Proxmox
    storage that holds container volumes; unset: the endpoint's). It is grown in place, never shrunk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: GiB
    storage: str | None = None


class MountSpec(BaseModel):
    """A mount point: a volume of ``size`` GiB on ``storage``, mounted at ``path`` inside the container. ``slot``
    is its place on the hypervisor (Proxmox ``mp0``…``mp255``): a mount point is identified by it; unset, the next
    free one. Removing a mount point destroys its volume."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Annotated[str, AfterValidator(_absolute_path)]
    size: GiB
    storage: str | None = None
    slot: str | None = None


class ContainerFeaturesSpec(BaseModel):
    """Kernel features a container may use, each managed only when set: ``nesting`` (containers or namespaces
    inside it, needed by Docker and systemd's sandboxing), ``keyctl`` (the keyctl() system call, needed by Docker
    in unprivileged containers) and ``fuse`` (FUSE file systems)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    nesting: bool | None = None
    keyctl: bool | None = None
    fuse: bool | None = None


class ContainerSpec(Spec):
    """A system container. ``template`` is the OS template it is made from (Proxmox: a ``vztmpl`` volume such as
    ``local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst``, or just its file name, found on the node's template
    storages); ``clone_from`` instead names a container (or container template) to clone, ``linked_clone`` sharing
    its volumes. ``cpus``: CPU cores; ``memory`` and ``swap``: MiB or strings like ``"1GiB"``. ``rootfs``: the root
    filesystem. ``mounts``: mount points. ``nics``: network interfaces (``Nic``; containers have no adapter types).
    ``unprivileged``: run as an unprivileged user on the host (True when a container is made and it is unset;
    changing it replaces the container). ``features``: ``ContainerFeatures``. ``devices``: host device paths passed
    into the container (``/dev/dri/renderD128``); a container with devices must name its ``node``. ``hostname``:
    the name inside the container (unset: the resource name, when made). ``password`` and ``ssh_keys``: root's
    password and SSH public keys, set once when the container is made, secret. ``docker``: the container will run
    Docker, so the policy checks its features. ``power``: ``"on"`` or ``"off"``. ``node``: the host to run on.
    ``tags``: a list of strings."""

    # Lists whose items carry a slot (virtplane/slots.py), and the collections whose items hold data.
    slotted: ClassVar[tuple[str, ...]] = ("mounts", "nics")

    template: str | None = None
    clone_from: str | None = None
    linked_clone: bool = False
    cpus: int | None = Field(default=None, ge=1, le=8192)
    memory: MiB | None = None
    swap: MiBOrZero | None = None
    rootfs: ContainerDiskSpec | None = None
    mounts: list[MountSpec] | None = None
    nics: list[NicSpec] | None = None
    unprivileged: bool | None = None
    features: ContainerFeaturesSpec | None = None
    devices: list[Annotated[str, AfterValidator(_device_path)]] | None = None
    hostname: Annotated[str | None, AfterValidator(_hostname)] = None
    password: SecretStr | None = None
    ssh_keys: list[SecretStr] | None = None
    docker: bool = False
    power: Literal["on", "off"] | None = None
    node: str | None = None
    tags: Annotated[list[str] | None, AfterValidator(_normalize_tags)] = None

    def problems(self) -> list[tuple[str, str]]:
        found = []
        if self.template is None and self.clone_from is None:
            found.append(("template", "is required: the OS template to make the container from (or clone_from=, "
                                      "a container to clone)"))
        elif self.template is not None and self.clone_from is not None:
            found.append(("clone_from", "a container is made either from a template or as a clone, not both"))
        if self.linked_clone and self.clone_from is None:
            found.append(("linked_clone", "needs clone_from (the container template whose volumes are shared)"))
        for collection, items in (("mounts", self.mounts or []), ("nics", self.nics or [])):
            slots = [item.slot for item in items if item.slot is not None]
            for slot in sorted({s for s in slots if slots.count(s) > 1}):
                found.append((collection, f"slot {slot!r} is given to more than one item"))
        paths = [mount.path for mount in self.mounts or []]
        for path in sorted({p for p in paths if paths.count(p) > 1}):
            found.append(("mounts", f"path {path!r} is the mount path of more than one mount point"))
        for index, nic in enumerate(self.nics or []):
            if nic.adapter is not None:
                found.append((f"nics[{index}].adapter", "a container's NIC is a virtual Ethernet pair (veth), "
                                                       "with no adapter type: leave adapter unset"))
            if nic.device is not None:
                found.append((f"nics[{index}].device", "containers take no SR-IOV functions: leave device unset"))
        if self.devices and self.node is None:
            found.append(("devices", "a host device is on one node: set node= to the node that has "
                                     f"{self.devices[0]}"))
        if len(set(self.devices or [])) != len(self.devices or []):
            found.append(("devices", "lists a device more than once"))
        return found

    def with_creation_defaults(self) -> ContainerSpec:
        """The spec a container made from a template gets: CONTAINER_DEFAULTS for every unset field (a clone keeps
        its source's values)."""
        if self.clone_from:
            return self
        values: dict[str, Any] = {key: value for key, value in CONTAINER_DEFAULTS.items()
                                  if getattr(self, key) is None}
        if self.rootfs is None:
            values["rootfs"] = ContainerDiskSpec(size=ROOTFS_DEFAULT_GIB)
        features = self.features or ContainerFeaturesSpec()
        values["features"] = features.model_copy(update={k: False for k in ContainerFeaturesSpec.model_fields
                                                         if getattr(features, k) is None})
        return self.model_copy(update=values)


# What a container made from a template gets for each field its stack leaves unset. Never compared.
CONTAINER_DEFAULTS: dict[str, Any] = {"cpus": 1, "memory": 512, "swap": 512, "unprivileged": True, "power": "on",
                                      "mounts": [], "nics": [], "devices": [], "tags": []}
ROOTFS_DEFAULT_GIB = 8

# Read only when a container is made (or, for ``docker``, by the policy layer): a live container cannot tell them.
CONTAINER_CREATE_ONLY = frozenset({"template", "clone_from", "linked_clone", "password", "ssh_keys", "docker"})
