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
