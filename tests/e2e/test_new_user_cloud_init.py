"""Cloud-init and import tried as a new user would, through the CLI on the lab's simulators: a template with a missing
variable, a template that renders broken YAML, and an import of a VM with a device no field can say — one clear
sentence each, and nothing changed on the hypervisor."""

from __future__ import annotations

from pathlib import Path

from tests.support import vsphere
from tests.support.cli import assert_one_clear_error, lab_env, virtplane, write_stack

SECRET = "s3cr3t-token-value"
PROGRAM = f"""import os
import pulumi
import virtplane
ep = virtplane.Endpoint('ep', kind='vsphere')
virtplane.VirtualMachine('ci-web', cpus=1, memory=256, cloud_init=virtplane.CloudInit(
    user_data='templates/web.yaml.j2',
    vars={{'admin_user': 'ops', 'token': pulumi.Output.secret('{SECRET}')}}),
    opts=pulumi.ResourceOptions(provider=ep))
"""


def stack(tmp_path: Path, template: str) -> Path:
    directory = write_stack(tmp_path / "web", PROGRAM)
    (directory / "templates").mkdir()
    (directory / "templates" / "web.yaml.j2").write_text(template)
    return directory


def names(instance) -> set[str]:
    with vsphere.admin(instance) as si:
        return {vm.name for vm in vsphere.all_vms(si)}


def test_a_template_using_a_variable_the_stack_does_not_give_is_one_sentence_and_nothing_is_made(tmp_path,
                                                                                                fresh_vcsim):
    env = lab_env(fresh_vcsim)
    template = "#cloud-config\nusers:\n  - name: {{ admin_user }}\n    ssh_authorized_keys: [{{ ssh_key }}]\n"
    for command in (("plan",), ("apply", "--yes")):
        result = virtplane(*command, str(stack(tmp_path / command[0], template)), env=env)
        assert_one_clear_error(result, "VirtualMachine 'ci-web': field 'cloud_init.user_data': template "
                                       "templates/web.yaml.j2 line 4: variable 'ssh_key' is not defined (variables "
                                       "given: admin_user, token, vm_name)", secrets=[SECRET])
    assert "ci-web" not in names(fresh_vcsim)


def test_a_template_that_renders_broken_yaml_is_one_sentence_without_its_text_and_nothing_is_made(tmp_path,
                                                                                                 fresh_vcsim):
    env = lab_env(fresh_vcsim)
    template = "#cloud-config\nwrite_files:\n  - path: /etc/app.env\n    content: TOKEN={{ token }}: x\n"
    result = virtplane("apply", str(stack(tmp_path, template)), "--yes", env=env)
    assert_one_clear_error(result, "VirtualMachine 'ci-web': field 'cloud_init.user_data': template "
                                   "templates/web.yaml.j2 renders user-data that is not valid cloud-config YAML: "
                                   "mapping values are not allowed here (rendered line 4, column", secrets=[SECRET])
    assert "ci-web" not in names(fresh_vcsim)


def test_an_import_of_a_vm_with_a_device_no_field_can_say_is_one_sentence_and_changes_nothing(tmp_path, fresh_vcsim):
    from pyVmomi import vim

    env = lab_env(fresh_vcsim)
    with vsphere.admin(fresh_vcsim) as si:
        vsphere.create_plain_vm(si, "legacy-1")
        vm = vsphere.find_vm(si, "legacy-1")
        port = vim.vm.device.VirtualSerialPort(key=-1, backing=vim.vm.device.VirtualSerialPort.FileBackingInfo(
            fileName="[LocalDS_0] legacy-1/serial.log"))
        vsphere.reconfigure(vm, vim.vm.ConfigSpec(deviceChange=[vim.vm.device.VirtualDeviceSpec(
            operation="add", device=port)]))
        before = (vm.config.changeVersion, [d.key for d in vm.config.hardware.device])
    result = virtplane("import", "--endpoint-kind", "vsphere", "--select", "legacy-*", "--out",
                       str(tmp_path / "legacy"), env=env)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("VM 'legacy-1': ") and "(a serial port) cannot be expressed in a " \
        "stack; listed in a comment above it in" in lines[0] and lines[0].endswith("and left as it is.")
    assert "(a serial port)" in (tmp_path / "legacy" / "__main__.py").read_text()
    with vsphere.admin(fresh_vcsim) as si:
        vm = vsphere.find_vm(si, "legacy-1")
        assert (vm.config.changeVersion, [d.key for d in vm.config.hardware.device]) == before
