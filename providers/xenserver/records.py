"""Pure mapping between XAPI records and the VirtualMachine spec's shape (no I/O).

- ``cpus`` is ``VCPUs_max`` (virtplane keeps ``VCPUs_at_startup`` equal); ``sockets`` is ``VCPUs_max`` divided by
  ``platform:cores-per-socket`` (XAPI's default without it: one core per socket).
- ``memory`` is ``memory_static_max`` in MiB; virtplane sets static = dynamic (``VM.set_memory_limits``), as
  passthrough and vGPU need (no ballooning).
- ``firmware`` is ``HVM_boot_params:firmware`` (``bios`` when absent), ``secure_boot`` ``platform:secureboot``,
  ``nested_virtualization`` ``platform:nested-virt`` (XAPI's key since XenServer 7.1; older XCP-ng reads
  ``exp-nested-hvm``: either one true reads as true, both are written).
- Disks: the VM's VBDs of type Disk; slot = ``userdevice`` (``"0"``, ``"1"``…), size = the VDI's
  ``virtual_size`` in whole GiB, ``storage`` = its SR's name, ``thin`` = whether that SR type allocates on write
  (file-based SRs: nfs, ext, smb, xfs...; LVM SRs are thick), ``bus`` = ``paravirtual`` (a VBD is a PV disk).
- NICs: the VIFs; slot = ``device``, ``network`` named by the stack's Network of the same VLAN where there is one
  (a VLAN network on the endpoint's NIC device), else the XAPI network's name; ``adapter`` ``sriov`` on an SR-IOV
  network (its VIFs get virtual functions), else ``paravirtual``.
- GPUs: the vGPUs; a VGPU_type whose implementation is ``passthrough`` is a whole GPU, any other a vGPU whose
  ``profile`` is the type's ``model_name`` (``GRID A100-4C``); ``device`` the PGPU's PCI address (where it runs,
  or the only PGPU of its group).
- Cloud-init: a config-drive VDI (a NoCloud ISO image, label ``cidata``) on a disk VBD, marked in its
  ``other_config:virtplane.cloud-init`` with the VM's uuid and the documents' digest (what ``cloud_init`` reads back);
  it is not one of the VM's ``disks``.
- Ownership: ``other_config:virtplane.owner`` (the shared marker format) and the tag ``virtplane``; a VM is made
  under a pending name that carries the marker (base.pending_name) until both are written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from virtplane.providers.base import MARKER_KEY, Owner, owner_from_pending

GiB = 1024**3
MiB = 1024**2
MARKER_TAG = "virtplane"
DISK_KEY = "virtplane.disk"  # VDI other_config: "<VM uuid>/<slot>", so a disk made before its VBD is found again
CLOUD_INIT_KEY = "virtplane.cloud-init"  # VDI other_config of a config drive: "<VM uuid>/<digest of its documents>"
THIN_SR_TYPES = frozenset({"nfs", "ext", "smb", "xfs", "file", "cephfs", "glusterfs", "zfs", "largeblock"})
NULL = "OpaqueRef:NULL"
_VENDORS = (("nvidia", "nvidia"), ("advanced micro devices", "amd"), ("amd", "amd"), ("intel", "intel"))
Records = dict[str, dict[str, Any]]


@dataclass
class PoolView:
    """The records a read of the pool gathered, by class and ref (only the classes a caller needs)."""

    vbds: Records = field(default_factory=dict)
    vdis: Records = field(default_factory=dict)
    vifs: Records = field(default_factory=dict)
    networks: Records = field(default_factory=dict)
    pifs: Records = field(default_factory=dict)
    sriovs: Records = field(default_factory=dict)
    vgpus: Records = field(default_factory=dict)
    vgpu_types: Records = field(default_factory=dict)
    pgpus: Records = field(default_factory=dict)
    pcis: Records = field(default_factory=dict)
    srs: Records = field(default_factory=dict)
    hosts: Records = field(default_factory=dict)

    def of_vm(self, records: Records, vm: str) -> list[tuple[str, dict[str, Any]]]:
        return [(ref, record) for ref, record in records.items() if record.get("VM") == vm]

    def sriov_network(self, network: str) -> bool:
        return any(record["logical_PIF"] in self.pifs and self.pifs[record["logical_PIF"]]["network"] == network
                   for record in self.sriovs.values())


# ---- ownership ---------------------------------------------------------------------------------------------


def owner_of(vm: Mapping[str, Any]) -> tuple[Owner | None, bool]:
    """The VM's marker and whether it is still pending (named after its marker by an interrupted create)."""
    pending = owner_from_pending(vm.get("name_label"))
    if pending is not None:
        return pending, True
    return Owner.decode((vm.get("other_config") or {}).get(MARKER_KEY)), False


def marker_complete(vm: Mapping[str, Any]) -> bool:
    owner, pending = owner_of(vm)
    return owner is not None and not pending and MARKER_TAG in (vm.get("tags") or [])


def user_tags(tags: list[str] | None) -> list[str]:
    return sorted({tag for tag in tags or [] if tag != MARKER_TAG})


# ---- the VM in spec shape ----------------------------------------------------------------------------------


def vm_state(vm: str, record: Mapping[str, Any], view: PoolView, network_name: Callable[[str], str]
             ) -> dict[str, Any]:
    platform, boot = record.get("platform") or {}, record.get("HVM_boot_params") or {}
    cpus = int(record["VCPUs_max"])
    return {
        "cpus": cpus, "sockets": sockets(cpus, platform.get("cores-per-socket")),
        "memory": int(record["memory_static_max"]) // MiB,
        "node": _host_name(view, record.get("resident_on")) or _host_name(view, record.get("affinity")),
        "machine": None, "guest_os": None,
        "disks": disks(vm, view), "nics": nics(vm, record, view, network_name), "gpus": gpus(vm, view),
        "firmware": boot.get("firmware") or "bios",
        "secure_boot": platform.get("secureboot", "").lower() == "true",
        "power": "on" if record["power_state"] in ("Running", "Paused") else "off",
        "nested_virtualization": any(platform.get(key, "").lower() in ("true", "1")
                                     for key in ("nested-virt", "exp-nested-hvm")),
        "clone_from": None, "linked_clone": False, "tags": user_tags(record.get("tags")),
        "cloud_init": next((digest for _, _, digest in config_drives(vm, record, view)), None),
    }


def sockets(cpus: int, cores_per_socket: str | None) -> int:
    if cores_per_socket and cores_per_socket.isdigit() and int(cores_per_socket) and cpus % int(cores_per_socket) == 0:
        return cpus // int(cores_per_socket)
    return cpus


def _host_name(view: PoolView, ref: Any) -> str | None:
    host = view.hosts.get(str(ref)) if ref and ref != NULL else None
    return str(host["name_label"]) if host else None


def disk_vbds(vm: str, view: PoolView) -> list[tuple[str, dict[str, Any]]]:
    """The VM's disk VBDs (not CD drives, not empty, not its cloud-init config drive), by userdevice."""
    found = [(ref, vbd) for ref, vbd in view.of_vm(view.vbds, vm)
             if vbd.get("type") == "Disk" and not vbd.get("empty") and vbd.get("VDI") in view.vdis
             and CLOUD_INIT_KEY not in (view.vdis[vbd["VDI"]].get("other_config") or {})]
    return sorted(found, key=lambda item: _number(item[1]["userdevice"]))


def config_drives(vm: str, record: Mapping[str, Any], view: PoolView) -> list[tuple[str, str, str]]:
    """(VBD, VDI, digest) of each cloud-init config drive virtplane made for this VM (its other_config names the
    VM's uuid and the documents' digest)."""
    found = []
    for ref, vbd in view.of_vm(view.vbds, vm):
        mark = str((view.vdis.get(vbd.get("VDI"), {}).get("other_config") or {}).get(CLOUD_INIT_KEY, ""))
        owner, _, digest = mark.partition("/")
        if mark and owner == str(record.get("uuid")):
            found.append((ref, str(vbd["VDI"]), digest))
    return found


def disks(vm: str, view: PoolView) -> list[dict[str, Any]]:
    found = []
    for _, vbd in disk_vbds(vm, view):
        vdi = view.vdis[vbd["VDI"]]
        sr = view.srs.get(vdi["SR"], {})
        found.append({"size": int(vdi["virtual_size"]) // GiB, "storage": sr.get("name_label"),
                      "thin": sr.get("type") in THIN_SR_TYPES if sr else None, "bus": "paravirtual",
                      "slot": str(vbd["userdevice"])})
    return found


def nics(vm: str, record: Mapping[str, Any], view: PoolView, network_name: Callable[[str], str]
         ) -> list[dict[str, Any]]:
    found = []
    for _, vif in sorted(view.of_vm(view.vifs, vm), key=lambda item: _number(item[1]["device"])):
        network = str(vif["network"])
        sriov = view.sriov_network(network)
        found.append({"network": network_name(network), "adapter": "sriov" if sriov else "paravirtual",
                      "device": _vf_parent(view, network, record.get("resident_on")) if sriov else None,
                      "slot": str(vif["device"])})
    return found


def _vf_parent(view: PoolView, network: str, host: Any) -> str | None:
    """The PCI address of the NIC whose virtual function a VIF on an SR-IOV network has on ``host``."""
    for sriov in view.sriovs.values():
        logical = view.pifs.get(sriov["logical_PIF"], {})
        if logical.get("network") == network and logical.get("host") == host:
            pci = view.pcis.get(view.pifs.get(sriov["physical_PIF"], {}).get("PCI", NULL))
            return str(pci["pci_id"]) if pci else None
    return None


def gpus(vm: str, view: PoolView) -> list[dict[str, Any]]:
    found = []
    for _, vgpu in sorted(view.of_vm(view.vgpus, vm), key=lambda item: _number(item[1]["device"])):
        vgpu_type = view.vgpu_types.get(vgpu["type"], {})
        pgpu = view.pgpus.get(vgpu.get("resident_on", NULL))
        if pgpu is None:
            in_group = [p for p in view.pgpus.values() if p["GPU_group"] == vgpu["GPU_group"]]
            pgpu = in_group[0] if len(in_group) == 1 else None
        pci = view.pcis.get(pgpu["PCI"]) if pgpu else None
        passthrough = vgpu_type.get("implementation") == "passthrough"
        vendor_name = (pci or {}).get("vendor_name") if passthrough else vgpu_type.get("vendor_name")
        found.append({"mode": "passthrough" if passthrough else "vgpu",
                      "profile": None if passthrough else vgpu_type.get("model_name"),
                      "device": pci["pci_id"] if pci else None, "vendor": vendor(vendor_name)})
    return found


def vendor(name: str | None) -> str | None:
    text = (name or "").lower()
    return next((short for word, short in _VENDORS if word in text), None)


def _number(text: Any) -> int:
    return int(text) if str(text).isdigit() else 10**6


# ---- the spec in XAPI's terms --------------------------------------------------------------------------------


def vcpu_steps(current_max: int, current_at_startup: int, wanted: int) -> list[tuple[str, int]]:
    """The setter calls that bring VCPUs_max and VCPUs_at_startup to ``wanted``, in an order XAPI accepts
    (0 < VCPUs_at_startup <= VCPUs_max after each one: ocaml/xapi/xapi_vm.ml)."""
    steps = []
    if wanted >= current_max:
        if wanted != current_max:
            steps.append(("VM.set_VCPUs_max", wanted))
        if wanted != current_at_startup:
            steps.append(("VM.set_VCPUs_at_startup", wanted))
    else:
        if wanted != current_at_startup:
            steps.append(("VM.set_VCPUs_at_startup", wanted))
        steps.append(("VM.set_VCPUs_max", wanted))
    return steps


def platform_changes(cpus: int | None, sockets: int | None, secure_boot: bool | None,
                     nested: bool | None) -> dict[str, str | None]:
    """``platform`` keys to set (a value) or remove (None) for the given fields (None: not managed)."""
    changes: dict[str, str | None] = {}
    if sockets is not None and cpus is not None:
        changes["cores-per-socket"] = str(cpus // sockets)
    if secure_boot is not None:
        changes["secureboot"] = "true" if secure_boot else "false"
    if nested is not None:
        changes["nested-virt"] = changes["exp-nested-hvm"] = "true" if nested else "false"
    return changes
