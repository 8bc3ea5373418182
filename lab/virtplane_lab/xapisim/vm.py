"""VM messages: clone, copy, provision, the power operations, destroy, and the settings XAPI changes only on a
halted VM. Sources: XenAPI reference, class VM (https://xapi-project.github.io/xen-api/classes/vm.html) and
"VM Lifecycle" (topics/vm-lifecycle); the checks follow ocaml/xapi/xapi_vm_lifecycle.ml, xapi_vm.ml,
xapi_vm_clone.ml, xapi_templates.ml and vm_platform.ml of xapi-project/xen-api.

- Each operation is allowed in the power states XAPI lists for it (``allowed_power_states``): start, start_on,
  provision and the VCPU/memory setters need Halted; clean_shutdown Running; hard_shutdown Paused, Suspended or
  Running; clone and copy Halted; destroy Halted or Suspended. Otherwise VM_BAD_POWER_STATE [vm, expected,
  actual], both in lower case. On a template only clone, copy, provision, the memory and VCPU setters and (not a
  default template) destroy are allowed: VM_IS_TEMPLATE [vm, operation]. The control domain is refused:
  OPERATION_NOT_ALLOWED.
- clone/copy: a new VM with the source's settings under the new name (a template's clone is a template); its
  ``other_config`` loses ``default_template`` and gains ``mac_seed`` and, from a template, ``base_template_name``;
  disks are cloned (same SR) or copied (to the given SR), VIFs get new MACs, vGPUs are copied.
- provision: sets ``is_a_template`` false and makes the disks the template's ``other_config:disks`` describes
  (``<provision><disk device= size= sr= bootable= type=/></provision>``; ``sr`` is an SR uuid: an unknown one is
  UUID_INVALID [sr, uuid]), then removes that key.
- start / start_on: VCPUs_at_startup <= VCPUs_max; ``platform:cores-per-socket`` divides VCPUs_max
  (VCPU_MAX_NOT_CORES_PER_SOCKET_MULTIPLE [vcpus, cps]); ``platform:nested-virt`` is true or false
  (INVALID_VALUE); firmware and device model agree. A host is chosen (the affinity first, else every enabled host):
  one with the VM's memory free (HOST_NOT_ENOUGH_FREE_MEMORY [needed, available]), a PGPU of each vGPU's group
  with the type enabled and capacity left (VGPU_TYPE_NOT_ENABLED [type, enabled types...],
  PGPU_INSUFFICIENT_CAPACITY_FOR_VGPU [pgpu, type]; no PGPU of the group on the host: VM_REQUIRES_GPU [vm, group])
  and a free virtual function for each VIF on an SR-IOV network (NETWORK_SRIOV_INSUFFICIENT_CAPACITY [network]).
  Without a host that fits, start reports the affinity host's refusal, else the vGPU's, else NO_HOSTS_AVAILABLE.
- The guest is simulated: it runs at once and obeys clean_shutdown (a ``slow`` fault on Async.VM.clean_shutdown
  stands for a guest that takes its time).
"""

from __future__ import annotations

import itertools
import re
import uuid
import xml.etree.ElementTree as ET
from typing import Any

from .api import Context, message
from .db import Db
from .errors import XapiError
from .gpu import place_vgpus, release_vgpus
from .network import release_vfs, take_vfs
from .pool import free_memory
from .schema import NULL
from .storage import clone_vdi, new_vdi

_ALLOWED = {
    "start": ["Halted"], "start_on": ["Halted"], "provision": ["Halted"], "changing_VCPUs": ["Halted"],
    "make_into_template": ["Halted"],
    "changing_memory_limits": ["Halted"], "clean_shutdown": ["Running"],
    "hard_shutdown": ["Paused", "Suspended", "Running"], "clone": ["Halted"], "copy": ["Halted"],
    "destroy": ["Halted", "Suspended"],
}
_ON_TEMPLATES = {"changing_memory_limits", "changing_VCPUs", "clone", "copy", "provision"}
_domids = itertools.count(1)


def check_operation(db: Db, vm: str, op: str) -> dict[str, Any]:
    record = db.get("VM", vm)
    if record["is_control_domain"]:
        raise XapiError("OPERATION_NOT_ALLOWED", f"{op} is not allowed on a control domain")
    if record["is_a_template"] and op not in _ON_TEMPLATES and not (
            op == "destroy" and not record["is_default_template"]):
        raise XapiError("VM_IS_TEMPLATE", vm, op)
    allowed = _ALLOWED[op]
    if record["power_state"] not in allowed:
        raise XapiError("VM_BAD_POWER_STATE", vm, ", ".join(s.lower() for s in allowed),
                        record["power_state"].lower())
    return record


# ---- settings that need a halted VM ----------------------------------------------------------------------


@message("VM.set_memory_limits", ("r:VM", "self"), ("i", "static_min"), ("i", "static_max"), ("i", "dynamic_min"),
         ("i", "dynamic_max"))
def set_memory_limits(context: Context, self: str, static_min: int, static_max: int, dynamic_min: int,
                      dynamic_max: int) -> str:
    db = context.pool.db
    check_operation(db, self, "changing_memory_limits")
    if not static_min <= dynamic_min <= dynamic_max <= static_max:
        raise XapiError("MEMORY_CONSTRAINT_VIOLATION_ORDER")
    db.set("VM", self, memory_static_min=str(static_min), memory_static_max=str(static_max),
           memory_dynamic_min=str(dynamic_min), memory_dynamic_max=str(dynamic_max))
    return ""


@message("VM.set_VCPUs_max", ("r:VM", "self"), ("i", "value"))
def set_vcpus_max(context: Context, self: str, value: int) -> str:
    db = context.pool.db
    record = check_operation(db, self, "changing_VCPUs")
    if value < 1 or value < int(record["VCPUs_at_startup"]):
        raise XapiError("INVALID_VALUE", "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max", value)
    db.set("VM", self, VCPUs_max=str(value))
    return ""


@message("VM.set_VCPUs_at_startup", ("r:VM", "self"), ("i", "value"))
def set_vcpus_at_startup(context: Context, self: str, value: int) -> str:
    db = context.pool.db
    record = check_operation(db, self, "changing_VCPUs")
    if value < 1 or value > int(record["VCPUs_max"]):
        raise XapiError("INVALID_VALUE", "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max", value)
    db.set("VM", self, VCPUs_at_startup=str(value))
    return ""


@message("VM.set_is_a_template", ("r:VM", "self"), ("b", "value"))
def set_is_a_template(context: Context, self: str, value: bool) -> str:
    """Making a VM a template is the ``make_into_template`` operation: Halted only (a template back into a VM is
    allowed, as ``provision`` does)."""
    db = context.pool.db
    record = db.get("VM", self)
    if value and not record["is_a_template"]:
        check_operation(db, self, "make_into_template")
    db.set("VM", self, is_a_template=value)
    return ""


@message("VM.set_HVM_boot_policy", ("r:VM", "self"), ("s", "value"))
def set_hvm_boot_policy(context: Context, self: str, value: str) -> str:
    context.pool.db.set("VM", self, HVM_boot_policy=value)
    return ""


# ---- clone, copy, provision --------------------------------------------------------------------------------


@message("VM.clone", ("r:VM", "vm"), ("s", "new_name"))
def clone(context: Context, vm: str, new_name: str) -> str:
    return _copy_vm(context.pool.db, vm, new_name, None, "clone")


@message("VM.copy", ("r:VM", "vm"), ("s", "new_name"), ("r?:SR", "sr"))
def copy(context: Context, vm: str, new_name: str, sr: str) -> str:
    return _copy_vm(context.pool.db, vm, new_name, None if sr == NULL else sr, "copy")


def _copy_vm(db: Db, vm: str, new_name: str, sr: str | None, op: str) -> str:
    source = check_operation(db, vm, op)
    other_config = {k: v for k, v in source["other_config"].items() if k not in ("default_template",)}
    other_config["mac_seed"] = str(uuid.uuid4())
    if source["is_a_template"] and "base_template_name" not in other_config:
        other_config["base_template_name"] = source["name_label"]
    copied = {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
              for k, v in source.items() if k != "uuid"}
    copied.update(name_label=new_name, other_config=other_config, is_default_template=False, power_state="Halted",
                  resident_on=NULL, domid="-1")
    new = db.add("VM", copied)
    for vbd in db.where("VBD", VM=vm):
        record = db.get("VBD", vbd)
        vdi = record["VDI"]
        if vdi != NULL and not record["empty"]:
            vdi = clone_vdi(db, vdi, sr)
        db.add("VBD", {**record, "VM": new, "VDI": vdi, "currently_attached": False, "device": ""})
    for vif in db.where("VIF", VM=vm):
        record = db.get("VIF", vif)
        db.add("VIF", {**record, "VM": new, "MAC": random_mac(), "currently_attached": False})
    for vgpu in db.where("VGPU", VM=vm):
        record = db.get("VGPU", vgpu)
        db.add("VGPU", {**record, "VM": new, "currently_attached": False, "resident_on": NULL,
                        "scheduled_to_be_resident_on": NULL})
    return new


def random_mac() -> str:
    octets = [0x02] + [uuid.uuid4().bytes[i] for i in range(5)]  # a locally administered unicast address
    return ":".join(f"{octet:02x}" for octet in octets)


@message("VM.provision", ("r:VM", "vm"))
def provision(context: Context, vm: str) -> str:
    db = context.pool.db
    record = check_operation(db, vm, "provision")
    db.set("VM", vm, is_a_template=False)
    spec = record["other_config"].get("disks")
    if not spec:
        return ""
    made: list[tuple[str, str]] = []
    try:
        for disk in ET.fromstring(spec).findall("disk"):
            sr = db.one("SR", uuid=disk.get("sr", ""))
            if sr is None:
                raise XapiError("UUID_INVALID", "sr", disk.get("sr", ""))
            vdi = new_vdi(db, sr, int(disk.get("size", "0")), disk.get("type", "system"), "")
            vbd = db.add("VBD", {"VM": vm, "VDI": vdi, "userdevice": disk.get("device", "0"),
                                 "bootable": disk.get("bootable") == "true", "mode": "RW", "type": "Disk",
                                 "unpluggable": disk.get("type", "system") != "system", "empty": False,
                                 "other_config": {"owner": ""}, "qos_algorithm_type": "", "qos_algorithm_params": {}})
            db.set("VDI", vdi, name_label=disk.get("device", "0"))
            made.append((vbd, vdi))
    except XapiError:
        for vbd, vdi in made:  # as XAPI does: undo the disks this provision made
            db.delete("VBD", vbd)
            db.delete("VDI", vdi)
        raise
    other_config = {k: v for k, v in db.get("VM", vm)["other_config"].items() if k not in ("disks", "postinstall")}
    db.set("VM", vm, other_config=other_config)
    return ""


# ---- power ---------------------------------------------------------------------------------------------


@message("VM.start", ("r:VM", "vm"), ("b", "start_paused"), ("b", "force"))
def start(context: Context, vm: str, start_paused: bool, force: bool) -> str:
    db = context.pool.db
    record = check_operation(db, vm, "start")
    _check_boot_settings(vm, record)
    affinity = record["affinity"]
    hosts = ([affinity] if affinity != NULL and db.exists("host", affinity) else []) + [
        h for h in db.refs("host") if h != affinity]
    refusals: list[XapiError] = []
    for host in hosts:
        try:
            _boot_on(db, vm, record, host)
            return ""
        except XapiError as refusal:
            refusals.append(refusal)
    if affinity != NULL and refusals:
        raise refusals[0]
    vgpu_refusal = next((r for r in refusals if "GPU" in r.code), None)
    raise vgpu_refusal or XapiError("NO_HOSTS_AVAILABLE")


@message("VM.start_on", ("r:VM", "vm"), ("r:host", "host"), ("b", "start_paused"), ("b", "force"))
def start_on(context: Context, vm: str, host: str, start_paused: bool, force: bool) -> str:
    db = context.pool.db
    record = check_operation(db, vm, "start_on")
    _check_boot_settings(vm, record)
    _boot_on(db, vm, record, host)
    return ""


_NESTED_VALUES = {"true", "false", "1", "0"}


def _check_boot_settings(vm: str, record: dict[str, Any]) -> None:
    vcpus, at_startup = int(record["VCPUs_max"]), int(record["VCPUs_at_startup"])
    if vcpus < 1 or at_startup < 1 or at_startup > vcpus:
        raise XapiError("INVALID_VALUE", "VCPUs_at_startup", at_startup)
    platform = record["platform"]
    cps = platform.get("cores-per-socket")
    if cps is not None:
        if not re.fullmatch(r"\d+", cps):
            raise XapiError("INVALID_VALUE", "platform:cores-per-socket", cps)
        if int(cps) < 1 or vcpus % int(cps):
            raise XapiError("VCPU_MAX_NOT_CORES_PER_SOCKET_MULTIPLE", vcpus, cps)
    nested = platform.get("nested-virt")
    if nested is not None and nested.lower() not in _NESTED_VALUES:
        raise XapiError("INVALID_VALUE", "platform:nested-virt", nested)
    firmware = record["HVM_boot_params"].get("firmware", "bios")
    model = platform.get("device-model")
    if model == "qemu-trad" and firmware == "uefi":
        raise XapiError("INVALID_VALUE", "platform:device-model", "UEFI boot is not supported with qemu-trad")
    if model == "qemu-upstream-uefi" and firmware != "uefi":
        raise XapiError("INVALID_VALUE", "platform:device-model", "BIOS boot is not supported with qemu-upstream-uefi")
    if firmware not in ("bios", "uefi"):
        raise XapiError("INVALID_VALUE", "HVM_boot_params:firmware", firmware)


def _boot_on(db: Db, vm: str, record: dict[str, Any], host: str) -> None:
    host_record = db.get("host", host)
    if not host_record["enabled"]:
        raise XapiError("HOST_DISABLED", host)
    if not any(cap.startswith("hvm-") for cap in host_record["capabilities"]):
        raise XapiError("VM_HVM_REQUIRED", vm)
    needed, available = int(record["memory_static_max"]), free_memory(db, host)
    if needed > available:
        raise XapiError("HOST_NOT_ENOUGH_FREE_MEMORY", needed, available)
    place_vgpus(db, vm, host)
    try:
        take_vfs(db, vm, host)
    except XapiError:
        release_vgpus(db, vm)
        raise
    db.set("VM", vm, power_state="Running", resident_on=host, domid=str(next(_domids)))
    for vbd in db.where("VBD", VM=vm):
        db.set("VBD", vbd, currently_attached=not db.get("VBD", vbd)["empty"])
    for vif in db.where("VIF", VM=vm):
        db.set("VIF", vif, currently_attached=True)


@message("VM.clean_shutdown", ("r:VM", "vm"))
def clean_shutdown(context: Context, vm: str) -> str:
    db = context.pool.db
    check_operation(db, vm, "clean_shutdown")
    halt(db, vm)
    return ""


@message("VM.hard_shutdown", ("r:VM", "vm"))
def hard_shutdown(context: Context, vm: str) -> str:
    db = context.pool.db
    check_operation(db, vm, "hard_shutdown")
    halt(db, vm)
    return ""


def halt(db: Db, vm: str) -> None:
    release_vgpus(db, vm)
    release_vfs(db, vm)
    db.set("VM", vm, power_state="Halted", resident_on=NULL, domid="-1")
    for vbd in db.where("VBD", VM=vm):
        db.set("VBD", vbd, currently_attached=False)
    for vif in db.where("VIF", VM=vm):
        db.set("VIF", vif, currently_attached=False)


@message("VM.destroy", ("r:VM", "self"))
def destroy(context: Context, self: str) -> str:
    """The VM and its VBDs, VIFs and vGPUs go; its VDIs stay (the reference: "the VM is completely removed from
    the system"; disks are separate objects, removed with VDI.destroy)."""
    db = context.pool.db
    check_operation(db, self, "destroy")
    for cls in ("VBD", "VIF", "VGPU"):
        for ref in db.where(cls, VM=self):
            db.delete(cls, ref)
    db.delete("VM", self)
    return ""
