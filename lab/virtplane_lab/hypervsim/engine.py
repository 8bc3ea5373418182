"""Runs a PSRP pipeline the way PowerShell would, for the cmdlets this host knows.

A pipeline carrying script text is refused before anything runs (this simulator's own rule: the driver must
never send script). Otherwise the statements run one by one, as PowerShell runs a batch of statements
(PowerShell.cs, BeginBatchInvoke / BatchInvocationWorkItem: a remote pool sends the whole batch to the server,
which invokes the statements in turn): an unknown cmdlet, a positional argument or an unknown parameter is a
terminating error of its own statement only, raised when that statement is reached. A terminating error in one
statement of a batch is appended to the error stream and the next statement still runs (the server's
ErrorActionPreference is Continue); an error escalated by ``-ErrorAction Stop`` ends the batch, and the pipeline
fails. A pipeline of one statement fails on its terminating error. Within a statement the first command runs
once, each later command once per object the previous one wrote (bound by type, like PowerShell's ByValue
binding). Every received command is appended to the command log (JSON lines).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psrpcore import ServerPipeline
from psrpcore.types import ErrorCategory, ErrorCategoryInfo, ErrorRecord, NETException, PSInvocationState

from .errors import CmdletError, binding_error
from .faults import Faults
from .model import Host
from .params import Param, convert
from .psobjects import to_psobject

SCRIPT_REFUSED = ("This host accepts only cmdlet commands: the pipeline carried script text, so nothing in it "
                  "was run.")


@dataclass
class Cmdlet:
    name: str
    params: dict[str, Param]
    run: Callable[[Invocation], Iterable[Any]]
    pipeline: dict[str, str]  # type name of an input object -> the parameter it binds to
    command_class: str

    def parameter(self, given: str) -> str | None:
        wanted = given.lower()
        for name, param in (*self.params.items(), *COMMON.items()):
            if name.lower() == wanted or wanted in (a.lower() for a in param.aliases):
                return name
        return None

    def param(self, name: str) -> Param:
        return self.params.get(name) or COMMON[name]


# PowerShell's common parameters that mean something here; -ErrorAction decides what a non-terminating error does
COMMON = {
    "ErrorAction": Param("Enum", aliases=("ea",), choices=("Continue", "Stop", "SilentlyContinue", "Ignore"),
                         extra={"enum": "System.Management.Automation.ActionPreference"}),
    "WarningAction": Param("Enum", aliases=("wa",), choices=("Continue", "Stop", "SilentlyContinue", "Ignore"),
                           extra={"enum": "System.Management.Automation.ActionPreference"}),
    "Verbose": Param("Switch", aliases=("vb",)),
    "Debug": Param("Switch", aliases=("db",)),
}


REGISTRY: dict[str, Cmdlet] = {}


def cmdlet(name: str, params: dict[str, Param] | None = None, pipeline: dict[str, str] | None = None,
           command_class: str | None = None) -> Callable[[Callable[[Invocation], Iterable[Any]]], Any]:
    """Register a cmdlet implementation (a function of an :class:`Invocation` yielding output objects)."""

    def register(function: Callable[[Invocation], Iterable[Any]]) -> Callable[[Invocation], Iterable[Any]]:
        cls = command_class or "Microsoft.HyperV.PowerShell.Commands." + name.replace("-", "")
        REGISTRY[name.lower()] = Cmdlet(name, dict(params or {}), function, dict(pipeline or {}), cls)
        return function

    return register


@dataclass
class Invocation:
    """One call of a cmdlet's process block: bound arguments and a way to write non-terminating errors."""

    host: Host
    cmdlet: Cmdlet
    args: dict[str, Any]
    errors: list[CmdletError] = field(default_factory=list)

    def has(self, name: str) -> bool:
        return name in self.args

    def get(self, name: str, default: Any = None) -> Any:
        return self.args.get(name, default)

    def error(self, error: CmdletError) -> None:
        """Write a non-terminating error; with -ErrorAction Stop it ends the pipeline at once, as in PowerShell."""
        if self.args.get("ErrorAction") == "Stop":
            error.terminating = True
            error.stops_batch = True  # ActionPreferenceStopException: ends a batch of statements too
            raise error
        self.errors.append(error)


class Engine:
    def __init__(self, host: Host, faults: Faults, command_log: Path | None) -> None:
        self.host = host
        self.faults = faults
        self.command_log = command_log
        self._log_lock = threading.Lock()
        self._running = 0
        self.most_at_once = 0  # the most pipelines this host ran at the same time

    def _enter(self, delta: int) -> None:
        with self._log_lock:
            self._running += delta
            self.most_at_once = max(self.most_at_once, self._running)

    # the Shells runner
    def run(self, pipe: ServerPipeline, inputs: list[Any], protocol_error: str | None) -> None:
        pipe.start()
        if protocol_error:
            self._fail(pipe, CmdletError(protocol_error, category="InvalidData", error_id="PipelineDeserialization",
                                         reason="SerializationException", terminating=True), "PSRP")
            return
        commands = list(pipe.metadata.commands)
        self._log(pipe, commands)
        if any(command.is_script for command in commands):
            self._fail(pipe, CmdletError(SCRIPT_REFUSED, category="PermissionDenied", error_id="ScriptRefused",
                                         reason="PSSecurityException", terminating=True), "Pipeline")
            return
        statements = _statements(commands)
        self._enter(1)
        try:
            for number, statement in enumerate(statements):
                current = statement[0].command_text
                try:
                    objects: list[Any] | None = list(inputs) if number == 0 and inputs else None
                    resolved = [self._resolve(command) for command in statement]  # a statement binds before it runs
                    for cmd, command in zip(resolved, statement, strict=True):
                        current = command.command_text
                        self.faults.before(cmd.name)  # outside the lock: a slow cmdlet delays only its own pipeline
                        with self.host.lock:
                            objects = self._invoke(pipe, cmd, command, objects)
                    with self.host.lock:
                        for obj in objects or []:  # a file's bytes (Get-Content) go out as a byte array
                            pipe.write_output(obj if isinstance(obj, bytes) else to_psobject(obj, self.host))
                except CmdletError as error:
                    if len(statements) == 1 or error.stops_batch:
                        self._fail(pipe, error, current)
                        return
                    self._write(pipe, REGISTRY.get(current.lower()), current, error)
        finally:
            self._enter(-1)
        pipe.complete()

    def _resolve(self, command: Any) -> Cmdlet:
        """The cmdlet a command names, its parameters checked: a terminating error of its statement otherwise."""
        cmd = REGISTRY.get(command.command_text.lower())
        if cmd is None:
            raise CmdletError(f"The term '{command.command_text}' is not recognized as a name of a cmdlet, "
                              "function, script file, or executable program. Check the spelling of the name, or "
                              "if a path was included, verify that the path is correct and try again.",
                              category="ObjectNotFound", error_id="CommandNotFoundException",
                              reason="CommandNotFoundException", target=command.command_text, terminating=True)
        for name, value in command.parameters:
            if name is None:
                raise binding_error(f"A positional parameter cannot be found that accepts argument '{value}'. "
                                    "This host binds named parameters only.", "PositionalParameterNotFound")
            if cmd.parameter(name) is None:
                raise binding_error(f"A parameter cannot be found that matches parameter name '{name}'.",
                                    "NamedParameterNotFound")
        return cmd

    def _bind(self, cmd: Cmdlet, command: Any) -> dict[str, Any]:
        bound: dict[str, Any] = {}
        for given, value in command.parameters:
            name = cmd.parameter(given)
            assert name is not None
            if name in bound:
                raise binding_error(f"Cannot bind parameter because parameter '{name}' is specified more than once.",
                                    "ParameterAlreadyBound")
            bound[name] = convert(name, cmd.param(name), value)
        return bound

    def _invoke(self, pipe: ServerPipeline, cmd: Cmdlet, command: Any, inputs: list[Any] | None) -> list[Any]:
        bound = self._bind(cmd, command)
        calls: list[dict[str, Any]] = []
        if inputs is None:
            calls.append(bound)
        else:
            for obj in inputs:
                kind = type(obj).__name__
                target = cmd.pipeline.get(kind) or cmd.pipeline.get("*")
                if target is None:
                    self._write(pipe, cmd, cmd.name, CmdletError(
                        "The input object cannot be bound to any parameters for the command either because the "
                        "command does not take pipeline input or the input and its properties do not match any of "
                        "the parameters that take pipeline input.", category="InvalidArgument",
                        error_id="InputObjectNotBound", reason="ParameterBindingException"))
                    continue
                param, _, attribute = target.partition(".")
                calls.append({**bound, param: getattr(obj, attribute) if attribute else obj})
        outputs: list[Any] = []
        for args in calls:
            invocation = Invocation(self.host, cmd, args)
            try:
                outputs.extend(cmd.run(invocation))
            except CmdletError as error:
                if error.terminating:
                    raise
                invocation.error(error)
            if args.get("ErrorAction") not in ("SilentlyContinue", "Ignore"):
                for error in invocation.errors:
                    self._write(pipe, cmd, cmd.name, error)
        return outputs

    def _record(self, cmd_name: str, command_class: str, error: CmdletError) -> dict[str, Any]:
        return {"exception": NETException(Message=error.message),
                "category_info": ErrorCategoryInfo(Category=ErrorCategory[error.category], Reason=error.reason,
                                                   Activity=cmd_name,
                                                   TargetName=str(error.target) if error.target is not None else ""),
                "fqid": f"{error.error_id},{command_class}" if command_class else error.error_id}

    def _write(self, pipe: ServerPipeline, cmd: Cmdlet | None, name: str, error: CmdletError) -> None:
        record = self._record(cmd.name if cmd else name, cmd.command_class if cmd else _ENGINE_CLASS, error)
        pipe.write_error(record["exception"], record["category_info"],
                         target_object=str(error.target) if error.target is not None else None,
                         fully_qualified_error_id=record["fqid"])

    def _fail(self, pipe: ServerPipeline, error: CmdletError, cmd_name: str) -> None:
        cmd = REGISTRY.get(cmd_name.lower())
        record = self._record(cmd_name, cmd.command_class if cmd else _ENGINE_CLASS, error)
        error_record = ErrorRecord(Exception=record["exception"], CategoryInfo=record["category_info"],
                                   FullyQualifiedErrorId=record["fqid"],
                                   TargetObject=str(error.target) if error.target is not None else None)
        # psrpcore has no public way to fail a pipeline; this is the one place that reaches inside (pinned 0.3.1)
        pipe._change_state(PSInvocationState.Failed, error=error_record)

    def _log(self, pipe: ServerPipeline, commands: list[Any]) -> None:
        if self.command_log is None:
            return
        entry = {"time": time.time(), "pipeline": str(pipe.pipeline_id), "commands": [
            {"command": "<script>" if c.is_script else c.command_text, "is_script": bool(c.is_script),
             "parameters": [name if name is not None else "<positional>" for name, _ in c.parameters],
             "end_of_statement": bool(c.end_of_statement)} for c in commands]}
        with self._log_lock, open(self.command_log, "a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")


_ENGINE_CLASS = ""  # engine errors (CommandNotFoundException) carry no command class


def _statements(commands: list[Any]) -> list[list[Any]]:
    statements: list[list[Any]] = [[]]
    for command in commands:
        statements[-1].append(command)
        if command.end_of_statement:
            statements.append([])
    return [s for s in statements if s]
