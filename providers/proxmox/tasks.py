"""PVE tasks: a write that starts a worker answers with a UPID; wait for it to stop, with a deadline.

Polling starts at once (a fake PVE with time_scale 0, or a quick task, is done on the first look) and backs
off to one second. The status reads go through the client's retried GET, so a flaky network does not fail a
task that succeeded.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from virtplane.providers.proxmox.client import PveClient
from virtplane.providers.proxmox.faults import TaskTimeout, task_failure

_FIRST_DELAY = 0.02
_MAX_DELAY = 1.0


def is_upid(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("UPID:")


def wait_for_task(client: PveClient, upid: str, what: str, timeout: float | None = None) -> None:
    """Block until the task ``upid`` stops; raise TaskFailed unless it ended OK (or with warnings only)."""
    timeout = client.settings.task_timeout if timeout is None else timeout
    node = upid.split(":")[1]
    path = f"/nodes/{node}/tasks/{quote(upid, safe='')}/status"
    deadline = time.monotonic() + timeout
    delay = _FIRST_DELAY
    while True:
        status = client.get(path, f"follow the task that is to {what}")
        if status.get("status") == "stopped":
            exitstatus = str(status.get("exitstatus") or "")
            if exitstatus == "OK" or exitstatus.startswith("WARNINGS"):
                return
            raise task_failure(what, exitstatus or "the task stopped without an exit status")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TaskTimeout(f"Proxmox did not {what} within {timeout:g} s (task {upid} is still running; "
                                "it may still finish)")
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, _MAX_DELAY)


def run(client: PveClient, method: str, path: str, what: str, data: Mapping[str, Any] | None = None,
        timeout: float | None = None) -> Any:
    """Send a write; when PVE answers with a task, wait for it. Returns PVE's answer."""
    call = {"POST": client.post, "PUT": client.put, "DELETE": client.delete}[method]
    answer = call(path, what, data)
    if is_upid(answer):
        wait_for_task(client, answer, what, timeout)
    return answer
