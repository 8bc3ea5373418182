"""Cloud-init on Proxmox VE, pure mapping (https://pve.proxmox.com/wiki/Cloud-Init_Support): a VM gets a
cloud-init drive (``ide2: <storage>:cloudinit``, or the next free IDE slot), from which PVE builds the NoCloud
image the guest reads, and either PVE's own cloud-init options or custom snippets:

- **Native options**, when the documents say no more than PVE's options can: user-data that is cloud-config with
  only ``user`` (→ ``ciuser``), ``ssh_authorized_keys`` (→ ``sshkeys``), ``package_upgrade`` (→ ``ciupgrade``) and
  a ``hostname`` equal to the VM's name (PVE names the guest after the VM); virtplane's default meta-data (PVE
  writes its own instance-id); no network-config, or version 2 whose ``ethernets`` entries, in order, are the VM's
  NICs (``net0``, ``net1``…: PVE matches them by MAC) with only ``dhcp4``/``dhcp6``, ``addresses`` (one IPv4 and
  one IPv6 at most), ``gateway4``/``gateway6`` and ``nameservers`` (one list for all) → ``ipconfigN``,
  ``nameserver``, ``searchdomain``.
- **Snippets** (``cicustom``) for anything else: the documents as files on a storage with the ``snippets`` content
  type (``user=<storage>:snippets/<file>,meta=…,network=…``). PVE's API cannot upload snippets, so virtplane writes
  them into the storage's snippets directory as it is mounted where virtplane runs (the Endpoint's
  ``snippets_storage`` and ``snippets_path``); the files are named after the VM's ownership marker.

Read back, the digest is that of the snippets (read from the same directory), or — for native options — the
declared documents' own when the VM's options are exactly what they map to (anything else is another digest).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from virtplane import cloudinit
from virtplane.cloudinit import Documents
from virtplane.providers.base import Owner
from virtplane.specs import CloudInitSpec

DRIVE_SLOTS = ("ide2", "ide3", "ide1", "ide0")  # ide2 first, as PVE's guide has it
NATIVE_USER_KEYS = frozenset({"hostname", "user", "ssh_authorized_keys", "package_upgrade"})
NATIVE_NIC_KEYS = frozenset({"dhcp4", "dhcp6", "addresses", "gateway4", "gateway6", "nameservers"})
OPTION_KEYS = ("ciuser", "sshkeys", "ciupgrade", "nameserver", "searchdomain", "cicustom")
_IPCONFIG = re.compile(r"^ipconfig(\d+)$")
SNIPPET_PREFIX = "virtplane-"
SNIPPET_KINDS = ("user", "meta", "network")
UNREADABLE = "unreadable"


@dataclass
class Delivery:
    """What a VM's configuration needs for its cloud-init: option ``settings``, options to ``delete`` (left from
    another delivery), and ``snippets`` to write first (file name -> text)."""

    settings: dict[str, str] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    snippets: dict[str, str] = field(default_factory=dict)


def native_options(docs: Documents, vm_name: str) -> dict[str, str] | None:
    """PVE's own options for these documents, or None when they say something those options cannot."""
    try:
        user = cloudinit.mapping(docs.user_data, "cloud-config YAML") if \
            cloudinit.user_data_format(docs.user_data) == "cloud-config" else None
    except cloudinit.DocumentError:
        return None
    if user is None or set(user) - NATIVE_USER_KEYS or user.get("hostname", vm_name) != vm_name:
        return None
    if docs.meta_data != cloudinit.default_meta_data(vm_name, docs.user_data, docs.network_config):
        return None
    options: dict[str, str] = {"ciupgrade": "1" if user.get("package_upgrade") else "0"}
    if "user" in user:
        if not isinstance(user["user"], str):
            return None
        options["ciuser"] = user["user"]
    if "ssh_authorized_keys" in user:
        keys = user["ssh_authorized_keys"]
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
            return None
        options["sshkeys"] = quote("\n".join(keys), safe="")
    network = _native_network(docs.network_config)
    if network is None:
        return None
    return {**options, **network}


def _native_network(config: dict[str, Any] | None) -> dict[str, str] | None:
    if config is None:
        return {}
    inner = config.get("network") if isinstance(config.get("network"), dict) else config
    if inner.get("version") != 2 or set(inner) - {"version", "ethernets"}:
        return None
    options: dict[str, str] = {}
    servers: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()
    for index, entry in enumerate((inner.get("ethernets") or {}).values()):
        if not isinstance(entry, dict) or set(entry) - NATIVE_NIC_KEYS:
            return None
        ipconfig = _ipconfig(entry)
        if ipconfig is None:
            return None
        options[f"ipconfig{index}"] = ipconfig
        dns = entry.get("nameservers") or {}
        if not isinstance(dns, dict) or set(dns) - {"addresses", "search"}:
            return None
        servers.add((tuple(dns.get("addresses") or ()), tuple(dns.get("search") or ())))
    if len(servers) > 1:
        return None  # PVE has one nameserver and search domain setting for all NICs
    for addresses, search in servers:
        if addresses:
            options["nameserver"] = " ".join(addresses)
        if search:
            options["searchdomain"] = " ".join(search)
    return options


def _ipconfig(entry: dict[str, Any]) -> str | None:
    """``ip=…[,gw=…][,ip6=…][,gw6=…]`` for one ethernets entry, or None when PVE's ipconfig cannot say it."""
    addresses = [str(a) for a in entry.get("addresses") or []]
    parts = []
    for family, key, gateway, found in (("4", "ip", "gw", [a for a in addresses if ":" not in a]),
                                        ("6", "ip6", "gw6", [a for a in addresses if ":" in a])):
        dhcp, via = entry.get(f"dhcp{family}"), entry.get(f"gateway{family}")
        if len(found) > 1 or (dhcp and found) or (via and not found):
            return None
        if dhcp:
            parts.append(f"{key}=dhcp")
        elif found:
            parts.append(f"{key}={found[0]}" + (f",{gateway}={via}" if via else ""))
    return ",".join(parts) or "ip=dhcp"


def live_options(config: Mapping[str, Any]) -> dict[str, str]:
    """The cloud-init options a VM's configuration holds (``sshkeys`` decoded, ``ipconfigN`` as given)."""
    found = {key: str(config[key]) for key in OPTION_KEYS if config.get(key) not in (None, "")}
    found.update({key: str(value) for key, value in config.items() if _IPCONFIG.match(key)})
    if "sshkeys" in found:
        found["sshkeys"] = unquote(found["sshkeys"])
    return found


def drive_slot(config: Mapping[str, Any]) -> str | None:
    """The key of the VM's cloud-init drive (``ide2: local-lvm:vm-100-cloudinit,media=cdrom``), or None."""
    for key, value in config.items():
        if re.match(r"^(ide|sata|scsi)\d+$", key) and "cloudinit" in str(value).split(",", 1)[0]:
            return key
    return None


def free_drive_slot(taken: Collection[str]) -> str | None:
    return next((slot for slot in DRIVE_SLOTS if slot not in taken), None)


def snippet_files(owner: Owner) -> dict[str, str]:
    """kind (``user``, ``meta``, ``network``) -> the file name of this VM's snippet (one per ownership marker)."""
    tag = hashlib.sha256(owner.encode().encode()).hexdigest()[:16]
    return {kind: f"{SNIPPET_PREFIX}{tag}-{kind}.yaml" for kind in SNIPPET_KINDS}


def delivery(spec: CloudInitSpec, vm_name: str, owner: Owner, snippets_storage: str | None,
             current: Mapping[str, Any] | None = None) -> Delivery:
    """How to deliver ``spec``: native options, else snippets on ``snippets_storage``; ``current`` is the VM's
    configuration (options it holds that the new delivery does not set are deleted)."""
    docs = spec.documents
    result = Delivery()
    native = native_options(docs, vm_name)
    if native is not None:
        result.settings = dict(native)
    else:
        if snippets_storage is None:
            raise ValueError("these documents need snippets, and no snippets storage is set")
        files = snippet_files(owner)
        texts = {"user": docs.user_data, "meta": docs.meta_text(), "network": docs.network_text()}
        volumes = []
        for kind in SNIPPET_KINDS:
            if texts[kind] is not None:
                result.snippets[files[kind]] = str(texts[kind])
                volumes.append(f"{kind}={snippets_storage}:snippets/{files[kind]}")
        result.settings = {"cicustom": ",".join(volumes)}
    stale = set(live_options(current or {})) - set(result.settings)
    result.delete = sorted(stale)
    return result


def snippet_volumes(cicustom: str | None) -> dict[str, tuple[str, str]]:
    """``user=st:snippets/f.yaml,meta=…`` -> {"user": ("st", "f.yaml"), …} (volumes not in a snippets dir left out)."""
    found: dict[str, tuple[str, str]] = {}
    for part in str(cicustom or "").split(","):
        kind, sep, volume = part.partition("=")
        storage, colon, name = volume.partition(":")
        if sep and colon and name.startswith("snippets/"):
            found[kind.strip()] = (storage, name.removeprefix("snippets/"))
    return found


def observed_digest(config: Mapping[str, Any], vm_name: str, declared: CloudInitSpec | None,
                    read_snippet: Callable[[str, str], str | None]) -> str | None:
    """The digest of the cloud-init a VM receives: None without a cloud-init drive; from its snippets (read with
    ``read_snippet(storage, file)``, None when unreadable) with ``cicustom``; else from its native options, which
    count as the declared documents when they are exactly what those map to."""
    if drive_slot(config) is None:
        return None
    options = live_options(config)
    if "cicustom" in options:
        volumes = snippet_volumes(options["cicustom"])
        texts = {kind: read_snippet(*volumes[kind]) if kind in volumes else None for kind in SNIPPET_KINDS}
        if texts["user"] is None or texts["meta"] is None or ("network" in volumes and texts["network"] is None):
            return UNREADABLE
        try:
            return cloudinit.documents(str(texts["user"]), str(texts["meta"]), texts["network"]).digest
        except cloudinit.DocumentError:
            return UNREADABLE
    if declared is not None:
        native = native_options(declared.documents, vm_name)
        if native is not None and {k: unquote(v) if k == "sshkeys" else v for k, v in native.items()} == options:
            return declared.digest
    return cloudinit.DIGEST_PREFIX + hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()
