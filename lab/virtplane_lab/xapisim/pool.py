"""The simulated pool: its objects, its sessions and login, and the host-level messages.

Login (``session.login_with_password(uname, pwd, version, originator)``): a wrong user or password is
SESSION_AUTHENTICATION_FAILED [uname, "Authentication failure"] (ocaml/xapi/xapi_session.ml: local PAM login).
``session.logout`` ends the session; a call with an unknown or ended session is SESSION_INVALID [handle].
``host.compute_free_memory``: the host's memory minus its own overhead and what its running VMs hold (their
static maximum), as XAPI computes it for placement (XenAPI reference, class host).
"""

from __future__ import annotations

import threading
from typing import Any
from xmlrpc.client import DateTime

from .api import Context, message
from .db import Db
from .errors import XapiError
from .faults import Faults

AUTH_FAILURE = "Authentication failure"  # PAM's text, which XAPI passes on


class XapiPool:
    def __init__(self, user: str, password: str) -> None:
        self.user = user
        self.password = password
        self.db = Db()
        self.contents: dict[str, bytes] = {}  # VDI ref -> its bytes, as written through /import_raw_vdi (raw_vdi.py)
        self.faults = Faults()
        self.lock = threading.Lock()
        self.master_address = "127.0.0.1"

    def reset(self, seed: Any) -> None:
        """Replace every object with a freshly seeded pool (sessions are lost, as after a pool restart)."""
        db = Db()
        with self.db.lock:
            self.db = db
            self.contents = {}
            seed(self)

    def check_session(self, handle: Any) -> str:
        if not isinstance(handle, str) or not self.db.exists("session", handle):
            raise XapiError("SESSION_INVALID", handle)
        self.db.get("session", handle)["last_active"] = DateTime()
        return handle

    def master(self) -> str:
        pool = self.db.refs("pool")[0]
        return str(self.db.get("pool", pool)["master"])


@message("session.login_with_password", ("s", "uname"), ("s", "pwd"), ("s", "version"), ("s", "originator"),
         session=False)
def login_with_password(context: Context, uname: str, pwd: str, version: str, originator: str) -> str:
    pool = context.pool
    if uname != pool.user or pwd != pool.password:
        raise XapiError("SESSION_AUTHENTICATION_FAILED", uname, AUTH_FAILURE)
    with pool.db.lock:
        return pool.db.add("session", {"this_host": pool.master(), "last_active": DateTime(), "pool": False,
                                       "originator": originator})


@message("session.logout")
def logout(context: Context) -> str:
    with context.pool.db.lock:
        if context.session and context.pool.db.exists("session", context.session):
            context.pool.db.delete("session", context.session)
    return ""


@message("session.get_this_host", ("r:session", "self"))
def get_this_host(context: Context, self: str) -> str:
    return str(context.pool.db.get("session", self)["this_host"])


@message("host.compute_free_memory", ("r:host", "host"))
def compute_free_memory(context: Context, host: str) -> str:
    db = context.pool.db
    with db.lock:
        return str(free_memory(db, host))


def free_memory(db: Db, host: str) -> int:
    record = db.get("host", host)
    total = int(db.get("host_metrics", record["metrics"])["memory_total"])
    used = int(record["memory_overhead"])
    for vm in db.where("VM", resident_on=host):
        used += int(db.get("VM", vm)["memory_static_max"])
    return max(total - used, 0)
