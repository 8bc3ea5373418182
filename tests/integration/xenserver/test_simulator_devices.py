"""GPUs, VLANs and SR-IOV on the simulated pool: the seeded hosts differ, and capacity is counted as XAPI counts
it (vGPU types enabled per PGPU, one vGPU size per time-sliced GPU, virtual functions per SR-IOV network)."""

from __future__ import annotations

from tests.support.xenserver import failure, group_of, host_named, new_vm, session, vgpu_type


def test_the_hosts_differ_in_iommu_nested_support_and_devices(fresh_xenserver):
    with session(fresh_xenserver) as api:
        hosts = {r["name_label"]: r for r in api.host.get_all_records().values()}
        assert {name: r["chipset_info"]["iommu"] for name, r in hosts.items()} == {
            "xs-gpu": "true", "xs-sriov": "true", "xs-plain": "false"}
        assert {name: len(r["PGPUs"]) for name, r in hosts.items()} == {"xs-gpu": 2, "xs-sriov": 0, "xs-plain": 1}
        assert all("hvm-3.0-x86_64" in r["capabilities"] for r in hosts.values())
        sriov = [r for r in api.PIF.get_all_records().values() if "sriov" in r["capabilities"]]
        assert [api.host.get_name_label(r["host"]) for r in sriov] == ["xs-sriov"]


def test_a_vgpu_starts_on_a_pgpu_of_its_group_and_capacity_counts_down(fresh_xenserver):
    with session(fresh_xenserver) as api:
        a100, grid20 = group_of(api, "A100"), vgpu_type(api, "GRID A100-20C")
        assert api.GPU_group.get_remaining_capacity(a100, grid20) == "2"
        vm = new_vm(api, "ws")
        api.VGPU.create(vm, a100, "0", {}, grid20)
        api.VM.start(vm, False, False)
        [vgpu] = api.VM.get_VGPUs(vm)
        assert api.host.get_name_label(api.VM.get_resident_on(vm)) == "xs-gpu"
        assert api.PCI.get_pci_id(api.PGPU.get_PCI(api.VGPU.get_resident_on(vgpu))) == "0000:3b:00.0"
        assert api.GPU_group.get_remaining_capacity(a100, grid20) == "1"
        # a time-sliced GPU runs one vGPU size at a time
        assert api.GPU_group.get_remaining_capacity(a100, vgpu_type(api, "GRID A100-4C")) == "0"


def test_a_vgpu_type_not_enabled_and_a_group_without_pgpus_on_the_host_are_refused_at_start(fresh_xenserver):
    with session(fresh_xenserver) as api:
        a100, passthrough = group_of(api, "A100"), vgpu_type(api, "passthrough")
        vm = new_vm(api, "pt-on-a100")
        api.VGPU.create(vm, a100, "0", {}, passthrough)  # accepted: the type is checked when the VM starts
        refused = failure(api.VM.start_on, vm, host_named(api, "xs-gpu"), False, False)
        assert refused[:2] == ["VGPU_TYPE_NOT_ENABLED", passthrough]
        elsewhere = failure(api.VM.start_on, vm, host_named(api, "xs-plain"), False, False)
        assert elsewhere == ["VM_REQUIRES_GPU", vm, a100]
        assert api.VM.get_power_state(vm) == "Halted"


def test_a_vgpu_is_added_only_to_a_halted_vm_and_one_per_vm(fresh_xenserver):
    with session(fresh_xenserver) as api:
        a100, grid4 = group_of(api, "A100"), vgpu_type(api, "GRID A100-4C")
        vm = new_vm(api, "one-vgpu")
        api.VGPU.create(vm, a100, "0", {}, grid4)
        assert failure(api.VGPU.create, vm, a100, "0", {}, grid4) == ["VGPU_TYPE_NOT_COMPATIBLE", grid4]
        assert failure(api.VGPU.create, vm, a100, "0", {}, "OpaqueRef:nope") == [
            "INVALID_VALUE", "type", "OpaqueRef:nope"]
        other = new_vm(api, "running")
        api.VM.start(other, False, False)
        assert failure(api.VGPU.create, other, a100, "0", {}, grid4) == ["VM_BAD_POWER_STATE", other, "halted",
                                                                         "running"]


def test_a_vlan_network_is_made_once_per_pool_on_every_hosts_pif(fresh_xenserver):
    with session(fresh_xenserver) as api:
        eth0 = next(ref for ref, r in api.PIF.get_all_records().items()
                    if r["device"] == "eth0" and r["management"])
        network = api.network.create({"name_label": "vlan-110", "name_description": "", "MTU": "1500",
                                      "other_config": {}, "tags": []})
        made = api.pool.create_VLAN_from_PIF(eth0, network, "110")
        assert len(made) == 3 and {api.PIF.get_VLAN(p) for p in made} == {"110"}
        second = api.network.create({"name_label": "again", "name_description": "", "MTU": "1500",
                                     "other_config": {}, "tags": []})
        assert failure(api.pool.create_VLAN_from_PIF, eth0, second, "110") == ["PIF_VLAN_EXISTS", "eth0"]
        assert failure(api.pool.create_VLAN_from_PIF, eth0, second, "4095") == ["VLAN_TAG_INVALID", "4095"]
        assert failure(api.network.destroy, network)[0] == "NETWORK_CONTAINS_PIF"


def test_vms_on_the_sriov_network_take_virtual_functions_until_none_is_left(fresh_xenserver):
    with session(fresh_xenserver) as api:
        [network] = api.network.get_by_name_label("lab-sriov")
        [sriov] = api.network_sriov.get_all()
        assert api.network_sriov.get_remaining_capacity(sriov) == "8"
        for index in range(9):
            vm = new_vm(api, f"vf{index}")
            api.VIF.create({"device": "0", "network": network, "VM": vm, "MAC": "", "MTU": "1500",
                            "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}})
            if index < 8:
                api.VM.start(vm, False, False)
                assert api.host.get_name_label(api.VM.get_resident_on(vm)) == "xs-sriov"
        assert api.network_sriov.get_remaining_capacity(sriov) == "0"
        assert failure(api.VM.start_on, vm, host_named(api, "xs-sriov"), False, False) == [
            "NETWORK_SRIOV_INSUFFICIENT_CAPACITY", network]
        assert failure(api.VM.start_on, vm, host_named(api, "xs-gpu"), False, False) == [
            "VM_REQUIRES_NET", vm, network]
