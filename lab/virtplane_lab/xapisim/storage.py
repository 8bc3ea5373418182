"""Disks: VDIs on SRs, plugged into VMs through VBDs. XenAPI reference, classes VDI, VBD and SR; checks from
ocaml/xapi/xapi_vdi.ml and xapi_vbd.ml of xapi-project/xen-api.

- VDI.create(record): on an SR of the pool, ``virtual_size`` in bytes; the SR's ``virtual_allocation`` follows.
- VDI.destroy: refused while a VBD holding it is attached (VDI_IN_USE [vdi, "destroy"]); the VBDs that refer to it
  go with it.
- VDI.resize(vdi, size): refused while attached (VDI_IN_USE [vdi, "resize"]; VDI.resize_online is SR-dependent
  and not served); shrinking is refused (INVALID_VALUE [size, value]: the simulator's own code for the SR's
  refusal).
- VBD.create(record): ``userdevice`` is a number or ``autodetect`` (the next free one); a number another VBD of the
  VM holds is DEVICE_ALREADY_EXISTS [userdevice]. VBD.plug / unplug (hot-plug) need the VM running
  (VM_BAD_POWER_STATE); plugging an attached VBD is DEVICE_ALREADY_ATTACHED, unplugging a detached one
  DEVICE_ALREADY_DETACHED [vbd]. VBD.destroy is refused while attached (OPERATION_NOT_ALLOWED).
"""

from __future__ import annotations

import re
from typing import Any

from .api import Context, message
from .db import Db
from .errors import XapiError
from .schema import NULL


def new_vdi(db: Db, sr: str, size: int, vdi_type: str, name: str, other_config: dict[str, str] | None = None,
            sharable: bool = False, read_only: bool = False) -> str:
    vdi = db.add("VDI", {"name_label": name, "SR": sr, "virtual_size": str(size), "type": vdi_type,
                         "sharable": sharable, "read_only": read_only, "other_config": dict(other_config or {}),
                         "managed": True, "missing": False, "physical_utilisation": "0"})
    db.set("VDI", vdi, location=db.get("VDI", vdi)["uuid"])
    _account(db, sr)
    return vdi


def clone_vdi(db: Db, vdi: str, sr: str | None) -> str:
    """A copy of ``vdi`` (VDI.clone on its own SR, or VDI.copy to ``sr``)."""
    record = db.get("VDI", vdi)
    return new_vdi(db, sr or record["SR"], int(record["virtual_size"]), record["type"], record["name_label"],
                   {k: v for k, v in record["other_config"].items()}, record["sharable"], record["read_only"])


def _account(db: Db, sr: str) -> None:
    total = sum(int(db.get("VDI", v)["virtual_size"]) for v in db.where("VDI", SR=sr))
    db.set("SR", sr, virtual_allocation=str(total))


def _attached(db: Db, vdi: str) -> bool:
    return any(db.get("VBD", vbd)["currently_attached"] for vbd in db.where("VBD", VDI=vdi))


@message("VDI.create", ("rec:VDI", "args"))
def vdi_create(context: Context, args: dict[str, Any]) -> str:
    db = context.pool.db
    size = int(args["virtual_size"])
    if size < 0:
        raise XapiError("INVALID_VALUE", "virtual_size", size)
    vdi = new_vdi(db, args["SR"], size, args["type"], args.get("name_label", ""), args.get("other_config"),
                  args.get("sharable", False), args.get("read_only", False))
    db.set("VDI", vdi, name_description=args.get("name_description", ""), tags=list(args.get("tags", [])),
           sm_config=dict(args.get("sm_config", {})), xenstore_data=dict(args.get("xenstore_data", {})))
    return vdi


@message("VDI.destroy", ("r:VDI", "self"))
def vdi_destroy(context: Context, self: str) -> str:
    db = context.pool.db
    if _attached(db, self):
        raise XapiError("VDI_IN_USE", self, "destroy")
    sr = db.get("VDI", self)["SR"]
    for vbd in db.where("VBD", VDI=self):
        db.delete("VBD", vbd)
    db.delete("VDI", self)
    context.pool.contents.pop(self, None)
    _account(db, sr)
    return ""


@message("VDI.resize", ("r:VDI", "vdi"), ("i", "size"))
def vdi_resize(context: Context, vdi: str, size: int) -> str:
    db = context.pool.db
    if _attached(db, vdi):
        raise XapiError("VDI_IN_USE", vdi, "resize")
    if size < int(db.get("VDI", vdi)["virtual_size"]):
        raise XapiError("INVALID_VALUE", "size", size)
    db.set("VDI", vdi, virtual_size=str(size))
    _account(db, db.get("VDI", vdi)["SR"])
    return ""


@message("VBD.create", ("rec:VBD", "args"))
def vbd_create(context: Context, args: dict[str, Any]) -> str:
    db = context.pool.db
    vm = args["VM"]
    db.get("VM", vm)
    if args["VDI"] == NULL and not args["empty"]:
        raise XapiError("INVALID_VALUE", "VDI", NULL)
    taken = {db.get("VBD", vbd)["userdevice"] for vbd in db.where("VBD", VM=vm)}
    userdevice = args["userdevice"]
    if userdevice == "autodetect":
        userdevice = next(str(n) for n in range(64) if str(n) not in taken)
    elif not re.fullmatch(r"\d+", userdevice):
        raise XapiError("INVALID_DEVICE", userdevice)
    elif userdevice in taken:
        raise XapiError("DEVICE_ALREADY_EXISTS", userdevice)
    return db.add("VBD", {**args, "userdevice": userdevice, "currently_attached": False})


@message("VBD.destroy", ("r:VBD", "self"))
def vbd_destroy(context: Context, self: str) -> str:
    db = context.pool.db
    record = db.get("VBD", self)
    if record["currently_attached"]:
        raise XapiError("OPERATION_NOT_ALLOWED", f"VBD '{record['uuid']}' still attached to a running VM")
    db.delete("VBD", self)
    return ""


@message("VBD.plug", ("r:VBD", "self"))
def vbd_plug(context: Context, self: str) -> str:
    return plug(context.pool.db, "VBD", self, True)


@message("VBD.unplug", ("r:VBD", "self"))
def vbd_unplug(context: Context, self: str) -> str:
    return plug(context.pool.db, "VBD", self, False)


def plug(db: Db, cls: str, ref: str, attach: bool) -> str:
    """Hot-plug or unplug a VBD or VIF of a running VM."""
    record = db.get(cls, ref)
    vm = db.get("VM", record["VM"])
    if vm["power_state"] != "Running":
        raise XapiError("VM_BAD_POWER_STATE", record["VM"], "running", vm["power_state"].lower())
    if attach and record["currently_attached"]:
        raise XapiError("DEVICE_ALREADY_ATTACHED", ref)
    if not attach and not record["currently_attached"]:
        raise XapiError("DEVICE_ALREADY_DETACHED", ref)
    db.set(cls, ref, currently_attached=attach)
    return ""
