"""Placement on capable hosts, over synthetic inventories (host facts x VM request -> host or reasons)."""

import pytest

from tests.unit.memory_hypervisor import MemoryProvider
from tests.unit.placement_agreement import checked_place
from tests.unit.test_planning import stack, vm
from virtplane import apply
from virtplane.engine import build_plan
from virtplane.inventory import DeviceClaim, Host, PciDevice, PciMapping, SriovFunction, VgpuType
from virtplane.kinds import build_spec
from virtplane.placement import PlacementError, Usage

A100 = "0000:3b:00.0"


def gpu(address: str = A100, capable: bool | None = True, enabled: bool | None = True, used: tuple = ()) -> PciDevice:
    return PciDevice(address=address, class_id="0x0302", vendor_id="0x10de", device_id="0x1eb8",  # a T4: small BARs
                     passthrough_capable=capable, passthrough_enabled=enabled, in_use_by=list(used))


def host(name: str, **facts) -> Host:
    return Host(**{"name": name, "endpoint": "ep", "hypervisor": "vsphere", "online": True, "nested": True,
                   "memory_free_mib": 65536, **facts})


GPU_HOST = host("gpu", pci_devices=[gpu()], vgpu_types=[
    VgpuType(profile="grid_a100-20c", device=A100, available=2), VgpuType(profile="grid_a100-40c", device=A100,
                                                                         available=1)],
    pci_mappings=[PciMapping(id="a100", addresses=[A100])])
DISABLED = host("disabled", pci_devices=[gpu(enabled=False)])
SRIOV = host("sriov", sriov=[SriovFunction(address="0000:5e:00.0", enabled=True, vfs_max=8, vfs_enabled=4,
                                           vfs_free=1)])
PLAIN = host("plain", nested=False)
UNKNOWN = host("unknown", nested=None)
HOSTS = [GPU_HOST, DISABLED, SRIOV, PLAIN, UNKNOWN]


def spec(**fields):
    return build_spec("VirtualMachine", "v", {"cpus": 2, "memory": 4096, **fields})


@pytest.mark.parametrize(("request_", "expected"), [
    ({"gpus": [{"mode": "passthrough"}]}, "gpu"),
    ({"gpus": [{"mode": "passthrough", "device": "a100"}]}, "gpu"),
    ({"gpus": [{"mode": "passthrough", "device": "3b:00.0"}]}, "gpu"),
    ({"gpus": [{"mode": "vgpu", "profile": "grid_a100-20c"}]}, "gpu"),
    ({"nics": [{"network": "n", "adapter": "sriov"}]}, "sriov"),
    ({"nested_virtualization": True}, "disabled"),  # known-capable hosts before unknown ones; then by name
])
def test_a_vm_goes_to_a_host_that_has_what_it_asks_for(request_, expected):
    assert checked_place("v", "ep", spec(**request_), HOSTS, Usage()).host == expected


@pytest.mark.parametrize(("request_", "reason"), [
    ({"gpus": [{"mode": "vgpu", "profile": "grid_a100-8c"}]},
     "gpu: offers no vGPU profile 'grid_a100-8c' (offered: grid_a100-20c, grid_a100-40c)"),
    ({"gpus": [{"mode": "passthrough", "vendor": "amd"}]}, "gpu: has no amd GPU"),
    ({"nics": [{"network": "n", "adapter": "sriov"}, {"network": "n", "adapter": "sriov"}]},
     "sriov: 0000:5e:00.0 has no free virtual function left (1 free, 1 taken by this plan)"),
])
def test_a_vm_no_host_can_serve_fails_with_each_hosts_reason(request_, reason):
    with pytest.raises(PlacementError) as caught:
        checked_place("v", "ep", spec(**request_), HOSTS, Usage())
    assert reason in str(caught.value)
    assert "VM v: field" in str(caught.value)


def test_a_gpu_not_enabled_for_passthrough_is_named_as_the_reason():
    with pytest.raises(PlacementError, match=f"disabled: {A100} is not enabled for passthrough"):
        checked_place("v", "ep", spec(gpus=[{"mode": "passthrough"}], node="disabled"), HOSTS, Usage())


def test_two_vms_cannot_both_take_the_last_free_vf_in_one_plan():
    usage = Usage()
    sriov_vm = spec(nics=[{"network": "n", "adapter": "sriov"}])
    assert checked_place("a", "ep", sriov_vm, HOSTS, usage).nic_devices == ["0000:5e:00.0"]
    with pytest.raises(PlacementError, match="no free virtual function left"):
        checked_place("b", "ep", sriov_vm, HOSTS, usage)


def test_a_gpu_given_whole_cannot_also_serve_vgpu_slices_or_another_vm():
    usage = Usage()
    checked_place("a", "ep", spec(gpus=[{"mode": "passthrough"}]), HOSTS, usage)
    with pytest.raises(PlacementError, match="already given to another VM of this plan"):
        checked_place("b", "ep", spec(gpus=[{"mode": "passthrough"}]), HOSTS, usage)
    with pytest.raises(PlacementError, match=f"gpu: GPU {A100} is given whole to another VM of this plan"):
        checked_place("c", "ep", spec(gpus=[{"mode": "vgpu", "profile": "grid_a100-20c"}]), HOSTS, usage)


def test_a_device_in_use_by_a_vm_outside_the_stack_is_taken():
    taken = host("taken", pci_devices=[gpu(used=("someone-elses-vm",))])
    with pytest.raises(PlacementError, match="in use by someone-elses-vm"):
        checked_place("v", "ep", spec(gpus=[{"mode": "passthrough"}]), [taken], Usage())


def test_vgpu_instances_are_counted_across_the_plan():
    usage = Usage()
    slice_ = spec(gpus=[{"mode": "vgpu", "profile": "grid_a100-40c"}])
    checked_place("a", "ep", slice_, HOSTS, usage)
    with pytest.raises(PlacementError, match="no free instance"):
        checked_place("b", "ep", slice_, HOSTS, usage)


def test_an_unknown_fact_is_not_a_no_but_known_hosts_are_preferred():
    assert "nested virtualization support" in checked_place("v", "ep", spec(nested_virtualization=True), [UNKNOWN],
                                                    Usage()).unknowns
    with pytest.raises(PlacementError, match="plain: does not support nested virtualization"):
        checked_place("v", "ep", spec(nested_virtualization=True), [PLAIN], Usage())


def test_a_node_the_endpoint_does_not_have_is_named_with_the_choices():
    with pytest.raises(PlacementError, match=r"field 'node': endpoint 'ep' has no host 'gpu9' \(hosts: disabled"):
        checked_place("v", "ep", spec(gpus=[{"mode": "passthrough"}], node="gpu9"), HOSTS, Usage())


class InventoryProvider(MemoryProvider):
    def hosts(self):
        return HOSTS


def test_the_plan_shows_the_chosen_host_and_the_create_gets_the_chosen_device():
    provider = InventoryProvider()
    plan = build_plan(stack(vm("w", gpus=[{"mode": "passthrough"}])), {"ep": provider})
    [item] = [r for r in plan.resources if r.kind == "VirtualMachine"]
    assert item.placement == "gpu" and item.to_json()["placement"] == "gpu"
    apply.run(plan, {"ep": provider})
    created = provider.drivers["VirtualMachine"].objects["w"][1]
    assert created["node"] == "gpu" and created["gpus"][0]["device"] == A100


def test_memory_must_fit_only_for_vms_whose_memory_is_reserved_by_a_device():
    small = host("small", memory_free_mib=1024, pci_devices=[gpu()])
    assert checked_place("v", "ep", spec(memory=8192, nested_virtualization=True), [small], Usage()).host == "small"
    with pytest.raises(PlacementError, match="small: has 1024 MiB of memory unreserved after the stack's other device "
                                             r"VMs there; the VM reserves all its 8192 MiB \(devices pin memory\)"):
        checked_place("v", "ep", spec(memory=8192, gpus=[{"mode": "passthrough"}]), [small], Usage())


def test_a_gpu_named_by_its_hyper_v_location_path_is_found_whatever_its_case():
    path = "PCIROOT(0)#PCI(0300)#PCI(0000)"
    hv = host("hv", hypervisor="hyperv", pci_devices=[gpu(address=path)],
              vgpu_types=[VgpuType(profile="gpu-p/4", device="NVIDIA A2", available=4)])
    whole = spec(gpus=[{"mode": "passthrough", "device": path.lower()}])
    assert checked_place("v", "ep", whole, [hv], Usage()).gpu_devices == [path]
    assert checked_place("w", "ep", spec(gpus=[{"mode": "vgpu", "profile": "gpu-p/4", "device": "nvidia a2"}]), [hv],
                 Usage()).host == "hv"


def test_a_node_that_cannot_serve_the_vm_is_named_with_the_hosts_that_can():
    with pytest.raises(PlacementError) as caught:
        checked_place("v", "ep", spec(gpus=[{"mode": "passthrough"}], node="disabled"), HOSTS, Usage())
    assert str(caught.value).endswith(f"disabled: {A100} is not enabled for passthrough; hosts that can: gpu")
    with pytest.raises(PlacementError, match=r"no other host of the endpoint can either$"):
        checked_place("v", "ep", spec(gpus=[{"mode": "passthrough"}], node="disabled"), [DISABLED, PLAIN], Usage())


def test_several_nics_a_host_cannot_serve_give_its_reason_once():
    nics = [{"network": "n", "adapter": "sriov"}] * 3
    with pytest.raises(PlacementError) as caught:
        checked_place("v", "ep", spec(nics=nics), [PLAIN], Usage())
    assert str(caught.value).count("has no SR-IOV physical function") == 1


def test_memory_of_vms_that_reserve_none_does_not_crowd_out_a_device_vm():
    small = host("small", memory_free_mib=8192, pci_devices=[gpu()])
    usage = Usage()
    checked_place("nested", "ep", spec(memory=6144, nested_virtualization=True), [small], usage)
    device_vm = spec(memory=4096, gpus=[{"mode": "passthrough"}])
    assert checked_place("gpu-vm", "ep", device_vm, [small], usage).host == "small"


def test_a_vm_pinned_to_a_host_is_placed_before_one_that_could_go_anywhere():
    one_vf = host("edge", sriov=[SriovFunction(address="0000:5e:00.0", enabled=True, vfs_free=1)])
    other = host("other", sriov=[SriovFunction(address="0000:5e:00.0", enabled=True, vfs_free=1)])

    class TwoHosts(MemoryProvider):
        def hosts(self):
            return [one_vf, other]

    free = vm("free", nics=[{"network": "n", "adapter": "sriov"}])
    pinned = vm("pinned", nics=[{"network": "n", "adapter": "sriov"}], node="edge")
    plan = build_plan(stack(free, pinned), {"ep": TwoHosts()})
    assert {r.name: r.placement for r in plan.resources if r.kind == "VirtualMachine"} == {"free": "other",
                                                                                          "pinned": "edge"}


def test_a_host_released_by_a_replaced_vm_offers_the_devices_that_vm_held():
    host = Host(name="h", endpoint="ep", hypervisor="vsphere",
                pci_devices=[PciDevice(address="0000:3b:00.0", class_id="0x0302", vendor_id="0x10de",
                                       device_id="0x20b5", in_use_by=["gpu-vm", "other"])],
                vgpu_types=[VgpuType(profile="p", available=0, in_use_by=["gpu-vm", "gpu-vm"])],
                sriov=[SriovFunction(address="0000:5e:00.0", vfs_free=1, in_use_by=["gpu-vm"])])
    released = host.released("gpu-vm")
    assert released.pci_devices[0].in_use_by == ["other"]
    assert (released.vgpu_types[0].available, released.sriov[0].vfs_free) == (2, 2)


def test_a_gpu_running_vgpus_cannot_be_given_whole():
    busy = host("busy", pci_devices=[gpu()], vgpu_types=[VgpuType(profile="grid_t4-4q", device=A100,
                                                                  in_use_by=["vdi-1"])])
    with pytest.raises(PlacementError, match=f"busy: {A100} runs the vGPUs of vdi-1"):
        checked_place("v", "ep", spec(gpus=[{"mode": "passthrough"}]), [busy], Usage())


def test_a_claim_no_device_here_can_meet_does_not_block_the_devices_others_could_take():
    claimed = host("claimed", pci_devices=[gpu(), gpu(address="0000:af:00.0")], device_claims=[
        DeviceClaim(vm="elsewhere", devices=[]), DeviceClaim(vm="render-7", devices=[A100, "0000:af:00.0"])])
    usage = Usage()
    assert checked_place("a", "ep", spec(gpus=[{"mode": "passthrough"}]), [claimed], usage).gpu_devices == [A100]
    with pytest.raises(PlacementError, match=r"0000:af:00\.0 is the last free device that render-7 can take"):
        checked_place("b", "ep", spec(gpus=[{"mode": "passthrough"}]), [claimed], usage)


def a100_80(**facts) -> PciDevice:
    return PciDevice(address=A100, class_id="0x0302", vendor_id="0x10de", device_id="0x20b5",
                     device_name="GA100 [A100 PCIe 80GB]", passthrough_capable=True, passthrough_enabled=True,
                     memory_mib=81920, graphics_type="sharedDirect", **facts)


def vgpus(*running: tuple[str, int, list[str]]) -> list[VgpuType]:
    return [VgpuType(profile=profile, device=A100, size_mib=size, in_use_by=vms) for profile, size, vms in running]


def test_a_third_40_gb_vgpu_does_not_fit_an_80_gb_gpu():
    full = host("full", pci_devices=[a100_80()], vgpu_types=vgpus(("grid_a100-40c", 40960, ["a", "b"])))
    with pytest.raises(PlacementError, match=f"full: GPU {A100} has 80 GB of frame buffer and 80 GB is taken by "
                                             r"vGPUs: 'grid_a100-40c' \(40 GB\) does not fit"):
        checked_place("c", "ep", spec(firmware="uefi", gpus=[{"mode": "vgpu", "profile": "grid_a100-40c"}]), [full],
                      Usage())


def test_a_gpu_running_20_gb_vgpus_takes_only_20_gb_ones_unless_it_runs_in_mixed_size_mode():
    offered = [("grid_a100-20c", 20480, ["vdi-3"]), ("grid_a100-40c", 40960, [])]
    equal = host("equal", pci_devices=[a100_80()], vgpu_types=vgpus(*offered))
    forty = spec(firmware="uefi", gpus=[{"mode": "vgpu", "profile": "grid_a100-40c"}])
    with pytest.raises(PlacementError, match="already hosts vGPU profile grid_a100-20c; a time-sliced NVIDIA GPU in "
                                             "equal-size mode hosts one frame-buffer size at a time"):
        checked_place("v", "ep", forty, [equal], Usage())
    assert checked_place("w", "ep", spec(firmware="uefi", gpus=[{"mode": "vgpu", "profile": "grid_a100-20c"}]),
                         [equal], Usage()).vgpu_devices == [(A100, "grid_a100-20c")]
    mixed = host("mixed", pci_devices=[a100_80(vgpu_mode="mixedSize")], vgpu_types=vgpus(*offered))
    assert checked_place("v", "ep", forty, [mixed], Usage()).vgpu_devices == [(A100, "grid_a100-40c")]


def test_a_gpu_is_given_only_when_the_device_it_leaves_the_host_with_is_free_too():
    shared = "0000:3a:00.0"
    mate = gpu(address="0000:af:00.0", used=("other-vm",)).model_copy(update={"dependent_device": shared})
    pair = host("pair", pci_devices=[gpu().model_copy(update={"dependent_device": shared}), mate])
    with pytest.raises(PlacementError, match=f"pair: {A100} is released by the host only together with 0000:af:00.0 "
                                             rf"\(dependent device {shared}\), which is in use by other-vm"):
        checked_place("v", "ep", spec(gpus=[{"mode": "passthrough", "device": A100}]), [pair], Usage())


def test_a_vm_that_boots_bios_is_given_a_gpu_without_a_large_bar_where_there_is_one():
    both = host("both", pci_devices=[a100_80(), gpu(address="0000:af:00.0")])
    assert checked_place("v", "ep", spec(gpus=[{"mode": "passthrough"}]), [both], Usage()).gpu_devices == [
        "0000:af:00.0"]
    assert checked_place("w", "ep", spec(firmware="uefi", gpus=[{"mode": "passthrough"}]), [both],
                         Usage()).gpu_devices == [A100]
