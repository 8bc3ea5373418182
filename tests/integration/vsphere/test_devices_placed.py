"""GPUs and SR-IOV NICs through the engine on the lab's seeded hosts: placement picks the host that has
them (DC0_C0_H0: an NVIDIA L4 enabled for passthrough at 0000:af:00.0, an A100 serving vGPU profiles, an SR-IOV
physical function at 0000:5e:00.0), apply creates them, drift finds them gone and apply puts them back. The GPUs
have large BARs, so the VMs boot UEFI (hw.mmio)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pyVmomi import vim

from tests.integration.vsphere.helpers import EngineStack, find_vm, reconfigure
from tests.support.vsphere import admin
from virtplane import apply
from virtplane.plan import Action
from virtplane.providers.base import Rule
from virtplane.providers.vsphere.provider import VsphereProvider
from virtplane_lab.vcsim import VcsimInstance

P = vim.vm.device.VirtualPCIPassthrough
GPU_HOST, GPU, FUNCTION = "DC0_C0_H0", "0000:af:00.0", "0000:5e:00.0"
NVIDIA, L4 = 0x10DE, 0x27B8


@pytest.fixture
def lab(fresh_vcsim: VcsimInstance) -> Iterator[tuple[VcsimInstance, VsphereProvider]]:
    """A simulator of its own: VMs holding the GPU must not change what other tests can place."""
    provider = VsphereProvider.connect(VsphereProvider.settings_from("lab", {}, fresh_vcsim.environ()))
    yield fresh_vcsim, provider
    provider.close()


def mmio(instance: VcsimInstance, name: str) -> dict[str, str]:
    """The VM's pciPassthru.* extraConfig, read raw."""
    with admin(instance) as si:
        return {o.key: o.value for o in find_vm(si, name).config.extraConfig or [] if o.key.startswith("pciPassthru")}


def devices(instance: VcsimInstance, name: str) -> tuple[list[Any], list[Any], bool]:
    """The VM's PCI passthrough devices, SR-IOV NICs and whether its memory is locked, read raw."""
    with admin(instance) as si:
        vm = find_vm(si, name)
        hardware = vm.config.hardware.device
        return ([d for d in hardware if isinstance(d, P)],
                [d for d in hardware if isinstance(d, vim.vm.device.VirtualSriovEthernetCard)],
                bool(vm.config.memoryReservationLockedToMax))


def test_a_passthrough_gpu_and_an_sriov_nic_are_placed_created_repaired_and_removed(lab, name):
    instance, provider = lab
    stack = EngineStack(provider, name).vm(name, cpus=1, memory=512, firmware="uefi",
                                           gpus=[{"mode": "passthrough", "vendor": "nvidia"}],
                                           nics=[{"network": "DC0_DVPG0", "adapter": "sriov"}])
    assert stack.item(name).placement == GPU_HOST
    stack.apply()
    [gpu], [nic], locked = devices(instance, name)
    assert isinstance(gpu.backing, P.DynamicBackingInfo)
    assert [(a.vendorId, a.deviceId) for a in gpu.backing.allowedDevice] == [(NVIDIA, L4)]
    function = nic.sriovBacking.physicalFunctionBacking
    assert (function.id, function.deviceId, function.vendorId) == (FUNCTION, "1572", -32634)  # 0x8086, signed
    assert locked
    assert stack.item(name).action is Action.NOOP

    with admin(instance) as si:
        vm = find_vm(si, name)
        reconfigure(vm, deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="remove", device=gpu)])
    item = stack.item(name)
    assert [(c.change.path, c.rule) for c in item.changes] == [("gpus[0]", Rule.POWER_OFF)]
    stack.apply()
    [gpu], _, _ = devices(instance, name)
    assert [(a.vendorId, a.deviceId) for a in gpu.backing.allowedDevice] == [(NVIDIA, L4)]
    assert stack.item(name).action is Action.NOOP

    stack.vm(name, cpus=1, memory=512, firmware="uefi", gpus=[], nics=[])
    assert {c.change.path for c in stack.item(name).changes} == {"gpus[0]", "nics[ethernet0]"}
    stack.apply()
    assert devices(instance, name)[:2] == ([], [])


def test_a_gpu_the_stack_names_is_pinned_with_a_fixed_backing(lab, name):
    instance, provider = lab
    stack = EngineStack(provider, name).vm(name, cpus=1, memory=512, firmware="uefi",
                                           gpus=[{"mode": "passthrough", "device": GPU}])
    assert stack.item(name).placement == GPU_HOST
    stack.apply()
    [gpu], _, locked = devices(instance, name)
    assert isinstance(gpu.backing, P.DeviceBackingInfo) and locked
    assert (gpu.backing.id, gpu.backing.deviceId, gpu.backing.vendorId) == (GPU, "27b8", NVIDIA)
    # The L4's 32 GiB BAR: 64-bit MMIO, sized to it (a power of two)
    assert mmio(instance, name) == {"pciPassthru.use64bitMMIO": "TRUE", "pciPassthru.64bitMMIOSizeGB": "32"}
    assert stack.item(name).action is Action.NOOP
    host = {h.name: h for h in provider.hosts()}[GPU_HOST]
    assert next(d for d in host.pci_devices if d.address == GPU).in_use_by == [name]


def test_a_vgpu_profile_only_one_host_offers_is_placed_there_as_a_vmiop_backing(lab, name):
    instance, provider = lab
    stack = EngineStack(provider, name).vm(name, cpus=1, memory=512, firmware="uefi",
                                           gpus=[{"mode": "vgpu", "profile": "grid_a100-20c"}])
    assert stack.item(name).placement == GPU_HOST
    stack.apply()
    [gpu], _, locked = devices(instance, name)
    assert gpu.backing.vgpu == "grid_a100-20c" and locked
    assert mmio(instance, name) == {"pciPassthru.use64bitMMIO": "TRUE", "pciPassthru.64bitMMIOSizeGB": "64"}
    assert stack.item(name).action is Action.NOOP


def test_a_vm_holding_a_device_is_not_vmotioned_to_another_host_the_plan_says_how_to_move_it(lab, name):
    instance, provider = lab
    stack = EngineStack(provider, name).vm(name, cpus=1, memory=512, firmware="uefi",
                                           gpus=[{"mode": "vgpu", "profile": "grid_a100-20c"}])
    stack.apply()
    stack.vm(name, cpus=1, memory=512, firmware="uefi", node="DC0_C0_H1",
             gpus=[{"mode": "vgpu", "profile": "grid_a100-20c"}])
    [node] = [c for c in stack.item(name).changes if c.change.path == "node"]  # planned as one it cannot apply
    assert (node.refused or "").startswith(
        "the VM holds PCI devices (a passthrough GPU, a vGPU or an SR-IOV NIC), which vSphere cannot vMotion from "
        "DC0_C0_H0 to DC0_C0_H1")
    assert "remove them from the VM (gpus=[], no SR-IOV NICs) and apply, then change node" in node.refused
    [failed] = apply.run(stack.plan(), {stack.ENDPOINT: provider}).failed  # apply refuses that VM, naming the field
    assert f"VirtualMachine '{name}': field 'node': cannot apply: the VM holds PCI devices" in str(failed.error)
    with admin(instance) as si:
        assert find_vm(si, name).runtime.host.name == GPU_HOST  # nothing moved
