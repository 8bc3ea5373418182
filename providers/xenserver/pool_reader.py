"""Reading the pool in batches: one ``VM.get_all_records_where`` for every VM, and one ``<class>.get_all_records``
per class the answer needs (VBDs, VDIs, VIFs, networks, PIFs, vGPUs… each in one call, whatever the number of
VMs), read concurrently. Host facts add one call per capacity XAPI only answers one at a time
(``host.compute_free_memory``, ``PGPU.get_remaining_capacity``, ``network_sriov.get_remaining_capacity``)."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from virtplane.inventory import Host
from virtplane.providers.xenserver.client import XapiClient
from virtplane.providers.xenserver.host_facts import HostReadings, host_facts
from virtplane.providers.xenserver.records import PoolView

# Every VM but control domains and snapshots; templates too, since a clone stays one until VM.provision.
VMS_WHERE = 'field "is_control_domain" = "false" and field "is_a_snapshot" = "false"'
CONCURRENT_READS = 4  # each is a session of its own (one login each), so few
CLASSES = {"vbds": "VBD", "vdis": "VDI", "vifs": "VIF", "networks": "network", "pifs": "PIF",
           "sriovs": "network_sriov", "vgpus": "VGPU", "vgpu_types": "VGPU_type", "pgpus": "PGPU", "pcis": "PCI",
           "srs": "SR", "hosts": "host"}
VM_PARTS = ("vbds", "vdis", "vifs", "networks", "pifs", "sriovs", "vgpus", "srs", "hosts")
GPU_PARTS = ("vgpu_types", "pgpus", "pcis")


class PoolReader:
    def __init__(self, client: XapiClient) -> None:
        self._client = client

    def vms(self, where: str = VMS_WHERE) -> dict[str, dict[str, Any]]:
        return dict(self._client.get("VM.get_all_records_where", where, what="read the pool's VMs"))

    def view(self, parts: Iterable[str]) -> PoolView:
        """The records of the given PoolView fields, each class in one call, concurrently."""
        parts = list(dict.fromkeys(parts))
        with ThreadPoolExecutor(max_workers=min(CONCURRENT_READS, len(parts) or 1)) as pool:
            read = dict(zip(parts, pool.map(self._records, parts), strict=True))
        return PoolView(**read)

    def _records(self, part: str) -> dict[str, dict[str, Any]]:
        cls = CLASSES[part]
        return dict(self._client.get(f"{cls}.get_all_records", what=f"read the pool's {cls} records"))

    def vm_view(self, vms: dict[str, dict[str, Any]]) -> PoolView:
        """What the VMs' state needs: their disks, NICs and, when any VM has one, GPUs."""
        with_gpus = any(record.get("VGPUs") for record in vms.values())
        return self.view(VM_PARTS + (GPU_PARTS if with_gpus else ()))

    def one_vm_view(self, ref: str, record: dict[str, Any]) -> PoolView:
        """What one VM's state needs, without reading every VM's parts: its VBDs, VIFs and vGPUs by ``where``, its
        VDIs one by one, and the pool-wide classes (networks, PIFs, SRs, hosts: few records)."""
        where = f'field "VM" = "{ref}"'
        view = self.view(("networks", "pifs", "sriovs", "srs", "hosts") + (GPU_PARTS if record.get("VGPUs") else ()))
        view.vbds = dict(self._client.get("VBD.get_all_records_where", where, what="read a VM's disks"))
        view.vifs = dict(self._client.get("VIF.get_all_records_where", where, what="read a VM's NICs"))
        if record.get("VGPUs"):
            view.vgpus = dict(self._client.get("VGPU.get_all_records_where", where, what="read a VM's vGPUs"))
        for vbd in view.vbds.values():
            if vbd.get("VDI") and vbd["VDI"] != "OpaqueRef:NULL":
                view.vdis[vbd["VDI"]] = self._client.get("VDI.get_record", vbd["VDI"], what="read a VM's disk")
        return view

    def pool(self) -> tuple[str, dict[str, Any]]:
        [(ref, record)] = list(self._client.get("pool.get_all_records", what="read the pool").items())
        return str(ref), dict(record)

    def hosts(self, endpoint: str) -> list[Host]:
        view = self.view(list(CLASSES))
        metrics = self._client.get("host_metrics.get_all_records", what="read the hosts' metrics")
        vms = self.vms('field "is_control_domain" = "false" and field "is_a_template" = "false"')
        readings = HostReadings(metrics=dict(metrics), vm_names={ref: r["name_label"] for ref, r in vms.items()},
                                vm_hosts={ref: r["resident_on"] for ref, r in vms.items()})
        asks: list[tuple[str, tuple[Any, ...], Any]] = []
        for host in view.hosts:
            asks.append(("host.compute_free_memory", (host,), ("memory", host)))
        for pgpu_ref, pgpu in view.pgpus.items():
            for type_ref in pgpu.get("enabled_VGPU_types") or []:
                asks.append(("PGPU.get_remaining_capacity", (pgpu_ref, type_ref), ("vgpu", (pgpu_ref, type_ref))))
        for sriov in view.sriovs:
            asks.append(("network_sriov.get_remaining_capacity", (sriov,), ("vfs", sriov)))
        with ThreadPoolExecutor(max_workers=CONCURRENT_READS) as pool:
            answers = list(pool.map(lambda ask: self._client.get(ask[0], *ask[1], what=f"read {ask[0]}"), asks))
        for (_, _, (kind, key)), answer in zip(asks, answers, strict=True):
            {"memory": readings.free_memory, "vgpu": readings.vgpu_free, "vfs": readings.vfs_free}[kind][key] = int(
                answer)
        return [host_facts(endpoint, ref, record, view, readings)
                for ref, record in sorted(view.hosts.items(), key=lambda item: item[1]["name_label"])]
