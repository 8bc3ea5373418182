"""The policy layer's host chooser picks the host virtplane/placement.py's ``place`` picks, VM after VM."""

from tests.unit.placement_agreement import checked_place
from virtplane.inventory import Host, Inventory, PciDevice, SriovFunction, VgpuType
from virtplane.kinds import build_spec
from virtplane.placement import PlacementError, Usage, record
from virtplane.policies.chooser import HostChooser


def hosts() -> list[Host]:
    made = []
    for index in range(12):
        address = "0000:3b:00.0"
        made.append(Host(
            name=f"h{index:02d}", endpoint="ep", hypervisor="proxmox", online=True,
            nested=None if index % 5 == 0 else index % 3 != 0, memory_free_mib=40000 + 3000 * (index % 4),
            pci_devices=[PciDevice(address=address, class_id="0x0302", vendor_id="0x10de", device_id="0x1",
                                   passthrough_capable=True, passthrough_enabled=index % 4 != 1)],
            vgpu_types=[VgpuType(profile="nvidia-1", device=address, available=None if index % 6 == 0 else 2)],
            sriov=[SriovFunction(address="0000:5e:00.0", enabled=True, vfs_free=index % 3)]))
    return made


def requests() -> list[dict]:
    shapes = [{"gpus": [{"mode": "passthrough"}]}, {"gpus": [{"mode": "vgpu", "profile": "nvidia-1"}]},
              {"nics": [{"network": "n", "adapter": "sriov"}]}, {"nested_virtualization": True}, {}]
    return [{"cpus": 1, "memory": 2048 * (1 + i % 3), **shapes[i % len(shapes)]} for i in range(90)]


def test_the_chooser_and_place_choose_the_same_host_for_every_vm():
    facts = Inventory(hosts=hosts()).hosts
    chooser = HostChooser(facts)
    by_place, by_chooser = Usage(), Usage()
    for index, fields in enumerate(requests()):
        spec = build_spec("VirtualMachine", f"v{index}", fields).with_creation_defaults()
        try:
            expected = checked_place(f"v{index}", "ep", spec, facts, by_place).host
        except PlacementError:
            expected = None
        assignment, reasons = chooser.choose(spec, by_chooser)
        if assignment is not None:
            record(spec, assignment, by_chooser)
        assert (assignment.host if assignment else None) == expected, f"VM {index}: {fields}"
        assert assignment is not None or set(reasons) == {h.name for h in facts}


def small_inventory() -> list[Host]:
    """Three hosts worked through by hand below: a and c have one GPU each, b none; nested virtualization is
    supported on a, unknown on b, absent on c; a's SR-IOV function has 1 free VF, b's 2, c has none; all three have
    their IOMMU on (said, not inferred from a's enabled GPU, so no host has fewer unknown facts for SR-IOV)."""
    def gpu() -> list[PciDevice]:
        return [PciDevice(address="0000:3b:00.0", class_id="0x0302", vendor_id="0x10de", device_id="0x1",
                          passthrough_capable=True, passthrough_enabled=True)]

    def function(free: int) -> list[SriovFunction]:
        return [SriovFunction(address="0000:5e:00.0", enabled=True, vfs_max=8, vfs_enabled=8, vfs_free=free)]

    return [Host(name="a", endpoint="ep", hypervisor="proxmox", online=True, iommu=True, nested=True,
                 memory_free_mib=10000, pci_devices=gpu(), sriov=function(1)),
            Host(name="b", endpoint="ep", hypervisor="proxmox", online=True, iommu=True, nested=None,
                 memory_free_mib=16000, sriov=function(2)),
            Host(name="c", endpoint="ep", hypervisor="proxmox", online=True, iommu=True, nested=False,
                 memory_free_mib=12000, pci_devices=gpu())]


GPU = {"gpus": [{"mode": "passthrough"}]}
SRIOV = {"nics": [{"network": "n", "adapter": "sriov"}]}
# (the VM's fields, the host worked out by hand), in the order the VMs are placed. Preference: fewest unknown facts,
# then most memory left after the VMs placed before (every VM's memory counts), then name.
WORKED = [
    (GPU | {"memory": 4096}, "c"),  # a and c have a GPU; c has more memory (12000 > 10000) -> c: 7904 left
    (GPU | {"memory": 2048}, "a"),  # c's GPU is taken -> a: 7952 left
    (GPU | {"memory": 1024}, None),  # both GPUs are taken
    ({"nested_virtualization": True, "memory": 1024}, "a"),  # c cannot; b's support is unknown, a's known -> a: 6928
    (SRIOV | {"memory": 1024}, "b"),  # a (1 VF, 6928 left) and b (2 VFs, 16000 left) -> b: 14976 left
    (SRIOV | {"memory": 1024}, "b"),  # b still has the most memory (14976 > 6928) -> b: 13952, its VFs used up
    (SRIOV | {"memory": 1024}, "a"),  # only a has a free VF -> a: 5904 left
    (SRIOV | {"memory": 1024}, None),  # no free VF anywhere
    ({"memory": 2048}, "b"),  # no devices: the most memory left: b 13952, c 7904, a 5904
]


def test_the_chooser_picks_the_hosts_worked_out_by_hand():
    chooser = HostChooser(small_inventory())
    usage = Usage()
    chosen = []
    for index, (fields, _) in enumerate(WORKED):
        spec = build_spec("VirtualMachine", f"v{index}", {"cpus": 1, **fields}).with_creation_defaults()
        assignment, reasons = chooser.choose(spec, usage)
        if assignment is not None:
            record(spec, assignment, usage)
        else:
            assert sorted(reasons) == ["a", "b", "c"]
        chosen.append(assignment.host if assignment else None)
    assert chosen == [host for _, host in WORKED]
