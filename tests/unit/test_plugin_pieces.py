"""The plugin's pure pieces: names, paths and values between Pulumi's terms and virtplane's."""

import pytest
from pulumi.provider.experimental.property_value import PropertyValue

from virtplane.endpoint_settings import endpoint_settings
from virtplane.errors import VirtplaneError
from virtplane.plugin.checking import pulumi_path
from virtplane.plugin.diffing import pulumi_key
from virtplane.plugin.endpoint import endpoint_name
from virtplane.plugin.provider import resource_kind, stack_identity
from virtplane.plugin.schema import package_schema
from virtplane.plugin.values import plain, to_property
from virtplane.providers.registry import provider_class


def test_a_default_providers_versioned_name_is_taken_as_default_so_upgrades_keep_ownership():
    assert endpoint_name("urn:pulumi:dev::proj::pulumi:providers:virtplane::default_0_1_0") == "default"
    assert endpoint_name("urn:pulumi:dev::proj::pulumi:providers:virtplane::default") == "default"
    assert endpoint_name("urn:pulumi:dev::proj::pulumi:providers:virtplane::pve-east") == "pve-east"


def test_the_stack_identity_is_project_slash_stack_read_from_the_urn():
    assert stack_identity("urn:pulumi:prod::web::pulumi:pulumi:Stack$virtplane:index:Network::app") == "web/prod"


def test_a_resource_type_is_dispatched_on_its_last_qualified_part_and_others_are_named():
    assert resource_kind("pulumi:pulumi:Stack$virtplane:index:VirtualMachine") == "VirtualMachine"
    with pytest.raises(VirtplaneError, match="no resource type 'virtplane:index:Disk'"):
        resource_kind("virtplane:index:Disk")


def test_paths_use_pulumis_brackets_and_the_inputs_positions_of_slotted_items():
    assert pulumi_path("disks.1.size") == "disks[1].size"
    desired = {"disks": [{"slot": "scsi0:1"}, {"slot": "scsi0:0"}]}
    old = {"disks": [{"slot": "scsi0:0"}, {"slot": "scsi0:1"}, {"slot": "scsi0:2"}]}
    assert pulumi_key("disks[scsi0:0].size", desired, old) == "disks[1].size"
    assert pulumi_key("disks[scsi0:2]", desired, old) == "disks[2]"
    assert pulumi_key("memory", desired, old) == "memory"


def test_wire_doubles_become_ints_and_ints_go_out_as_doubles():
    assert plain(PropertyValue({"cpus": PropertyValue(2.0), "ratio": PropertyValue(0.5)})) == {"cpus": 2, "ratio": 0.5}
    assert to_property({"cpus": 2, "tags": ["a"]}).value["cpus"].value == 2.0


def test_proxmox_endpoint_settings_are_the_names_users_write_with_the_token_secret():
    settings = {s.name: s for s in endpoint_settings(provider_class("proxmox"))}
    assert {"endpoint", "api_token", "bridge", "task_timeout"} <= set(settings)
    assert settings["api_token"].secret and settings["password"].secret and not settings["endpoint"].secret
    assert settings["insecure"].type == "boolean" and settings["task_timeout"].type == "number"


def test_a_size_accepts_an_integer_or_a_size_string_in_the_schema():
    schema = package_schema("0.1.0")
    memory = schema["resources"]["virtplane:index:VirtualMachine"]["inputProperties"]["memory"]
    assert memory["oneOf"] == [{"type": "integer"}, {"type": "string"}]
    assert schema["types"]["virtplane:index:Disk"]["properties"]["size"]["oneOf"][1] == {"type": "string"}


def test_the_package_tells_pulumi_up_it_needs_this_plugin_at_the_packages_version():
    import json
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    marker = json.loads((root / "virtplane" / "pulumi-plugin.json").read_text())
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert marker == {"resource": True, "name": "virtplane", "version": project["project"]["version"]}
    assert project["project"]["scripts"]["pulumi-resource-virtplane"] == "virtplane.plugin.__main__:main"
    assert "virtplane" in project["tool"]["setuptools"]["package-data"]


def test_an_update_refuses_a_change_that_starts_from_a_live_value_the_preview_did_not_show():
    import pytest

    from virtplane.errors import VirtplaneError
    from virtplane.plan import PlannedChange
    from virtplane.plugin.guards import refuse_unpreviewed
    from virtplane.providers.base import FieldChange, Rule

    attached = PlannedChange(FieldChange("disks[scsi0:2]", {"size": 500, "slot": "scsi0:2"}, None), Rule.IN_PLACE)
    memory = PlannedChange(FieldChange("memory", 1024, 2048), Rule.IN_PLACE)
    previewed = {"memory": FieldChange("memory", 1024, 2048)}
    refuse_unpreviewed("VirtualMachine", "db", "virtual machine", [memory], previewed)
    with pytest.raises(VirtplaneError, match=r"disks\[scsi0:2\] is disk scsi0:2 \(500 GiB\) on the hypervisor but "
                                             r"\(none\) in Pulumi's state.*Nothing was changed: run `pulumi refresh`"):
        refuse_unpreviewed("VirtualMachine", "db", "virtual machine", [memory, attached], previewed)
    with pytest.raises(VirtplaneError, match="memory is 4096 on the hypervisor but 1024 in Pulumi's state"):
        refuse_unpreviewed("VirtualMachine", "db", "virtual machine",
                           [PlannedChange(FieldChange("memory", 4096, 2048), Rule.POWER_OFF)], previewed)


def test_each_vm_driver_names_as_replaceable_every_field_its_rules_can_replace_for():
    from virtplane.providers.base import FieldChange, RefusedChange, Rule
    from virtplane.providers.hyperv.vm import VirtualMachineDriver as Hyperv
    from virtplane.providers.proxmox.vm import VirtualMachineDriver as Proxmox
    from virtplane.providers.vm_rules import top_field
    from virtplane.providers.vsphere.vm import VirtualMachineDriver as Vsphere

    disk = {"slot": "scsi0:1", "size": 10, "storage": "a", "thin": True, "bus": "paravirtual"}
    changes = [FieldChange(field, old, new) for field, old, new in (
        ("cpus", 2, 1), ("cpus", 1, 2), ("memory", 2048, 1024), ("sockets", 1, 2), ("firmware", "bios", "uefi"),
        ("secure_boot", False, True), ("guest_os", "linux", "windows"), ("machine", "vmx-19", "vmx-13"),
        ("machine", "q35", "pc"), ("node", "a", "b"), ("power", "off", "on"), ("nested_virtualization", False, True),
        ("tags", [], ["a"]), ("disks[scsi0:1]", None, disk), ("disks[scsi0:1]", disk, None),
        ("disks[scsi0:1].size", 10, 20), ("disks[scsi0:1].thin", True, False), ("disks[scsi0:1].storage", "a", "b"),
        ("disks[scsi0:1].bus", "paravirtual", "sata"), ("nics[net0].network", "a", "b"),
        ("nics[net0].adapter", "paravirtual", "e1000"), ("gpus[0].profile", "a", "b"))]
    for driver in (Vsphere, Proxmox, Hyperv):
        replaced = set()
        for change in changes:
            try:
                rule = driver.rule(driver.__new__(driver), change)
            except RefusedChange:
                continue
            if rule is Rule.REPLACE:
                replaced.add(top_field(change.path))
        assert replaced == set(driver.replaceable), driver.__module__
