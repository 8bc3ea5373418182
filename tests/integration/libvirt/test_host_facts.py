"""What a libvirt host reports, read as the inventory, and the policy layer's verdicts on it: the test driver's node
devices (our node file) and the lab daemon's real QEMU (TCG: no KVM, no host-passthrough, no IOMMU)."""

from __future__ import annotations

from tests.support import libvirt as raw_libvirt
from virtplane.inventory import Inventory
from virtplane.kinds import build_spec
from virtplane.policies.evaluate import DeclaredVm, check_vms

KINDS = {"conformance": "libvirt"}


def verdicts(inventory: Inventory, **fields) -> dict[str, str]:
    vm = DeclaredVm("v", "conformance", build_spec("VirtualMachine", "v", {"cpus": 2, "memory": 1024, **fields}))
    found: dict[str, set[str]] = {}
    for finding in check_vms("proj/dev", [vm], inventory, KINDS).findings:
        found.setdefault(finding.rule, set()).add(finding.level)
    return {rule: "+".join(sorted(levels)) for rule, levels in found.items()}


def test_the_test_drivers_node_devices_become_gpus_vgpu_types_and_an_sriov_pf(test_host):
    [host] = test_host.provider.hosts()
    assert host.hypervisor == "libvirt" and host.product == "libvirt test driver"
    assert {(g.address, g.vendor_id, g.iommu_group, g.passthrough_capable) for g in host.gpus()} == {
        ("0000:3b:00.0", "0x10de", 40, True), ("0000:af:00.0", "0x10de", 60, True)}
    assert {(v.profile, v.device, v.available) for v in host.vgpu_types} == {
        ("nvidia-471", "0000:3b:00.0", 10), ("nvidia-474", "0000:3b:00.0", 4)}
    [pf] = host.sriov
    assert (pf.address, pf.vfs_max, pf.vfs_enabled, pf.vfs_free) == ("0000:5e:00.0", 64, 4, 4)
    assert "0000:5e:02.0" not in {d.address for d in host.pci_devices}  # a VF is counted by its PF
    # libvirt fixes the test driver's capabilities (an i686 host; its IOMMU is the real machine's): unknown, not no
    assert (host.hardware_virtualization, host.iommu, host.nested, host.cpu_vendor) == (None, None, None, None)
    assert host.memory_total_mib == 65536


def test_policy_verdicts_on_the_test_driver_host_follow_its_devices(test_host):
    inventory = Inventory(hosts=test_host.provider.hosts())
    assert "mandatory" not in verdicts(inventory, gpus=[{"mode": "vgpu", "profile": "nvidia-471"}]).values()
    # no host of the endpoint offers the profile: placement finds none (the mandatory verdict hw.vgpu gives a host)
    assert verdicts(inventory, gpus=[{"mode": "vgpu", "profile": "nvidia-999"}])["hw.placement"] == "mandatory"
    assert "hw.gpu-passthrough" not in verdicts(inventory, gpus=[{"mode": "passthrough", "device": "0000:af:00.0"}])
    test_host.conn.defineXML(raw_libvirt.plain_domain("by-hand", "test", devices=(
        "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
        "<address domain='0x0000' bus='0xaf' slot='0x00' function='0x0'/></source></hostdev>")))
    held = Inventory(hosts=test_host.provider.hosts())
    wanted = {"gpus": [{"mode": "passthrough", "device": "0000:af:00.0"}]}
    assert verdicts(held, **wanted)["hw.placement"] == "mandatory"  # no host has it free
    assert verdicts(held, **wanted, node=held.hosts[0].name)["hw.device-in-use"] == "mandatory"  # held by by-hand
    assert verdicts(held, machine="pc", gpus=[{"mode": "passthrough"}])["hw.hardware-version"] == "advisory"


def test_a_qemu_host_without_kvm_reports_emulation_no_nesting_and_no_iommu(qemu_host):
    [host] = qemu_host.provider.hosts()
    assert host.product.startswith("QEMU/KVM through libvirt 9.")
    assert (host.hardware_virtualization, host.nested, host.iommu) == (False, False, False)
    assert host.cpu_vendor in ("intel", "amd") and host.memory_total_mib and host.memory_free_mib
    assert host.gpus() == []  # the machine's own PCI devices are listed, never a GPU of ours
    inventory = Inventory(hosts=[host])
    assert verdicts(inventory)["hw.virtualization"] == "advisory"  # QEMU emulates: slow, not impossible
    assert verdicts(inventory, nested_virtualization=True)["hw.placement"] == "mandatory"  # no host can nest
    assert verdicts(inventory, nested_virtualization=True, node=host.name)["hw.nested"] == "mandatory"
