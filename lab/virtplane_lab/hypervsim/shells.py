"""The WinRS shells of the PowerShell endpoint: one psrpcore ``ServerRunspacePool`` per shell.

Create, Command, Send, Receive, Signal and Delete feed PSRP fragments to the pool, run a pipeline once
its input is complete (through the ``run`` callback), and hand each Receive the data of its own
pipeline (or of the pool)."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from psrpcore import PSRPPayload, ServerPipeline, ServerRunspacePool, StreamType
from psrpcore._events import CreatePipelineEvent, EndOfPipelineInputEvent, PipelineInputEvent
from psrpcore.types import PSInvocationState

from . import soap

TERMINAL = (PSInvocationState.Completed, PSInvocationState.Failed, PSInvocationState.Stopped)
FRAGMENT_BYTES = 32 * 1024  # psrpcore fragments at most this much PSRP data per payload
RECEIVE_BYTES = 96 * 1024  # one Receive answers with about this much (a real host keeps under MaxEnvelopeSize)

# run(pipe, input_objects, protocol_error): executes the pipeline and leaves it in a terminal state.
Runner = Callable[[ServerPipeline, list[Any], "str | None"], None]


@dataclass
class Shell:
    shell_id: str
    pool: ServerRunspacePool
    owner: str
    queues: dict[uuid.UUID | None, list[bytes]] = field(default_factory=dict)
    inputs: dict[uuid.UUID, list[Any]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)


class Shells:
    """Every open shell of this endpoint, by ShellId."""

    def __init__(self, run: Runner) -> None:
        self._run = run
        self._shells: dict[str, Shell] = {}
        self._lock = threading.Lock()

    def reboot(self) -> int:
        """Forget every shell (a host reboot loses all runspaces). Returns how many there were."""
        with self._lock:
            count = len(self._shells)
            shells, self._shells = list(self._shells.values()), {}
        for shell in shells:
            with shell.lock:
                shell.changed.notify_all()
        return count

    def count(self) -> int:
        with self._lock:
            return len(self._shells)

    def handle(self, request: soap.Request, user: str) -> bytes:
        action = request.action
        if action == soap.ACTION_CREATE:
            return self._create(request, user)
        shell = self._shell(request)
        with shell.lock:
            if action == soap.ACTION_COMMAND:
                return self._command(shell, request)
            if action == soap.ACTION_SEND:
                return self._send(shell, request)
            if action == soap.ACTION_SIGNAL:
                return self._signal(shell, request)
            if action == soap.ACTION_DELETE:
                return self._delete(shell, request)
        if action == soap.ACTION_RECEIVE:
            return self._receive(shell, request)
        raise soap.Fault(soap.CODE_ACTION_NOT_SUPPORTED, f"The action {action} is not supported by this endpoint.",
                         "a:ActionNotSupported")

    def _shell(self, request: soap.Request) -> Shell:
        shell_id = (request.shell_id or "").upper()
        with self._lock:
            shell = self._shells.get(shell_id)
        if shell is None:
            raise soap.Fault(soap.CODE_SHELL_NOT_FOUND,
                             f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the "
                             "shell was not found on the server. Possible causes are: the specified ShellId is "
                             "incorrect or the shell no longer exists on the server. Provide the correct ShellId "
                             "or create a new shell and retry the operation.", "w:InvalidSelectors")
        return shell

    # PSRP plumbing

    def _feed(self, shell: Shell, data: bytes, pipeline_id: uuid.UUID | None) -> None:
        """Give the pool ``data``, act on its events, queue what it has to send."""
        shell.pool.receive_data(PSRPPayload(data, StreamType.default, pipeline_id))
        while True:
            try:
                event = shell.pool.next_event()
            except ValueError as error:  # a value the deserializer refuses, e.g. <I32> out of range
                if pipeline_id is not None and pipeline_id in shell.pool.pipeline_table:
                    pipe = shell.pool.pipeline_table[pipeline_id]
                    shell.pool._receive_buffer = bytearray()
                    shell.pool._incoming_fragments.clear()
                    self._run(pipe, [], f"The pipeline could not be read: {error}. Values of 2 GiB and more "
                                        "must be sent as Int64 (<I64>) or UInt64 (<U64>).")
                    break
                raise soap.Fault(soap.CODE_ACTION_NOT_SUPPORTED, f"The PSRP data could not be read: {error}") from None
            if event is None:
                break
            if isinstance(event, CreatePipelineEvent):
                pipe = shell.pool.pipeline_table[event.pipeline_id]
                shell.inputs[event.pipeline_id] = []
                if pipe.metadata.no_input:
                    self._drain(shell)
                    self._run(pipe, [], None)
            elif isinstance(event, PipelineInputEvent):
                shell.inputs.setdefault(event.pipeline_id, []).append(event.data)
            elif isinstance(event, EndOfPipelineInputEvent):
                pipe = shell.pool.pipeline_table[event.pipeline_id]
                self._drain(shell)
                self._run(pipe, shell.inputs.pop(event.pipeline_id, []), None)
        self._drain(shell)

    def _drain(self, shell: Shell) -> None:
        while (payload := shell.pool.data_to_send(FRAGMENT_BYTES)) is not None:
            shell.queues.setdefault(payload.pipeline_id, []).append(payload.data)
        shell.changed.notify_all()

    # actions

    def _create(self, request: soap.Request, user: str) -> bytes:
        shell_el = soap.find(request.body, "rsp:Shell")
        creation = soap.find(request.body, "rsp:Shell/{http://schemas.microsoft.com/powershell}creationXml")
        if shell_el is None or creation is None or not creation.text:
            raise soap.Fault(soap.CODE_ACTION_NOT_SUPPORTED, "Only PowerShell (PSRP) shells are supported.")
        shell_id = (shell_el.attrib.get("ShellId") or str(uuid.uuid4())).upper()
        pool = ServerRunspacePool()
        pool.runspace_pool_id = uuid.UUID(shell_id)
        shell = Shell(shell_id=shell_id, pool=pool, owner=user)
        with shell.lock:
            self._feed(shell, base64.b64decode(creation.text), None)
        with self._lock:
            self._shells[shell_id] = shell
        created = soap.element("wst", "ResourceCreated")
        soap.sub(created, "wsa", "Address", "http://localhost/wsman")
        params = soap.sub(created, "wsa", "ReferenceParameters")
        soap.sub(params, "wsman", "ResourceURI", request.resource_uri)
        selectors = soap.sub(params, "wsman", "SelectorSet")
        soap.sub(selectors, "wsman", "Selector", shell_id, Name="ShellId")
        shell_out = soap.element("rsp", "Shell")
        for name, value in (("ShellId", shell_id), ("Name", "Runspace1"), ("ResourceUri", request.resource_uri),
                            ("Owner", user), ("ClientIP", "127.0.0.1"), ("IdleTimeOut", "PT7200.000S"),
                            ("InputStreams", "stdin pr"), ("OutputStreams", "stdout"),
                            ("ShellRunTime", "P0DT0H0M0S"), ("ShellInactivity", "P0DT0H0M0S")):
            soap.sub(shell_out, "rsp", name, value)
        return soap.envelope(request, soap.TRANSFER + "CreateResponse", [created, shell_out])

    def _command(self, shell: Shell, request: soap.Request) -> bytes:
        line = soap.find(request.body, "rsp:CommandLine")
        if line is None:
            raise soap.Fault(soap.CODE_ACTION_NOT_SUPPORTED, "The Command request carries no CommandLine.")
        command_id = (line.attrib.get("CommandId") or str(uuid.uuid4())).upper()
        pipeline_id = uuid.UUID(command_id)
        ServerPipeline(shell.pool, pipeline_id)
        shell.queues.setdefault(pipeline_id, [])
        for argument in soap.findall(line, "rsp:Arguments"):
            if argument.text:
                self._feed(shell, base64.b64decode(argument.text), pipeline_id)
        response = soap.element("rsp", "CommandResponse")
        soap.sub(response, "rsp", "CommandId", command_id)
        return soap.envelope(request, soap.SHELL + "CommandResponse", [response])

    def _send(self, shell: Shell, request: soap.Request) -> bytes:
        for stream in soap.findall(request.body, "rsp:Send/rsp:Stream"):
            command_id = stream.attrib.get("CommandId")
            pipeline_id = uuid.UUID(command_id) if command_id else None
            if stream.text:
                self._feed(shell, base64.b64decode(stream.text), pipeline_id)
        return soap.envelope(request, soap.SHELL + "SendResponse", [soap.element("rsp", "SendResponse")])

    def _receive(self, shell: Shell, request: soap.Request) -> bytes:
        desired = soap.find(request.body, "rsp:Receive/rsp:DesiredStream")
        command_id = desired.attrib.get("CommandId") if desired is not None else None
        pipeline_id = uuid.UUID(command_id) if command_id else None
        deadline = time.monotonic() + min(request.operation_timeout, 60.0)
        with shell.lock:
            while True:
                chunks = shell.queues.get(pipeline_id) or []
                pipe = shell.pool.pipeline_table.get(pipeline_id) if pipeline_id else None
                done = pipeline_id is not None and (pipe is None or pipe.state in TERMINAL)
                if chunks or done:
                    break
                if self._shells.get(shell.shell_id) is not shell:
                    raise soap.Fault(soap.CODE_SHELL_NOT_FOUND, "The shell was not found on the server.",
                                     "w:InvalidSelectors")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise soap.Fault(soap.CODE_OPERATION_TIMEOUT, "The WS-Management service cannot complete the "
                                     "operation within the time specified in OperationTimeout.", "w:TimedOut")
                shell.changed.wait(remaining)
            taken, size = 0, 0
            while taken < len(chunks) and (taken == 0 or size + len(chunks[taken]) <= RECEIVE_BYTES):
                size += len(chunks[taken])
                taken += 1
            chunks, shell.queues[pipeline_id] = chunks[:taken], chunks[taken:]
            done = done and not shell.queues[pipeline_id]
        response = soap.element("rsp", "ReceiveResponse")
        for chunk in chunks:
            attrib = {"Name": "stdout"}
            if command_id:
                attrib["CommandId"] = command_id.upper()
            soap.sub(response, "rsp", "Stream", base64.b64encode(chunk).decode(), **attrib)
        if pipeline_id is not None:
            state = soap.STATE_DONE if done else soap.STATE_RUNNING
            soap.sub(response, "rsp", "CommandState", CommandId=command_id.upper(), State=state)
        return soap.envelope(request, soap.SHELL + "ReceiveResponse", [response])

    def _signal(self, shell: Shell, request: soap.Request) -> bytes:
        signal = soap.find(request.body, "rsp:Signal")
        command_id = signal.attrib.get("CommandId") if signal is not None else None
        if command_id:
            pipe = shell.pool.pipeline_table.get(uuid.UUID(command_id))
            if pipe is not None:
                if pipe.state == PSInvocationState.Running:
                    pipe.stop()
                if pipe.state in (*TERMINAL, PSInvocationState.NotStarted):
                    pipe.close()
                self._drain(shell)
            shell.queues.pop(uuid.UUID(command_id), None)
        return soap.envelope(request, soap.SHELL + "SignalResponse", [soap.element("rsp", "SignalResponse")])

    def _delete(self, shell: Shell, request: soap.Request) -> bytes:
        with self._lock:
            self._shells.pop(shell.shell_id, None)
        shell.pool.pipeline_table.clear()
        shell.changed.notify_all()
        return soap.envelope(request, soap.TRANSFER + "DeleteResponse", [])
