"""One Hyper-V host over WinRM/PSRP: a pooled runspace, pipelines of structured cmdlets, typed results.

Commands are never PowerShell text: each is a cmdlet name with named parameters, sent as typed PSRP
arguments, so a value such as ``db'; Remove-VM * -Force; '`` is data. One ``run`` is one round trip: its
statements (``Statement``) are independent pipelines sent together; within a statement each cmdlet's output
is piped into the next. Sizes that may exceed 2 GiB go as 64-bit values (``i64``/``u64``).

Errors: a terminating error fails a one-statement pipeline; in a pipeline of several statements PowerShell
runs the statements one by one, records a statement's terminating error and goes on with the next
(PowerShell.cs batch invocation), so the pipeline completes with the records only in ``streams.error``
(pypsrp's ``had_errors`` stays False). Every run reads ``streams.error`` and raises unless the caller said
which errors it expects. Callers decide by each record's FullyQualifiedErrorId, category and target object
(``HvError``), never by its message, which a localized Windows Server writes in its own language.

Connections: up to ``connections`` runspace pools (each its own WinRM shell and HTTP connection), opened on
demand, so apply's parallel workers run their pipelines at the same time instead of queueing behind one
runspace (a ten-minute Stop-VM no longer blocks every other change on the host). A pool is used by one
pipeline at a time. A lost runspace is reopened and the pipeline sent again once: for reads always, for writes
only when the host refused the request before running anything (after a reboot: login context or shell
unknown), never after a dropped connection, where part of the pipeline may have run. The shell of a dropped
connection is deleted on a new connection rather than left open until WinRM's idle timeout.
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from virtplane.errors import ConnectionFailed, ProviderError
from virtplane.providers.http_faults import connection_reason
from virtplane.providers.hyperv.settings import ENV, HypervSettings

CONNECT_TIMEOUT = 30  # seconds to open a connection to the host


def i64(value: int) -> Any:
    from pypsrp.serializer import TaggedValue

    return TaggedValue("I64", int(value))


def u64(value: int) -> Any:
    from pypsrp.serializer import TaggedValue

    return TaggedValue("U64", int(value))


def u32(value: int) -> Any:
    from pypsrp.serializer import TaggedValue

    return TaggedValue("U32", int(value))


@dataclass
class Cmd:
    """One cmdlet with named parameters; ``True`` alone as a value of a switch (``Force``) sends the switch."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Statement:
    """Cmdlets piped left to right (``Get-VM -Id X | Set-VMProcessor -Count 4``)."""

    commands: list[Cmd]

    def describe(self) -> str:
        return " | ".join(c.name for c in self.commands)


def pipe(*commands: Cmd) -> Statement:
    return Statement(list(commands))


def vm_by_id(vm_id: str) -> Cmd:
    """``Get-VM -Id <guid>``: VMs are addressed by id, never by name (names are not unique and -Name takes
    wildcards)."""
    import uuid

    return Cmd("Get-VM", {"Id": uuid.UUID(str(vm_id))})


class PsObject:
    """A deserialized object: its type names and its properties, looked up case-insensitively."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.types: list[str] = list(getattr(raw, "types", []) or [])
        props: dict[str, Any] = {}
        for source in ("adapted_properties", "extended_properties"):
            for key, value in (getattr(raw, source, None) or {}).items():
                props[str(key).lower()] = value
        self._props = props

    @property
    def type_name(self) -> str:
        return self.types[0] if self.types else type(self.raw).__name__

    def get(self, name: str, default: Any = None) -> Any:
        return self._props.get(name.lower(), default)

    def text(self, name: str) -> str | None:
        value = self.get(name)
        return None if value is None else str(value)

    def number(self, name: str) -> int | None:
        value = self.get(name)
        if value is None:
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            return int(str(value)) if str(value).isdigit() else None

    def flag(self, name: str) -> bool | None:
        value = self.get(name)
        if value is None or isinstance(value, bool):
            return value
        return str(value).lower() in ("true", "on", "1")


# System.Management.Automation.ErrorCategory, by value (pypsrp hands the category over as its number)
CATEGORIES = ("NotSpecified", "OpenError", "CloseError", "DeviceError", "DeadlockDetected", "InvalidArgument",
              "InvalidData", "InvalidOperation", "InvalidResult", "InvalidType", "MetadataError", "NotImplemented",
              "NotInstalled", "ObjectNotFound", "OperationStopped", "OperationTimeout", "SyntaxError", "ParserError",
              "PermissionDenied", "ResourceBusy", "ResourceExists", "ResourceUnavailable", "ReadError", "WriteError",
              "FromStdErr", "SecurityError", "ProtocolError", "ConnectionError", "AuthenticationError",
              "LimitsExceeded", "QuotaExceeded", "NotEnabled")


@dataclass(frozen=True)
class HvError:
    """One error record as the host sent it: its message (for people), and what code decides by: the
    FullyQualifiedErrorId (``InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM``), the category
    (``InvalidArgument``) and the target object (a VM name, a path)."""

    message: str
    fqid: str
    category: str
    target: str

    @property
    def error_id(self) -> str:
        """The FQID's first part (``InvalidParameter``)."""
        return self.fqid.split(",", 1)[0]

    @property
    def command(self) -> str:
        """The command class named by the FQID, short (``GetVM``, ``RemoveItemCommand``), or ""."""
        return self.fqid.split(",", 1)[1].rsplit(".", 1)[-1] if "," in self.fqid else ""

    def is_(self, error_id: str, command: str | None = None) -> bool:
        return self.error_id == error_id and (command is None or self.command.lower() == command.lower())

    def __str__(self) -> str:
        return self.message

    @classmethod
    def from_record(cls, record: Any) -> HvError:
        category = getattr(record, "category", None)
        name = CATEGORIES[category] if isinstance(category, int) and 0 <= category < len(CATEGORIES) else str(
            category or "NotSpecified")
        target = getattr(record, "target_object", None)
        if target is None or not isinstance(target, str | int):
            target = getattr(record, "target_name", None) or ""
        return cls(str(record), str(getattr(record, "fq_error", "") or ""), name, str(target))


@dataclass
class Result:
    objects: list[PsObject]
    errors: list[HvError]


class HypervClient:
    """Up to ``settings.connections`` runspace pools of one endpoint, opened on first use."""

    def __init__(self, settings: HypervSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._open_count = 0
        self._free = threading.BoundedSemaphore(settings.connections)
        self._all: set[Any] = set()
        self.round_trips = 0

    def _open(self) -> Any:
        from pypsrp.powershell import RunspacePool

        pool = RunspacePool(self._wsman())
        try:
            pool.open()
        except Exception as exc:
            raise self._connection_failure(exc) from None
        return pool

    def _wsman(self) -> Any:
        from pypsrp.wsman import WSMan

        settings = self.settings
        encryption = "never" if settings.auth == "basic" and not settings.tls else "auto"
        return WSMan(settings.host, port=settings.port, username=settings.username,
                     password=settings.password.get_secret_value(), ssl=settings.tls, auth=settings.auth,
                     cert_validation=settings.cert_validation, encryption=encryption,
                     operation_timeout=settings.operation_timeout, read_timeout=settings.operation_timeout + 10,
                     connection_timeout=CONNECT_TIMEOUT)

    def _connection_failure(self, exc: BaseException) -> ConnectionFailed:
        settings = self.settings
        where = f"Hyper-V endpoint '{settings.endpoint_name}' at {settings.address}"
        name = type(exc).__name__
        text = str(exc)
        if "SSL" in name or "certificate" in text.lower() or "SSL" in text:
            return ConnectionFailed(f"cannot verify the TLS certificate of {where}: give its CA in "
                                    f"{ENV['ca_file']} (or set insecure=true to turn verification off)")
        if settings.auth == "credssp" and name == "AuthenticationException":  # requests-credssp: not offered
            return ConnectionFailed(f"{where} does not accept CredSSP logins: enable CredSSP on the host "
                                    "(Enable-WSManCredSSP -Role Server) or use auth='negotiate'")
        if name == "AuthenticationError" or re.search(r"(?<![\d:=])401(?!\d)", text):  # not a port like 40195
            return ConnectionFailed(f"{where} refused the login of user {settings.username} "
                                    f"({settings.auth}): check {ENV['username']} and {ENV['password']}")
        if name in ("ConnectionError", "ConnectTimeout", "ReadTimeout", "ConnectionRefusedError") or \
                "Connection" in name:
            reason = connection_reason(exc, CONNECT_TIMEOUT, settings.operation_timeout + 10)
            return ConnectionFailed(f"cannot reach Hyper-V at {settings.address_host}:{settings.port} "
                                    f"(endpoint '{settings.endpoint_name}'): {reason}")
        return ConnectionFailed(f"{where} failed: {name}: {text}")

    def close(self) -> None:
        with self._lock:
            pools, self._all = list(self._all), set()
        while not self._idle.empty():
            self._idle.get_nowait()
        for pool in pools:
            with contextlib.suppress(Exception):  # closing a dead pool is not worth an error
                pool.close()

    @contextlib.contextmanager
    def _pool(self) -> Any:
        """A runspace pool for one pipeline: an idle one, or a new one while fewer than ``connections`` exist."""
        self._free.acquire()
        try:
            try:
                pool = self._idle.get_nowait()
            except queue.Empty:
                pool = self._open()
                with self._lock:
                    self._all.add(pool)
            yield pool
        finally:
            self._free.release()

    def _discard(self, pool: Any) -> None:
        """Forget a pool whose connection failed, and delete its shell on a fresh connection (best effort: after a
        reboot the host has forgotten it anyway), so the host does not keep it until WinRM's idle timeout."""
        with self._lock:
            self._all.discard(pool)

        def delete() -> None:
            with contextlib.suppress(Exception):
                pool.shell.wsman = self._wsman()  # the old connection is gone; its shell id is still good
                pool.close()

        threading.Thread(target=delete, name="hyperv-close-dropped-shell", daemon=True).start()

    def run(self, statements: Sequence[Statement], what: str, *,
            tolerate: Callable[[HvError], bool] | None = None, retry_read: bool = False) -> Result:
        """Run ``statements`` in one round trip; raise ProviderError naming ``what`` on any error that
        ``tolerate`` does not accept."""
        for attempt in range(2):
            with self._pool() as pool:
                try:
                    result = self._invoke(pool, statements, what, tolerate)
                except ProviderError:
                    self._idle.put(pool)
                    raise
                except Exception as exc:
                    self._discard(pool)  # the runspace is gone (dropped connection, host rebooted)
                    if attempt == 0 and (retry_read or _nothing_ran(exc)):
                        continue
                    failure = self._connection_failure(exc)
                    raise ProviderError(f"Hyper-V could not {what}: {failure}") from None
                self._idle.put(pool)
                return result
        raise AssertionError("unreachable")

    def _invoke(self, pool: Any, statements: Sequence[Statement], what: str,
                tolerate: Callable[[HvError], bool] | None) -> Result:
        from pypsrp.powershell import PowerShell, PSInvocationState

        ps = PowerShell(pool)
        for index, statement in enumerate(statements):
            if index:
                ps.add_statement()
            for command in statement.commands:
                ps.add_cmdlet(command.name)
                for key, value in command.params.items():
                    if value is True and key in _SWITCHES:
                        ps.add_parameter(key)
                    else:
                        ps.add_parameter(key, value)
        with self._lock:
            self.round_trips += 1
        output = ps.invoke()
        errors = [HvError.from_record(record) for record in ps.streams.error]
        failed = ps.state == PSInvocationState.FAILED
        unexpected = [e for e in errors if tolerate is None or not tolerate(e)]
        if failed or unexpected:
            message = "; ".join(str(e) for e in unexpected or errors) or "the pipeline failed"
            raise HostError(f"Hyper-V endpoint '{self.settings.endpoint_name}' could not {what}: {message}",
                            unexpected or errors)
        return Result([PsObject(item) for item in output if item is not None], errors)


class HostError(ProviderError):
    """The host answered with error records the caller did not expect: the message, and the records."""

    def __init__(self, message: str, records: list[HvError]) -> None:
        super().__init__(message)
        self.records = records


# WSMan fault: the shell (runspace pool) the request names does not exist (any more).
_UNKNOWN_SHELL = 2150858843


def _nothing_ran(exc: BaseException) -> bool:
    """True when the host refused the request before running anything, so sending it again on a new runspace
    pool is safe even for a write: the runspace was lost (host rebooted: the login context or the shell is
    unknown to it). A dropped connection is not such a case: part of the pipeline may have run."""
    if type(exc).__name__ == "AuthenticationError":
        return True
    return type(exc).__name__ == "WSManFaultError" and getattr(exc, "code", None) == _UNKNOWN_SHELL


# Parameters that are switches: sent by name alone.
_SWITCHES = frozenset({"Force", "TurnOff", "NoVHD", "Dynamic", "Fixed", "StaticMemory", "DynamicMemory", "Passthru",
                       "Access", "Untagged", "PresentOnly"})


def by_type(objects: Iterable[PsObject], suffix: str) -> list[PsObject]:
    """The objects whose most specific type name ends with ``suffix`` (``VirtualMachine``, ``VMProcessor``)."""
    return [o for o in objects if o.type_name.split(".")[-1] == suffix or o.type_name.endswith(suffix)]
