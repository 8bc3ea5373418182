"""Pure translation between a ContainerSpec and a PVE container configuration (the ``pct config`` key/values).

No I/O here: what is sent at create time, how a live configuration reads back into the spec's shape, and the keys an
update sets or deletes. Keys and formats follow pve-container's schema (``/nodes/{node}/lxc`` in PVE's API viewer):

- CPUs are ``cores``; ``memory`` and ``swap`` in MiB (PVE's defaults 512 and 512 when the key is absent).
- ``rootfs`` and ``mpN`` are volumes: ``storage:size`` (GiB) for a new one, then ``volume,mp=/path,size=8G``; a mount
  point's slot is its key. Bind and device mounts (a host path instead of a volume) read back with no storage.
- ``netN = name=ethN,bridge=<bridge>[,tag=<vlan>][,hwaddr=…]``: a container's NIC is a veth pair (no model); it reads
  back as the declared network with that bridge and VLAN (config.py's NetworkNames). Its other options (``ip=``,
  ``firewall=``, the MAC) are kept when it is changed.
- ``features`` is one property string (``nesting=1,keyctl=1``): the flags a stack sets are merged into the live
  ones, so the flags it leaves unset, and those virtplane does not manage (``mount=``, ``mknod``), stay as they are.
- ``devN = /dev/…`` passes a host device in (PVE 8.1 and later); devices compare as a set of paths.
- ``unprivileged`` is fixed at creation (PVE refuses to change it: "unable to modify read-only option").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from virtplane.container_specs import ContainerFeaturesSpec, ContainerSpec, MountSpec
from virtplane.providers.base import FieldChange
from virtplane.providers.proxmox.config import (
    DiskSlot,
    NetworkNames,
    NicSlot,
    join_options,
    new_nic_slot,
    nic_slots,
    split_options,
)
from virtplane.providers.proxmox.ownership import encode_tags, user_tags
from virtplane.providers.proxmox.reconfigure import NoFreeSlot, Reconfiguration
from virtplane.providers.vm_rules import top_field
from virtplane.slots import next_numbered
from virtplane.specs import NicSpec

MOUNT_SLOTS = 256  # mp0 … mp255
DEVICE_SLOTS = 256  # dev0 … dev255
NIC_SLOTS = 32  # net0 … net31
DEFAULT_MEMORY = 512  # MiB, pve-container's default
DEFAULT_SWAP = 512
FEATURES = tuple(ContainerFeaturesSpec.model_fields)  # nesting, keyctl, fuse
_MOUNT_KEY = re.compile(r"^mp(\d+)$")
_DEVICE_KEY = re.compile(r"^dev(\d+)$")
_NIC_KEY = re.compile(r"^net(\d+)$")
_ITEM = re.compile(r"^(mounts|nics)\[([^\]]+)\](?:\.(\w+))?$")
_TRUE = ("1", "true", "yes", "on")


# ---- volumes -----------------------------------------------------------------------------------------


def volume_of(value: Any) -> tuple[DiskSlot, str | None]:
    """A ``rootfs``/``mpN`` value as (its volume with size and storage, its mount path)."""
    volume, options = split_options(str(value))
    volume = volume or options.pop("volume", "")
    return DiskSlot("rootfs", volume, options), options.get("mp")


def rootfs_state(config: Mapping[str, Any]) -> dict[str, Any] | None:
    if not config.get("rootfs"):
        return None
    slot, _ = volume_of(config["rootfs"])
    return {"size": slot.size, "storage": slot.storage}


def mount_keys(config: Mapping[str, Any]) -> list[str]:
    return sorted((key for key in config if _MOUNT_KEY.match(key)), key=lambda key: int(key[2:]))


def mount_state(key: str, value: Any) -> dict[str, Any]:
    slot, path = volume_of(value)
    return {"path": path, "size": slot.size, "storage": slot.storage, "slot": key}


def new_mount_value(mount: MountSpec, storage: str) -> str:
    return f"{storage}:{mount.size},mp={mount.path}"


def new_mount_slot(taken: set[str]) -> str:
    """The lowest free ``mpN`` (past the last one when all are taken, which check() reports)."""
    return next_numbered("mp", taken)


def mount_slot_problem(slot: str) -> str | None:
    found = _MOUNT_KEY.match(slot)
    if found is None or int(found.group(1)) >= MOUNT_SLOTS:
        return f"slot '{slot}' is not a Proxmox mount point key (mp0 to mp{MOUNT_SLOTS - 1})"
    return None


def ct_nic_slot_problem(slot: str) -> str | None:
    found = _NIC_KEY.match(slot)
    if found is None or int(found.group(1)) >= NIC_SLOTS:
        return f"slot '{slot}' is not a Proxmox network device key (net0 to net{NIC_SLOTS - 1})"
    return None


def new_slot(collection: str, item: Mapping[str, Any], taken: set[str]) -> str:
    """The driver's ``new_slot``: a mount point takes the lowest free ``mpN``, a NIC the lowest free ``netN``."""
    if collection == "mounts":
        return new_mount_slot(taken)
    return new_nic_slot(taken) or next_numbered("net", taken, NIC_SLOTS)


# ---- NICs, features, devices -------------------------------------------------------------------------


def ct_nic_value(nic: NicSpec, names: NetworkNames, previous: NicSlot | None = None) -> str:
    """The ``netN`` value for ``nic``: ``name=ethN`` (kept when the NIC is changed), the bridge and VLAN of its
    network, and the live NIC's other options (MAC, IP settings, firewall)."""
    bridge, vlan = names.wiring(nic.network)
    options = dict(previous.options) if previous else {}
    options.pop("tag", None)
    options.setdefault("name", f"eth{str(nic.slot).removeprefix('net')}")
    options["bridge"] = bridge
    if vlan:
        options["tag"] = str(vlan)
    order = ["name", *sorted(key for key in options if key != "name")]
    return join_options(None, {key: options[key] for key in order})


def ct_nic_state(slot: NicSlot, names: NetworkNames) -> dict[str, Any]:
    return {"network": names.name_of(slot.bridge, slot.vlan), "adapter": None, "device": None, "slot": slot.key}


def features_state(value: Any) -> dict[str, bool]:
    _, options = split_options(str(value or ""))
    return {flag: str(options.get(flag, "0")).lower() in _TRUE for flag in FEATURES}


def features_value(wanted: ContainerFeaturesSpec, live: Any) -> str:
    """The ``features`` value with the flags ``wanted`` sets merged into the live ones ("" when none is left on)."""
    _, options = split_options(str(live or ""))
    for flag in FEATURES:
        setting = getattr(wanted, flag)
        if setting is True:
            options[flag] = "1"
        elif setting is False:
            options.pop(flag, None)
    return join_options(None, {key: options[key] for key in sorted(options)})


def device_paths(config: Mapping[str, Any]) -> dict[str, str]:
    """``devN`` key -> the host device path it passes in."""
    found = {}
    for key, value in config.items():
        if _DEVICE_KEY.match(key):
            first, options = split_options(str(value))
            found[key] = first or options.get("path", "")
    return found


# ---- whole containers --------------------------------------------------------------------------------


def _int(value: Any, default: int | None) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def container_state(config: Mapping[str, Any], node: str, running: bool, names: NetworkNames) -> dict[str, Any]:
    """A live container's configuration in the spec's shape (``ContainerSpec.model_dump()``). What is only read at
    creation (template, secrets, the Docker intent) reads back unset."""
    return {
        "template": None,
        "clone_from": None,
        "linked_clone": False,
        "cpus": _int(config.get("cores"), None),  # absent: every host CPU, which no spec value means
        "memory": _int(config.get("memory"), DEFAULT_MEMORY),
        "swap": _int(config.get("swap"), DEFAULT_SWAP),
        "rootfs": rootfs_state(config),
        "mounts": [mount_state(key, config[key]) for key in mount_keys(config)],
        "nics": [ct_nic_state(slot, names) for slot in nic_slots(config)],
        "unprivileged": str(config.get("unprivileged", "0")).lower() in _TRUE,
        "features": features_state(config.get("features")),
        "devices": sorted(device_paths(config).values()),
        "hostname": config.get("hostname"),
        "password": None,
        "ssh_keys": None,
        "docker": False,
        "power": "on" if running else "off",
        "node": node,
        "tags": user_tags(config.get("tags")),
    }


def create_config(spec: ContainerSpec, rootfs_storage: str, mount_storages: list[str], names: NetworkNames
                  ) -> dict[str, Any]:
    """Every config key of a new container but its template, hostname, description and secrets; ``spec`` has the
    creation defaults and a slot on every mount point and NIC; ``mount_storages[i]`` is where mount point i goes."""
    assert spec.rootfs is not None
    config: dict[str, Any] = {"rootfs": f"{rootfs_storage}:{spec.rootfs.size}", "tags": encode_tags(spec.tags or [])}
    if spec.cpus is not None:
        config["cores"] = spec.cpus
    if spec.memory is not None:
        config["memory"] = spec.memory
    if spec.swap is not None:
        config["swap"] = spec.swap
    if spec.unprivileged is not None:
        config["unprivileged"] = int(spec.unprivileged)
    if spec.features is not None and (value := features_value(spec.features, None)):
        config["features"] = value
    for position, mount in enumerate(spec.mounts or []):
        if mount.slot is None or mount_slot_problem(mount.slot):
            raise ValueError(f"mount point {position} has no usable slot ({mount.slot})")
        config[mount.slot] = new_mount_value(mount, mount_storages[position])
    for position, nic in enumerate(spec.nics or []):
        if nic.slot is None or ct_nic_slot_problem(nic.slot):
            raise ValueError(f"NIC {position} has no usable slot ({nic.slot})")
        config[nic.slot] = ct_nic_value(nic, names)
    for number, path in enumerate(spec.devices or []):
        config[f"dev{number}"] = path
    return config


def reconfigure_container(spec: ContainerSpec, config: Mapping[str, Any], changes: list[FieldChange],
                          names: NetworkNames, storage_for: Callable[[MountSpec], str],
                          finish_marker: bool = False) -> Reconfiguration:
    """What to set, delete and grow so that ``config`` matches ``spec`` in ``changes``; only what they name is
    touched, and a field the spec leaves unset is never written. ``finish_marker`` writes the tags (the marker tag of an
    interrupted clone) even when they did not change. Removed mount points' volumes are listed to be destroyed."""
    plan = Reconfiguration()
    fields = {top_field(change.path) for change in changes}
    for field, key in (("cpus", "cores"), ("memory", "memory"), ("swap", "swap"), ("hostname", "hostname")):
        if field in fields and getattr(spec, field) is not None:
            plan.settings[key] = getattr(spec, field)
    if ("tags" in fields and spec.tags is not None) or finish_marker:
        plan.settings["tags"] = encode_tags(spec.tags if spec.tags is not None else user_tags(config.get("tags")))
    if "features" in fields and spec.features is not None:
        value = features_value(spec.features, config.get("features"))
        if value:
            plan.settings["features"] = value
        elif "features" in config:
            plan.delete.append("features")
    if "devices" in fields and spec.devices is not None:
        _devices(plan, spec.devices, config)
    if "rootfs" in fields and spec.rootfs is not None:
        live = rootfs_state(config)
        if live is not None and spec.rootfs.size > live["size"]:
            plan.resize.append(("rootfs", spec.rootfs.size))
    for change in changes:
        found = _ITEM.match(change.path)
        if found is None:
            continue
        collection, slot, attribute = found.groups()
        if collection == "mounts":
            _mount(plan, spec, config, slot, attribute, change, storage_for)
        else:
            _nic(plan, spec, config, slot, change, names)
    return plan


def _devices(plan: Reconfiguration, wanted: list[str], config: Mapping[str, Any]) -> None:
    live = device_paths(config)
    plan.delete += sorted((key for key, path in live.items() if path not in wanted), key=lambda k: int(k[3:]))
    taken = set(live)
    for path in wanted:
        if path not in live.values():
            key = next_numbered("dev", taken)
            if int(key[3:]) >= DEVICE_SLOTS:
                raise NoFreeSlot(f"device {path} cannot be added: every devN slot is taken")
            taken.add(key)
            plan.settings[key] = path


def _mount(plan: Reconfiguration, spec: ContainerSpec, config: Mapping[str, Any], slot: str, attribute: str | None,
           change: FieldChange, storage_for: Callable[[MountSpec], str]) -> None:
    declared = {mount.slot: mount for mount in spec.mounts or [] if mount.slot}
    if attribute is None and change.new is None:
        if slot in config:
            plan.delete.append(slot)
            volume, _ = volume_of(config[slot])
            plan.removed_volumes.append(volume.volume)
    elif attribute is None and slot in declared:
        if problem := mount_slot_problem(slot):
            raise NoFreeSlot(f"mount point {slot} cannot be added: {problem}")
        plan.settings[slot] = new_mount_value(declared[slot], storage_for(declared[slot]))
    elif attribute == "size" and slot in declared:
        live, _ = volume_of(config.get(slot, ""))
        if declared[slot].size > live.size:
            plan.resize.append((slot, declared[slot].size))
    elif attribute == "path" and slot in declared and slot in config:
        volume, options = split_options(str(config[slot]))
        options["mp"] = declared[slot].path
        plan.settings[slot] = join_options(volume, options)
    # a storage change replaces the container: it never reaches an update


def _nic(plan: Reconfiguration, spec: ContainerSpec, config: Mapping[str, Any], slot: str, change: FieldChange,
         names: NetworkNames) -> None:
    declared = {nic.slot: nic for nic in spec.nics or [] if nic.slot}
    if change.new is None and slot in config:
        plan.delete.append(slot)
    elif slot in declared:
        if problem := ct_nic_slot_problem(slot):
            raise NoFreeSlot(f"NIC {slot} cannot be added: {problem}")
        live = {nic.key: nic for nic in nic_slots(config)}
        plan.settings[slot] = ct_nic_value(declared[slot], names, live.get(slot))
