"""The hypervisors the conformance suite runs against, each with an administrator's back door.

A peer gives the suite a connected virtplane Provider and makes changes behind virtplane's back with the
hypervisor's own client library (pyvmomi, proxmoxer, pypsrp with structured cmdlets), never through
virtplane's drivers. Where a hypervisor genuinely lacks a setting of the suite's full VM, its peer says so in
``absent_fields``/``second_disk_bus``/``second_nic_adapter``, with the vendor's page cited beside it.
"""

from __future__ import annotations

import ssl
import time
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from tests.support import hyperv as raw_hyperv
from tests.support import libvirt as raw_libvirt
from tests.support import vsphere as raw_vsphere
from tests.support import xenserver as raw_xen
from virtplane.providers.base import MARKER_KEY, Owner, Provider, description_marker, pending_name
from virtplane.providers.hyperv.vm_state import pending_name as hyperv_pending_name
from virtplane.providers.marker import pending_label
from virtplane.providers.registry import provider_class
from virtplane_lab.hyperv import HypervInstance
from virtplane_lab.vcsim import VcsimInstance
from virtplane_lab.xenserver import XenserverInstance


class Peer(ABC):
    """One live endpoint: a virtplane Provider on it, and out-of-band operations."""

    kind: str
    provider: Provider
    # The full VM's settings this hypervisor does not have (left unset there), and the second disk's bus and
    # second NIC's adapter: a type other than the default where the hypervisor offers one.
    absent_fields: ClassVar[frozenset[str]] = frozenset()
    second_disk_bus: ClassVar[str] = "sata"
    second_nic_adapter: ClassVar[str] = "e1000e"
    creates_networks: ClassVar[bool] = True  # False where a network is a VLAN tag its NICs carry

    def replacing(self) -> dict[str, Any]:
        """A declaration that replaces a BIOS VM with one 4 GiB disk: a thick disk instead of a thin one, unless
        the peer says otherwise."""
        return {"disks": [{"size": 4, "thin": False}]}

    def connect(self, environ: dict[str, str], inputs: dict[str, Any] | None = None) -> None:
        cls = provider_class(self.kind)
        # what a process of its own connects with (tests/conformance/kill.py): the environment and Endpoint inputs
        self.environ, self.inputs = environ, dict(inputs or {})
        self.provider = cls.connect(cls.settings_from("conformance", self.inputs, environ))

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

    def add_interrupted_create(self, owner: Owner) -> None:
        """A VM as a create killed before its last call leaves it, when nothing but that call is missing: by default
        what ``add_half_created_vm`` makes."""
        self.add_half_created_vm(owner)

    @abstractmethod
    def count(self, name: str) -> int:
        """How many VMs carry this name."""

    @abstractmethod
    def names(self) -> list[str]:
        """The names of every VM on the endpoint (templates too)."""

    def add_template(self, name: str) -> None:
        """A template with one 4 GiB disk, made by hand (a clone's source)."""
        raise NotImplementedError(f"{self.kind} cannot clone")

    def settle(self) -> None:  # noqa: B027 - Hyper-V's cmdlets finish before they answer: nothing to wait for
        """Wait until the hypervisor has finished the tasks it runs (a killed apply's last create goes on without
        it), as an administrator waits before the next run."""

    @abstractmethod
    def add_golden(self, name: str) -> None:
        """A golden image for desktop pools, prepared by hand as the hypervisor's documentation says (a template
        with a snapshot, a template, a VM with a VHDX)."""


class ContainerPeer(ABC):
    """A live endpoint with system containers, and out-of-band operations on them. ``template`` is an OS template it
    holds; ``storage_volumes`` lists the container volumes on its storages, so tests see what a delete destroys."""

    template: ClassVar[str]

    @abstractmethod
    def set_container_memory(self, container: str, mib: int) -> None: ...

    @abstractmethod
    def stop_container(self, container: str) -> None: ...

    @abstractmethod
    def add_unmanaged_container(self, name: str) -> None:
        """A container made by hand, without any virtplane marker."""

    @abstractmethod
    def add_half_created_container(self, owner: Owner) -> None:
        """A container as an apply killed mid-clone leaves it: only the marker written at creation time."""

    @abstractmethod
    def count_containers(self, name: str) -> int:
        """How many containers carry this name."""

    @abstractmethod
    def container_volumes(self) -> set[str]:
        """Every container volume on the endpoint's storages."""


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

    def names(self) -> list[str]:
        return [vm.name for vm in raw_vsphere.all_vms(self.si)]

    def settle(self) -> None:
        deadline = time.monotonic() + 60
        while any(self._running(task) for task in self.si.content.taskManager.recentTask):
            assert time.monotonic() < deadline, "vSphere tasks still running after 60 s"
            time.sleep(0.05)

    @staticmethod
    def _running(task: Any) -> bool:
        try:
            return task.info.state in ("queued", "running")
        except TypeError:  # the simulator's disk-manager tasks name their manager as entity: never ours
            return False

    def add_template(self, name: str) -> None:
        raw_vsphere.create_plain_vm(self.si, name, disk_gib=4)
        self._vm(name).MarkAsTemplate()
    def add_golden(self, name: str) -> None:
        raw_vsphere.create_golden(self.si, name)


class ProxmoxPeer(Peer, ContainerPeer):
    kind = "proxmox"
    creates_networks = False  # a VLAN tag on the bridge, realized by the NICs
    template = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"  # the lab seeds it (virtplane_lab.pve_templates)

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
        # A clone carries the description marker and a pending name at once; the update that renames and tags it
        # never ran.
        self._create(pending_label(owner.resource), description=f"{MARKER_KEY}: {owner.encode()}")

    def count(self, name: str) -> int:
        return sum(1 for r in self.api.cluster.resources.get(type="vm") if r.get("name") == name)

    def names(self) -> list[str]:
        return [str(r.get("name")) for r in self.api.cluster.resources.get(type="vm")]

    def settle(self) -> None:
        deadline = time.monotonic() + 60
        while any("status" not in task for node in self.api.nodes.get()  # a running task has no exit status yet
                  for task in self.api.nodes(node["node"]).tasks.get(source="active")):
            assert time.monotonic() < deadline, "PVE tasks still running after 60 s"
            time.sleep(0.05)

    def add_template(self, name: str) -> None:
        vmid = int(self.api.cluster.nextid.get())
        self.api.nodes("pve1").qemu.post(vmid=vmid, name=name, memory=512, cores=1, scsihw="virtio-scsi-single",
                                         scsi0="local-lvm:4", tags="golden")
        self.api.nodes("pve1").qemu(vmid).template.post()

    def replacing(self) -> dict[str, Any]:
        # Thinness follows the storage type on PVE (virtplane refuses thin=False): move the disk to another
        # storage, a directory storage for images made here.
        if "extra" not in {s["storage"] for s in self.api.storage.get()}:
            self.api.storage.post(storage="extra", type="dir", path="/srv/extra", content="images")
        return {"disks": [{"size": 4, "storage": "extra"}]}

    def add_golden(self, name: str) -> None:
        vmid = int(self.api.cluster.nextid.get())
        self.api.nodes("pve1").qemu.post(vmid=vmid, name=name, memory=1024, scsihw="virtio-scsi-single",
                                         scsi0="local-lvm:8", net0="virtio,bridge=vmbr0", agent=1)
        self.api.nodes("pve1").qemu(vmid).template.post()

    # ---- containers (``/nodes/{node}/lxc``; a container is listed by its hostname) ----------------------------

    def _lxc(self, name: str) -> Any:
        matches = [(r["node"], int(r["vmid"])) for r in self.api.cluster.resources.get(type="vm")
                   if r.get("type") == "lxc" and r.get("name") == name]
        assert len(matches) == 1, f"expected one container named {name}, found {len(matches)}"
        node, vmid = matches[0]
        return self.api.nodes(node).lxc(vmid)

    def set_container_memory(self, container: str, mib: int) -> None:
        self._lxc(container).config.put(memory=mib)

    def stop_container(self, container: str) -> None:
        self._lxc(container).status.stop.post()

    def _create_container(self, name: str, **config: Any) -> None:
        vmid = int(self.api.cluster.nextid.get())
        self.api.nodes("pve1").lxc.post(vmid=vmid, hostname=name, ostemplate=self.template, storage="local-lvm",
                                        **config)

    def add_unmanaged_container(self, name: str) -> None:
        self._create_container(name, description="made by hand")

    def add_half_created_container(self, owner: Owner) -> None:
        # A clone carries the description marker at once; the tag is added by the update that never ran.
        self._create_container(owner.resource, description=f"{MARKER_KEY}: {owner.encode()}")

    def count_containers(self, name: str) -> int:
        return sum(1 for r in self.api.cluster.resources.get(type="vm")
                   if r.get("type") == "lxc" and r.get("name") == name)

    def container_volumes(self) -> set[str]:
        return {item["volid"] for storage in ("local-lvm",)
                for item in self.api.nodes("pve1").storage(storage).content.get(content="rootdir")}


class HypervPeer(Peer):
    """A simulated Hyper-V host (the lab's: HTTPS, NTLM, switch lab-switch); out-of-band changes are pypsrp
    pipelines of structured cmdlets (tests/support/hyperv.py), never script text."""

    kind = "hyperv"
    # Set-VMProcessor sets a VM's processor Count; Hyper-V has no virtual sockets setting (Microsoft,
    # "Set-VMProcessor", Hyper-V module reference). New-VM and Set-VM take no guest OS (Microsoft, "New-VM",
    # "Set-VM"): a VM has no guest OS setting to manage.
    absent_fields = frozenset({"sockets", "guest_os"})
    # Hyper-V disks hang on IDE or SCSI controllers only (Add-VMHardDiskDrive -ControllerType IDE|SCSI), and a
    # Generation 2 VM — the suite's UEFI VM — has SCSI only (Microsoft, "Should I create a generation 1 or 2
    # virtual machine in Hyper-V?"): the second disk is on SCSI too.
    second_disk_bus = "paravirtual"
    # Hyper-V's network adapters are the synthetic one and, on Generation 1 only, the legacy adapter
    # (Add-VMNetworkAdapter -IsLegacy; same page): no e1000e, and a Generation 2 VM has synthetic adapters only.
    second_nic_adapter = "paravirtual"
    # A network is a VLAN on the endpoint's switch (Set-VMNetworkAdapterVlan -Access -VlanId), set on each
    # adapter: nothing to create on the host.
    creates_networks = False

    def replacing(self) -> dict[str, Any]:
        # A VM's generation is fixed when New-VM makes it (same page): firmware bios -> uefi is a replace.
        return {"firmware": "uefi"}

    def __init__(self, instance: HypervInstance):
        self.instance = instance
        self.connect({**instance.settings(), "HYPERV_PASSWORD": instance.password})

    def set_cpus(self, vm: str, cpus: int) -> None:
        raw_hyperv.set_cpus(self.instance, vm, cpus)

    def set_memory(self, vm: str, mib: int) -> None:
        raw_hyperv.set_memory(self.instance, vm, mib)

    def remove_first_nic(self, vm: str) -> None:
        raw_hyperv.remove_nic(self.instance, vm, "nic0")  # virtplane names adapters by slot: nic0 is the first

    def power_off(self, vm: str) -> None:
        raw_hyperv.turn_off(self.instance, vm)

    def add_unmanaged_vm(self, name: str) -> None:
        raw_hyperv.create_plain_vm(self.instance, name)

    def add_half_created_vm(self, owner: Owner) -> None:
        # New-VM cannot set Notes: the driver creates the VM under a short pending name (a hash of stack and
        # resource) and writes the marker into Notes in the same pipeline; a host that went down between the two
        # leaves the name alone. The New-VM of a UEFI VM made it Generation 2.
        raw_hyperv.create_vm(self.instance, hyperv_pending_name(owner), generation=2)

    def add_interrupted_create(self, owner: Owner) -> None:
        # The pipeline ``New-VM | Set-VM -Notes`` ran whole on the host; the call that names the VM never came.
        name = hyperv_pending_name(owner)
        raw_hyperv.create_vm(self.instance, name, generation=2)
        raw_hyperv.run(self.instance, lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Name", name)
                       .add_cmdlet("Set-VM").add_parameter("Notes", description_marker(owner)))

    def count(self, name: str) -> int:
        return raw_hyperv.vm_names(self.instance).count(name)

    def names(self) -> list[str]:
        return raw_hyperv.vm_names(self.instance)

    def add_golden(self, name: str) -> None:
        raw_hyperv.create_golden(self.instance, name)

class XenserverPeer(Peer):
    """A simulated XenServer pool (the lab's: HTTPS with its CA, three hosts); out-of-band changes are calls of the
    unmodified ``xenapi`` client (tests/support/xenserver.py)."""

    kind = "xenserver"
    # XenAPI's VM class has no guest OS field: the template a VM is cloned from carries the OS (XenAPI reference,
    # class VM; "VM Lifecycle"), so a VM has no guest OS setting to manage.
    absent_fields = frozenset({"guest_os"})
    # A disk is a VBD, a paravirtual block device (XenAPI reference, class VBD: no bus or controller type); a NIC is a
    # VIF with no adapter model (class VIF): the second disk and NIC are paravirtual too.
    second_disk_bus = "paravirtual"
    second_nic_adapter = "paravirtual"

    def __init__(self, instance: XenserverInstance):
        self.instance = instance
        self.connect(instance.environ())

    def _halted(self, vm: str, change: Any) -> None:
        """XAPI changes VCPUs and memory only on a halted VM: power off, change, power on again if it ran."""
        with raw_xen.session(self.instance) as api:
            ref = raw_xen.vm_named(api, vm)
            running = api.VM.get_power_state(ref) == "Running"
            if running:
                api.VM.hard_shutdown(ref)
            change(api, ref)
            if running:
                api.VM.start(ref, False, False)

    def set_cpus(self, vm: str, cpus: int) -> None:
        def change(api: Any, ref: str) -> None:
            api.VM.remove_from_platform(ref, "cores-per-socket")  # else XAPI refuses to start it with fewer CPUs
            raw_xen.set_vcpus(api, ref, cpus)

        self._halted(vm, change)

    def set_memory(self, vm: str, mib: int) -> None:
        size = str(mib * 1024 * 1024)
        self._halted(vm, lambda api, ref: api.VM.set_memory_limits(ref, size, size, size, size))

    def remove_first_nic(self, vm: str) -> None:
        with raw_xen.session(self.instance) as api:
            [vif] = [v for v in api.VM.get_VIFs(raw_xen.vm_named(api, vm)) if api.VIF.get_device(v) == "0"]
            if api.VIF.get_currently_attached(vif):
                api.VIF.unplug(vif)
            api.VIF.destroy(vif)

    def power_off(self, vm: str) -> None:
        with raw_xen.session(self.instance) as api:
            api.VM.hard_shutdown(raw_xen.vm_named(api, vm))

    def add_unmanaged_vm(self, name: str) -> None:
        with raw_xen.session(self.instance) as api:
            raw_xen.new_vm(api, name)

    def add_half_created_vm(self, owner: Owner) -> None:
        # VM.clone took the pending name that carries the marker; provision and the rest never ran.
        with raw_xen.session(self.instance) as api:
            api.VM.clone(raw_xen.template(api), pending_name(owner))

    def count(self, name: str) -> int:
        with raw_xen.session(self.instance) as api:
            return sum(1 for ref in api.VM.get_by_name_label(name) if not api.VM.get_is_a_template(ref))

    def names(self) -> list[str]:
        with raw_xen.session(self.instance) as api:
            return [record["name_label"] for record in api.VM.get_all_records().values()
                    if not record["is_a_template"] and not record["is_control_domain"]]

    def add_template(self, name: str) -> None:
        """A custom template with a disk: ``VM.clone`` of the lab's ``debian-12-base`` (a template's clone is a
        template; its one VDI is shared copy-on-write where the SR allows)."""
        with raw_xen.session(self.instance) as api:
            api.VM.clone(raw_xen.template(api, "debian-12-base"), name)
    def add_golden(self, name: str) -> None:
        # A custom template, as XenCenter's "Convert to template" makes one: a halted, provisioned VM (its disk made)
        # marked as a template (XenAPI reference, VM.set_is_a_template; "make_into_template" needs it halted).
        with raw_xen.session(self.instance) as api:
            api.VM.set_is_a_template(raw_xen.new_vm(api, name), True)


class LibvirtPeer(Peer):
    """A libvirt host: libvirt's test driver on our node file, or the lab's private libvirtd with QEMU. Out-of-band
    changes go through libvirt-python (tests/support/libvirt.py) on the provider's own connection: each connection
    to a ``test:///file.xml`` URI is a world of its own."""

    kind = "libvirt"
    creates_networks = True  # a libvirt network of its own per declared network

    def __init__(self, uri: str):
        self.connect({"LIBVIRT_DEFAULT_URI": uri}, {"shutdown_timeout": 2})
        self.conn: Any = self.provider.connection  # type: ignore[attr-defined]
        self.domain_type = self.provider.host.target().domain_type  # type: ignore[attr-defined]
        if self.provider.hosts()[0].nested is False:
            # Nested virtualization needs KVM, a host-passthrough CPU and vmx/svm on the host's CPU: QEMU with TCG
            # offers no host-passthrough (libvirt's domain capabilities say supported='no'), and a host whose CPU
            # lacks vmx/svm (a VM without nesting itself) cannot pass them on; the plan refuses it there.
            self.absent_fields = frozenset({"nested_virtualization"})

    def set_cpus(self, vm: str, cpus: int) -> None:
        raw_libvirt.set_cpus(self.conn, vm, cpus)

    def set_memory(self, vm: str, mib: int) -> None:
        raw_libvirt.set_memory(self.conn, vm, mib)

    def remove_first_nic(self, vm: str) -> None:
        raw_libvirt.remove_first_nic(self.conn, vm)

    def power_off(self, vm: str) -> None:
        self.conn.lookupByName(vm).destroy()

    def add_unmanaged_vm(self, name: str) -> None:
        self.conn.defineXML(raw_libvirt.plain_domain(name, self.domain_type))

    def add_half_created_vm(self, owner: Owner) -> None:
        self.conn.defineXML(raw_libvirt.half_created(owner, self.domain_type, "default"))

    def count(self, name: str) -> int:
        return sum(1 for domain in self.conn.listAllDomains(0) if domain.name() == name)

    def names(self) -> list[str]:
        return [domain.name() for domain in self.conn.listAllDomains(0)]

    def add_template(self, name: str, thick: bool = False) -> None:
        """A shut-off domain with one 4 GiB volume (qcow2, or raw allocated in full), made by hand (libvirt has no
        templates: any domain)."""
        raw_libvirt.add_template(self.conn, name, self.domain_type, thick=thick)

    def add_golden(self, name: str) -> None:
        # libvirt has no templates: a golden image is a shut-off domain whose disks clones copy or overlay.
        self.add_template(name)
