"""Cloud-init on XenServer: a config-drive VDI holding a NoCloud image (label cidata), written through XAPI's
/import_raw_vdi handler and plugged as a read-only disk, read back with the unmodified xenapi client and XAPI's
/export_raw_vdi handler, swapped live when the template changes, and destroyed with the VM."""

from __future__ import annotations

import ssl
import urllib.request
import xmlrpc.client
from typing import Any
from urllib.parse import urlencode

import XenAPI

from tests.support import xenserver as xen
from virtplane.providers import nocloud
from virtplane.providers.xenserver.records import CLOUD_INIT_KEY
from virtplane.specs import CloudInitSpec

USER = "#cloud-config\nhostname: xs\npackages: [nginx]\n"


def cloud_init(user: str = USER) -> dict[str, Any]:
    return {"user_data": user, "meta_data": "instance-id: xs-1\nlocal-hostname: xs\n"}


def config_drives(api: Any, vm: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(VBD, VDI, VBD record) of the VM's disks whose VDI carries virtplane's cloud-init mark."""
    found = []
    for vbd in api.VM.get_VBDs(vm):
        record = api.VBD.get_record(vbd)
        if record["type"] == "Disk" and CLOUD_INIT_KEY in api.VDI.get_other_config(record["VDI"]):
            found.append((vbd, record["VDI"], record))
    return found


def exported(instance: Any, api_session: str, vdi: str) -> bytes:
    """A VDI's bytes through XAPI's ``GET /export_raw_vdi`` handler, as an administrator's script reads them."""
    query = urlencode({"session_id": api_session, "vdi": vdi, "format": "raw"})
    context = ssl.create_default_context(cafile=instance.ca_file)
    with urllib.request.urlopen(f"{instance.url}/export_raw_vdi?{query}", context=context, timeout=30) as response:
        return response.read()


def guest_sees(instance: Any, vdi: str) -> dict[str, bytes]:
    """The files a guest reads from the config drive (its bytes through /export_raw_vdi, in a session of the xenapi
    client's)."""
    client = XenAPI.Session(instance.url, transport=xmlrpc.client.SafeTransport(
        context=ssl.create_default_context(cafile=instance.ca_file)))
    client.xenapi.login_with_password(instance.user, instance.password, "2.21", "virtplane-tests")
    try:
        return nocloud.files(exported(instance, client._session, vdi))
    finally:
        client.xenapi.session.logout()


def test_a_new_vm_gets_a_config_drive_the_guest_reads_and_plans_clean(stack, fresh_xenserver):
    stack.vm("ci-xs", cpus=1, memory="512MiB", power="off", disks=[{"size": 1}], cloud_init=cloud_init())
    stack.apply()
    with xen.session(fresh_xenserver) as api:
        vm = xen.vm_named(api, "ci-xs")
        [(_, vdi, record)] = config_drives(api, vm)
        assert record["mode"] == "RO" and record["userdevice"] == "15"
        mark = api.VDI.get_other_config(vdi)[CLOUD_INIT_KEY]
        assert mark == f"{api.VM.get_uuid(vm)}/{CloudInitSpec.model_validate(cloud_init()).digest}"
    files = guest_sees(fresh_xenserver, vdi)
    assert files["user-data"].decode() == USER and b"instance-id: xs-1" in files["meta-data"]
    assert stack.changes() == {}  # the config drive is not one of the VM's disks


def test_a_changed_template_swaps_the_config_drive_live_and_destroys_the_old_one(stack, fresh_xenserver):
    stack.vm("ci-live", cpus=1, memory="512MiB", disks=[{"size": 1}], cloud_init=cloud_init())
    stack.apply()
    with xen.session(fresh_xenserver) as api:
        [(_, old_vdi, _)] = config_drives(api, xen.vm_named(api, "ci-live"))
    changed = cloud_init(USER + "runcmd: [reboot]\n")
    stack.vm("ci-live", cpus=1, memory="512MiB", disks=[{"size": 1}], cloud_init=changed)
    assert [path for path, _, _ in stack.changes()["ci-live"][1]] == ["cloud_init"]
    stack.apply()
    with xen.session(fresh_xenserver) as api:
        vm = xen.vm_named(api, "ci-live")
        assert api.VM.get_power_state(vm) == "Running"
        [(_, vdi, record)] = config_drives(api, vm)
        assert record["currently_attached"] and vdi != old_vdi
        assert old_vdi not in api.VDI.get_all()
    assert guest_sees(fresh_xenserver, vdi)["user-data"].decode().endswith("runcmd: [reboot]\n")
    assert stack.changes() == {}


def test_deleting_the_vm_destroys_its_config_drive(stack, fresh_xenserver):
    stack.vm("ci-gone", cpus=1, memory="512MiB", power="off", disks=[{"size": 1}], cloud_init=cloud_init())
    stack.apply()
    with xen.session(fresh_xenserver) as api:
        [(_, vdi, _)] = config_drives(api, xen.vm_named(api, "ci-gone"))
    stack.apply(destroy=True)
    with xen.session(fresh_xenserver) as api:
        assert vdi not in api.VDI.get_all()
