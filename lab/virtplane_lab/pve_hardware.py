"""The hardware the lab's fake Proxmox VE nodes carry, as PVE's hardware API reports it (plain data, no fakepve).

The nodes differ on purpose, so placement, inventory and policy tests see every answer:

- ``pve1``: Intel Xeon with VT-x and EPT, IOMMU on, an NVIDIA A100 that can be passed through and offers four
  mdev (vGPU) types with different ``available`` counts, named by the cluster mapping ``a100``; an NVIDIA T4 named
  by the mapping ``t4`` and held by ``render-9``, a stopped VM of another team; nested virtualization supported;
  QEMU 9.2.
- ``pve2``: Intel Xeon with VT-x and EPT, IOMMU on, an Intel X710 SR-IOV NIC (one physical function and four
  virtual functions, each listed as its own PCI function: PVE does not link a VF to its PF), the VFs pooled by the
  mapping ``x710-vf``; an NVIDIA L4 with no mdev types, to be passed through whole (the lab's passthrough VM); an
  NVIDIA A2 that shares its IOMMU group with an NVMe drive (a board behind a switch without ACS: it cannot be
  passed alone); nested virtualization supported; QEMU 9.2.
- ``pve3``: AMD EPYC with AMD-V and NPT, IOMMU off (every ``iommugroup`` is -1), no nested virtualization, nothing
  to pass through; QEMU 8.1 (a node not upgraded yet).

``FakeNode`` holds one node's answers; ``lab_nodes()``, ``lab_mappings()`` and ``lab_guests()`` give fresh copies,
so a test may change its own cluster's hardware without touching another's.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class MdevType:
    """A mediated-device type of a PCI device, as ``/nodes/{node}/hardware/pci/{id}/mdev`` lists it."""

    type: str
    available: int
    description: str
    name: str | None = None

    def answer(self) -> dict[str, object]:
        row: dict[str, object] = {"type": self.type, "available": self.available, "description": self.description}
        if self.name is not None:
            row["name"] = self.name
        return row


@dataclass
class PciFunction:
    """One PCI function as ``/nodes/{node}/hardware/pci`` lists it (``id`` is domain:bus:slot.function)."""

    id: str
    class_: str  # "0x030200": class, subclass, programming interface
    vendor: str
    device: str
    vendor_name: str
    device_name: str
    iommugroup: int  # -1: no IOMMU group (IOMMU off)
    subsystem_vendor: str = "0x0000"
    subsystem_device: str = "0x0000"
    mdev_types: list[MdevType] | None = None  # None: not mdev-capable

    def answer(self, verbose: bool) -> dict[str, object]:
        row: dict[str, object] = {"id": self.id, "class": self.class_, "vendor": self.vendor, "device": self.device,
                                  "iommugroup": self.iommugroup}
        if self.mdev_types is not None:
            row["mdev"] = 1
        if verbose:
            row.update(vendor_name=self.vendor_name, device_name=self.device_name,
                       subsystem_vendor=self.subsystem_vendor, subsystem_device=self.subsystem_device)
        return row


@dataclass
class FakeNode:
    """What one node reports about its CPU and devices. ``flags`` is /proc/cpuinfo's flags line (None: the node
    does not send it); ``nested`` whether QEMU can offer ``nested-virt`` on this node."""

    cpu_model: str
    flags: str | None
    nested: bool
    devices: list[PciFunction] = field(default_factory=list)
    sockets: int = 1
    cores: int = 4
    cpus: int = 4
    mhz: str = "2100.000"
    qemu: str = "9.2"  # the node's QEMU release: the newest machine version it offers

    @property
    def hvm(self) -> bool:
        return self.flags is not None and bool({"vmx", "svm"} & set(self.flags.split()))

    def device(self, pci_id: str) -> PciFunction | None:
        wanted = pci_id.lower() if pci_id.count(":") == 2 else "0000:" + pci_id.lower()
        return next((dev for dev in self.devices if dev.id == wanted), None)


@dataclass
class FakeMapping:
    """A cluster-wide PCI mapping (``/cluster/mapping/pci``): ``map`` holds PVE's per-node entries,
    ``node=…,path=…,id=vendor:device,iommugroup=…``."""

    id: str
    description: str
    map: list[str]
    mdev: bool = False
    live_migration_capable: bool = False

    def answer(self) -> dict[str, object]:
        row: dict[str, object] = {"id": self.id, "description": self.description, "map": list(self.map)}
        if self.mdev:
            row["mdev"] = 1
        if self.live_migration_capable:
            row["live-migration-capable"] = 1
        return row

    def paths_on(self, node: str) -> list[str]:
        """The ``path`` of every entry of ``node`` (one device, or several functions joined by ``;``)."""
        paths = []
        for entry in self.map:
            keys = dict(part.split("=", 1) for part in entry.split(",") if "=" in part)
            if keys.get("node") == node and keys.get("path"):
                paths.append(keys["path"])
        return paths


INTEL_FLAGS = ("fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr "
               "sse sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc pni pclmulqdq dtes64 monitor ds_cpl "
               "vmx smx est tm2 ssse3 fma cx16 xtpr pdcm pcid dca sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx "
               "f16c rdrand lahf_lm abm 3dnowprefetch cpuid_fault ssbd ibrs ibpb stibp tpr_shadow flexpriority ept "
               "vpid ept_ad fsgsbase bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq rdseed adx smap clflushopt "
               "clwb avx512cd avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves md_clear flush_l1d arch_capabilities")
AMD_FLAGS = ("fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht "
             "syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl pni pclmulqdq monitor ssse3 fma "
             "cx16 sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand lahf_lm cmp_legacy svm extapic "
             "cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw ibs skinit wdt tce topoext perfctr_core ssbd ibrs "
             "ibpb stibp vmmcall fsgsbase bmi1 avx2 smep bmi2 erms invpcid rdseed adx smap clflushopt clwb sha_ni "
             "xsaveopt xsavec xgetbv1 xsaves npt lbrv svm_lock nrip_save tsc_scale vmcb_clean flushbyasid "
             "decodeassists pausefilter pfthreshold avic v_vmsave_vmload vgif")

A100_TYPES = (  # type, name, max instances (none in use, so available = max)
    ("nvidia-471", "GRID A100-4C", 10, 4096),
    ("nvidia-472", "GRID A100-8C", 5, 8192),
    ("nvidia-473", "GRID A100-20C", 2, 20480),
    ("nvidia-474", "GRID A100-40C", 1, 40960),
)


def _a100_types() -> list[MdevType]:
    return [MdevType(kind, available=count, name=name,
                     description=f"num_heads=1, frl_config=60, framebuffer={memory}M, max_resolution=4096x2160, "
                                 f"max_instance={count}")
            for kind, name, count, memory in A100_TYPES]


def _intel_chipset(iommu: bool) -> list[PciFunction]:
    group = (lambda n: n) if iommu else (lambda n: -1)
    return [
        PciFunction("0000:00:00.0", "0x060000", "0x8086", "0x2020", "Intel Corporation",
                    "Sky Lake-E DMI3 Registers", group(0)),
        PciFunction("0000:00:14.0", "0x0c0330", "0x8086", "0xa1af", "Intel Corporation",
                    "C620 Series Chipset Family USB 3.0 xHCI Controller", group(12)),
        PciFunction("0000:00:17.0", "0x010601", "0x8086", "0xa182", "Intel Corporation",
                    "C620 Series Chipset Family SATA Controller [AHCI mode]", group(13)),
        PciFunction("0000:17:00.0", "0x020000", "0x8086", "0x1521", "Intel Corporation",
                    "I350 Gigabit Network Connection", group(20)),
    ]


def lab_nodes() -> dict[str, FakeNode]:
    """The lab's three nodes, fresh (see the module docstring)."""
    a100 = PciFunction("0000:3b:00.0", "0x030200", "0x10de", "0x20f1", "NVIDIA Corporation",
                       "GA100 [A100 PCIe 40GB]", 42, "0x10de", "0x145f", mdev_types=_a100_types())
    x710_pf = PciFunction("0000:5e:00.0", "0x020000", "0x8086", "0x1572", "Intel Corporation",
                          "Ethernet Controller X710 for 10GbE SFP+", 30, "0x8086", "0x0000")
    x710_vfs = [PciFunction(f"0000:5e:02.{n}", "0x020000", "0x8086", "0x154c", "Intel Corporation",
                            "Ethernet Virtual Function 700 Series", 31 + n, "0x8086", "0x0000") for n in range(4)]
    l4 = PciFunction("0000:af:00.0", "0x030200", "0x10de", "0x27b8", "NVIDIA Corporation", "AD104GL [L4]", 50,
                     "0x10de", "0x16ca")
    epyc = [
        PciFunction("0000:00:00.0", "0x060000", "0x1022", "0x1480", "Advanced Micro Devices, Inc. [AMD]",
                    "Starship/Matisse Root Complex", -1),
        PciFunction("0000:02:00.0", "0x010601", "0x1022", "0x7901", "Advanced Micro Devices, Inc. [AMD]",
                    "FCH SATA Controller [AHCI mode]", -1),
        PciFunction("0000:41:00.0", "0x020000", "0x14e4", "0x16d8", "Broadcom Inc. and subsidiaries",
                    "BCM57416 NetXtreme-E Dual-Media 10G RDMA Ethernet Controller", -1),
    ]
    t4 = PciFunction("0000:d8:00.0", "0x030200", "0x10de", "0x1eb8", "NVIDIA Corporation", "TU104GL [Tesla T4]", 60,
                     "0x10de", "0x12a2")
    a2 = PciFunction("0000:86:00.0", "0x030200", "0x10de", "0x25b6", "NVIDIA Corporation", "GA107GL [A2 / A16]", 70,
                     "0x10de", "0x157e")
    nvme = PciFunction("0000:87:00.0", "0x010802", "0x144d", "0xa80a", "Samsung Electronics Co Ltd",
                       "NVMe SSD Controller PM9A1/PM9A3/980PRO", 70)
    return {
        "pve1": FakeNode("Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", INTEL_FLAGS, nested=True,
                         devices=[*_intel_chipset(iommu=True), a100, t4]),
        "pve2": FakeNode("Intel(R) Xeon(R) Silver 4314 CPU @ 2.40GHz", INTEL_FLAGS, nested=True,
                         devices=[*_intel_chipset(iommu=True), x710_pf, *x710_vfs, l4, a2, nvme]),
        "pve3": FakeNode("AMD EPYC 7313 16-Core Processor", AMD_FLAGS, nested=False, devices=epyc, qemu="8.1"),
    }


def plain_node() -> FakeNode:
    """The hardware of a node the lab does not describe (one a test adds): an Intel CPU, IOMMU on, no devices to
    speak of."""
    return FakeNode("Intel(R) Xeon(R) CPU E5-2620 v4 @ 2.10GHz", INTEL_FLAGS, nested=False,
                    devices=_intel_chipset(iommu=True))


def lab_mappings() -> list[FakeMapping]:
    """The cluster's PCI mappings, fresh: ``a100`` (pve1's GPU, for mdev), ``t4`` (pve1's T4) and ``x710-vf`` (pve2's
    VFs, a pool)."""
    vfs = [f"node=pve2,path=0000:5e:02.{n},id=8086:154c,iommugroup={31 + n}" for n in range(4)]
    return [
        FakeMapping("a100", "NVIDIA A100 of pve1",
                    ["node=pve1,path=0000:3b:00.0,id=10de:20f1,iommugroup=42,subsystem-id=10de:145f"], mdev=True),
        FakeMapping("t4", "NVIDIA T4 of pve1", ["node=pve1,path=0000:d8:00.0,id=10de:1eb8,iommugroup=60"]),
        FakeMapping("x710-vf", "Virtual functions of pve2's X710", vfs),
    ]


@dataclass
class FakeGuest:
    """A VM of another team the lab's cluster holds (``qm`` would have made it): not virtplane's."""

    vmid: int
    name: str
    node: str
    status: str
    config: dict[str, object]


def lab_guests() -> list[FakeGuest]:
    """The VMs on the lab's nodes that are not the stack's, fresh: ``render-9``, stopped, holding pve1's T4 through
    the mapping ``t4`` (a stopped VM keeps its device: it takes it again when it starts)."""
    return [FakeGuest(4001, "render-9", "pve1", "stopped",
                      {"memory": 8192, "cores": 4, "machine": "q35", "bios": "ovmf", "hostpci0": "mapping=t4,pcie=1"})]


QEMU_RELEASES = ("5.0", "5.1", "5.2", "6.0", "6.1", "6.2", "7.0", "7.1", "7.2", "8.0", "8.1", "8.2", "9.0", "9.1",
                 "9.2")


def machine_versions(qemu: str) -> list[dict[str, str]]:
    """``/nodes/{node}/capabilities/qemu/machines`` of a node running QEMU ``qemu``: each versioned i440fx and q35
    machine up to that release, the newest also with Proxmox's ``+pve1`` revision (qemu-server lists QEMU's machine
    versions and its own revisions of them)."""
    releases = QEMU_RELEASES[:QEMU_RELEASES.index(qemu) + 1]
    rows = []
    for release in releases:
        for kind, prefix in (("i440fx", "pc-i440fx"), ("q35", "pc-q35")):
            rows.append({"id": f"{prefix}-{release}", "type": kind, "version": release})
            if release == releases[-1]:
                rows.append({"id": f"{prefix}-{release}+pve1", "type": kind, "version": f"{release}+pve1"})
    return rows
