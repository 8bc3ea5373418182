"""VMs on the simulated pool: templates, clone/copy/provision, the power operations and the settings XAPI changes
only on a halted VM, each refused with XAPI's own code and parameters."""

from __future__ import annotations

from tests.support.xenserver import GiB, failure, new_vm, session, template, vm_named


def test_a_template_cannot_start_and_its_clone_stays_a_template_until_provisioned(fresh_xenserver):
    with session(fresh_xenserver) as api:
        other = template(api)
        assert failure(api.VM.start, other, False, False) == ["VM_IS_TEMPLATE", other, "start"]
        clone = api.VM.clone(other, "from-template")
        record = api.VM.get_record(clone)
        assert record["is_a_template"] is True and record["is_default_template"] is False
        assert "default_template" not in record["other_config"]
        assert record["other_config"]["base_template_name"] == "Other install media"
        api.VM.provision(clone)
        assert api.VM.get_is_a_template(clone) is False


def test_provision_makes_the_disks_the_template_describes_only_on_a_known_sr(fresh_xenserver):
    with session(fresh_xenserver) as api:
        debian = api.VM.clone(vm_named(api, "Debian Bookworm 12"), "debian")
        assert failure(api.VM.provision, debian) == ["UUID_INVALID", "sr", ""]
        assert api.VM.get_VBDs(debian) == []
        sr = api.pool.get_default_SR(api.pool.get_all()[0])
        disks = api.VM.get_other_config(debian)["disks"].replace('sr=""', f'sr="{api.SR.get_uuid(sr)}"')
        api.VM.remove_from_other_config(debian, "disks")
        api.VM.add_to_other_config(debian, "disks", disks)
        api.VM.provision(debian)
        [vbd] = api.VM.get_VBDs(debian)
        assert api.VBD.get_userdevice(vbd) == "0"
        assert api.VDI.get_virtual_size(api.VBD.get_VDI(vbd)) == str(10 * GiB)
        assert "disks" not in api.VM.get_other_config(debian)


def test_clone_copies_the_templates_disks_and_copy_puts_them_on_the_given_sr(fresh_xenserver):
    with session(fresh_xenserver) as api:
        base = vm_named(api, "debian-12-base")
        sr = api.pool.get_default_SR(api.pool.get_all()[0])
        for new in (api.VM.clone(base, "cloned"), api.VM.copy(base, "copied", sr)):
            [vbd] = api.VM.get_VBDs(new)
            vdi = api.VBD.get_VDI(vbd)
            assert vdi != api.VBD.get_VDI(api.VM.get_VBDs(base)[0])
            assert api.VDI.get_SR(vdi) == sr


def test_power_operations_refuse_the_wrong_state_with_expected_and_actual(fresh_xenserver):
    with session(fresh_xenserver) as api:
        vm = new_vm(api, "power")
        assert failure(api.VM.clean_shutdown, vm) == ["VM_BAD_POWER_STATE", vm, "running", "halted"]
        api.VM.start(vm, False, False)
        assert api.VM.get_power_state(vm) == "Running"
        assert failure(api.VM.start, vm, False, False) == ["VM_BAD_POWER_STATE", vm, "halted", "running"]
        assert failure(api.VM.destroy, vm) == ["VM_BAD_POWER_STATE", vm, "halted, suspended", "running"]
        assert failure(api.VM.set_is_a_template, vm, True) == ["VM_BAD_POWER_STATE", vm, "halted", "running"]
        api.VM.hard_shutdown(vm)
        api.VM.destroy(vm)
        assert api.VM.get_by_name_label("power") == []


def test_vcpus_and_memory_change_only_on_a_halted_vm_and_in_xapis_order(fresh_xenserver):
    with session(fresh_xenserver) as api:
        vm = new_vm(api, "sizes", vcpus=2)
        assert failure(api.VM.set_VCPUs_max, vm, "1")[0] == "INVALID_VALUE"  # below VCPUs_at_startup
        size = str(2 * GiB)
        assert failure(api.VM.set_memory_limits, vm, size, str(GiB), size, size) == [
            "MEMORY_CONSTRAINT_VIOLATION_ORDER"]
        api.VM.start(vm, False, False)
        assert failure(api.VM.set_VCPUs_max, vm, "4") == ["VM_BAD_POWER_STATE", vm, "halted", "running"]
        assert failure(api.VM.set_memory_limits, vm, size, size, size, size)[0] == "VM_BAD_POWER_STATE"


def test_start_checks_cores_per_socket_and_the_hosts_free_memory(fresh_xenserver):
    with session(fresh_xenserver) as api:
        vm = new_vm(api, "layout", vcpus=3)
        api.VM.add_to_platform(vm, "cores-per-socket", "2")
        assert failure(api.VM.start, vm, False, False) == ["VCPU_MAX_NOT_CORES_PER_SOCKET_MULTIPLE", "3", "2"]
        big = new_vm(api, "too-big", memory_gib=300)
        assert failure(api.VM.start, big, False, False) == ["NO_HOSTS_AVAILABLE"]
        api.VM.set_affinity(big, api.host.get_by_name_label("xs-plain")[0])
        refused = failure(api.VM.start, big, False, False)
        assert refused[0] == "HOST_NOT_ENOUGH_FREE_MEMORY" and refused[1] == str(300 * GiB)


def test_destroy_leaves_the_vdis_and_vdi_destroy_refuses_an_attached_disk(fresh_xenserver):
    with session(fresh_xenserver) as api:
        vm = api.VM.clone(vm_named(api, "debian-12-base"), "disks")
        api.VM.provision(vm)
        vdi = api.VBD.get_VDI(api.VM.get_VBDs(vm)[0])
        api.VM.start(vm, False, False)
        assert failure(api.VDI.destroy, vdi) == ["VDI_IN_USE", vdi, "destroy"]
        assert failure(api.VDI.resize, vdi, str(20 * GiB)) == ["VDI_IN_USE", vdi, "resize"]
        api.VM.hard_shutdown(vm)
        api.VM.destroy(vm)
        assert api.VDI.get_VBDs(vdi) == []  # the disk outlives its VM
        api.VDI.destroy(vdi)
