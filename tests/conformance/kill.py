"""``kill -9`` in the middle of an apply, at a chosen step: the work runs in a forked child with connections of its
own, and the child sends itself SIGKILL right after its N-th call that changes something on the hypervisor has
returned — the change is made, nothing after it runs, and no cleanup handler, ``finally`` or ``except`` of ours
gets to run (as when the process is killed for real).

A call that changes something: a vSphere method ending in ``_Task`` (and ``SetField``, ``AddCustomFieldDef``,
``ShutdownGuest``), a Proxmox request that is not a GET (logins aside), a Hyper-V pipeline holding a cmdlet other
than ``Get-…``/``Select-Object``. The hook is installed in the child only (its own memory); our code runs as is.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

from virtplane.providers.base import Provider
from virtplane.providers.registry import provider_class

VSPHERE_WRITES = {"SetField", "AddCustomFieldDef", "ShutdownGuest"}


class _Countdown:
    def __init__(self, steps: int) -> None:
        self.left = steps

    def after_write(self) -> None:
        self.left -= 1
        if self.left == 0:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)


def _arm(kind: str, countdown: _Countdown) -> None:
    """Wrap the hypervisor client's one sending method (class-wide: this is the child's own memory)."""
    if kind == "vsphere":
        from pyVmomi.SoapAdapter import SoapStubAdapter

        invoke = SoapStubAdapter.InvokeMethod

        def invoke_method(self: Any, mo: Any, info: Any, args: Any, *rest: Any, **kw: Any) -> Any:
            result = invoke(self, mo, info, args, *rest, **kw)
            if info.wsdlName.endswith("_Task") or info.wsdlName in VSPHERE_WRITES:
                countdown.after_write()
            return result

        SoapStubAdapter.InvokeMethod = invoke_method  # type: ignore[method-assign]
    elif kind == "proxmox":
        from virtplane.providers.proxmox.client import PveClient

        send = PveClient._send

        def send_counted(self: Any, method: str, path: str, payload: dict[str, Any]) -> Any:
            response = send(self, method, path, payload)
            if method != "GET" and not path.endswith("/access/ticket"):
                countdown.after_write()
            return response

        PveClient._send = send_counted  # type: ignore[method-assign]
    elif kind == "hyperv":
        from virtplane.providers.hyperv.client import HypervClient

        invoke_ps = HypervClient._invoke

        def invoke_counted(self: Any, statements: Any, what: str, tolerate: Any) -> Any:
            result = invoke_ps(self, statements, what, tolerate)
            if any(not cmd.name.startswith(("Get-", "Select-")) for statement in statements
                   for cmd in statement.commands):
                countdown.after_write()
            return result

        HypervClient._invoke = invoke_counted  # type: ignore[method-assign]
    else:
        raise AssertionError(f"no kill hook for {kind}")


def killed_after(step: int, kind: str, environ: dict[str, str], work: Callable[[Provider], None]) -> bool:
    """Run ``work(provider)`` in a child connected afresh to the ``kind`` endpoint of ``environ``, killed with
    SIGKILL right after its ``step``-th change. True when it was killed; False when it finished first (there is
    no such step). A child that fails otherwise fails the test."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            cls = provider_class(kind)
            provider = cls.connect(cls.settings_from("conformance", {}, environ))
            _arm(kind, _Countdown(step))
            work(provider)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # no atexit, no finalizers: the parent's sessions stay logged in
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL, f"the child died of signal {os.WTERMSIG(status)}"
        return True
    assert os.WEXITSTATUS(status) == 0, "the apply in the child failed (see its traceback above)"
    return False
