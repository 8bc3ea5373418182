"""What a new user gets wrong on a Hyper-V endpoint, through the ``virtplane`` command: each mistake is one
sentence on stderr, exit 1, nothing applied, no secret shown.

Sources: pypsrp's WSMan (Basic over HTTP only with encryption="never"), Microsoft's Hyper-V cmdlet reference
(Get-VMSwitch, New-VMSwitch), the nested-virtualization page (AMD hosts: configuration version 9.3 or later)
and the Discrete Device Assignment page (no dynamic memory with an assigned device)."""

from __future__ import annotations

import itertools
from typing import Any

from tests.integration.hyperv.test_driver import SWITCH, provider, vms_named
from tests.support.cli import assert_one_clear_error, user_env, virtplane, write_stack
from virtplane.providers.hyperv.client import Cmd, pipe, vm_by_id
from virtplane_lab.hyperv import HypervInstance

_numbers = itertools.count()


def hyperv_env(instance: HypervInstance, **overrides: str | None) -> dict[str, str]:
    """The environment of a user who exported the simulated host's HYPERV_* variables."""
    return user_env({**instance.environ(), "HYPERV_TLS": str(instance.tls).lower(), "HYPERV_SWITCH": SWITCH},
                    **overrides)


def program(name: str, extra: str = "") -> str:
    return ("import pulumi\nimport virtplane\n"
            "ep = virtplane.Endpoint('hv', kind='hyperv')\n"
            "on_hv = pulumi.ResourceOptions(provider=ep)\n"
            "net = virtplane.Network('app', vlan=120, opts=on_hv)\n"
            f"virtplane.VirtualMachine({name!r}, cpus=1, memory='512MiB', power='off', nics=[virtplane.Nic(net)], "
            f"{extra}opts=on_hv)\n")


def apply_mistake(instance: HypervInstance, tmp_path: Any, extra: str = "", **env: str | None) -> tuple[str, Any]:
    provider(instance)  # the endpoint's switch exists
    name = f"mistake-{next(_numbers)}"
    stack = write_stack(tmp_path / name, program(name, extra), project=f"mistakes{next(_numbers)}")
    return name, virtplane("apply", str(stack), "--yes", env=hyperv_env(instance, **env))


def test_a_wrong_password_is_refused_without_echoing_it(hyperv_gpu, tmp_path):
    """WinRM answers a failed login with HTTP 401 (Microsoft's "Authentication for remote connections" page);
    pypsrp raises AuthenticationError; the sentence names the user and the variables."""
    wrong = "Wr0ng-Hyperv-Passw0rd-Sentinel"
    name, result = apply_mistake(hyperv_gpu, tmp_path, HYPERV_PASSWORD=wrong)
    assert_one_clear_error(result, "refused the login of user virtplane (negotiate)", "HYPERV_PASSWORD",
                           secrets=[wrong, hyperv_gpu.password])
    assert vms_named(provider(hyperv_gpu), name) == []


def test_basic_authentication_over_http_is_refused_before_connecting(hyperv_gpu, tmp_path):
    """Basic over HTTP sends the password in clear text (Microsoft's "Installation and configuration for Windows
    Remote Management" page: AllowUnencrypted, Basic); pypsrp refuses it unless encryption is "never"."""
    name, result = apply_mistake(hyperv_gpu, tmp_path, HYPERV_AUTH="basic")
    assert_one_clear_error(result, "Endpoint 'hv'", "field 'auth'", "Basic authentication over HTTP",
                           "allow_unencrypted", secrets=[hyperv_gpu.password])
    assert vms_named(provider(hyperv_gpu), name) == []


def test_a_switch_that_does_not_exist_names_the_switches_the_host_has(hyperv_gpu, tmp_path):
    """Get-VMSwitch lists the host's switches (Get-VMSwitch cmdlet reference); a network is a VLAN on the
    endpoint's switch (Set-VMNetworkAdapterVlan reference)."""
    name, result = apply_mistake(hyperv_gpu, tmp_path, HYPERV_SWITCH="no-such-switch")
    assert_one_clear_error(result, "Network 'app'", "switch 'no-such-switch' does not exist on the Hyper-V host",
                           SWITCH, secrets=[hyperv_gpu.password])
    assert vms_named(provider(hyperv_gpu), name) == []


def test_nested_virtualization_on_an_amd_host_below_version_9_3_is_refused(hyperv_sriov, tmp_path):
    """Nested virtualization page: AMD hosts need VM configuration version 9.3 or later."""
    name, result = apply_mistake(hyperv_sriov, tmp_path, extra="nested_virtualization=True, machine='9.0', ")
    assert_one_clear_error(result, f"VM {name}", "field 'nested_virtualization'",
                           "nested virtualization on AMD needs configuration version 9.3 or later; the VM's is 9.0",
                           secrets=[hyperv_sriov.password])
    assert vms_named(provider(hyperv_sriov), name) == []


def test_a_passthrough_gpu_on_a_vm_with_dynamic_memory_is_refused_and_nothing_changes(hyperv_gpu, tmp_path):
    """DDA page: a VM with an assigned device cannot use dynamic memory (Set-VMMemory -DynamicMemoryEnabled)."""
    name, result = apply_mistake(hyperv_gpu, tmp_path)
    assert result.returncode == 0, result.stderr
    hv = provider(hyperv_gpu)
    [vm] = vms_named(hv, name)
    vm_id = str(vm.get("VMId"))
    hv.client.run([pipe(vm_by_id(vm_id), Cmd("Set-VMMemory", {"DynamicMemoryEnabled": True}))], "dynamic memory")
    stack = tmp_path / name
    (stack / "__main__.py").write_text(program(name, "gpus=[virtplane.Gpu('passthrough')], "))
    result = virtplane("apply", str(stack), "--yes", env=hyperv_env(hyperv_gpu))
    assert_one_clear_error(result, f"VirtualMachine '{name}'", "field 'gpus[0]'",
                           f"Discrete Device Assignment needs static memory and VM {name} uses dynamic memory",
                           secrets=[hyperv_gpu.password])
    assert hv.client.run([pipe(vm_by_id(vm_id), Cmd("Get-VMAssignableDevice"))], "devices").objects == []
    assert str(vms_named(hv, name)[0].get("AutomaticStopAction")) != "TurnOff"


def test_an_untrusted_certificate_points_at_the_ca_setting(hyperv_sriov, tmp_path):
    """WinRM over HTTPS needs a certificate the client trusts ("Installation and configuration for Windows
    Remote Management" page); pypsrp's cert_validation becomes requests' verify: without the lab's CA the TLS
    handshake fails."""
    name, result = apply_mistake(hyperv_sriov, tmp_path, HYPERV_CA_FILE=None)
    assert_one_clear_error(result, "cannot verify the TLS certificate of Hyper-V endpoint 'hv'", "HYPERV_CA_FILE",
                           secrets=[hyperv_sriov.password])
    assert vms_named(provider(hyperv_sriov), name) == []
