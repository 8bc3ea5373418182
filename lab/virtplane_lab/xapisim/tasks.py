"""``Async.<class>.<message>``: the message runs as a task; the call answers at once with the task's ref.

The task is ``pending`` while the message runs, then ``success`` with ``result`` holding the return value as
XAPI writes it (``<value>OpaqueRef:…</value>``, "" for void) or ``failure`` with ``error_info`` holding the error
code and its parameters (XenAPI reference, class task; "Wire protocol"). The session and the number of parameters
are checked at once, everything else inside the task, as XAPI does. A ``slow`` fault on the message keeps the task
pending that long before the message runs. ``task.destroy`` forgets a task.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from xml.sax.saxutils import escape
from xmlrpc.client import DateTime

from . import api
from .api import Context, message
from .errors import XapiError


def start(context: Context, method: str, args: tuple[Any, ...]) -> str:
    inner = method.removeprefix("Async.")
    found = api.find(inner)
    expected = len(found.params) + (1 if found.session else 0)
    if len(args) != expected:
        raise XapiError("MESSAGE_PARAMETER_COUNT_MISMATCH", method, expected, len(args))
    pool = context.pool
    if found.session:
        pool.check_session(args[0])
    with pool.db.lock:
        task = pool.db.add("task", {"name_label": method, "status": "pending", "created": DateTime(),
                                    "resident_on": pool.master(), "progress": 0.0})
    delay = pool.faults.delay(inner)

    def run() -> None:
        if delay:
            time.sleep(delay)
        try:
            result = api.call(Context(pool, None), inner, args)
            outcome: dict[str, Any] = {"status": "success", "result": _encode(result), "progress": 1.0}
        except XapiError as error:
            outcome = {"status": "failure", "error_info": error.description(), "progress": 1.0}
        with pool.db.lock:
            if pool.db.exists("task", task):
                pool.db.set("task", task, finished=DateTime(), **outcome)

    threading.Thread(target=run, name=f"task {method}", daemon=True).start()
    return task


def _encode(result: Any) -> str:
    if result == "" or result is None:
        return ""
    if isinstance(result, str):
        return f"<value>{escape(result)}</value>"
    if isinstance(result, list) and all(isinstance(item, str) for item in result):
        items = "".join(f"<value>{escape(item)}</value>" for item in result)
        return f"<value><array><data>{items}</data></array></value>"
    return f"<value>{escape(str(result))}</value>"


@message("task.destroy", ("r:task", "self"))
def destroy(context: Context, self: str) -> str:
    with context.pool.db.lock:
        context.pool.db.delete("task", self)
    return ""
