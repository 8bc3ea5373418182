"""GPUs: physical GPUs (PGPU) in GPU groups, the vGPU types they support and enable, and the vGPUs of VMs.
XenAPI reference, classes PGPU, GPU_group, VGPU_type and VGPU; checks from ocaml/xapi/xapi_vgpu.ml,
xapi_pgpu_helpers.ml and xapi_gpu_group.ml of xapi-project/xen-api.

- VGPU.create(VM, GPU_group, device, other_config, type): the VM halted (VM_BAD_POWER_STATE); ``type`` a VGPU_type
  (INVALID_VALUE [type, ref] otherwise); a second vGPU only of a type in the first one's ``compatible_types_in_vm``
  (VGPU_TYPE_NOT_COMPATIBLE [type]); ``device`` "0" picks the first free number 0..20, another number must be free
  (DEVICE_ALREADY_EXISTS [device]) and in range (INVALID_DEVICE [device]). The type is not checked against the
  group here: that happens when the VM starts.
- VGPU.destroy: refused while its VM runs (OPERATION_NOT_ALLOWED ["vGPU currently attached to a running VM"]).
- Capacity of a PGPU for a type: the type must be supported (VGPU_TYPE_NOT_SUPPORTED [type, supported...]) and
  enabled (VGPU_TYPE_NOT_ENABLED [type, enabled...]) on it; the vGPUs already there must all be of the same type
  (time-sliced NVIDIA GPUs run one size at a time: VGPU_TYPE_NOT_COMPATIBLE_WITH_RUNNING_TYPE [pgpu, type,
  running types]); what is left of ``supported_VGPU_max_capacities`` (a passthrough type: 1 while nothing else is
  there), else PGPU_INSUFFICIENT_CAPACITY_FOR_VGPU [pgpu, type]. PGPU.get_remaining_capacity and
  GPU_group.get_remaining_capacity (the sum over the group's PGPUs) answer 0 where the check fails.
- On VM start each vGPU goes to a PGPU of its group on the chosen host (VM_REQUIRES_GPU [vm, group] when the host
  has none); when no PGPU can take it, the most telling refusal is raised, scored as XAPI scores them
  (insufficient capacity, then not compatible, then not enabled, then not supported).
"""

from __future__ import annotations

from typing import Any

from .api import Context, message
from .db import Db
from .errors import XapiError
from .schema import NULL

MAX_DEVICE = 20
_SCORES = {"PGPU_INSUFFICIENT_CAPACITY_FOR_VGPU": 10, "VGPU_TYPE_NOT_COMPATIBLE_WITH_RUNNING_TYPE": 8,
           "VGPU_TYPE_NOT_ENABLED": 6, "VGPU_TYPE_NOT_SUPPORTED": 4}


@message("VGPU.create", ("r:VM", "VM"), ("r:GPU_group", "GPU_group"), ("s", "device"), ("M", "other_config"),
         ("s", "type"))
def vgpu_create(context: Context, VM: str, GPU_group: str, device: str, other_config: dict[str, str],
                type: str) -> str:
    db = context.pool.db
    record = db.get("VM", VM)
    if record["is_control_domain"]:
        raise XapiError("OPERATION_NOT_ALLOWED", "a control domain has no vGPUs")
    if not record["is_a_snapshot"] and record["power_state"] != "Halted":
        raise XapiError("VM_BAD_POWER_STATE", VM, "halted", record["power_state"].lower())
    if not db.exists("VGPU_type", type):
        raise XapiError("INVALID_VALUE", "type", type)
    existing = db.where("VGPU", VM=VM)
    for other in existing:
        if type not in db.get("VGPU_type", db.get("VGPU", other)["type"])["compatible_types_in_vm"]:
            raise XapiError("VGPU_TYPE_NOT_COMPATIBLE", type)
    taken = {int(db.get("VGPU", v)["device"]) for v in existing}
    if not device.isdigit():
        raise XapiError("INVALID_DEVICE", device)
    number = int(device)
    if number == 0:
        free = [n for n in range(MAX_DEVICE + 1) if n not in taken]
        if not free:
            raise XapiError("VM_PCI_BUS_FULL", VM)
        number = free[0]
    elif number in taken:
        raise XapiError("DEVICE_ALREADY_EXISTS", device)
    elif number > MAX_DEVICE:
        raise XapiError("INVALID_DEVICE", device)
    return db.add("VGPU", {"VM": VM, "GPU_group": GPU_group, "device": str(number), "currently_attached": False,
                           "other_config": other_config, "type": type})


@message("VGPU.destroy", ("r:VGPU", "self"))
def vgpu_destroy(context: Context, self: str) -> str:
    db = context.pool.db
    vm = db.get("VM", db.get("VGPU", self)["VM"])
    if vm["power_state"] == "Running":
        raise XapiError("OPERATION_NOT_ALLOWED", "vGPU currently attached to a running VM")
    db.delete("VGPU", self)
    return ""


def _allocated(db: Db, pgpu: str) -> list[str]:
    return [v for v, r in db.objects["VGPU"].items()
            if r["resident_on"] == pgpu or r["scheduled_to_be_resident_on"] == pgpu]


def capacity(db: Db, pgpu: str, vgpu_type: str) -> int:
    """Free instances of ``vgpu_type`` on ``pgpu``; raises the refusal when there are none."""
    record = db.get("PGPU", pgpu)
    if vgpu_type not in record["supported_VGPU_types"]:
        raise XapiError("VGPU_TYPE_NOT_SUPPORTED", vgpu_type, *record["supported_VGPU_types"])
    if vgpu_type not in record["enabled_VGPU_types"]:
        raise XapiError("VGPU_TYPE_NOT_ENABLED", vgpu_type, *record["enabled_VGPU_types"])
    allocated = _allocated(db, pgpu)
    running = sorted({db.get("VGPU", v)["type"] for v in allocated})
    if any(t != vgpu_type for t in running):
        raise XapiError("VGPU_TYPE_NOT_COMPATIBLE_WITH_RUNNING_TYPE", pgpu, vgpu_type, ";".join(running))
    left = int(record["supported_VGPU_max_capacities"].get(vgpu_type, "0")) - len(allocated)
    if left <= 0:
        raise XapiError("PGPU_INSUFFICIENT_CAPACITY_FOR_VGPU", pgpu, vgpu_type)
    return left


def _capacity_or_zero(db: Db, pgpu: str, vgpu_type: str) -> int:
    try:
        return capacity(db, pgpu, vgpu_type)
    except XapiError:
        return 0


@message("PGPU.get_remaining_capacity", ("r:PGPU", "self"), ("r:VGPU_type", "vgpu_type"))
def pgpu_remaining(context: Context, self: str, vgpu_type: str) -> str:
    return str(_capacity_or_zero(context.pool.db, self, vgpu_type))


@message("GPU_group.get_remaining_capacity", ("r:GPU_group", "self"), ("r:VGPU_type", "vgpu_type"))
def group_remaining(context: Context, self: str, vgpu_type: str) -> str:
    db = context.pool.db
    return str(sum(_capacity_or_zero(db, p, vgpu_type) for p in db.where("PGPU", GPU_group=self)))


def place_vgpus(db: Db, vm: str, host: str) -> None:
    """Give each vGPU of ``vm`` a PGPU on ``host``, or raise (and give back what was given)."""
    placed: list[str] = []
    try:
        for vgpu in db.where("VGPU", VM=vm):
            record = db.get("VGPU", vgpu)
            pgpus = db.where("PGPU", GPU_group=record["GPU_group"], host=host)
            if not pgpus:
                raise XapiError("VM_REQUIRES_GPU", vm, record["GPU_group"])
            refusals: list[XapiError] = []
            order = _order(db, pgpus, record["GPU_group"], record["type"])
            for pgpu in order:
                try:
                    capacity(db, pgpu, record["type"])
                except XapiError as refusal:
                    refusals.append(refusal)
                    continue
                db.set("VGPU", vgpu, resident_on=pgpu, currently_attached=True)
                placed.append(vgpu)
                break
            else:
                raise max(refusals, key=lambda r: _SCORES.get(r.code, 0))
    except XapiError:
        for vgpu in placed:
            db.set("VGPU", vgpu, resident_on=NULL, currently_attached=False)
        raise


def _order(db: Db, pgpus: list[str], group: str, vgpu_type: str) -> list[str]:
    """breadth_first spreads vGPUs (the PGPU with most room first), depth_first fills one PGPU first."""
    breadth = db.get("GPU_group", group)["allocation_algorithm"] == "breadth_first"
    scored: list[tuple[int, Any]] = [(_capacity_or_zero(db, p, vgpu_type), p) for p in pgpus]
    scored.sort(key=lambda item: -item[0] if breadth else item[0] or 10**9)
    return [p for _, p in scored]


def release_vgpus(db: Db, vm: str) -> None:
    for vgpu in db.where("VGPU", VM=vm):
        db.set("VGPU", vgpu, resident_on=NULL, scheduled_to_be_resident_on=NULL, currently_attached=False)
