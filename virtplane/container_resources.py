"""The Container resource a stack author writes, with its parts: ``Mount`` and ``ContainerFeatures``.

A ``Container`` is declared beside VMs, on an endpoint whose provider has containers (Proxmox VE today), and is a
Pulumi resource ``virtplane:index:Container`` like the others. Its ``password`` and ``ssh_keys`` are secret
outputs under Pulumi and masked wherever virtplane prints anything.
"""

from __future__ import annotations

from typing import Any

import pulumi

from virtplane.resources import Disk, Network, Nic, _items, _Managed, _unknown

_FIELDS = ["template", "clone_from", "linked_clone", "cpus", "memory", "swap", "rootfs", "mounts", "nics",
           "unprivileged", "features", "devices", "hostname", "password", "ssh_keys", "docker", "power", "node",
           "tags", "opts"]


class Mount:
    """A mount point: a volume of ``size`` (GiB, or a string like ``"10GiB"``) on ``storage`` (unset: the
    endpoint's), mounted at ``path`` inside the container. ``slot`` names its place (Proxmox ``"mp0"``); unset, it is
    derived. Removing a mount point from the stack destroys its volume (the plan says so)."""

    def __init__(self, path: str, size: int | str, storage: str | None = None, *, slot: str | None = None) -> None:
        self.args = {"path": path, "size": size, "storage": storage, "slot": slot}


class ContainerFeatures:
    """Kernel features a container may use, each managed only when given: ``nesting`` (containers inside it;
    Docker, systemd's sandboxing), ``keyctl`` (the keyctl() call Docker needs in an unprivileged container),
    ``fuse`` (FUSE file systems)."""

    def __init__(self, *, nesting: bool | None = None, keyctl: bool | None = None, fuse: bool | None = None) -> None:
        self.args = {key: value for key, value in (("nesting", nesting), ("keyctl", keyctl), ("fuse", fuse))
                     if value is not None}


class Container(_Managed):
    """A system container (Proxmox VE LXC).

    ``template``: the OS template it is made from (``"local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"``, or the
    file name alone); or ``clone_from``: the name of a container or container template to clone (``linked_clone``
    shares its volumes). ``cpus``: cores. ``memory``, ``swap``: MiB or strings like ``"1GiB"``. ``rootfs``: a
    ``Disk(size, storage)`` for the root filesystem (8 GiB when made and unset). ``mounts``: ``Mount`` objects.
    ``nics``: ``Nic`` objects (network only). ``unprivileged``: True when made and unset; changing it replaces the
    container. ``features``: ``ContainerFeatures``. ``devices``: host device paths passed in (needs ``node``).
    ``hostname``: unset, the resource name. ``password``, ``ssh_keys`` (a list of public keys): root's, set when the
    container is made, secret. ``docker``: it will run Docker (the policy checks nesting and keyctl). ``power``:
    ``"on"`` or ``"off"``. ``node``: the host to run on; None lets placement choose. ``tags``: a list of strings.
    """

    kind = "Container"

    def __init__(self, resource_name: str, *, template: str | None = None, clone_from: str | None = None,
                 linked_clone: bool = False, cpus: int | None = None, memory: int | str | None = None,
                 swap: int | str | None = None, rootfs: Disk | dict[str, Any] | None = None,
                 mounts: list[Mount] | None = None, nics: list[Nic] | None = None, unprivileged: bool | None = None,
                 features: ContainerFeatures | dict[str, Any] | None = None, devices: list[str] | None = None,
                 hostname: str | None = None, password: str | pulumi.Output[str] | None = None,
                 ssh_keys: list[str] | None = None, docker: bool = False, power: str | None = None,
                 node: str | None = None, tags: list[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None, **unknown: Any) -> None:
        problems = _unknown(unknown, _FIELDS)
        items = {field: _items(field, values, expected, problems)
                 for field, values, expected in (("mounts", mounts, Mount), ("nics", nics, Nic))}
        nics_given = [nic for nic in nics if isinstance(nic, Nic)] if isinstance(nics, list | tuple) else []
        deps = {f"Network/{nic.network.resource_name}" for nic in nics_given if isinstance(nic.network, Network)}
        self._referenced = tuple(nic.network for nic in nics_given)
        inputs = {
            "template": template, "clone_from": clone_from, "linked_clone": linked_clone, "cpus": cpus,
            "memory": memory, "swap": swap, "rootfs": _rootfs(rootfs), **items, "unprivileged": unprivileged,
            "features": features.args if isinstance(features, ContainerFeatures) else features,
            "devices": _listed(devices), "hostname": hostname, "password": password,
            "ssh_keys": _listed(ssh_keys), "docker": docker, "power": power, "node": node, "tags": _listed(tags),
        }
        self._declare(resource_name, inputs, deps, opts, problems)


def _listed(values: Any) -> Any:
    """A tuple as a list; anything else as given (the spec says what is wrong with it)."""
    return list(values) if isinstance(values, list | tuple) else values


def _rootfs(value: Disk | dict[str, Any] | None) -> dict[str, Any] | None:
    """A ``Disk``'s size and storage (the bus, thin and slot it could carry are not container settings: given, they
    are refused by the spec as unknown fields)."""
    if isinstance(value, Disk):
        return {key: item for key, item in value.args.items() if item is not None}
    return value
