"""Reading the libvirt host: what QEMU offers (the domain type new domains get), its PCI functions, and what every
domain holds. Read once and kept until ``refresh`` (each observe), so one plan asks libvirt once.

Thread safety: ``refresh`` runs before apply; during apply the cached reads are only filled under the lock, and
``claim_vf``/``claim_mdev`` hand each virtual function and vGPU slot to one create only.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from typing import Any

from virtplane.errors import ProviderError
from virtplane.inventory import Host
from virtplane.providers.libvirt import client, host_facts
from virtplane.providers.libvirt.devices import PciView, hostdev_addresses
from virtplane.providers.libvirt.domain_xml import Target
from virtplane.providers.libvirt.host_facts import CpuCaps, DomainCaps, Holdings, NodeDevice
from virtplane.providers.libvirt.marker import read as read_marker
from virtplane.providers.libvirt.settings import LibvirtSettings

ARCH = "x86_64"


class HostReader:
    def __init__(self, conn: Any, settings: LibvirtSettings) -> None:
        self.conn = conn
        self.settings = settings
        self.test_driver = (conn.getType() or "").lower() == "test"
        self._lock = threading.RLock()
        self._cpu: CpuCaps | None = None
        self._caps: DomainCaps | bool | None = False  # False: not read yet; None: not offered
        self._devices: list[NodeDevice] | None = None
        self._claimed: set[str] = set()  # VFs and mdev slots handed out by this process

    def refresh(self) -> None:
        with self._lock:
            self._devices = None

    @property
    def name(self) -> str:
        return str(client.call("read the host name", self.conn.getHostname))

    def cpu(self) -> CpuCaps:
        with self._lock:
            if self._cpu is None:
                xml = client.call("read the host capabilities", self.conn.getCapabilities)
                self._cpu = host_facts.capabilities(str(xml), self.test_driver)
            return self._cpu

    def domain_caps(self) -> DomainCaps | None:
        """QEMU's capabilities (for q35, the machine new domains get) for ``kvm`` when KVM is usable, else for ``qemu``
        (TCG); None on the test driver."""
        with self._lock:
            if self._caps is False:
                self._caps = None
                if not self.test_driver:
                    for virttype in ("kvm", "qemu"):
                        xml = client.call(f"read the {virttype} domain capabilities",
                                          self.conn.getDomainCapabilities, None, ARCH, "q35", virttype, 0,
                                          tolerate=range(0, 200))
                        if xml:
                            self._caps = host_facts.domain_caps(xml)
                            break
            return self._caps if isinstance(self._caps, DomainCaps) else None

    def target(self) -> Target:
        caps = self.domain_caps()
        domain_type = "test" if self.test_driver else (caps.domain_type if caps else "qemu")
        return Target(domain_type=domain_type, pool=self.settings.storage_pool, cpu_vendor=self.cpu().vendor)

    def devices(self) -> list[NodeDevice]:
        with self._lock:
            if self._devices is None:
                lib = client.module()
                listed = client.call("list the host's PCI devices", self.conn.listAllDevices,
                                     lib.VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV, tolerate=[client.NO_SUPPORT]) or []
                xmls = client.each(listed, lambda device: device.XMLDesc(0))
                self._devices = [d for d in (host_facts.node_device(x) for x in xmls) if d is not None]
            return self._devices

    def pci_view(self) -> PciView:
        return host_facts.pci_view(self.devices())

    def holdings(self) -> Holdings:
        """Every domain's PCI functions and vGPUs (a second pass over all domains: for the inventory and for
        picking free devices, never for drift)."""
        holdings = Holdings()
        domains = client.call("list the domains", self.conn.listAllDomains, 0) or []
        for domain, xml in zip(domains, client.each(domains, lambda d: d.XMLDesc(0)), strict=True):
            root = ET.fromstring(xml)
            name = domain.name()
            for address in hostdev_addresses(root):
                holdings.pci.setdefault(address, []).append(name)
            found = read_marker(root)
            for record in (found.vgpus.values() if found else []):
                key = (record.get("parent", ""), record.get("profile", ""))
                holdings.mdevs.setdefault(key, []).append(name)
        return holdings

    def facts(self) -> Host:
        info = client.call("read the host's CPUs and memory", self.conn.getInfo) or [None, 0]
        free = client.call("read the host's free memory", self.conn.getFreeMemory, tolerate=[client.NO_SUPPORT])
        version = client.call("read the libvirt version", self.conn.getLibVersion) or 0
        major, minor = divmod(int(version) // 1000, 1000)
        product = "libvirt test driver" if self.test_driver else f"QEMU/KVM through libvirt {major}.{minor}"
        return host_facts.host(self.settings.endpoint_name, self.name, product=product, version=f"{major}.{minor}",
                               cpu=self.cpu(), caps=self.domain_caps(), memory_total=int(info[1]),
                               memory_free=int(free) // (1024 * 1024) if free else None, devices=self.devices(),
                               holdings=self.holdings(), test_driver=self.test_driver)

    # ---- handing out devices -------------------------------------------------------------------------------

    def claim_vf(self, pf: str, vm: str) -> str:
        """A virtual function of ``pf`` that no domain holds and no other create of this run took."""
        device = next((d for d in self.devices() if d.address == pf), None)
        if device is None or not device.vfs:
            raise ProviderError(f"VM {vm}: host {self.name} has no SR-IOV physical function {pf} with virtual "
                                "functions")
        held = self.holdings().pci
        with self._lock:
            for vf in device.vfs:
                if vf not in held and vf not in self._claimed:
                    self._claimed.add(vf)
                    return vf
        raise ProviderError(f"VM {vm}: every virtual function of {pf} on host {self.name} is in use")

    def claim_mdev(self, profile: str, parent: str | None, vm: str) -> str:
        """The GPU to make a ``profile`` mdev on: ``parent`` when given, else one offering it with room left."""
        holdings = self.holdings().mdevs
        with self._lock:
            for device in self.devices():
                if parent is not None and device.address != parent:
                    continue
                for type_id, _name, available in device.mdev_types:
                    key = f"{device.address}/{type_id}/{len(self._claimed)}"
                    used = len(holdings.get((device.address, type_id), []))
                    if type_id == profile and (available is None or available > used):
                        self._claimed.add(key)
                        return device.address
        offered = sorted({t for d in self.devices() for t, _n, _a in d.mdev_types})
        raise ProviderError(f"VM {vm}: host {self.name} offers no free vGPU of mdev type {profile} "
                            f"(types offered: {', '.join(offered) or 'none'})")
