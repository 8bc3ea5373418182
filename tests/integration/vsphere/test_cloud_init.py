"""Cloud-init on vSphere: guestinfo keys in extraConfig, read back from the simulator as the guest's VMware Tools
would read them, and drift by digest."""

from __future__ import annotations

import base64

import yaml

from tests.integration.vsphere.helpers import EngineStack, find_vm, reconfigure
from virtplane.plan import Action
from virtplane.providers.vsphere import guestinfo
from virtplane.specs import CloudInitSpec


def cloud_init(user: str = "#cloud-config\nhostname: web\n", network: str | None = None) -> dict[str, str | None]:
    return {"user_data": user, "meta_data": "instance-id: web-1\nlocal-hostname: web\n", "network_config": network}


def guest_keys(vm) -> dict[str, str]:
    return {option.key: option.value for option in vm.config.extraConfig if option.key.startswith("guestinfo.")}


def decoded(value: str) -> str:
    return base64.b64decode(value).decode()


def test_a_new_vm_carries_its_cloud_init_in_guestinfo_keys_the_vmware_datasource_reads(provider, raw_si, name):
    network = "version: 2\nethernets:\n  ens192: {dhcp4: true}\n"
    stack = EngineStack(provider, name).vm(name, cpus=1, memory=256, cloud_init=cloud_init(network=network))
    stack.apply()
    keys = guest_keys(find_vm(raw_si, name))
    assert decoded(keys["guestinfo.userdata"]) == "#cloud-config\nhostname: web\n"
    assert keys["guestinfo.userdata.encoding"] == keys["guestinfo.metadata.encoding"] == "base64"
    meta = yaml.safe_load(decoded(keys["guestinfo.metadata"]))
    assert meta["instance-id"] == "web-1" and meta["network.encoding"] == "base64"
    assert yaml.safe_load(decoded(meta["network"])) == {"version": 2, "ethernets": {"ens192": {"dhcp4": True}}}
    assert stack.item(name).action is Action.NOOP


def test_a_changed_template_is_an_in_place_update_of_the_guestinfo_keys(provider, raw_si, name):
    stack = EngineStack(provider, name).vm(name, cpus=1, memory=256, power="on", cloud_init=cloud_init())
    stack.apply()
    changed = cloud_init("#cloud-config\nhostname: web\npackages: [nginx]\n")
    stack.vm(name, cpus=1, memory=256, power="on", cloud_init=changed)
    item = stack.item(name)
    [planned] = item.changes
    assert item.action is Action.UPDATE and planned.change.path == "cloud_init"
    assert planned.reinitializes_guest and planned.change.new == CloudInitSpec.model_validate(changed).digest
    assert not item.needs_power_off  # guestinfo changes while the VM runs
    stack.apply()
    assert decoded(guest_keys(find_vm(raw_si, name))["guestinfo.userdata"]).endswith("packages: [nginx]\n")
    assert stack.item(name).action is Action.NOOP


def test_guestinfo_changed_behind_our_back_is_drift_by_digest(provider, raw_si, name):
    stack = EngineStack(provider, name).vm(name, cpus=1, memory=256, cloud_init=cloud_init())
    stack.apply()
    vm = find_vm(raw_si, name)
    forged = [o for o in guestinfo.options(CloudInitSpec.model_validate(cloud_init("#cloud-config\nhostname: x\n")))
              if o.key == "guestinfo.userdata"]
    reconfigure(vm, extraConfig=forged)
    [planned] = stack.item(name).changes
    assert planned.change.path == "cloud_init" and planned.change.old != planned.change.new
    stack.apply()
    assert stack.item(name).action is Action.NOOP


def test_a_vm_without_cloud_init_declared_is_not_compared_on_it(provider, name):
    stack = EngineStack(provider, name).vm(name, cpus=1, memory=256, cloud_init=cloud_init())
    stack.apply()
    stack.vm(name, cpus=1, memory=256)
    assert stack.item(name).action is Action.NOOP
