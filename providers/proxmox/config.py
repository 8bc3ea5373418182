"""Pure translation between a VirtualMachineSpec and a PVE VM configuration (the ``qm config`` key/values).

No I/O here: what is sent at create time, and how a live configuration reads back into the spec's shape.

- CPUs: ``sockets`` as given (None: one, PVE's default, or the VM's current count when it divides the CPUs),
  ``cores = cpus // sockets``. Memory in MiB.
- Firmware: ``bios=seabios|ovmf``; UEFI adds ``efidisk0`` (``efitype=4m``, ``pre-enrolled-keys=1`` iff secure
  boot, which is read back from it).
- Disks: ``paravirtual`` is ``scsiN`` behind ``scsihw=virtio-scsi-single``, ``lsilogic`` is ``scsiN`` behind
  ``scsihw=lsi``, ``sata``/``ide``/``virtio-blk`` are ``sataN``/``ideN``/``virtioN``. A disk's slot is its config
  key (``scsi1``); a new disk without one takes the lowest free number of its bus's prefix (``new_slot``). Disks
  read back with their slot, sorted by number then bus (``scsi0, sata0, scsi1``), so VMs made when the disk at
  position N took number N read back in their declared order. Sizes are whole GiB; a new disk is ``storage:size``.
- NICs: ``netN = virtio|e1000|e1000e[=MAC],bridge=<bridge>[,tag=<vlan>]``, slot ``netN``. A NIC reads back as the
  declared network with that bridge and VLAN, else as ``bridge.vlan`` (or the bridge name when untagged).
- Unset spec fields (None) are never written: a create gets a spec with the creation defaults already filled.
- Nested virtualization is CPU type ``host``; otherwise no ``cpu`` is sent (PVE's default type).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from virtplane.providers.base import vlan_named
from virtplane.providers.proxmox.devices import (
    HOSTPCI_SLOTS,
    PciView,
    free_hostpci,
    gpu_state,
    hostpci_entries,
    is_address,
    is_hostpci_slot,
    kind_of,
    sriov_nic_state,
)
from virtplane.providers.proxmox.host_facts import pci_address
from virtplane.providers.proxmox.ownership import encode_tags, user_tags
from virtplane.slots import next_numbered
from virtplane.specs import DiskSpec, NicSpec, VirtualMachineSpec

GUEST_OSTYPES = {"linux": "l26", "windows": "win11", "other": "other"}
_NEUTRAL_GUEST = {ostype: name for name, ostype in GUEST_OSTYPES.items()}
PVE_OSTYPES = ("other", "wxp", "w2k", "w2k3", "w2k8", "wvista", "win7", "win8", "win10", "win11", "l24", "l26",
               "solaris")
NIC_MODELS = {"paravirtual": "virtio", "e1000": "e1000", "e1000e": "e1000e"}
_NEUTRAL_ADAPTER = {model: name for name, model in NIC_MODELS.items()}
PVE_NIC_MODELS = frozenset({"e1000", "e1000-82540em", "e1000-82544gc", "e1000-82545em", "e1000e", "i82551",
                            "i82557b", "i82559er", "ne2k_isa", "ne2k_pci", "pcnet", "rtl8139", "virtio", "vmxnet3"})
BUS_PREFIX = {"paravirtual": "scsi", "lsilogic": "scsi", "sata": "sata", "ide": "ide", "virtio-blk": "virtio"}
BUS_SLOTS = {"scsi": 31, "sata": 6, "ide": 4, "virtio": 16}
_PREFIX_ORDER = {"scsi": 0, "sata": 1, "virtio": 2, "ide": 3}
SCSI_CONTROLLERS = {"paravirtual": "virtio-scsi-single", "lsilogic": "lsi"}
_SCSI_BUS = {"virtio-scsi-single": "paravirtual", "virtio-scsi-pci": "paravirtual", "lsi": "lsilogic",
             "lsi53c810": "lsilogic"}
NESTED_CPU = "host"
NIC_SLOTS = 32
DEFAULT_MEMORY = 512  # MiB, PVE's default when the config has no memory key
_DISK_KEY = re.compile(r"^(scsi|sata|ide|virtio)(\d+)$")
_NIC_KEY = re.compile(r"^net(\d+)$")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([KMGT]?)$")
_NEW_VOLUME = re.compile(r"^[^/:\s]+:(\d+(?:\.\d+)?)$")  # "local-lvm:32": a disk still to be allocated
_UNIT = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def split_options(text: str) -> tuple[str | None, dict[str, str]]:
    """``vol,size=32G`` -> ("vol", {"size": "32G"}): the leading item without ``=``, then key=value pairs."""
    first: str | None = None
    options: dict[str, str] = {}
    for index, part in enumerate(str(text).split(",")):
        key, sep, value = part.partition("=")
        if not sep:
            if index == 0:
                first = part
            continue
        options[key] = value
    return first, options


def join_options(first: str | None, options: Mapping[str, str]) -> str:
    return ",".join(([first] if first else []) + [f"{key}={value}" for key, value in options.items()])


# ---- disks -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiskSlot:
    """One disk of a live VM: its config key (``scsi0``), volume id and options."""

    key: str
    volume: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return _DISK_KEY.match(self.key).group(1)  # type: ignore[union-attr]

    @property
    def index(self) -> int:
        return int(_DISK_KEY.match(self.key).group(2))  # type: ignore[union-attr]

    @property
    def storage(self) -> str | None:
        if self.volume.startswith("/") or ":" not in self.volume:
            return None
        return self.volume.split(":", 1)[0]

    @property
    def size(self) -> int:
        """Whole GiB (rounded down), from ``size=`` or, for a disk not yet allocated, ``storage:N``."""
        found = _SIZE.match(self.options.get("size", "").strip().upper())
        if found:
            return int(float(found.group(1)) * _UNIT[found.group(2)] // _UNIT["G"])
        pending = _NEW_VOLUME.match(self.volume)
        return int(float(pending.group(1))) if pending else 0


def disk_slots(config: Mapping[str, Any]) -> list[DiskSlot]:
    """The VM's disks (not CD-ROMs, cloud-init drives, EFI vars or TPM state), in read-back order."""
    slots = []
    for key, value in config.items():
        if not _DISK_KEY.match(key):
            continue
        volume, options = split_options(str(value))
        volume = volume or options.pop("file", "")
        if options.get("media") == "cdrom" or volume in ("", "none", "cdrom") or "cloudinit" in volume:
            continue
        slots.append(DiskSlot(key, volume, options))
    return sorted(slots, key=lambda slot: (slot.index, _PREFIX_ORDER[slot.prefix]))


_UNUSED_KEY = re.compile(r"^unused(\d+)$")
EFI_VARS = "the EFI variables (boot entries, enrolled secure boot keys)"


def volumes_of(config: Mapping[str, Any]) -> list[str]:
    """Every volume a VM's configuration references, as the plan names what deleting the VM destroys: its disks
    with their sizes, the EFI vars disk, the TPM state, the cloud-init drive, and the ``unusedN`` disks detached
    from it (PVE deletes them with the VM). CD-ROM images (ISOs, shared) are not the VM's."""
    found = [f"{slot.key} ({slot.volume}, {slot.size} GiB)" for slot in disk_slots(config)]
    for key, value in config.items():
        volume, options = split_options(str(value))
        volume = volume or options.get("file", "")
        if key == "efidisk0" and volume:
            found.append(f"efidisk0 ({volume}): {EFI_VARS}")
        elif key == "tpmstate0" and volume:
            found.append(f"tpmstate0 ({volume}): the TPM state (keys sealed to the vTPM, such as BitLocker's)")
        elif _DISK_KEY.match(key) and "cloudinit" in volume:
            found.append(f"{key} ({volume}): the cloud-init drive")
        elif _UNUSED_KEY.match(key) and volume:
            size = DiskSlot(key="scsi0", volume=volume, options=options).size
            found.append(f"{key} ({volume}{f', {size} GiB' if size else ''}): a disk detached from the VM, kept "
                         "as unused")
    return found


def disk_bus(slot: DiskSlot, scsihw: str | None) -> str:
    if slot.prefix == "scsi":
        controller = scsihw or "lsi"  # PVE's default controller
        return _SCSI_BUS.get(controller, controller)
    return {"sata": "sata", "ide": "ide", "virtio": "virtio-blk"}[slot.prefix]


def disk_state(slot: DiskSlot, scsihw: str | None) -> dict[str, Any]:
    return {"size": slot.size, "storage": slot.storage, "thin": True, "bus": disk_bus(slot, scsihw),
            "slot": slot.key}


def bus_prefix(bus: str | None) -> str | None:
    """The config key prefix of a disk bus (None, unset: the creation default paravirtual, ``scsi``); None for a bus
    Proxmox does not have (NVMe)."""
    return BUS_PREFIX.get(bus or "paravirtual")


def new_disk_slot(bus: str | None, taken: Collection[str]) -> str | None:
    """The lowest free key of ``bus``'s prefix; None when the bus has none left (or does not exist on PVE)."""
    prefix = bus_prefix(bus)
    if prefix is None:
        return None
    return next((f"{prefix}{n}" for n in range(BUS_SLOTS[prefix]) if f"{prefix}{n}" not in taken), None)


def new_slot(collection: str, item: Mapping[str, Any], taken: set[str]) -> str:
    """The driver's ``new_slot``: a new disk takes the lowest free number of its bus's prefix (paravirtual and
    lsilogic ``scsiN``, virtio-blk ``virtioN``, ``sataN``, ``ideN``), a new NIC the lowest free ``netN``, a new
    SR-IOV NIC the highest free ``hostpciN`` (devices.py). When the bus is full (or is no Proxmox bus), the key past
    its last one, which check() reports."""
    if collection == "nics" and item.get("adapter") == "sriov":  # a VF is a PCI device: hostpci15 down
        return free_hostpci(taken, from_top=True) or next_numbered("hostpci", taken, HOSTPCI_SLOTS)
    if collection == "nics":
        return new_nic_slot(taken) or next_numbered("net", taken, NIC_SLOTS)
    bus = item.get("bus")
    prefix = bus_prefix(bus) or str(bus)
    return new_disk_slot(bus, taken) or next_numbered(prefix, taken, BUS_SLOTS.get(prefix, 0))


def slot_problem(slot: str, bus: str | None) -> str | None:
    """Why ``slot`` cannot hold a disk on ``bus`` (None: unset, any bus); None when it can."""
    found = _DISK_KEY.match(slot)
    if found is None:
        return f"slot '{slot}' is not a Proxmox disk key (scsiN, sataN, virtioN or ideN)"
    prefix, number = found.group(1), int(found.group(2))
    if number >= BUS_SLOTS[prefix]:
        return f"slot '{slot}' does not exist: PVE has {prefix}0 to {prefix}{BUS_SLOTS[prefix] - 1}"
    if bus is not None and BUS_PREFIX.get(bus) not in (None, prefix):
        return f"slot '{slot}' is on the {prefix} bus, but the disk's bus is {bus} ({BUS_PREFIX[bus]}N slots)"
    return None


def nic_slot_problem(slot: str, adapter: str | None = None) -> str | None:
    if adapter == "sriov":
        if not is_hostpci_slot(slot) or int(slot.removeprefix("hostpci")) >= HOSTPCI_SLOTS:
            return (f"slot '{slot}' is not a PCI device key: an SR-IOV NIC is a virtual function passed through as "
                    f"hostpciN (hostpci0 to hostpci{HOSTPCI_SLOTS - 1})")
        return None
    if is_hostpci_slot(slot):
        return f"slot '{slot}' is a PCI device key, for adapter='sriov' NICs only"
    found = _NIC_KEY.match(slot)
    if found is None or int(found.group(1)) >= NIC_SLOTS:
        return f"slot '{slot}' is not a Proxmox network device key (net0 to net{NIC_SLOTS - 1})"
    return None


def new_disk_value(storage: str, size: int) -> str:
    return f"{storage}:{size}"


def scsi_controller(disks: list[DiskSpec]) -> str | None:
    """``scsihw`` for these disks: the controller of their SCSI disks (check() refuses mixed kinds)."""
    for disk in disks:
        if disk.bus in SCSI_CONTROLLERS:
            return SCSI_CONTROLLERS[disk.bus]
    return None


def efidisk_value(storage: str, secure_boot: bool) -> str:
    return f"{storage}:1,efitype=4m,pre-enrolled-keys={int(secure_boot)}"


def enrolled_keys(config: Mapping[str, Any]) -> bool:
    """Whether the EFI vars disk was made with the secure boot keys enrolled (``pre-enrolled-keys=1``: PVE reads the
    option only when it makes the disk)."""
    _, options = split_options(str(config.get("efidisk0") or ""))
    return options.get("pre-enrolled-keys") == "1"


def secure_boot_of(config: Mapping[str, Any]) -> bool:
    """Secure boot: OVMF with an EFI vars disk holding the enrolled keys (SeaBIOS has none; an EFI vars disk kept
    while the VM runs SeaBIOS is not read)."""
    return config.get("bios") == "ovmf" and enrolled_keys(config)


# ---- NICs --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NicSlot:
    """One NIC of a live VM: key (``net0``), model, MAC, and its other options (bridge, tag, firewall…)."""

    key: str
    model: str
    mac: str | None
    options: dict[str, str] = field(default_factory=dict)

    @property
    def index(self) -> int:
        return int(_NIC_KEY.match(self.key).group(1))  # type: ignore[union-attr]

    @property
    def bridge(self) -> str:
        return self.options.get("bridge", "")

    @property
    def vlan(self) -> int:
        tag = self.options.get("tag", "")
        return int(tag) if tag.isdigit() else 0


def nic_slots(config: Mapping[str, Any]) -> list[NicSlot]:
    slots = []
    for key, value in config.items():
        if not _NIC_KEY.match(key):
            continue
        model, mac, options = "", None, {}
        for part in str(value).split(","):
            name, sep, setting = part.partition("=")
            if name in PVE_NIC_MODELS:
                model, mac = name, setting or None
            elif name == "model":
                model = setting
            elif name == "macaddr":
                mac = setting
            elif sep:
                options[name] = setting
        slots.append(NicSlot(key, model, mac, options))
    return sorted(slots, key=lambda slot: slot.index)


@dataclass(frozen=True)
class NetworkNames:
    """Declared networks on one endpoint: a network is a VLAN tag on the endpoint's bridge."""

    bridge: str
    vlans: Mapping[str, int]  # declared network name -> VLAN

    def wiring(self, network: str) -> tuple[str, int]:
        """(bridge, vlan) for a NIC on ``network``: a declared network, else an existing bridge, untagged."""
        if network in self.vlans:
            return self.bridge, self.vlans[network]
        if (vlan := vlan_named(network, self.bridge)) is not None:
            return self.bridge, vlan
        return network, 0

    def name_of(self, bridge: str, vlan: int) -> str:
        if bridge == self.bridge:
            for name in sorted(self.vlans):
                if self.vlans[name] == vlan:
                    return name
        return f"{bridge}.{vlan}" if vlan else bridge


def nic_value(nic: NicSpec, names: NetworkNames, previous: NicSlot | None = None) -> str:
    """The ``netN`` value for ``nic``; a NIC being changed keeps its MAC and its other options (and its model when
    the spec leaves ``adapter`` unset)."""
    bridge, vlan = names.wiring(nic.network)
    if nic.adapter is not None:
        model = NIC_MODELS[nic.adapter]
    else:
        model = previous.model if previous and previous.model else NIC_MODELS["paravirtual"]
    options = dict(previous.options) if previous else {}
    options.pop("tag", None)
    options["bridge"] = bridge
    if vlan:
        options["tag"] = str(vlan)
    head = f"{model}={previous.mac}" if previous and previous.mac else model
    return join_options(head, options)


def nic_state(slot: NicSlot, names: NetworkNames) -> dict[str, Any]:
    return {"network": names.name_of(slot.bridge, slot.vlan), "adapter": _NEUTRAL_ADAPTER.get(slot.model, slot.model),
            "device": None, "slot": slot.key}


def new_nic_slot(taken: Collection[str]) -> str | None:
    """The lowest free ``netN``; None when all are taken."""
    return next((f"net{n}" for n in range(NIC_SLOTS) if f"net{n}" not in taken), None)


# ---- scalars -----------------------------------------------------------------------------------------


def ostype(guest_os: str) -> str:
    return GUEST_OSTYPES.get(guest_os, guest_os)


def guest_os_of(value: str | None) -> str:
    value = value or "other"  # PVE's default ostype
    return _NEUTRAL_GUEST.get(value, value)


def cpu_type(value: str | None) -> str | None:
    """The CPU type of ``cpu`` (``host``, ``cputype=host,flags=…``); None when unset."""
    if not value:
        return None
    first, options = split_options(str(value))
    return first or options.get("cputype")


def machine_type(value: str | None) -> str | None:
    if not value:
        return None
    first, options = split_options(str(value))
    return first or options.get("type")


def memory_mib(value: Any) -> int:
    """``memory`` as PVE sends it: an integer, ``"2048"`` or ``"current=2048"``."""
    if value is None or value == "":
        return DEFAULT_MEMORY
    first, options = split_options(str(value))
    return int(first or options.get("current", DEFAULT_MEMORY))


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# ---- whole VMs ---------------------------------------------------------------------------------------


def vm_state(config: Mapping[str, Any], node: str, running: bool, names: NetworkNames, pci: PciView | None = None,
             sriov_networks: Sequence[NicSpec] = ()) -> dict[str, Any]:
    """A live VM's configuration in the spec's shape (``VirtualMachineSpec.model_dump()``). ``pci`` tells what each
    ``hostpciN`` is (devices.py); ``sriov_networks`` are the declared SR-IOV NICs, whose networks a VF cannot hold."""
    sockets = _int(config.get("sockets"), 1)
    scsihw = config.get("scsihw")
    gpus, vfs = device_states(config, node, pci or PciView(), sriov_networks, names.bridge)
    return {
        "cpus": _int(config.get("cores"), 1) * sockets,
        "sockets": sockets,
        "memory": memory_mib(config.get("memory")),
        "node": node,
        "machine": machine_type(config.get("machine")),
        "disks": [disk_state(slot, scsihw) for slot in disk_slots(config)],
        "nics": [nic_state(slot, names) for slot in nic_slots(config)] + vfs,
        "gpus": gpus,
        "firmware": "uefi" if config.get("bios") == "ovmf" else "bios",
        "secure_boot": secure_boot_of(config),
        "guest_os": guest_os_of(config.get("ostype")),
        "power": "on" if running else "off",
        "nested_virtualization": cpu_type(config.get("cpu")) == NESTED_CPU,
        "clone_from": None,
        "linked_clone": False,
        "tags": user_tags(config.get("tags")),
    }


def device_states(config: Mapping[str, Any], node: str, pci: PciView, declared: Sequence[NicSpec],
                  bridge: str | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(GPUs in hostpci order, SR-IOV NICs from hostpci15 down) of a VM. A VF's network is the declared SR-IOV NIC's
    with its slot, else the next declared one without a slot, in order: PVE has no such setting to read. A VF no
    declared NIC accounts for is on ``bridge`` (the endpoint's: what an import writes for it)."""
    gpus, vfs = [], []
    for entry in hostpci_entries(config):
        kind = kind_of(entry, node, pci)
        if kind == "gpu":
            gpus.append(gpu_state(entry, node, pci))
        elif kind == "vf":
            vfs.append(entry)
    vfs.sort(key=lambda entry: -entry.index)
    by_slot = {nic.slot: nic for nic in declared if nic.slot}
    unslotted = iter([nic for nic in declared if not nic.slot])
    nics = []
    for entry in vfs:
        match = by_slot[entry.key] if entry.key in by_slot else next(unslotted, None)
        state = sriov_nic_state(entry, node, pci, match.network if match else bridge)
        if match and match.device and is_address(match.device) and is_address(state["device"]) and \
                pci_address(match.device) == pci_address(state["device"]):
            state["device"] = match.device  # the PF as the stack writes it (5e:00.0 is 0000:5e:00.0)
        nics.append(state)
    return gpus, nics


def scalar_config(spec: VirtualMachineSpec) -> dict[str, Any]:
    """CPU, memory, OS type, firmware, machine and CPU type, as config keys (no devices); unset fields are left to
    PVE's defaults."""
    sockets = spec.sockets or 1  # None: PVE's own layout, one socket
    config: dict[str, Any] = {"sockets": sockets, "bios": "ovmf" if spec.firmware == "uefi" else "seabios"}
    if spec.cpus is not None:
        config["cores"] = spec.cpus // sockets
    if spec.memory is not None:
        config["memory"] = spec.memory
    if spec.guest_os is not None:
        config["ostype"] = ostype(spec.guest_os)
    if spec.machine:
        config["machine"] = spec.machine
    if spec.nested_virtualization:
        config["cpu"] = NESTED_CPU
    return config


def create_config(spec: VirtualMachineSpec, storages: list[str], efi_storage: str | None,
                  names: NetworkNames) -> dict[str, Any]:
    """Every config key for a new VM but its name and description; ``storages[i]`` is where disk i goes. Every
    disk and NIC carries its slot (the engine resolves them; virtplane.slots.resolve_vm)."""
    config = scalar_config(spec)
    config["tags"] = encode_tags(spec.tags or [])
    disks, nics = spec.disks or [], spec.nics or []
    if spec.firmware == "uefi" and efi_storage:
        config["efidisk0"] = efidisk_value(efi_storage, bool(spec.secure_boot))
    if controller := scsi_controller(disks):
        config["scsihw"] = controller
    boot = []
    for position, disk in enumerate(disks):
        if disk.slot is None or slot_problem(disk.slot, disk.bus):
            raise ValueError(f"disk {position} has no usable slot ({disk.slot})")
        config[disk.slot] = new_disk_value(storages[position], disk.size)
        boot += [] if boot else [disk.slot]
    for position, nic in enumerate(nics):
        if nic.slot is None or nic_slot_problem(nic.slot, nic.adapter):
            raise ValueError(f"NIC {position} has no usable slot ({nic.slot})")
        if nic.adapter != "sriov":  # a VF is a hostpciN, made by the driver (devices.py)
            config[nic.slot] = nic_value(nic, names)
    boot += [nic.slot for nic in nics if nic.adapter != "sriov"][:1]
    if boot:
        config["boot"] = "order=" + ";".join(boot)  # the first declared disk boots, then the network
    return config


def network_names(bridge: str, declared: Mapping[str, Mapping[str, Any]]) -> NetworkNames:
    """The declared networks of one endpoint (``declared["Network"]``: name -> NetworkSpec) on its bridge."""
    return NetworkNames(bridge, {name: int(getattr(spec, "vlan", 0)) for name, spec in
                                 declared.get("Network", {}).items()})
