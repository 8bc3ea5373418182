"""Plan-time checks of a VirtualMachineSpec against a Proxmox cluster: fields PVE cannot honour and references
(nodes, storages, bridges, clone sources) the cluster does not have, as (field, message) pairs.

Raw PCI devices: qemu-server lets only ``root@pam`` itself (not its API tokens, not another user) set a ``hostpciN``
that names a device by address; everyone else passes devices through resource mappings, with Mapping.Use on them
(Proxmox VE Administration Guide, "Resource Mapping"; qemu-server's check_hostpci_perm). A GPU or SR-IOV NIC that
would be written as an address is said at plan time, naming the mappings to use instead."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from virtplane.providers.proxmox import cloudinit as pve_cloudinit
from virtplane.providers.proxmox.cluster import Cluster
from virtplane.providers.proxmox.config import (
    GUEST_OSTYPES,
    PVE_OSTYPES,
    NetworkNames,
    nic_slot_problem,
    slot_problem,
)
from virtplane.providers.proxmox.devices import is_address
from virtplane.providers.proxmox.ownership import MARKER_TAG
from virtplane.providers.proxmox.vm_reader import VmRow
from virtplane.specs import NicSpec, VirtualMachineSpec

Problems = list[tuple[str, str]]
_TAG = re.compile(r"^[a-z0-9_][a-z0-9_+.-]*$")  # PVE's pve-tag format, in the lower case PVE stores


def vm_problems(spec: VirtualMachineSpec, names: NetworkNames, cluster: Cluster, rows: list[VmRow],
                default_node: str | None = None, mapping_ids: Callable[[], set[str]] = set,
                raw_devices_as: str | None = None, snippets: tuple[str | None, str | None] = (None, None)) -> Problems:
    """``default_node`` is the endpoint's ``node`` setting (where VMs that name none are created);
    ``raw_devices_as`` names who the endpoint acts as when that is not root@pam itself (raw devices refused);
    ``snippets`` its snippets storage and the path it is mounted at here."""
    problems: Problems = []
    source = clone_source(spec.clone_from, spec.linked_clone, rows, problems)
    node = checked_node(spec.node, source, default_node, cluster, problems)
    problems += _disk_problems(spec, cluster, node)
    problems += nic_problems(spec.nics or [], names, cluster)
    problems += tag_problems(spec.tags or [])
    problems += _device_problems(spec, mapping_ids)
    if raw_devices_as is not None:
        problems += _raw_device_problems(spec, mapping_ids, raw_devices_as)
    problems += _cloud_init_problems(spec, cluster, *snippets)
    if spec.guest_os is not None and spec.guest_os not in GUEST_OSTYPES and spec.guest_os not in PVE_OSTYPES:
        problems.append(("guest_os", f"'{spec.guest_os}' is neither linux, windows or other nor a Proxmox ostype "
                                     f"(choices: {', '.join(PVE_OSTYPES)})"))
    return problems


def find_sources(name: str, rows: list[VmRow]) -> list[VmRow]:
    return [row for row in rows if row.name == name]


def checked_node(named: str | None, source: VmRow | None, default_node: str | None, cluster: Cluster,
                 problems: Problems) -> str | None:
    """The node a new guest's references are checked on: the one it names, its clone source's, or the endpoint's
    ``node`` setting (None: placement chooses, or the node is reported as a problem here)."""
    node = named or (source.node if source else default_node)
    if named and (problem := cluster.node_problem(named)):
        problems.append(("node", problem))
        return None
    if node and not named and not source and (problem := cluster.node_problem(node)):
        problems.append(("node", f"the endpoint's {problem}"))
        return None
    return node


def clone_source(clone_from: str | None, linked_clone: bool, rows: list[VmRow], problems: Problems,
                 noun: str = "VM", template: str = "template") -> VmRow | None:
    """The one guest of ``rows`` named ``clone_from`` (a VM, or with ``noun`` "container" a container), or None with
    the problem said: none or several of that name, a linked clone of something that is no ``template``."""
    if not clone_from:
        return None
    found = find_sources(clone_from, rows)
    if not found:
        problems.append(("clone_from", f"no {noun} or {template} named '{clone_from}' exists on this Proxmox cluster"))
        return None
    if len(found) > 1:
        ids = ", ".join(str(row.vmid) for row in found)
        problems.append(("clone_from", f"several {noun}s are named '{clone_from}' (VMIDs {ids}); rename all but "
                                       "one, clone sources must be unique"))
        return None
    if linked_clone and not found[0].template:
        problems.append(("linked_clone", f"a linked clone needs a {template}, and '{clone_from}' (VMID "
                                         f"{found[0].vmid}) is a {noun}: convert it to a template or set "
                                         "linked_clone=False"))
    return found[0]


def _disk_problems(spec: VirtualMachineSpec, cluster: Cluster, node: str | None) -> Problems:
    problems: Problems = []
    disks = spec.disks or []
    buses = {disk.bus or ("paravirtual" if not spec.clone_from else None) for disk in disks}
    if {"paravirtual", "lsilogic"} <= buses:
        problems.append(("disks", "a Proxmox VM has one SCSI controller, so its SCSI disks are either all "
                                  "paravirtual (VirtIO SCSI) or all lsilogic, not both"))
    named = {disk.storage for disk in disks if disk.storage}
    if node is None and not spec.clone_from:
        node = _node_with(cluster, named, problems)
    default_reported = False
    for index, disk in enumerate(disks):
        where = f"disks[{index}]"
        if disk.bus == "nvme":
            problems.append((f"{where}.bus", "NVMe disks do not exist on Proxmox VE (choices: paravirtual, "
                                             "lsilogic, sata, ide, virtio-blk)"))
        elif disk.slot is not None and (problem := slot_problem(disk.slot, disk.bus)):
            problems.append((f"{where}.slot", problem))
        if disk.thin is False:
            problems.append((f"{where}.thin", "thin provisioning on Proxmox follows the storage type (LVM-thin, ZFS, "
                                              "Ceph and qcow2 are thin); leave thin=True"))
        if node is None:
            continue
        if disk.storage:
            if problem := cluster.storage_problem(disk.storage, node):
                problems.append((f"{where}.storage", problem))
        elif not default_reported and not spec.clone_from:
            problem, _ = cluster.default_storage_problem(node)
            if problem:
                problems.append((f"{where}.storage", problem))
                default_reported = True
    if spec.firmware == "uefi" and not disks and node is not None and not spec.clone_from:
        problem, _ = cluster.default_storage_problem(node)
        if problem:
            problems.append(("firmware", f"the EFI vars disk needs a storage, but {problem}"))
    return problems


def _node_with(cluster: Cluster, storages: set[str], problems: Problems) -> str | None:
    """The node to check storages against when none is named: an online node where every named storage holds
    disks (placement picks among those), else the first online node (whose storages the messages then list)."""
    online = cluster.online_nodes()
    if not online:
        problems.append(("node", "no node of the cluster is online"))
        return None
    for node in online:
        if all(cluster.storage_problem(storage, node) is None for storage in storages):
            return node
    return online[0]


def nic_problems(nics: list[NicSpec], names: NetworkNames, cluster: Cluster) -> Problems:
    """NICs (of a VM or a container) on networks that are neither declared nor bridges of the cluster, and slots or
    SR-IOV VLANs PVE cannot take."""
    problems: Problems = []
    for index, nic in enumerate(nics):
        if nic.slot is not None and (problem := nic_slot_problem(nic.slot, nic.adapter)):
            problems.append((f"nics[{index}].slot", problem))
        if nic.adapter == "sriov" and names.vlans.get(nic.network, 0):
            problems.append((f"nics[{index}].network", f"network '{nic.network}' has VLAN {names.vlans[nic.network]}, "
                             "but Proxmox cannot set a VLAN on an SR-IOV virtual function through a VM's "
                             "configuration; use an untagged network and tag the VF on the host (ip link set <pf> "
                             "vf <n> vlan <id>)"))
    unknown = [(index, nic.network) for index, nic in enumerate(nics)
               if nic.network not in names.vlans and nic.adapter != "sriov"]
    if not unknown:
        return problems
    bridges = cluster.bridge_names()
    for index, network in unknown:
        if network not in bridges:
            choices = ", ".join(sorted(names.vlans) + bridges) or "none"
            problems.append((f"nics[{index}].network", f"network '{network}' is neither declared in the stack nor a "
                                                       f"bridge on the cluster's nodes (choices: {choices})"))
        elif problem := cluster.bridge_problem(network, 0):
            problems.append((f"nics[{index}].network", problem))
    return problems


def _device_problems(spec: VirtualMachineSpec, mapping_ids: Callable[[], set[str]]) -> Problems:
    """A device that is neither a PCI address nor one of the cluster's resource mappings (read only when one is
    named)."""
    named = [(f"gpus[{i}].device", gpu.device) for i, gpu in enumerate(spec.gpus or []) if gpu.device]
    named += [(f"nics[{i}].device", nic.device) for i, nic in enumerate(spec.nics or []) if nic.device]
    names = [(where, device) for where, device in named if not is_address(device)]
    if not names:
        return []
    known = mapping_ids()
    choices = ", ".join(sorted(known)) or "none"
    return [(where, f"'{device}' is neither a PCI address (0000:3b:00.0) nor a PCI resource mapping of the cluster "
                    f"(mappings: {choices})") for where, device in names if device not in known]


def _raw_device_problems(spec: VirtualMachineSpec, mapping_ids: Callable[[], set[str]], principal: str) -> Problems:
    """GPUs and SR-IOV NICs that would be written as raw addresses (named by address, or named by nothing: placement
    then gives an address), for an endpoint that is not root@pam itself."""
    raw = [(f"gpus[{i}].device", gpu.device) for i, gpu in enumerate(spec.gpus or [])
           if not gpu.device or is_address(gpu.device)]
    raw += [(f"nics[{i}].device", nic.device) for i, nic in enumerate(spec.nics or [])
            if nic.adapter == "sriov" and (not nic.device or is_address(nic.device))]
    if not raw:
        return []
    choices = ", ".join(sorted(mapping_ids())) or "none yet"
    return [(where, f"{'names PCI address ' + device if device else 'names no device, so it would get a PCI address'}"
                    f"; Proxmox lets only root@pam itself pass a raw PCI device (hostpciN), and this endpoint acts as "
                    f"{principal}: name a resource mapping in device= (Datacenter > Resource Mappings, with "
                    f"Mapping.Use for {principal}; mappings: {choices})") for where, device in raw]


def tag_problems(tags: list[str]) -> Problems:
    problems: Problems = []
    for tag in tags:
        if tag == MARKER_TAG:
            problems.append(("tags", f"'{MARKER_TAG}' is virtplane's ownership tag on Proxmox; choose another tag"))
        elif tag.lower() != tag and _TAG.match(tag.lower()):
            problems.append(("tags", f"'{tag}': Proxmox keeps tags in lower case; write '{tag.lower()}'"))
        elif not _TAG.match(tag):
            problems.append(("tags", f"'{tag}' is not a valid Proxmox tag: start with a letter, digit or '_', then "
                                     "only letters, digits, '_', '-', '+' and '.'"))
    return problems


def _cloud_init_problems(spec: VirtualMachineSpec, cluster: Cluster, storage: str | None, path: str | None
                         ) -> Problems:
    """Cloud-init PVE's own options cannot carry needs snippets: a snippets storage, mounted here."""
    if spec.cloud_init is None:
        return []
    docs = spec.cloud_init.documents
    native = pve_cloudinit.native_options(docs, str(docs.meta_data.get("local-hostname") or ""))
    if native is not None:
        entries = sum(1 for key in native if key.startswith("ipconfig"))
        if spec.nics is not None and entries > len(spec.nics):
            return [("cloud_init.network_config", f"has {entries} ethernets entries, but the VM has {len(spec.nics)} "
                                                  "NICs (on Proxmox the Nth entry configures netN-1)")]
        return []
    why = ("says more than PVE's cloud-init options (ciuser, sshkeys, ciupgrade, ipconfigN, nameserver, "
           "searchdomain) can carry, so it goes as cicustom snippets")
    if storage is None or path is None:
        return [("cloud_init", f"{why}: set snippets_storage= and snippets_path= on the Endpoint "
                               "(PROXMOX_VE_SNIPPETS_STORAGE, PROXMOX_VE_SNIPPETS_PATH): a storage with the snippets "
                               "content type and its snippets directory as mounted here (PVE's API cannot upload "
                               "snippets); docs/cloud-init.md")]
    facts = cluster.storages().get(storage)
    if facts is None:
        return [("cloud_init", f"{why}, but the endpoint's snippets storage '{storage}' does not exist")]
    if "snippets" not in facts.content:
        return [("cloud_init", f"{why}, but storage '{storage}' does not hold snippets (its content is "
                               f"{','.join(sorted(facts.content))}; add 'snippets' to it)")]
    if not os.path.isdir(path) or not os.access(path, os.W_OK):
        return [("cloud_init", f"{why}, but the snippets path {path} is not a writable directory here (mount the "
                               f"snippets directory of storage '{storage}' there)")]
    return []
