"""The SDK's gRPC servicer with two changes: errors reach the user as one sentence (secrets masked, no Python
stack frames), and Configure tells the provider which provider resource it serves (its URN and name, which
the SDK's ConfigureRequest does not pass on)."""

from __future__ import annotations

import logging
import os
import traceback
from typing import Any

import grpc
from pulumi.provider.experimental.server import ProviderServicer

from virtplane import redact
from virtplane.errors import VirtplaneError
from virtplane.plugin.provider import VirtplaneProvider

log = logging.getLogger("virtplane.plugin")

_RPCS = ("CheckConfig", "DiffConfig", "Configure", "Check", "Diff", "Create", "Read", "Update", "Delete",
         "GetSchema")


def user_message(error: BaseException) -> str:
    """One sentence for the person running pulumi: ours as they are, anything else named as unexpected."""
    if isinstance(error, VirtplaneError):
        return redact.redact(str(error))
    if isinstance(error, NotImplementedError):
        return redact.redact(f"not supported by this endpoint's driver yet: {error}")
    return redact.redact(f"unexpected {type(error).__name__}: {error}")


class VirtplaneServicer(ProviderServicer):
    _provider: VirtplaneProvider

    async def Configure(self, request: Any, context: Any) -> Any:
        self._provider.provider_urn = request.urn
        self._provider.provider_name = request.name
        return await self._guarded("Configure", request, context)

    async def _guarded(self, rpc: str, request: Any, context: Any) -> Any:
        method = getattr(ProviderServicer, rpc)
        try:
            return await method(self, request, context)
        except Exception as wrapped:
            # The SDK re-raises a method's exception with its stack frames appended; the original is the
            # context of what it raised.
            original = wrapped.__context__ if wrapped.__context__ is not None else wrapped
            message = user_message(original)
            log.error("%s failed: %s", rpc, message)
            if os.environ.get("VIRTPLANE_DEBUG"):
                log.error("%s", redact.redact("".join(traceback.format_exception(original))))
            await context.abort(grpc.StatusCode.UNKNOWN, message)


def _route(rpc: str) -> Any:
    async def handler(self: VirtplaneServicer, request: Any, context: Any) -> Any:
        return await self._guarded(rpc, request, context)

    handler.__name__ = rpc
    return handler


for _rpc in _RPCS:
    if _rpc != "Configure":
        setattr(VirtplaneServicer, _rpc, _route(_rpc))
