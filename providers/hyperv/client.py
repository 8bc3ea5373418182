"""One Hyper-V host over WinRM/PSRP: a pooled runspace, pipelines of structured cmdlets, typed results.

Commands are never PowerShell text: each is a cmdlet name with named parameters, sent as typed PSRP
arguments, so a value such as ``db'; Remove-VM * -Force; '`` is data. One ``run`` is one round trip: its
statements (``Statement``) are independent pipelines sent together; within a statement each cmdlet's output
is piped into the next. Sizes that may exceed 2 GiB go as 64-bit values (``i64``/``u64``).

Errors: a terminating error fails the pipeline; a non-terminating one leaves it completed with the record
only in ``streams.error`` (pypsrp's ``had_errors`` stays False), so every run reads ``streams.error`` and
raises unless the caller said which errors it expects.

Thread safety: pipelines on one runspace pool are serialized by a lock (apply calls drivers from several
threads). A lost runspace is reopened and the pipeline sent again once: for reads always, for writes only
when the host refused the request before running anything (after a reboot: login context or shell
unknown), never after a dropped connection, where part of the pipeline may have run.
"""

from __future__ import annotations

import contextlib
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


@dataclass
class Result:
    objects: list[PsObject]
    errors: list[str]


class HypervClient:
    """The runspace pool of one endpoint, opened on first use."""

    def __init__(self, settings: HypervSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._pool: Any = None
        self.round_trips = 0

    def _open(self) -> Any:
        from pypsrp.powershell import RunspacePool
        from pypsrp.wsman import WSMan

        settings = self.settings
        encryption = "never" if settings.auth == "basic" and not settings.tls else "auto"
        wsman = WSMan(settings.host, port=settings.port, username=settings.username,
                      password=settings.password.get_secret_value(), ssl=settings.tls, auth=settings.auth,
                      cert_validation=settings.cert_validation, encryption=encryption,
                      operation_timeout=settings.operation_timeout, read_timeout=settings.operation_timeout + 10,
                      connection_timeout=CONNECT_TIMEOUT)
        pool = RunspacePool(wsman)
        try:
            pool.open()
        except Exception as exc:
            raise self._connection_failure(exc) from None
        return pool

    def _connection_failure(self, exc: BaseException) -> ConnectionFailed:
        settings = self.settings
        where = f"Hyper-V endpoint '{settings.endpoint_name}' at {settings.address}"
        name = type(exc).__name__
        text = str(exc)
        if "SSL" in name or "certificate" in text.lower() or "SSL" in text:
            return ConnectionFailed(f"cannot verify the TLS certificate of {where}: give its CA in "
                                    f"{ENV['ca_file']} (or set insecure=true to turn verification off)")
        if name == "AuthenticationError" or re.search(r"(?<![\d:=])401(?!\d)", text):  # not a port like 40195
            return ConnectionFailed(f"{where} refused the login of user {settings.username} "
                                    f"({settings.auth}): check {ENV['username']} and {ENV['password']}")
        if name in ("ConnectionError", "ConnectTimeout", "ReadTimeout", "ConnectionRefusedError") or \
                "Connection" in name:
            reason = connection_reason(exc, CONNECT_TIMEOUT, settings.operation_timeout + 10)
            return ConnectionFailed(f"cannot reach Hyper-V at {settings.host}:{settings.port} "
                                    f"(endpoint '{settings.endpoint_name}'): {reason}")
        return ConnectionFailed(f"{where} failed: {name}: {text}")

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                with contextlib.suppress(Exception):  # closing a dead pool is not worth an error
                    self._pool.close()
                self._pool = None

    def run(self, statements: Sequence[Statement], what: str, *,
            tolerate: Callable[[str], bool] | None = None, retry_read: bool = False) -> Result:
        """Run ``statements`` in one round trip; raise ProviderError naming ``what`` on any error that
        ``tolerate`` does not accept."""
        with self._lock:
            for attempt in range(2):
                if self._pool is None:
                    self._pool = self._open()
                try:
                    return self._invoke(statements, what, tolerate)
                except ProviderError:
                    raise
                except Exception as exc:
                    self._pool = None  # the runspace is gone (dropped connection, host rebooted)
                    if attempt == 0 and (retry_read or _nothing_ran(exc)):
                        continue
                    failure = self._connection_failure(exc)
                    raise ProviderError(f"Hyper-V could not {what}: {failure}") from None
            raise AssertionError("unreachable")

    def _invoke(self, statements: Sequence[Statement], what: str,
                tolerate: Callable[[str], bool] | None) -> Result:
        from pypsrp.powershell import PowerShell, PSInvocationState

        ps = PowerShell(self._pool)
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
        self.round_trips += 1
        output = ps.invoke()
        errors = [str(record) for record in ps.streams.error]
        failed = ps.state == PSInvocationState.FAILED
        unexpected = [e for e in errors if tolerate is None or not tolerate(e)]
        if failed or unexpected:
            message = "; ".join(unexpected or errors) or "the pipeline failed"
            raise ProviderError(f"Hyper-V endpoint '{self.settings.endpoint_name}' could not {what}: {message}")
        return Result([PsObject(item) for item in output if item is not None], errors)


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
                       "Access", "Untagged", "Confirm"})


def by_type(objects: Iterable[PsObject], suffix: str) -> list[PsObject]:
    """The objects whose most specific type name ends with ``suffix`` (``VirtualMachine``, ``VMProcessor``)."""
    return [o for o in objects if o.type_name.split(".")[-1] == suffix or o.type_name.endswith(suffix)]
