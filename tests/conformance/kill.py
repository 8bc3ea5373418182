"""``kill -9`` in the middle of an apply, at a chosen step: the apply runs in a child process with connections of its
own (forked from a clean fork server, so no lock another thread of the test held is inherited), and the child sends
itself SIGKILL right after its N-th call that changes something on the hypervisor has returned — the change is
made, nothing after it runs, and no cleanup handler, ``finally`` or ``except`` of ours gets to run (as when the
process is killed for real).

A call that changes something: a vSphere method ending in ``_Task`` (and ``SetField``, ``AddCustomFieldDef``,
``ShutdownGuest``), a Proxmox request that is not a GET (logins aside), a Hyper-V pipeline holding a cmdlet other
than ``Get-…``/``Select-Object``, a XenAPI call other than a ``get_…``, a session's or a task's, a libvirt call that
defines, creates, starts, stops, changes or deletes something (``LIBVIRT_WRITE``: libvirt-python's every method
calls one function of its C module, ``libvirtmod``, named after the C API's). The hook is installed in the child
only (its own memory); our code runs as is.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import sys
from typing import Any

from virtplane import apply
from virtplane.declared import DesiredStack
from virtplane.engine import build_plan
from virtplane.providers.registry import provider_class

VSPHERE_WRITES = {"SetField", "AddCustomFieldDef", "ShutdownGuest"}
# The C API's functions that change something (https://libvirt.org/html/libvirt-libvirt-domain.html and its
# storage, network and nodedev pages): virDomainDefineXML, virDomainCreate, virDomainSetMetadata,
# virStorageVolCreateXMLFrom, virStorageVolDelete, virDomainUndefineFlags, virNetworkDefineXML, …
LIBVIRT_WRITE = re.compile(r"^vir(Domain|Network|StorageVol|StoragePool|NodeDevice)(Create|Define|Undefine|Destroy|"
                           r"Shutdown|Set|Attach|Detach|Update|BlockResize|Resize|Delete|Reboot|Reset|Suspend|"
                           r"Resume|ManagedSave|Wipe|Upload|Build)")


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

        def invoke_counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = invoke_ps(self, *args, **kwargs)
            statements = next(arg for arg in args if isinstance(arg, list | tuple))
            if any(not cmd.name.startswith(("Get-", "Select-")) for statement in statements
                   for cmd in statement.commands):
                countdown.after_write()
            return result

        HypervClient._invoke = invoke_counted  # type: ignore[method-assign]
    elif kind == "xenserver":
        from virtplane.providers.xenserver.client import XapiClient

        call = XapiClient._call

        def call_counted(self: Any, method: str, args: Any, what: str) -> Any:
            result = call(self, method, args, what)
            verb = method.rsplit(".", 1)[-1]
            if not verb.startswith("get") and not method.startswith(("session.", "task.", "event.")):
                countdown.after_write()
            return result

        XapiClient._call = call_counted  # type: ignore[method-assign]
    elif kind == "libvirt":
        import libvirtmod

        for function_name in [n for n in dir(libvirtmod) if LIBVIRT_WRITE.match(n)]:
            setattr(libvirtmod, function_name, _counted(getattr(libvirtmod, function_name), countdown))
    else:
        raise AssertionError(f"no kill hook for {kind}")


def _counted(function: Any, countdown: _Countdown) -> Any:
    def counted(*args: Any) -> Any:
        result = function(*args)
        countdown.after_write()
        return result

    return counted


CHILD_DEADLINE = 300.0  # seconds a killed apply's child may take; one that hangs fails the test, never the run
_SERVER = multiprocessing.get_context("forkserver")
_SERVER.set_forkserver_preload(["virtplane.engine", "virtplane.apply", "tests.conformance.kill"])


def stop_server() -> None:
    """End the fork server and the resource tracker multiprocessing started beside it (each waits for its process):
    both live until the process that started them exits, and the session's end (tests/conftest.py) fails the run
    on any process still running. multiprocessing has no public call for this; its own tests use these."""
    from multiprocessing import forkserver, resource_tracker

    forkserver._forkserver._stop()
    resource_tracker._resource_tracker._stop()


def _child(step: int, kind: str, environ: dict[str, str], inputs: dict[str, Any], desired: DesiredStack,
           endpoint: str, allow_data_loss: bool) -> None:
    """In a process of its own, forked from a clean server (no threads, no locks held by another thread): connect,
    arm the countdown, plan and apply as the CLI does (one change at a time)."""
    cls = provider_class(kind)
    provider = cls.connect(cls.settings_from("conformance", inputs, environ))
    _arm(kind, _Countdown(step))
    plan = build_plan(desired, {endpoint: provider})
    result = apply.run(plan, {endpoint: provider}, parallel=1, allow_data_loss=allow_data_loss)
    if result.failed:
        raise AssertionError([outcome.error for outcome in result.failed])
    sys.stdout.flush()
    os._exit(0)  # no atexit, no finalizers


def killed_after(step: int, kind: str, environ: dict[str, str], desired: DesiredStack, endpoint: str, *,
                 inputs: dict[str, Any] | None = None, allow_data_loss: bool = False) -> bool:
    """Apply ``desired`` in a child connected afresh to the ``kind`` endpoint of ``environ`` (and Endpoint
    ``inputs``), killed with SIGKILL right after its ``step``-th change. True when it was killed; False when it
    finished first (there is no such step). A child that fails otherwise (or hangs past CHILD_DEADLINE) fails the
    test."""
    child = _SERVER.Process(target=_child, args=(step, kind, environ, dict(inputs or {}), desired, endpoint,
                                                 allow_data_loss))
    child.start()
    child.join(CHILD_DEADLINE)
    if child.is_alive():
        child.kill()
        child.join()
        raise AssertionError(f"the apply in the child still ran after {CHILD_DEADLINE:g} s (step {step})")
    if child.exitcode == -signal.SIGKILL:
        return True
    assert child.exitcode == 0, "the apply in the child failed (see its traceback above)"
    return False
