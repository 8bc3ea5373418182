"""Out-of-band access to a simulated XenServer pool with the unmodified ``xenapi`` client, as an administrator's
script would make it (never through virtplane's driver)."""

from __future__ import annotations

import ssl
import xmlrpc.client
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import XenAPI

from virtplane_lab.xenserver import XenserverInstance

GiB = 1024**3


@contextmanager
def session(instance: XenserverInstance, url: str | None = None, password: str | None = None) -> Iterator[Any]:
    """A logged-in ``XenAPI.Session`` over TLS verified with the pool's CA; yields ``session.xenapi``."""
    context = ssl.create_default_context(cafile=instance.ca_file)
    client = XenAPI.Session(url or instance.url, transport=xmlrpc.client.SafeTransport(context=context))
    client.xenapi.login_with_password(instance.user, instance.password if password is None else password, "2.21",
                                      "virtplane-tests")
    try:
        yield client.xenapi
    finally:
        client.xenapi.session.logout()


def failure(call: Any, *args: Any) -> list[str]:
    """The ErrorDescription of a call that must fail."""
    try:
        call(*args)
    except XenAPI.Failure as refused:
        return list(refused.details)
    raise AssertionError(f"{call} succeeded")


def vm_named(api: Any, name: str) -> str:
    [ref] = api.VM.get_by_name_label(name)
    return str(ref)


def template(api: Any, name: str = "Other install media") -> str:
    return vm_named(api, name)


def host_named(api: Any, name: str) -> str:
    [ref] = api.host.get_by_name_label(name)
    return str(ref)


def new_vm(api: Any, name: str, *, memory_gib: int = 1, vcpus: int = 1) -> str:
    """A halted VM from ``Other install media`` (clone + provision), with static = dynamic memory."""
    vm = api.VM.clone(template(api), name)
    api.VM.provision(vm)
    size = str(memory_gib * GiB)
    api.VM.set_memory_limits(vm, size, size, size, size)
    set_vcpus(api, vm, vcpus)
    return str(vm)


def set_vcpus(api: Any, vm: str, vcpus: int) -> None:
    """VCPUs_max and VCPUs_at_startup to ``vcpus``, in the order XAPI allows (at_startup <= max throughout)."""
    if vcpus < int(api.VM.get_VCPUs_at_startup(vm)):
        api.VM.set_VCPUs_at_startup(vm, str(vcpus))
        api.VM.set_VCPUs_max(vm, str(vcpus))
    else:
        api.VM.set_VCPUs_max(vm, str(vcpus))
        api.VM.set_VCPUs_at_startup(vm, str(vcpus))


def vgpu_type(api: Any, model: str) -> str:
    return next(ref for ref, r in api.VGPU_type.get_all_records().items() if r["model_name"] == model)


def group_of(api: Any, device_name_part: str) -> str:
    return next(ref for ref, r in api.GPU_group.get_all_records().items() if device_name_part in r["name_label"])


def vm_names(instance: XenserverInstance) -> list[str]:
    """The pool's VMs (not templates, not control domains), by name, sorted."""
    with session(instance) as api:
        return sorted(r["name_label"] for r in api.VM.get_all_records_where(
            'field "is_control_domain" = "false" and field "is_a_snapshot" = "false"').values()
            if not r["is_a_template"] or r["name_label"].startswith("virtplane-pending:"))


def vdi_names(instance: XenserverInstance) -> list[str]:
    with session(instance) as api:
        return sorted(r["name_label"] for r in api.VDI.get_all_records().values())
