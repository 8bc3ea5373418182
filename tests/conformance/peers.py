"""The hypervisors the conformance suite runs against, each with an administrator's back door.

A peer gives the suite a connected virtplane Provider and makes changes behind virtplane's back with the
hypervisor's own client library (pyvmomi, proxmoxer), never through virtplane's drivers.
"""

from __future__ import annotations

import ssl
from abc import ABC, abstractmethod
from typing import Any

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from tests.support import vsphere as raw_vsphere
from virtplane.lab.vcsim import VcsimInstance
from virtplane.providers.base import MARKER_KEY, Owner, Provider
from virtplane.providers.registry import provider_class


class Peer(ABC):
    """One live endpoint: a virtplane Provider on it, and out-of-band operations."""

    kind: str
    provider: Provider

    def connect(self, environ: dict[str, str]) -> None:
        cls = provider_class(self.kind)
        self.provider = cls.connect(cls.settings_from("conformance", {}, environ))

    def close(self) -> None:
        self.provider.close()

    @abstractmethod
    def set_cpus(self, vm: str, cpus: int) -> None: ...

    @abstractmethod
    def set_memory(self, vm: str, mib: int) -> None: ...

    @abstractmethod
    def remove_first_nic(self, vm: str) -> None: ...

    @abstractmethod
    def power_off(self, vm: str) -> None: ...

    @abstractmethod
    def add_unmanaged_vm(self, name: str) -> None:
        """A VM made by hand, without any virtplane marker."""

    @abstractmethod
    def add_half_created_vm(self, owner: Owner) -> None:
        """A VM as an apply killed mid-create leaves it: only the marker written at creation time."""

    @abstractmethod
    def count(self, name: str) -> int:
        """How many VMs carry this name."""


class VspherePeer(Peer):
    kind = "vsphere"

    def __init__(self, instance: VcsimInstance):
        self.instance = instance
        self.connect(instance.environ())
        host, port = instance.host.rsplit(":", 1)
        self.si: Any = SmartConnect(host=host, port=int(port), user=instance.user, pwd=instance.password,
                                    sslContext=ssl.create_default_context(cafile=instance.ca_file))

    def close(self) -> None:
        super().close()
        Disconnect(self.si)

    def _vm(self, name: str) -> Any:
        return raw_vsphere.find_vm(self.si, name)

    def set_cpus(self, vm: str, cpus: int) -> None:
        raw_vsphere.reconfigure(self._vm(vm), vim.vm.ConfigSpec(numCPUs=cpus, numCoresPerSocket=1))

    def set_memory(self, vm: str, mib: int) -> None:
        raw_vsphere.reconfigure(self._vm(vm), vim.vm.ConfigSpec(memoryMB=mib))

    def remove_first_nic(self, vm: str) -> None:
        raw_vsphere.remove_first_nic(self._vm(vm))

    def power_off(self, vm: str) -> None:
        raw_vsphere.wait(self._vm(vm).PowerOffVM_Task())

    def add_unmanaged_vm(self, name: str) -> None:
        raw_vsphere.create_plain_vm(self.si, name)

    def add_half_created_vm(self, owner: Owner) -> None:
        # CreateVM carried the extraConfig marker; the custom attribute was never written.
        raw_vsphere.create_plain_vm(self.si, owner.resource, extra_config={MARKER_KEY: owner.encode()})

    def count(self, name: str) -> int:
        return sum(1 for vm in raw_vsphere.all_vms(self.si) if vm.name == name)


class ProxmoxPeer(Peer):
    kind = "proxmox"

    def __init__(self, url: str, user: str, password: str, ca_file: str):
        from urllib.parse import urlparse

        from proxmoxer import ProxmoxAPI

        self.connect({"PROXMOX_VE_ENDPOINT": url, "PROXMOX_VE_USERNAME": user, "PROXMOX_VE_PASSWORD": password,
                      "PROXMOX_VE_CA_FILE": ca_file})
        parsed = urlparse(url)
        self.api: Any = ProxmoxAPI(parsed.hostname, port=parsed.port, user=user, password=password,
                                   verify_ssl=ca_file)

    def _find(self, name: str) -> tuple[str, int]:
        matches = [(r["node"], int(r["vmid"])) for r in self.api.cluster.resources.get(type="vm")
                   if r.get("name") == name]
        assert len(matches) == 1, f"expected one VM named {name}, found {len(matches)}"
        return matches[0]

    def _qemu(self, name: str) -> Any:
        node, vmid = self._find(name)
        return self.api.nodes(node).qemu(vmid)

    def set_cpus(self, vm: str, cpus: int) -> None:
        self._qemu(vm).config.put(sockets=1, cores=cpus)

    def set_memory(self, vm: str, mib: int) -> None:
        self._qemu(vm).config.put(memory=mib)

    def remove_first_nic(self, vm: str) -> None:
        qemu = self._qemu(vm)
        first = min((k for k in qemu.config.get() if k.startswith("net")), key=lambda k: int(k[3:]))
        qemu.config.put(delete=first)

    def power_off(self, vm: str) -> None:
        self._qemu(vm).status.stop.post()

    def _create(self, name: str, **config: Any) -> None:
        vmid = int(self.api.cluster.nextid.get())
        self.api.nodes("pve1").qemu.post(vmid=vmid, name=name, memory=512, **config)

    def add_unmanaged_vm(self, name: str) -> None:
        self._create(name, description="made by hand")

    def add_half_created_vm(self, owner: Owner) -> None:
        # A clone carries the description marker at once; the tag is added by the update that never ran.
        self._create(owner.resource, description=f"{MARKER_KEY}: {owner.encode()}")

    def count(self, name: str) -> int:
        return sum(1 for r in self.api.cluster.resources.get(type="vm") if r.get("name") == name)
