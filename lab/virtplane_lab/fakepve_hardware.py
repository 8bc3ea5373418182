"""fakepve with seeded hardware: the lab's fake Proxmox VE cluster answers PVE's hardware API from ``pve_hardware``.

fakepve (AGPL) knows these paths only from PVE's schema and answers them with placeholders. ``HardwarePve``
answers them from each node's seeded ``FakeNode`` instead, after fakepve's own checks (parameters, permissions,
offline nodes) have run, by overriding ``synthesise``, the hook fakepve calls for every schema path it does not
model:

- ``GET /nodes/{node}/status``: ``cpuinfo`` (model, vendor, flags, ``hvm``), ``memory`` (as ``/nodes`` reports
  it), ``pveversion``;
- ``GET /nodes/{node}/hardware/pci`` (``pci-class-blacklist``, ``verbose``) and ``…/pci/{id-or-mapping}/mdev``;
- ``GET /nodes/{node}/capabilities/qemu/cpu-flags`` (with ``supported-on``, and ``nested-virt``), ``…/cpu`` and
  ``…/machines`` (the node's QEMU machine versions);
- ``GET /cluster/mapping/pci`` (``check-node``) and ``/cluster/mapping/pci/{id}``.

A GPU's mdev ``available`` counts the instances running VMs hold, as the NVIDIA driver's ``available_instances``
does: one fewer per running instance of the type, and none of any type of another size once one size runs on the
GPU (equal-size mode; NVIDIA "Virtual GPU Software User Guide"). ``seed_lab_guests`` adds the lab's other-team VMs
(``pve_hardware.lab_guests``).

Its storage ``local`` holds the lab's container templates (``pve_templates``). It also registers PVE's
``pve-qm-hostpci`` format, so a VM's ``hostpciN`` is checked as PVE checks it (and, as
PVE does, only root@pam itself may set a raw device; anyone else, API tokens included, needs a mapping and
Mapping.Use on it), and can play a standalone node (``standalone = True``: ``/cluster/status`` lists the node
and no cluster). Cloud-init (snippets on directory storages, ``cicustom``, the drive's dump) is fakepve_cloudinit's.

Imported only inside the fakepve process (``fakepve_main``) and by the tests' fixtures: nothing in virtplane's
core imports it.
"""

from __future__ import annotations

import re
from typing import Any

from fakepve import formats
from fakepve import schema as pve_schema
from fakepve.model import PveError
from fakepve.server import USER, FakePve, ok, params

from virtplane_lab.fakepve_cloudinit import CloudInitPve, register_cicustom_format
from virtplane_lab.pve_hardware import (
    FakeMapping,
    FakeNode,
    MdevType,
    lab_guests,
    lab_mappings,
    lab_nodes,
    machine_versions,
    plain_node,
)
from virtplane_lab.pve_templates import seed_templates

GIB = 1024 ** 3
DEFAULT_CLASS_BLACKLIST = "05;06;0b"
PCI_ID = re.compile(r"(?:[0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-9a-fA-F]")
PCIRE = r"(?:[a-f0-9]{4,}:)?[a-f0-9]{2}:[a-f0-9]{2}(?:\.[a-f0-9])?"
HEX_ID = r"^0x[0-9a-fA-F]{4}$"
HOSTPCI_KEY = re.compile(r"hostpci\d+")
DETACHABLE = re.compile(r"(?:ide|sata|scsi|virtio)\d+|efidisk0|tpmstate0")
UNUSED_KEY = re.compile(r"unused\d+")

# qemu-server's hostpci property string (PVE::QemuServer::PCI), as fakepve's property-string checker takes it.
HOSTPCI_FORMAT: dict[str, dict[str, Any]] = {
    "host": {"type": "string", "default_key": 1, "optional": 1, "pattern": f"{PCIRE}(;{PCIRE})*"},
    "mapping": {"type": "string", "optional": 1, "format": "pve-configid"},
    "rombar": {"type": "boolean", "optional": 1, "default": 1},
    "romfile": {"type": "string", "optional": 1, "pattern": "[^,;]+"},
    "pcie": {"type": "boolean", "optional": 1, "default": 0},
    "x-vga": {"type": "boolean", "optional": 1, "default": 0},
    "legacy-igd": {"type": "boolean", "optional": 1, "default": 0},
    "mdev": {"type": "string", "optional": 1, "pattern": r"[^/\.:]+"},
    "vendor-id": {"type": "string", "optional": 1, "pattern": HEX_ID},
    "device-id": {"type": "string", "optional": 1, "pattern": HEX_ID},
    "sub-vendor-id": {"type": "string", "optional": 1, "pattern": HEX_ID},
    "sub-device-id": {"type": "string", "optional": 1, "pattern": HEX_ID},
    "driver": {"type": "string", "optional": 1, "enum": ["keep", "vfio"]},  # newer qemu-server
}

# QEMU CPU flags a VM may set (qemu-server's list, in part) -> the /proc/cpuinfo flag a node needs for it.
CPU_FLAGS = {"aes": "aes", "ibpb": "ibpb", "md-clear": "md_clear", "pcid": "pcid", "pdpe1gb": "pdpe1gb",
             "ssbd": "ssbd"}
CPU_MODELS = (("host", "default"), ("kvm64", "default"), ("qemu64", "default"), ("x86-64-v2-AES", "default"),
              ("x86-64-v3", "default"), ("Icelake-Server", "GenuineIntel"), ("Skylake-Server", "GenuineIntel"),
              ("EPYC-Milan", "AuthenticAMD"), ("EPYC-Rome", "AuthenticAMD"))


def register_hostpci_format() -> None:
    """Make fakepve check ``hostpciN`` values against PVE's format (it only knows the format's name)."""
    if formats.REGISTERED.get("pve-qm-hostpci") is not HOSTPCI_FORMAT:
        formats.REGISTERED["pve-qm-hostpci"] = HOSTPCI_FORMAT
        pve_schema.registered.cache_clear()


def hostpci_mapping(value: str) -> str | None:
    """The ``mapping=`` of a hostpci value, or None for a raw device (``host=`` or the bare default key)."""
    keys = dict(part.split("=", 1) for part in value.split(",") if "=" in part)
    return keys.get("mapping") or None


def _free_unused(config: dict[str, Any]) -> str:
    """The lowest ``unusedN`` key not in ``config``."""
    number = 0
    while f"unused{number}" in config:
        number += 1
    return f"unused{number}"


def _map_keys(entry: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in entry.split(",") if "=" in part)


class HardwarePve(CloudInitPve, FakePve):  # type: ignore[misc] - fakepve is untyped
    """A FakePve whose nodes carry hardware: ``hardware`` maps node -> FakeNode (a node without an entry gets
    ``plain_node()``), ``pci_mappings`` lists the cluster's PCI mappings. Change them freely while it serves."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        register_hostpci_format()
        register_cicustom_format()
        self.hardware: dict[str, FakeNode] = lab_nodes()
        self.pci_mappings: list[FakeMapping] = lab_mappings()
        self.standalone = False
        seed_templates(self.storages)

    def seed_lab_guests(self) -> None:
        """Add the VMs of other teams the lab's cluster holds (``pve_hardware.lab_guests``): `virtplane lab up` and
        the lab's end-to-end tests have them; other tests start from an empty cluster."""
        for guest in lab_guests():
            self.add_vm(guest.vmid, guest.name, node=guest.node, status=guest.status, config=guest.config)

    def node_hardware(self, node: str) -> FakeNode:
        if node not in self.hardware:
            self.hardware[node] = plain_node()
        return self.hardware[node]

    # ---- the hook --------------------------------------------------------------------------------------------

    async def synthesise(self, match: Any, method: str, info: Any, user: Any, values: dict[str, Any]) -> Any:
        answer = self._hardware_answers().get((method, match.template))
        if answer is None:
            return await super().synthesise(match, method, info, user, values)
        if match.template == "/nodes/{node}/status":
            return answer(values, await super().synthesise(match, method, info, user, values))
        return answer(values, user)

    def _hardware_answers(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", "/nodes/{node}/status"): self._node_status,
            ("GET", "/nodes/{node}/hardware/pci"): self._pci_list,
            ("GET", "/nodes/{node}/hardware/pci/{pci-id-or-mapping}/mdev"): self._mdev_types,
            ("GET", "/nodes/{node}/capabilities/qemu/cpu-flags"): self._cpu_flags,
            ("GET", "/nodes/{node}/capabilities/qemu/cpu"): self._cpu_models,
            ("GET", "/nodes/{node}/capabilities/qemu/machines"): self._machines,
            ("GET", "/cluster/mapping/pci"): self._mapping_list,
            ("GET", "/cluster/mapping/pci/{id}"): self._mapping_get,
            ("GET", "/nodes/{node}/qemu/{vmid}/cloudinit/dump"): self._cloudinit_dump,
            ("PUT", "/nodes/{node}/qemu/{vmid}/cloudinit"): self._cloudinit_regenerate,
        }

    # ---- nodes -----------------------------------------------------------------------------------------------

    def _node_status(self, values: dict[str, Any], placeholder: dict[str, Any]) -> dict[str, Any]:
        node = values["node"]
        hardware = self.node_hardware(node)
        stats = self._node_stats(True)  # the memory /nodes and /cluster/resources report
        total, used = stats["maxmem"], stats["mem"]
        # PVE::ProcFSTools::read_cpuinfo: no vendor; ``hvm`` is Perl's match result, "1" or "".
        cpuinfo: dict[str, Any] = {"model": hardware.cpu_model, "sockets": hardware.sockets, "cores": hardware.cores,
                                   "cpus": hardware.cpus, "mhz": hardware.mhz, "user_hz": 100,
                                   "hvm": "1" if hardware.hvm else ""}
        if hardware.flags is not None:
            cpuinfo["flags"] = hardware.flags
        return dict(placeholder, cpuinfo=cpuinfo, cpu=stats["cpu"], uptime=stats["uptime"],
                    memory={"total": total, "used": used, "free": total - used, "available": total - used},
                    pveversion=f"pve-manager/{self.version}/fakepve")

    def _pci_list(self, values: dict[str, Any], user: Any) -> list[dict[str, Any]]:
        blacklist = values.get("pci-class-blacklist")
        classes = formats.split_list(DEFAULT_CLASS_BLACKLIST if blacklist is None else str(blacklist))
        verbose = str(values.get("verbose", 1)) not in ("0", "")
        rows = []
        for device in sorted(self.node_hardware(values["node"]).devices, key=lambda d: d.id):
            if any(device.class_.lower().startswith("0x" + prefix.lower()) for prefix in classes):
                continue
            rows.append(device.answer(verbose))
        return rows

    def _mdev_types(self, values: dict[str, Any], user: Any) -> list[dict[str, Any]]:
        node, wanted = values["node"], values["pci-id-or-mapping"]
        hardware = self.node_hardware(node)
        if PCI_ID.fullmatch(wanted):
            device = hardware.device(wanted)
            return [self._mdev_answer(node, device.id, kind) for kind in (device.mdev_types or [])] if device else []
        mapping = next((m for m in self.pci_mappings if m.id == wanted), None)
        types: dict[str, dict[str, Any]] = {}
        for path in mapping.paths_on(node) if mapping else []:
            device = None if ";" in path else hardware.device(path)  # no mdev on multifunction devices
            for kind in (device.mdev_types or []) if device else []:
                types.setdefault(kind.type, self._mdev_answer(node, device.id, kind))
        return [types[name] for name in sorted(types)]

    def _running_instances(self, node: str, device: str) -> list[str]:
        """The mdev types of the instances running VMs on ``node`` hold on ``device`` (one entry per instance)."""
        found = []
        for vm in self.vms:
            if vm.node != node or vm.status != "running":
                continue
            for key, value in vm.config.items():
                if not HOSTPCI_KEY.fullmatch(key) or "mdev=" not in str(value):
                    continue
                keys = _map_keys(str(value))
                mapping = next((m for m in self.pci_mappings if m.id == keys.get("mapping")), None)
                paths = mapping.paths_on(node) if mapping else [keys.get("host") or str(value).split(",")[0]]
                if any(path.lower() in (device, device[5:]) for path in paths):
                    found.append(keys["mdev"])
        return found

    def _mdev_answer(self, node: str, device: str, kind: MdevType) -> dict[str, Any]:
        running = self._running_instances(node, device)
        row = kind.answer()
        row["available"] = 0 if any(other != kind.type for other in running) else max(
            kind.available - running.count(kind.type), 0)
        return row

    def _cpu_flags(self, values: dict[str, Any], user: Any) -> list[dict[str, Any]]:
        online = sorted(name for name, state in self.nodes.items() if state.get("online", True))
        rows = []
        for flag, host_flag in sorted(CPU_FLAGS.items()):
            on = [n for n in online if host_flag in (self.node_hardware(n).flags or "").split()]
            rows.append({"name": flag, "description": f"QEMU CPU flag {flag}", "supported-on": on})
        if values.get("accel", "kvm") == "kvm":
            rows.append({"name": "nested-virt", "supported-on": [n for n in online if self.node_hardware(n).nested],
                         "description": "Expose hardware virtualization (Intel VT-x or AMD-V) to the guest"})
        return sorted(rows, key=lambda row: row["name"])

    def _machines(self, values: dict[str, Any], user: Any) -> list[dict[str, Any]]:
        return machine_versions(self.node_hardware(values["node"]).qemu)

    def _cpu_models(self, values: dict[str, Any], user: Any) -> list[dict[str, Any]]:
        return [{"name": name, "vendor": vendor, "custom": 0} for name, vendor in CPU_MODELS]

    # ---- mappings --------------------------------------------------------------------------------------------

    def _visible_mappings(self, user: Any) -> list[FakeMapping]:
        privileges = ("Mapping.Modify", "Mapping.Use", "Mapping.Audit")
        return [m for m in self.pci_mappings
                if user is None or any(self.allowed(user, f"/mapping/pci/{m.id}", p) for p in privileges)]

    def _mapping_list(self, values: dict[str, Any], user: Any) -> list[dict[str, Any]]:
        check = values.get("check-node")
        rows = []
        for mapping in self._visible_mappings(user):
            row = mapping.answer()
            if check is not None:
                entries = [e for e in mapping.map if _map_keys(e).get("node") == check]
                row["checks"] = [] if entries else [{"severity": "warning", "message": f"No mapping for node {check}."}]
            rows.append(row)
        return rows

    def _mapping_get(self, values: dict[str, Any], user: Any) -> dict[str, Any]:
        mapping = next((m for m in self.pci_mappings if m.id == values["id"]), None)
        if mapping is None:
            raise PveError(500, f"mapping '{values['id']}' not found")
        row = mapping.answer()
        row.pop("id")
        return row

    # ---- who may set hostpciN (qemu-server's check_hostpci_perm) ---------------------------------------------

    def _check_hostpci(self, user: Any, values: dict[str, Any]) -> None:
        """Only root@pam itself (not even its API tokens) may pass a raw device through; a mapped one needs
        Mapping.Use on the mapping."""
        for key in sorted(values):
            if not HOSTPCI_KEY.fullmatch(key) or user == "root@pam":
                continue
            mapping = hostpci_mapping(str(values[key]))
            if mapping is None:
                raise PveError(500, f"only root can set '{key}' config for non-mapped devices")
            self.require(user, f"/mapping/pci/{mapping}", "Mapping.Use")

    async def _config_put(self, request: Any) -> Any:
        values = self._verify(request, await params(request))
        self._check_hostpci(request[USER], values)
        self.check_cicustom(values)
        return await super()._config_put(request)

    async def _config_post(self, request: Any) -> Any:
        values = self._verify(request, await params(request))
        self._check_hostpci(request[USER], values)  # before the task starts, as PVE checks it
        self.check_cicustom(values)
        return await super()._config_post(request)

    async def _qm_create(self, values: dict[str, Any], user: Any) -> Any:
        self._check_hostpci(user, values)
        self.check_cicustom(values)
        return await super()._qm_create(values, user)

    # ---- removing a disk from a VM's configuration --------------------------------------------------------------

    async def _apply_config(self, vm: Any, user: Any, p: dict[str, Any]) -> Any:
        """PVE's ``delete`` of a disk detaches it: its volume stays, referenced as ``unusedN``; deleting an
        ``unusedN`` destroys the volume (qemu-server's vmconfig_delete_or_detach_drive and add_unused_volume; PVE
        admin guide, "Virtual Machines: Hard Disk": a removed disk is kept as an unused disk). fakepve only forgets
        the key, leaving the volume on its storage referenced by nothing."""
        deletes = [key for key in str(p.get("delete") or "").split(",") if key]
        detached = {key: str(vm.config[key]).split(",")[0] for key in deletes
                    if key in vm.config and DETACHABLE.fullmatch(key) and "media=cdrom" not in str(vm.config[key])
                    and str(vm.config[key]).split(",")[0] not in ("", "none", "cdrom")}
        unused = {key: str(vm.config[key]).split(",")[0] for key in deletes
                  if key in vm.config and UNUSED_KEY.fullmatch(key)}
        result = await super()._apply_config(vm, user, p)
        for key, volume in detached.items():
            if key not in vm.config and "cloudinit" not in volume:  # applied now (a running VM's goes pending)
                vm.config[_free_unused(vm.config)] = volume
            elif key not in vm.config:
                self._qm_free(volume)  # a cloud-init drive is re-made by PVE, never kept
        for key, volume in unused.items():
            if key not in vm.config:
                self._qm_free(volume)
        return result

    # ---- a standalone node -----------------------------------------------------------------------------------

    async def _cluster_status(self, request: Any) -> Any:
        if not self.standalone:
            return await super()._cluster_status(request)
        name = sorted(self.nodes)[0]
        return ok([{"type": "node", "id": f"node/{name}", "name": name, "nodeid": 0, "ip": "192.0.2.11", "level": "",
                    "local": 1, "online": 1}])
