"""What a new user gets wrong on a XenServer endpoint, through the ``virtplane`` command: each mistake is one
sentence on stderr, exit 1, nothing made, no secret shown.

Sources: XenAPI reference — session.login_with_password (SESSION_AUTHENTICATION_FAILED), VM.clone (a template by
reference; a name that names none cannot be cloned), VGPU_type (``model_name``) and GPU groups."""

from __future__ import annotations

import itertools
from typing import Any

from tests.support import xenserver as xen
from tests.support.cli import assert_one_clear_error, user_env, virtplane, write_stack
from virtplane_lab.xenserver import XenserverInstance

_numbers = itertools.count()


def xen_env(instance: XenserverInstance, **overrides: str | None) -> dict[str, str]:
    """The environment of a user who exported the pool's XENSERVER_* variables."""
    return user_env(instance.environ(), **overrides)


def apply_mistake(instance: XenserverInstance, tmp_path: Any, extra: str = "", **env: str | None) -> tuple[str, Any]:
    name = f"mistake-{next(_numbers)}"
    program = ("import pulumi\nimport virtplane\n"
               "ep = virtplane.Endpoint('xs', kind='xenserver')\n"
               "on_xs = pulumi.ResourceOptions(provider=ep)\n"
               "net = virtplane.Network('app', vlan=150, opts=on_xs)\n"
               f"virtplane.VirtualMachine({name!r}, cpus=1, memory='512MiB', nics=[virtplane.Nic(net)], "
               f"{extra}opts=on_xs)\n")
    stack = write_stack(tmp_path / name, program, project=f"mistakes{next(_numbers)}")
    return name, virtplane("apply", str(stack), "--yes", env=xen_env(instance, **env))


def assert_nothing_made(instance: XenserverInstance) -> None:
    assert xen.vm_names(instance) == []
    with xen.session(instance) as api:
        assert api.network.get_by_name_label("app") == []


def test_a_wrong_password_is_refused_without_echoing_it(fresh_xenserver, tmp_path):
    wrong = "Wr0ng-Xen-Passw0rd-Sentinel"
    _, result = apply_mistake(fresh_xenserver, tmp_path, XENSERVER_PASSWORD=wrong)
    assert_one_clear_error(result, "XenServer endpoint 'xs'", "refused the login of user root",
                           "XENSERVER_PASSWORD", secrets=[wrong, fresh_xenserver.password])
    assert_nothing_made(fresh_xenserver)


def test_a_template_that_does_not_exist_is_named_with_the_templates_the_pool_has(fresh_xenserver, tmp_path):
    name, result = apply_mistake(fresh_xenserver, tmp_path, extra="clone_from='debian-13-base', ")
    assert_one_clear_error(result, f"VirtualMachine '{name}'", "field 'clone_from'",
                           "no template or VM named 'debian-13-base' on XenServer endpoint 'xs'", "debian-12-base",
                           secrets=[fresh_xenserver.password])
    assert_nothing_made(fresh_xenserver)


def test_a_default_template_the_pool_lacks_points_at_its_setting(fresh_xenserver, tmp_path):
    name, result = apply_mistake(fresh_xenserver, tmp_path, XENSERVER_TEMPLATE="Windows Server 2025")
    assert_one_clear_error(result, f"VirtualMachine '{name}'", "field 'clone_from'",
                           "the endpoint's template 'Windows Server 2025' (XENSERVER_TEMPLATE)",
                           secrets=[fresh_xenserver.password])
    assert_nothing_made(fresh_xenserver)


def test_a_vgpu_type_the_pool_lacks_names_each_host_and_what_it_offers(fresh_xenserver, tmp_path):
    name, result = apply_mistake(fresh_xenserver, tmp_path,
                                 extra="gpus=[virtplane.Gpu('vgpu', profile='GRID A100-40C')], ")
    assert_one_clear_error(result, f"VM {name}: field 'gpus'", "offers no vGPU profile 'GRID A100-40C'",
                           "xs-gpu", "GRID A100-20C", "xs-plain", "xs-sriov", secrets=[fresh_xenserver.password])
    assert_nothing_made(fresh_xenserver)


def test_an_untrusted_certificate_points_at_the_ca_setting(fresh_xenserver, tmp_path):
    _, result = apply_mistake(fresh_xenserver, tmp_path, XENSERVER_CA_FILE=None)
    assert_one_clear_error(result, "presented a certificate that could not be verified", "XENSERVER_CA_FILE",
                           secrets=[fresh_xenserver.password])
    assert_nothing_made(fresh_xenserver)


def test_a_missing_password_names_the_field_and_its_variable(fresh_xenserver, tmp_path):
    _, result = apply_mistake(fresh_xenserver, tmp_path, XENSERVER_PASSWORD=None)
    assert_one_clear_error(result, "Endpoint 'xs'", "password", "XENSERVER_PASSWORD", secrets=[])
    assert_nothing_made(fresh_xenserver)
