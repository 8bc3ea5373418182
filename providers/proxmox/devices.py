"""PCI devices of a Proxmox VM (``hostpciN``): GPUs, vGPUs and SR-IOV virtual functions, both ways. Pure, no I/O.

- ``Gpu("passthrough", device=…)``: ``hostpciN = <device>`` where the device is a cluster resource mapping id
  (``mapping=a100``) or a PCI address, written as given (``0000:3b:00.0``); ``pcie=1`` on q35 machines.
- ``Gpu("vgpu", profile=…)``: the same with ``mdev=<profile>`` (an mdev type such as ``nvidia-471``).
- ``Nic(adapter="sriov", device=…)``: a virtual function as ``hostpciN``: ``mapping=<id>`` when the device is a
  mapping (PVE picks a free function of its pool when the VM starts), else a free VF of the named physical
  function, picked from the node's PCI list (``vf_of``). PVE's API does not link a VF to its PF: a VF is a function
  named "Virtual Function" of the PF's vendor on the PF's bus, and it is free when no VM's ``hostpciN`` names it.
  The VF's VLAN cannot be set through a VM's configuration, so an SR-IOV NIC's network is only a label on
  Proxmox: check() refuses one with a VLAN.

Read back, a ``hostpciN`` with ``mdev`` is a vGPU; one whose device (the address, or the mapping's path on the
VM's node) is a display controller (PCI class 0x03) is a passthrough GPU; one that is a virtual function is an
SR-IOV NIC with slot ``hostpciN`` and device = its mapping or its PF. Anything else (an HBA, a USB controller) is
neither and is left alone. GPUs are listed in hostpci order (``gpus[0]`` is the lowest); SR-IOV NICs take hostpci
slots from the top (``hostpci15`` down), so GPUs added from the bottom never meet them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from virtplane.providers.proxmox.host_facts import hex_id, is_virtual_function, map_entry, pci_address
from virtplane.specs import GpuSpec, NicSpec

HOSTPCI_SLOTS = 16
_HOSTPCI_KEY = re.compile(r"^hostpci(\d+)$")
_ADDRESS = re.compile(r"^(?:[0-9a-fA-F]{4,}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.[0-7])?$")
VENDORS = {"0x10de": "nvidia", "0x1002": "amd", "0x8086": "intel"}


@dataclass(frozen=True)
class HostPci:
    """One ``hostpciN`` of a VM: its key, the device as written (a mapping id or an address), its mdev type."""

    key: str
    device: str
    mapped: bool
    mdev: str | None
    options: dict[str, str] = field(default_factory=dict)

    @property
    def index(self) -> int:
        return int(_HOSTPCI_KEY.match(self.key).group(1))  # type: ignore[union-attr]


def hostpci_entries(config: Mapping[str, Any]) -> list[HostPci]:
    """The VM's ``hostpciN`` entries, by index."""
    entries = []
    for key, value in config.items():
        if not _HOSTPCI_KEY.match(key):
            continue
        first, options = None, {}
        for index, part in enumerate(str(value).split(",")):
            name, sep, setting = part.partition("=")
            if sep:
                options[name] = setting
            elif index == 0:
                first = part
        mapping = options.pop("mapping", None)
        host = options.pop("host", None) or first or ""
        entries.append(HostPci(key, mapping or host, mapping is not None, options.pop("mdev", None), options))
    return sorted(entries, key=lambda entry: entry.index)


def is_address(device: str) -> bool:
    return bool(_ADDRESS.match(device.strip()))


@dataclass(frozen=True)
class PciView:
    """What the driver read about PCI devices: each node's ``/hardware/pci`` rows and the cluster's PCI mappings
    (``/cluster/mapping/pci``). Empty when nothing needed them."""

    rows: Mapping[str, list[Mapping[str, Any]]] = field(default_factory=dict)  # node -> its PCI functions
    mappings: list[Mapping[str, Any]] = field(default_factory=list)

    def row(self, node: str, address: str) -> Mapping[str, Any] | None:
        wanted = pci_address(address)
        return next((row for row in self.rows.get(node, []) if pci_address(str(row.get("id", ""))) == wanted), None)

    def mapping_ids(self) -> set[str]:
        return {str(row.get("id")) for row in self.mappings}

    def mapped_paths(self, mapping: str, node: str) -> list[str]:
        """The addresses a mapping names on ``node`` (a multifunction path ``a;b`` gives both)."""
        paths = []
        for row in self.mappings:
            if str(row.get("id")) != mapping:
                continue
            entries = row.get("map") or []
            for entry in entries if isinstance(entries, list) else [entries]:
                keys = map_entry(str(entry))
                if keys.get("node") == node:
                    paths += [path for path in keys.get("path", "").split(";") if path]
        return paths

    def mapped_vendor(self, mapping: str) -> str | None:
        """The vendor id of a mapping's devices (its entries' ``id=vendor:device``)."""
        for row in self.mappings:
            if str(row.get("id")) == mapping:
                entries = row.get("map") or []
                for entry in entries if isinstance(entries, list) else [entries]:
                    found = map_entry(str(entry)).get("id", "")
                    if ":" in found:
                        return hex_id(found.split(":")[0])
        return None

    def functions(self, entry: HostPci, node: str) -> list[Mapping[str, Any]]:
        """The PCI functions behind a hostpci entry on ``node`` (none when they are not listed)."""
        addresses = self.mapped_paths(entry.device, node) if entry.mapped else entry.device.split(";")
        return [row for address in addresses if (row := self.row(node, address)) is not None]


def _is_display(row: Mapping[str, Any]) -> bool:
    return hex_id(row.get("class", "")).startswith("0x03")


def kind_of(entry: HostPci, node: str, pci: PciView) -> str | None:
    """``gpu``, ``vf`` or None (another device, or one the node does not list)."""
    if entry.mdev:
        return "gpu"
    functions = pci.functions(entry, node)
    if any(is_virtual_function(row) for row in functions):
        return "vf"
    if any(_is_display(row) for row in functions):
        return "gpu"
    return None


def gpu_state(entry: HostPci, node: str, pci: PciView) -> dict[str, Any]:
    functions = pci.functions(entry, node)
    vendor_id = hex_id(functions[0].get("vendor", "")) if functions else (
        pci.mapped_vendor(entry.device) if entry.mapped else None)
    return {"mode": "vgpu" if entry.mdev else "passthrough", "profile": entry.mdev, "device": entry.device,
            "vendor": VENDORS.get(vendor_id or "")}


def pf_of(vf: str, rows: Iterable[Mapping[str, Any]]) -> str | None:
    """The physical function of a VF: ``physfn`` when PVE gives it, else the only function of the VF's vendor on
    its bus that is not itself a VF."""
    rows = list(rows)
    address = pci_address(vf)
    row = next((r for r in rows if pci_address(str(r.get("id", ""))) == address), None)
    if row is None or not is_virtual_function(row):
        return None
    if row.get("physfn"):
        return pci_address(str(row["physfn"]))
    bus, vendor = address.rsplit(":", 1)[0], hex_id(row.get("vendor", ""))
    candidates = [pci_address(str(r["id"])) for r in rows if not is_virtual_function(r)
                  and pci_address(str(r.get("id", ""))).rsplit(":", 1)[0] == bus
                  and hex_id(r.get("vendor", "")) == vendor]
    return candidates[0] if len(candidates) == 1 else None


def vfs_of(pf: str, rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The virtual functions of a physical function, by address (see ``pf_of``)."""
    rows = list(rows)
    wanted = pci_address(pf)
    return sorted(pci_address(str(r["id"])) for r in rows
                  if is_virtual_function(r) and pf_of(str(r["id"]), rows) == wanted)


def sriov_nic_state(entry: HostPci, node: str, pci: PciView, network: str | None) -> dict[str, Any]:
    device = entry.device if entry.mapped else (pf_of(entry.device, pci.rows.get(node, [])) or entry.device)
    return {"network": network, "adapter": "sriov", "device": device, "slot": entry.key}


def hostpci_value(device: str, mapping: bool, mdev: str | None = None, pcie: bool = False,
                  previous: HostPci | None = None) -> str:
    """A ``hostpciN`` value; a changed entry keeps its other options (rombar, x-vga…)."""
    options = dict(previous.options) if previous else {}
    options.pop("pcie", None)
    head = f"mapping={device}" if mapping else device
    parts = [head] + ([f"mdev={mdev}"] if mdev else []) + (["pcie=1"] if pcie else [])
    return ",".join(parts + [f"{key}={value}" for key, value in options.items()])


def gpu_value(gpu: GpuSpec, mapping_ids: Collection[str], pcie: bool, previous: HostPci | None = None,
              pick: Callable[[GpuSpec], str] | None = None) -> str:
    """The value for ``gpu``; unset fields keep the live entry's (its device, its profile); a new GPU without a
    device gets ``pick``'s."""
    device = gpu.device or (previous.device if previous else None) or (pick(gpu) if pick else None)
    if not device:
        raise ValueError("names no device (a PCI address or a resource mapping), and none was placed")
    mdev = gpu.profile if gpu.mode == "vgpu" else None
    if gpu.mode == "vgpu" and mdev is None and previous is not None:
        mdev = previous.mdev
    return hostpci_value(device, device in mapping_ids and not is_address(device), mdev, pcie, previous)


def free_hostpci(taken: Collection[str], from_top: bool = False) -> str | None:
    numbers = range(HOSTPCI_SLOTS - 1, -1, -1) if from_top else range(HOSTPCI_SLOTS)
    return next((f"hostpci{n}" for n in numbers if f"hostpci{n}" not in taken), None)


def needs_devices(gpus: list[GpuSpec] | None, nics: list[NicSpec] | None) -> bool:
    return bool(gpus) or any(nic.adapter == "sriov" for nic in nics or [])


def is_q35(machine: str | None) -> bool:
    return bool(machine) and "q35" in str(machine)


def is_hostpci_slot(slot: str | None) -> bool:
    return bool(slot) and bool(_HOSTPCI_KEY.match(str(slot)))


def used_addresses(configs: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every raw PCI address the given VM configurations pass through."""
    return {pci_address(part) for config in configs for entry in hostpci_entries(config) if not entry.mapped
            for part in entry.device.split(";") if part}


@dataclass
class DeviceWriter:
    """How one VM's devices are written: the cluster's mapping ids, whether its machine is q35 (``pcie=1``), and
    ``pick_vf`` (PF address -> a free VF's address) and ``pick_gpu`` (a GPU declared without a device -> one on the
    node): the driver's, with I/O; they raise ValueError when there is none."""

    mapping_ids: Collection[str]
    pcie: bool
    pick_vf: Callable[[str], str]
    pick_gpu: Callable[[GpuSpec], str] | None = None

    def is_mapping(self, device: str) -> bool:
        return device in self.mapping_ids and not is_address(device)

    def gpu(self, gpu: GpuSpec, previous: HostPci | None = None) -> str:
        return gpu_value(gpu, self.mapping_ids, self.pcie, previous, self.pick_gpu)

    def vf(self, nic: NicSpec, previous: HostPci | None = None) -> str:
        device = nic.device or (previous.device if previous else None)
        if not device:
            raise ValueError("names no device: a resource mapping of virtual functions or the physical function's "
                             "PCI address")
        if self.is_mapping(device):
            return hostpci_value(device, True, None, self.pcie, previous)
        return hostpci_value(self.pick_vf(device), False, None, self.pcie, previous)


def device_config(gpus: list[GpuSpec], nics: list[NicSpec], writer: DeviceWriter) -> dict[str, Any]:
    """The ``hostpciN`` keys of a new VM (SR-IOV NICs in their slots, GPUs from hostpci0 up) and ``balloon=0``
    (memory fully reserved: a device may DMA into any of it) when there is any."""
    config: dict[str, Any] = {}
    for nic in nics:
        if nic.adapter == "sriov" and nic.slot:
            config[nic.slot] = writer.vf(nic)
    taken = set(config)
    for index, gpu in enumerate(gpus):
        key = free_hostpci(taken)
        if key is None:
            raise ValueError(f"gpus[{index}] has no free hostpci slot left (PVE has {HOSTPCI_SLOTS})")
        taken.add(key)
        try:
            config[key] = writer.gpu(gpu)
        except ValueError as exc:
            raise ValueError(f"gpus[{index}] {exc}") from None
    if config:
        config["balloon"] = 0
    return config
