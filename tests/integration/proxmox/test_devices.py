"""GPUs, vGPUs and SR-IOV NICs on Proxmox, through the engine against the seeded fakepve (pve1: an A100 with mdev
types, mapping ``a100``; pve2: an X710 with four VFs, mapping ``x710-vf``): each is placed, written as ``hostpciN``
(PVE's own format check passes), read back, found drifted when changed out of band, repaired and removed; a VM
with any of them has its memory fully reserved (``balloon=0``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.conformance.stack import Stack
from tests.integration.proxmox.helpers import declared, qemu
from virtplane.errors import SpecError
from virtplane.plan import Action
from virtplane.providers.base import FieldChange, RefusedChange, Rule
from virtplane.providers.proxmox.provider import ProxmoxProvider
from virtplane.specs import VirtualMachineSpec

A100, X710 = "0000:3b:00.0", "0000:5e:00.0"


@dataclass
class Endpoint:
    """What tests.conformance.stack.Stack needs of a peer."""

    provider: ProxmoxProvider
    kind: str = "proxmox"


def stack_on(provider: ProxmoxProvider) -> Stack:
    return Stack(Endpoint(provider), "devices").network("app", vlan=110).network("plain", vlan=0)


def vm(**fields: Any) -> dict[str, Any]:
    """A VM as GPU passthrough wants it: q35 and UEFI (the A100's BAR is large: BIOS would get the T4, hw.mmio)."""
    return {"cpus": 2, "memory": 4096, "machine": "q35", "firmware": "uefi", "nics": [{"network": "app"}],
            "power": "off"} | fields


def live(stack: Stack, name: str) -> dict[str, Any]:
    [item] = [r for r in stack.plan().resources if r.name == name]
    assert item.observed is not None
    return item.observed.state


def test_a_passthrough_gpu_is_placed_on_the_node_with_one_written_as_hostpci_with_pcie_and_read_back(provider, raw):
    stack = stack_on(provider).vm("gpu1", **vm(gpus=[{"mode": "passthrough", "vendor": "nvidia"}]))
    plan = stack.apply()
    assert [r.placement for r in plan.resources if r.name == "gpu1"] == ["pve1"]
    config = qemu(raw, "gpu1").config.get()
    assert config["hostpci0"] == f"{A100},pcie=1" and int(config["balloon"]) == 0
    assert live(stack, "gpu1")["gpus"] == [{"mode": "passthrough", "profile": None, "device": A100,
                                            "vendor": "nvidia"}]
    assert stack.changes() == {}


def test_a_vm_that_boots_bios_is_given_a_gpu_without_a_large_bar(provider, raw):
    stack = stack_on(provider).vm("bios-gpu", **vm(firmware="bios", gpus=[{"mode": "passthrough"}]))
    stack.apply()
    assert qemu(raw, "bios-gpu").config.get()["hostpci0"] == "0000:d8:00.0,pcie=1"  # pve1's T4, not its A100


def test_a_gpu_named_by_a_resource_mapping_is_written_as_the_mapping(provider, raw):
    stack = stack_on(provider).vm("gpu2", **vm(machine=None, gpus=[{"mode": "passthrough", "device": "a100"}]))
    stack.apply()
    config = qemu(raw, "gpu2").config.get()
    assert config["hostpci0"] == "mapping=a100" and int(config["balloon"]) == 0  # i440fx: no pcie
    assert live(stack, "gpu2")["gpus"] == [{"mode": "passthrough", "profile": None, "device": "a100",
                                            "vendor": "nvidia"}]
    assert stack.changes() == {}


def test_a_vgpu_is_an_mdev_on_the_placed_gpu_its_profile_changed_out_of_band_is_drift_repaired_powered_off(
        provider, raw, pve):
    stack = stack_on(provider).vm("vgpu1", **vm(power="on", gpus=[{"mode": "vgpu", "profile": "nvidia-471"}]))
    stack.apply()
    assert qemu(raw, "vgpu1").config.get()["hostpci0"] == f"{A100},mdev=nvidia-471,pcie=1"
    qemu(raw, "vgpu1").config.put(hostpci0=f"{A100},mdev=nvidia-472,pcie=1")  # pending: the VM runs
    [change] = stack.plan().resources[-1].changes
    assert (change.change.path, change.change.old, change.change.new, change.rule) == (
        "gpus[0].profile", "nvidia-472", "nvidia-471", Rule.POWER_OFF)
    stack.apply()
    assert qemu(raw, "vgpu1").config.get()["hostpci0"] == f"{A100},mdev=nvidia-471,pcie=1"
    assert qemu(raw, "vgpu1").status.current.get()["status"] == "running"
    assert stack.changes() == {}


def test_a_gpu_removed_out_of_band_is_added_back_and_one_removed_from_the_stack_is_removed(provider, raw):
    stack = stack_on(provider).vm("gpu3", **vm(gpus=[{"mode": "passthrough"}]))
    stack.apply()
    qemu(raw, "gpu3").config.put(delete="hostpci0")
    assert stack.changes() == {"gpu3": (Action.UPDATE, [("gpus[0]", None, {"mode": "passthrough", "profile": None,
                                                                            "device": None, "vendor": None})])}
    stack.apply()  # the device is picked again on the VM's node
    assert qemu(raw, "gpu3").config.get()["hostpci0"] == f"{A100},pcie=1"
    stack.vm("gpu3", **vm(gpus=[]))
    assert stack.changes()["gpu3"][1] == [("gpus[0]", {"mode": "passthrough", "profile": None, "device": A100,
                                                      "vendor": "nvidia"}, None)]
    stack.apply()
    assert "hostpci0" not in qemu(raw, "gpu3").config.get()
    assert stack.changes() == {}


def test_sriov_nics_get_distinct_free_vfs_of_the_placed_pf_and_read_back_with_the_pf_and_their_slot(provider, raw,
                                                                                                     pve):
    nics = [{"network": "app"}, {"network": "plain", "adapter": "sriov"}]
    stack = stack_on(provider).vm("nfv1", **vm(nics=nics, memory=512)).vm("nfv2", **vm(nics=nics, memory=512))
    plan = stack.apply()
    assert {r.name: r.placement for r in plan.resources if r.kind == "VirtualMachine"} == {"nfv1": "pve2",
                                                                                          "nfv2": "pve2"}
    values = {name: qemu(raw, name).config.get() for name in ("nfv1", "nfv2")}
    assert sorted(config["hostpci15"] for config in values.values()) == ["0000:5e:02.0,pcie=1",
                                                                         "0000:5e:02.1,pcie=1"]
    assert all(int(config["balloon"]) == 0 for config in values.values())
    assert live(stack, "nfv1")["nics"][1] == {"network": "plain", "adapter": "sriov", "device": X710,
                                              "slot": "hostpci15"}
    assert stack.changes() == {}
    # A third VM on the node gets the next free VF: the first two are in use.
    stack.vm("nfv3", **vm(nics=nics, memory=512)).apply()
    assert qemu(raw, "nfv3").config.get()["hostpci15"] == "0000:5e:02.2,pcie=1"


def test_an_sriov_nic_by_mapping_its_device_changed_out_of_band_is_drift_and_removing_it_removes_the_vf(
        provider, raw):
    nics = [{"network": "app"}, {"network": "plain", "adapter": "sriov", "device": "x710-vf"}]
    stack = stack_on(provider).vm("nfv4", **vm(machine=None, nics=nics))
    stack.apply()
    assert qemu(raw, "nfv4").config.get()["hostpci15"] == "mapping=x710-vf"
    qemu(raw, "nfv4").config.put(hostpci15="0000:5e:02.3")
    assert stack.changes() == {"nfv4": (Action.UPDATE, [("nics[hostpci15].device", X710, "x710-vf")])}
    stack.apply()
    assert qemu(raw, "nfv4").config.get()["hostpci15"] == "mapping=x710-vf"
    stack.vm("nfv4", **vm(machine=None, nics=[{"network": "app"}]))
    [(path, old, new)] = stack.changes()["nfv4"][1]
    assert (path, old["adapter"], new) == ("nics[hostpci15]", "sriov", None)
    stack.apply()
    assert "hostpci15" not in qemu(raw, "nfv4").config.get()
    assert stack.changes() == {}


def test_an_sriov_nic_on_a_vlan_network_is_refused_at_plan_time_in_one_sentence(provider):
    stack = stack_on(provider).vm("nfv5", **vm(nics=[{"network": "app", "adapter": "sriov"}]))
    with pytest.raises(SpecError) as refused:
        stack.plan()
    message = str(refused.value)
    assert "nics[0].network" in message and "cannot set a VLAN on an SR-IOV virtual function" in message
    assert "\n" not in message


def test_a_device_that_is_neither_an_address_nor_a_mapping_is_refused_naming_the_mappings(provider):
    spec = VirtualMachineSpec.model_validate(vm(node="pve1", gpus=[{"mode": "passthrough", "device": "h100"}]))
    problems = dict(provider.driver("VirtualMachine").check(spec, declared({"gpu4": spec})))
    assert problems["gpus[0].device"] == ("'h100' is neither a PCI address (0000:3b:00.0) nor a PCI resource mapping "
                                          "of the cluster (mappings: a100, t4, x710-vf)")


def test_device_changes_need_the_vm_off_and_a_nic_cannot_turn_into_an_sriov_one(provider):
    rule = provider.driver("VirtualMachine").rule
    assert rule(FieldChange("gpus[0]", None, {"mode": "passthrough"})) is Rule.POWER_OFF
    assert rule(FieldChange("nics[hostpci15]", None, {"adapter": "sriov", "network": "plain"})) is Rule.POWER_OFF
    assert rule(FieldChange("nics[hostpci15].device", X710, "x710-vf")) is Rule.POWER_OFF
    assert rule(FieldChange("nics[hostpci15].network", "plain", "vmbr0")) is Rule.IN_PLACE
    with pytest.raises(RefusedChange, match="an SR-IOV NIC is a PCI device"):
        rule(FieldChange("nics[net1].adapter", "paravirtual", "sriov"))


def test_a_clone_gets_its_vgpu_on_the_placed_node_and_keeps_its_templates_other_settings(provider, raw, pve):
    pve.add_vm(900, "gpu-tmpl", node="pve3", template=True, config={
        "memory": 2048, "machine": "q35", "bios": "ovmf", "scsihw": "virtio-scsi-single",
        "efidisk0": "local-lvm:base-900-disk-1,efitype=4m,pre-enrolled-keys=0,size=528K",
        "scsi0": "local-lvm:base-900-disk-0,size=8G", "net0": "virtio=BC:24:11:00:09:00,bridge=vmbr0"})
    stack = stack_on(provider).vm("vdi1", clone_from="gpu-tmpl", gpus=[{"mode": "vgpu", "profile": "nvidia-473"}])
    plan = stack.apply()
    assert [r.placement for r in plan.resources if r.name == "vdi1"] == ["pve1"]  # the template is on pve3
    config = qemu(raw, "vdi1").config.get()
    assert config["hostpci0"] == f"{A100},mdev=nvidia-473,pcie=1" and int(config["balloon"]) == 0
    assert config["bios"] == "ovmf" and [vm.node for vm in pve.vms if vm.name == "vdi1"] == ["pve1"]
    assert stack.changes() == {}
