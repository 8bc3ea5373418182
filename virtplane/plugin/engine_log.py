"""Messages for the person running ``pulumi``: sent to the engine's Log service (shown beside the resource),
and copied to stderr (which the CLI shows only at debug verbosity). Secrets are masked in both."""

from __future__ import annotations

import logging

import grpc
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc

from virtplane import redact

log = logging.getLogger("virtplane.plugin")


class EngineLog:
    def __init__(self, engine_address: str | None) -> None:
        self.address = engine_address
        self._stub: engine_pb2_grpc.EngineStub | None = None

    async def warning(self, message: str, urn: str = "") -> None:
        await self._send(engine_pb2.WARNING, message, urn)

    async def info(self, message: str, urn: str = "") -> None:
        await self._send(engine_pb2.INFO, message, urn)

    async def _send(self, severity: int, message: str, urn: str) -> None:
        message = redact.redact(message)
        log.log(logging.WARNING if severity == engine_pb2.WARNING else logging.INFO, "%s", message)
        if not self.address:
            return
        try:
            if self._stub is None:
                self._stub = engine_pb2_grpc.EngineStub(grpc.aio.insecure_channel(self.address))
            await self._stub.Log(engine_pb2.LogRequest(severity=severity, message=message, urn=urn), timeout=10)
        except grpc.RpcError as error:  # the engine is gone or not listening: stderr has the message
            log.debug("could not send a message to the engine at %s: %s", self.address, error.code())
