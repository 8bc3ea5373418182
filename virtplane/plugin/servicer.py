"""The SDK's gRPC servicer with what the engine needs beyond it: errors reach the user as one sentence (secrets
masked, no Python stack frames); Configure tells the provider which provider resource it serves (its URN and
name, which the SDK's ConfigureRequest does not pass on); Handshake is answered (the SDK leaves it unimplemented,
and every ``pulumi`` command then logged a traceback from the plugin) and GetMapping(s) answer "no mappings";
DiffConfig's reply is built right (the SDK sends ``changes`` as a raw bool and cannot marshal a detailed diff);
and, when the engine supports it, every resource is marked ``refresh_before_update``, so a preview compares the
inputs with the live object, not with a state an out-of-band change has made stale.
"""

from __future__ import annotations

import logging
import os
import traceback
from typing import Any

import grpc
from pulumi.provider.experimental import provider as api
from pulumi.provider.experimental.property_value import PropertyValue
from pulumi.provider.experimental.server import ProviderServicer
from pulumi.runtime.proto import provider_pb2 as proto

from virtplane import redact
from virtplane.errors import VirtplaneError
from virtplane.plugin.provider import VirtplaneProvider

log = logging.getLogger("virtplane.plugin")

_RPCS = ("CheckConfig", "Configure", "Check", "Diff", "Create", "Read", "Update", "Delete", "GetSchema")
_REFRESHED = ("Create", "Read", "Update")  # replies that carry refresh_before_update
_KINDS = {
    api.PropertyDiffKind.ADD: proto.PropertyDiff.ADD,
    api.PropertyDiffKind.ADD_REPLACE: proto.PropertyDiff.ADD_REPLACE,
    api.PropertyDiffKind.DELETE: proto.PropertyDiff.DELETE,
    api.PropertyDiffKind.DELETE_REPLACE: proto.PropertyDiff.DELETE_REPLACE,
    api.PropertyDiffKind.UPDATE: proto.PropertyDiff.UPDATE,
    api.PropertyDiffKind.UPDATE_REPLACE: proto.PropertyDiff.UPDATE_REPLACE,
}


def user_message(error: BaseException) -> str:
    """One sentence for the person running pulumi: ours as they are, anything else named as unexpected."""
    if isinstance(error, VirtplaneError):
        return redact.redact(str(error))
    if isinstance(error, NotImplementedError):
        return redact.redact(f"not supported by this endpoint's driver yet: {error}")
    return redact.redact(f"unexpected {type(error).__name__}: {error}")


def diff_reply(diff: api.DiffResponse) -> proto.DiffResponse:
    changes = {None: proto.DiffResponse.DIFF_UNKNOWN, False: proto.DiffResponse.DIFF_NONE,
               True: proto.DiffResponse.DIFF_SOME}[diff.changes]
    return proto.DiffResponse(
        changes=changes, replaces=diff.replaces, stables=diff.stables, diffs=diff.diffs,
        deleteBeforeReplace=diff.delete_before_replace, hasDetailedDiff=True,
        detailedDiff={key: proto.PropertyDiff(kind=_KINDS[value.kind], inputDiff=value.input_diff)
                      for key, value in diff.detailed_diff.items()})


class VirtplaneServicer(ProviderServicer):
    _provider: VirtplaneProvider

    async def Handshake(self, request: Any, context: Any) -> Any:
        self._provider.refresh_before_update = request.supports_refresh_before_update
        return proto.ProviderHandshakeResponse(accept_secrets=True, accept_resources=False, accept_outputs=False)

    async def GetMapping(self, request: Any, context: Any) -> Any:
        return proto.GetMappingResponse(provider="", data=b"")  # no mappings from other ecosystems

    async def GetMappings(self, request: Any, context: Any) -> Any:
        return proto.GetMappingsResponse(providers=[])

    async def Configure(self, request: Any, context: Any) -> Any:
        self._provider.provider_urn = request.urn
        self._provider.provider_name = request.name
        return await self._guarded("Configure", request, context)

    async def DiffConfig(self, request: Any, context: Any) -> Any:
        async def diff_config() -> Any:
            return diff_reply(await self._provider.diff_config(api.DiffRequest(
                request.urn, request.id, PropertyValue.unmarshal_map(request.olds),
                PropertyValue.unmarshal_map(request.news), list(request.ignoreChanges))))

        return await self._answered("DiffConfig", diff_config, context)

    async def _guarded(self, rpc: str, request: Any, context: Any) -> Any:
        method = getattr(ProviderServicer, rpc)

        async def call() -> Any:
            try:
                reply = await method(self, request, context)
            except Exception as wrapped:
                # The SDK re-raises a method's exception with its stack frames appended; the original is the
                # context of what it raised.
                raise (wrapped.__context__ if wrapped.__context__ is not None else wrapped) from None
            if rpc in _REFRESHED and self._provider.refresh_before_update:
                reply.refresh_before_update = True
            return reply

        return await self._answered(rpc, call, context)

    async def _answered(self, rpc: str, call: Any, context: Any) -> Any:
        try:
            return await call()
        except Exception as error:
            message = user_message(error)
            log.error("%s failed: %s", rpc, message)
            if os.environ.get("VIRTPLANE_DEBUG"):
                log.error("%s", redact.redact("".join(traceback.format_exception(error))))
            await context.abort(grpc.StatusCode.UNKNOWN, message)


def _route(rpc: str) -> Any:
    async def handler(self: VirtplaneServicer, request: Any, context: Any) -> Any:
        return await self._guarded(rpc, request, context)

    handler.__name__ = rpc
    return handler


for _rpc in _RPCS:
    if _rpc != "Configure":
        setattr(VirtplaneServicer, _rpc, _route(_rpc))
