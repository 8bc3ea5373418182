"""Waiting for vSphere tasks: poll with a short backoff until success, failure or a deadline."""

from __future__ import annotations

import time
from typing import Any

from pyVmomi import vim, vmodl

from virtplane.errors import ProviderError
from virtplane.providers.vsphere.faults import fault_text


class TaskFailed(ProviderError):
    """A vSphere task ended in error; ``fault`` is vSphere's fault object."""

    def __init__(self, what: str, fault: Any):
        self.fault = fault
        super().__init__(f"vSphere could not {what}: {fault_text(fault)}")


DEFAULT_TIMEOUT = 600.0
_FIRST_DELAY = 0.02
_MAX_DELAY = 1.0


def wait_for_task(task: Any, timeout: float = DEFAULT_TIMEOUT, what: str = "finish a task") -> Any:
    """Block until ``task`` ends; return its result, or raise ProviderError naming ``what``."""
    deadline = time.monotonic() + timeout
    delay = _FIRST_DELAY
    while True:
        try:
            info = task.info
        except vmodl.MethodFault as fault:
            raise TaskFailed(what, fault) from None
        if info.state == vim.TaskInfo.State.success:
            return info.result
        if info.state == vim.TaskInfo.State.error:
            raise TaskFailed(what, info.error) from None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProviderError(f"vSphere did not {what} within {timeout:g} s (task {task._moId} still "
                                f"{info.state})")
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, _MAX_DELAY)
