"""Cloud-init on the lab's fake Proxmox VE: what fakepve knows only by name, answered as qemu-server does.

- ``cicustom`` is checked against PVE's ``pve-qm-cicustom`` format (``meta``, ``network``, ``user``, ``vendor``, each a
  volume id; qemu-server PVE/QemuServer.pm) and, as qemu-server's Cloudinit.pm reads them when it builds the drive,
  every volume must be a snippet that exists: "volume '…' does not exist", "… is not in the snippets directory"
  (the fake refuses both when the configuration is written, which is earlier than PVE, never more lenient), and at
  most 1 MiB (PVE reads snippets with a 1 MiB limit).
- A cloud-init drive (``ide2: <storage>:cloudinit``) is allocated as qemu-server's create_disks does it: a 4 MiB
  volume named ``vm-<vmid>-cloudinit`` (with the format as extension on a file storage), ``media=cdrom``.
- A ``dir`` storage whose ``path`` is a directory here lists the files of its ``snippets`` subdirectory as
  ``snippets/<file>`` volumes, as PVE lists a directory storage (``pvesm list``): the lab's ``lab-snippets`` storage is
  such a directory, which virtplane writes snippets into (its ``snippets_path``), as a mounted share would be.
- ``GET …/cloudinit/dump?type=user|meta|network`` answers what the drive would hold: the snippet named by
  ``cicustom``, else what PVE generates from ``ciuser``, ``sshkeys``, ``ciupgrade`` and ``ipconfigN`` (the keys
  qemu-server's cloudinit_userdata and nocloud network writer use; https://pve.proxmox.com/wiki/Cloud-Init_Support).
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import unquote

import yaml
from fakepve import formats
from fakepve import schema as pve_schema
from fakepve.model import PveError
from fakepve.qemu import join_drive, split_drive, volume_ref
from fakepve.storage import _is_file, spec_of

DRIVE_SIZE = 4 * 1024 ** 2  # qemu-server's cloud-init image size

SNIPPET_LIMIT = 1024 * 1024
CICUSTOM_FORMAT: dict[str, dict[str, Any]] = {kind: {"type": "string", "optional": 1, "format": "pve-volume-id"}
                                               for kind in ("meta", "network", "user", "vendor")}
_IPCONFIG = re.compile(r"^ipconfig(\d+)$")
CLOUD_INIT_OPTIONS = frozenset({"cicustom", "cipassword", "citype", "ciupgrade", "ciuser", "nameserver",
                                "searchdomain", "sshkeys"})


def register_cicustom_format() -> None:
    if formats.REGISTERED.get("pve-qm-cicustom") is not CICUSTOM_FORMAT:
        formats.REGISTERED["pve-qm-cicustom"] = CICUSTOM_FORMAT
        pve_schema.registered.cache_clear()


class CloudInitPve:
    """Mixin of HardwarePve (a FakePve): snippets on directory storages, ``cicustom`` checks and the drive's dump."""

    storages: dict[str, dict[str, Any]]

    def add_snippets_storage(self, name: str, path: str) -> None:
        """A shared directory storage for snippets at ``path`` (its files are in ``path/snippets``)."""
        os.makedirs(os.path.join(path, "snippets"), exist_ok=True)
        self.storages[name] = {"type": "dir", "active": 1, "content": "snippets", "files": set(), "path": path,
                               "shared": 1}

    def _qm_new_drive(self, vmid: int, key: str, value: str, default: str | None) -> tuple[str, list[str]]:
        volume, props = split_drive(value)
        if not str(volume).endswith(":cloudinit"):
            return super()._qm_new_drive(vmid, key, value, default)  # type: ignore[misc]
        props = dict(props)
        sid = volume_ref(volume)[0] or default
        store = self.storages[sid]
        fmt = props.pop("format", None) or store.get("format") or (spec_of(store) or {"format": "raw"})["format"]
        name = f"vm-{vmid}-cloudinit" + (f".{fmt}" if _is_file(store) else "")
        volname, fmt = self._volume_name(store, vmid, fmt, name)  # type: ignore[attr-defined]
        if volname in store.get("volumes", {}):
            raise PveError(500, f"unable to create VM {vmid}: volume {sid}:{volname} already exists")
        store.setdefault("volumes", {})[volname] = {"content": "images", "format": fmt, "size": DRIVE_SIZE,
                                                    "vmid": vmid, "ctime": 0}
        props.update(media="cdrom")
        return join_drive(f"{sid}:{volname}", props), [f"{sid}:{volname}"]

    def _snippets_dir(self, name: str) -> str | None:
        store = self.storages.get(name) or {}
        path = store.get("path")
        if store.get("type") != "dir" or not path or not os.path.isdir(os.path.join(path, "snippets")):
            return None
        return os.path.join(path, "snippets")

    def _volumes(self, name: str) -> dict[str, Any]:
        found = super()._volumes(name)  # type: ignore[misc]
        directory = self._snippets_dir(name)
        for file in sorted(os.listdir(directory)) if directory else []:
            full = os.path.join(directory, file)  # type: ignore[arg-type]
            if os.path.isfile(full):
                found.setdefault(f"snippets/{file}", {"content": "snippets", "format": "raw",
                                                      "size": os.path.getsize(full),
                                                      "ctime": int(os.path.getmtime(full))})
        return found

    def snippet_text(self, volid: str) -> str:
        """The text of snippet ``volid``, or PVE's refusal."""
        storage, _, volname = volid.partition(":")
        if storage not in self.storages or volname not in self._volumes(storage):
            raise PveError(500, f"volume '{volid}' does not exist")
        if not volname.startswith("snippets/"):
            raise PveError(500, f"{volid} is not in the snippets directory")
        directory = self._snippets_dir(storage)
        path = os.path.join(directory or "", volname.removeprefix("snippets/"))
        if directory is None or not os.path.isfile(path):
            raise PveError(500, f"volume '{volid}' does not exist")
        if os.path.getsize(path) > SNIPPET_LIMIT:
            raise PveError(500, f"{volid}: file too large (over {SNIPPET_LIMIT} bytes)")
        with open(path, encoding="utf-8") as source:
            return source.read()

    def check_cicustom(self, values: dict[str, Any]) -> None:
        """Every volume ``cicustom`` names must be a snippet that exists."""
        if values.get("cicustom") in (None, ""):
            return
        for part in str(values["cicustom"]).split(","):
            _, _, volid = part.partition("=")
            self.snippet_text(volid)

    def _cloudinit_dump(self, values: dict[str, Any], user: Any) -> str:
        vm = self.find(values["node"], values["vmid"])  # type: ignore[attr-defined]
        config = dict(vm.config)
        kind = values["type"]
        custom = dict(part.split("=", 1) for part in str(config.get("cicustom") or "").split(",") if "=" in part)
        if kind in custom:
            return self.snippet_text(custom[kind])
        if kind == "user":
            return _generated_user_data(vm.name, config)
        if kind == "meta":
            return yaml.safe_dump({"instance-id": f"{vm.vmid}-fake"}, sort_keys=True)
        return yaml.safe_dump(_generated_network(config), sort_keys=True)

    def _cloudinit_regenerate(self, values: dict[str, Any], user: Any) -> None:
        """PUT …/cloudinit: the cloud-init options pending on a running VM are applied, and the drive is built again
        from them (its snippets must be readable)."""
        vm = self.find(values["node"], values["vmid"])  # type: ignore[attr-defined]
        pending = {key: value for key, value in vm.pending.items() if _is_cloud_init_option(key)}
        config = dict(vm.config)
        for key, value in pending.items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        self.check_cicustom(config)
        vm.config = config
        for key in pending:
            vm.pending.pop(key, None)


def _is_cloud_init_option(key: str) -> bool:
    """qemu-server's cloud-init options: what ``PUT …/cloudinit`` applies."""
    return key in CLOUD_INIT_OPTIONS or _IPCONFIG.match(key) is not None


def _generated_user_data(name: str, config: dict[str, Any]) -> str:
    document: dict[str, Any] = {"hostname": name, "manage_etc_hosts": True, "fqdn": name, "chpasswd": {"expire": False},
                                "users": ["default"], "package_upgrade": str(config.get("ciupgrade", 1)) == "1"}
    if config.get("ciuser"):
        document["user"] = str(config["ciuser"])
    if config.get("sshkeys"):
        document["ssh_authorized_keys"] = [key for key in unquote(str(config["sshkeys"])).splitlines() if key]
    return "#cloud-config\n" + yaml.safe_dump(document, sort_keys=False)


def _generated_network(config: dict[str, Any]) -> dict[str, Any]:
    entries = []
    for key in sorted((k for k in config if _IPCONFIG.match(k)), key=lambda k: int(k[8:])):
        options = dict(part.split("=", 1) for part in str(config[key]).split(",") if "=" in part)
        gateway = {"gateway": options["gw"]} if "gw" in options else {}
        subnets = [{"type": "dhcp4"} if options.get("ip") == "dhcp" else
                   {"type": "static", "address": options["ip"], **gateway}] if "ip" in options else []
        entries.append({"type": "physical", "name": f"eth{key[8:]}", "subnets": subnets})
    return {"version": 1, "config": entries}
