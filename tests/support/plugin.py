"""Drive ``pulumi-resource-virtplane`` as the Pulumi engine does, without the Pulumi CLI.

The plugin is started as a process with an engine address, its port read from the first line of its stdout,
and called with the SDK's own ResourceProvider stubs. A small Engine server on loopback receives its Log
messages (what the CLI would print beside the resource). Every reply and error is kept so a test can assert
that no secret ever left the plugin outside a secret envelope.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import engine_pb2_grpc, provider_pb2, provider_pb2_grpc

from virtplane.wire_names import from_wire_map

REPO = Path(__file__).resolve().parents[2]
PLUGIN = Path(sys.executable).parent / "pulumi-resource-virtplane"
SECRET_SIG = "4dabf18193072939515e22adb298388d"
SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
PROJECT, STACK = "proj", "dev"


def secret(value: Any) -> dict[str, Any]:
    return {SECRET_SIG: SECRET_VALUE, "value": value}


def urn(kind: str, name: str) -> str:
    return f"urn:pulumi:{STACK}::{PROJECT}::pulumi:pulumi:Stack$virtplane:index:{kind}::{name}"


def provider_urn(name: str) -> str:
    return f"urn:pulumi:{STACK}::{PROJECT}::pulumi:providers:virtplane::{name}"


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def as_dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def wire(value: Any) -> Any:
    """Numbers as the engine sends them: doubles."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire(v) for v in value]
    return value


class FakeEngine(engine_pb2_grpc.EngineServicer):
    """The engine's Log service, recording what the plugin tells the user."""

    def __init__(self) -> None:
        self.logs: list[tuple[int, str, str]] = []
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        engine_pb2_grpc.add_EngineServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def Log(self, request: Any, context: Any) -> empty_pb2.Empty:
        self.logs.append((request.severity, request.message, request.urn))
        return empty_pb2.Empty()

    def stop(self) -> None:
        self.server.stop(0)


class Plugin:
    """One plugin process and a client of it."""

    def __init__(self, tmp_path: Path, environ: dict[str, str] | None = None,
                 command: list[str] | None = None) -> None:
        self.engine = FakeEngine()
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.stderr_path = tmp_path / "plugin.stderr"
        env = {**os.environ, "PYTHONPATH": str(REPO), **(environ or {})}
        self.process = subprocess.Popen([*(command or [str(PLUGIN)]), f"127.0.0.1:{self.engine.port}"], cwd=tmp_path,
                                        env=env,
                                        stdout=subprocess.PIPE, stderr=self.stderr_path.open("wb"))
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.strip().isdigit(), f"expected a port on the first line, got {line!r}: {self.stderr()}"
        self.port = int(line)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
        self.replies: list[str] = []

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def call(self, rpc: str, request: Any) -> Any:
        try:
            reply = getattr(self.stub, rpc)(request, timeout=120)
        except grpc.RpcError as error:
            self.replies.append(str(error.details()))
            raise
        self.replies.append(json.dumps(as_dict(reply)))
        return reply

    def stop(self) -> None:
        if getattr(self, "stopped", False):
            return
        self.stopped = True
        self.channel.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        assert self.process.stdout is not None
        self.extra_stdout = self.process.stdout.read()
        self.process.stdout.close()
        self.engine.stop()

    # -- the RPCs, as the engine sends them ---------------------------------------------------------------

    def configure(self, name: str, config: dict[str, Any], secrets: tuple[str, ...] = ("password", "api_token")
                  ) -> dict[str, Any]:
        """CheckConfig (secrets plain) then Configure (secrets wrapped), as for an explicit provider."""
        checked = self.call("CheckConfig", provider_pb2.CheckRequest(
            urn=provider_urn(name), name=name, type="pulumi:providers:virtplane", olds=struct({}),
            news=struct(wire({**config, "version": "0.1.0"}))))
        failures = as_dict(checked).get("failures", [])
        assert not failures, failures
        args = {key: secret(value) if key in secrets else value for key, value in config.items()}
        reply = self.call("Configure", provider_pb2.ConfigureRequest(
            args=struct(wire(args)), acceptSecrets=True, acceptResources=True, urn=provider_urn(name), name=name,
            type="pulumi:providers:virtplane"))
        return as_dict(reply)

    def check(self, kind: str, name: str, news: dict[str, Any], olds: dict[str, Any] | None = None
              ) -> dict[str, Any]:
        return as_dict(self.call("Check", provider_pb2.CheckRequest(
            urn=urn(kind, name), name=name, type=f"virtplane:index:{kind}", olds=struct(wire(olds or {})),
            news=struct(wire(news)))))

    def diff(self, kind: str, name: str, resource_id: str, olds: dict[str, Any], news: dict[str, Any]
             ) -> dict[str, Any]:
        return as_dict(self.call("Diff", provider_pb2.DiffRequest(
            id=resource_id, urn=urn(kind, name), olds=struct(wire(olds)), news=struct(wire(news)),
            old_inputs=struct({}))))

    def create(self, kind: str, name: str, properties: dict[str, Any], preview: bool = False) -> dict[str, Any]:
        return as_dict(self.call("Create", provider_pb2.CreateRequest(
            urn=urn(kind, name), properties=struct(wire(properties)), preview=preview, timeout=300)))

    def read(self, kind: str, name: str, resource_id: str, properties: dict[str, Any] | None = None,
             inputs: dict[str, Any] | None = None) -> dict[str, Any]:
        return as_dict(self.call("Read", provider_pb2.ReadRequest(
            id=resource_id, urn=urn(kind, name), properties=struct(wire(properties or {})),
            inputs=struct(wire(inputs or {})))))

    def update(self, kind: str, name: str, resource_id: str, olds: dict[str, Any], news: dict[str, Any],
               preview: bool = False) -> dict[str, Any]:
        return as_dict(self.call("Update", provider_pb2.UpdateRequest(
            id=resource_id, urn=urn(kind, name), olds=struct(wire(olds)), news=struct(wire(news)),
            old_inputs=struct({}), preview=preview, timeout=300)))

    def delete(self, kind: str, name: str, resource_id: str, properties: dict[str, Any]) -> None:
        self.call("Delete", provider_pb2.DeleteRequest(
            id=resource_id, urn=urn(kind, name), properties=struct(wire(properties)), old_inputs=struct({}),
            timeout=300))


def unwrap(values: dict[str, Any]) -> dict[str, Any]:
    """Reply properties with secret envelopes opened, whole floats as ints and Pulumi's camelCase names in Python's
    snake_case (what a program sees: virtplane/wire_names.py)."""
    def plain(value: Any) -> Any:
        if isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_VALUE:
            return plain(value.get("value"))
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value
    return from_wire_map(plain(values))


def outside_secret_envelopes(text: str) -> str:
    """A reply's JSON with every secret envelope's value blanked out."""
    def strip(value: Any) -> Any:
        if isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_VALUE:
            return "<hidden>"
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    try:
        return json.dumps(strip(json.loads(text)))
    except ValueError:
        return text
