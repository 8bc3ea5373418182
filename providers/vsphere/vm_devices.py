"""One VM's device changes by slot: disks, NICs (SR-IOV ones built from the host's PCI devices) and GPUs,
added to a DevicePlan for a CreateVM or ReconfigVM call."""

from __future__ import annotations

import re
from typing import Any

from virtplane.errors import VirtplaneError
from virtplane.providers.base import FieldChange
from virtplane.providers.vsphere.devices import DevicePlan, Hardware, nic_backing
from virtplane.providers.vsphere.inventory import Inventory
from virtplane.providers.vsphere.pci import HostPci, new_gpu, new_sriov_nic, read_host_pci
from virtplane.specs import DiskSpec, GpuSpec, NicSpec, VirtualMachineSpec

_ITEM = re.compile(r"^(disks|nics|gpus)\[([^\]]+)\](?:\.(\w+))?$")


class VmDevices:
    """Builds device changes against the endpoint's inventory. Holds no state of its own between calls, so
    concurrent creates and updates may share it."""

    def __init__(self, content: Any, inventory: Inventory):
        self._content = content
        self._inventory = inventory

    def add_disk(self, plan: DevicePlan, disk: DiskSpec) -> None:
        name = disk.storage or self._inventory.placement.datastore_name
        plan.add_disk(disk, name, self._inventory.datastore(name))

    def host_pci(self, node: str | None, name: str) -> HostPci:
        if node is None:
            raise VirtplaneError(f"VM {name} asks for PCI devices (GPUs, SR-IOV NICs) but names no host and "
                                 "placement chose none")
        host, _pool = self._inventory.host_and_pool(node)
        return read_host_pci(self._content, host, node)

    def add_nic(self, plan: DevicePlan, nic: NicSpec, host_pci: HostPci | None, name: str) -> None:
        backing = nic_backing(self._inventory.network(nic.network))
        if nic.adapter == "sriov":
            key = plan.nic_key(nic.slot)
            plan.add_device(new_sriov_nic(nic, host_pci, backing, key, f"VM {name}: NIC {nic.slot}"))
        else:
            plan.add_nic(nic, backing)

    @staticmethod
    def rebuild_gpus(plan: DevicePlan, hardware: Hardware, gpus: list[GpuSpec], fixed: list[bool],
                      host_pci: HostPci | None, name: str) -> list[Any]:
        """Remove every GPU and add the declared ones in order: GPUs are identified by position (device
        key order), which a new device added beside old ones would not keep. The VM is off for this. Returns
        the new GPU devices."""
        for device in hardware.gpus:
            plan.remove_device(device)
        added = []
        for index, (gpu, fixed_backing) in enumerate(zip(gpus, fixed, strict=True)):
            added.append(new_gpu(gpu, fixed_backing, host_pci, f"VM {name}: gpus[{index}]", plan.new_key()))
            plan.add_device(added[-1])
        return added

    def reconcile(self, plan: DevicePlan, hardware: Hardware, spec: VirtualMachineSpec,
                         changes: list[FieldChange], host_pci: HostPci | None, name: str) -> None:
        """Add, remove, grow and rewire exactly the disks and NICs ``changes`` names, by slot."""
        disks = {disk.slot: disk for disk in spec.disks or []}
        nics = {nic.slot: nic for nic in spec.nics or []}
        for change in changes:
            match = _ITEM.match(change.path)
            if match is None:
                continue
            collection, slot, attribute = match.groups()
            if collection == "disks":
                self._reconcile_disk(plan, hardware, slot, attribute, disks.get(slot), change)
            elif collection == "nics":
                self._reconcile_nic(plan, hardware, slot, attribute, nics.get(slot), host_pci, name)

    def _reconcile_disk(self, plan: DevicePlan, hardware: Hardware, slot: str, attribute: str | None,
                        want: DiskSpec | None, change: FieldChange) -> None:
        live = hardware.disks.get(slot)
        if attribute is None and change.new is None:
            if live is not None:
                plan.remove_disk(live)  # a removal reaching update was allowed (--allow-data-loss)
        elif attribute is None:
            if want is not None and live is None:
                self.add_disk(plan, want)
        elif attribute == "size" and live is not None and want is not None:
            plan.grow_disk(live, want.size)

    def _reconcile_nic(self, plan: DevicePlan, hardware: Hardware, slot: str, attribute: str | None,
                       want: NicSpec | None, host_pci: HostPci | None, name: str) -> None:
        live = hardware.nics.get(slot)
        if attribute is None and want is None:
            if live is not None:
                plan.remove_nic(live)
        elif attribute in (None, "adapter", "device"):  # a new adapter or physical function: a new device
            if live is not None:
                plan.remove_nic(live)
            if want is not None:
                self.add_nic(plan, want, host_pci, name)
        elif attribute == "network" and live is not None and want is not None:
            plan.rewire_nic(live, nic_backing(self._inventory.network(want.network)))
