"""``pulumi-resource-virtplane ENGINE_ADDRESS``: serve the ResourceProvider protocol on a loopback port.

As every Pulumi resource plugin: bind ``127.0.0.1:0``, write the port and a newline on stdout (the
handshake), serve until SIGINT. Nothing else ever goes to stdout; logs go to stderr (the CLI shows them
only at debug verbosity), secrets masked.

``VIRTPLANE_EXTRA_KINDS=name=module:Class[,…]`` adds endpoint kinds to the provider registry for this
process (the tests register an in-memory hypervisor this way); it never replaces a built-in kind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

import grpc
from pulumi.provider.experimental.server import _GRPC_CHANNEL_OPTIONS
from pulumi.runtime.proto import provider_pb2_grpc

from virtplane import redact
from virtplane.plugin import VERSION
from virtplane.plugin.engine_log import EngineLog
from virtplane.plugin.provider import VirtplaneProvider
from virtplane.plugin.servicer import VirtplaneServicer
from virtplane.providers import registry


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact.redact(super().format(record))


def add_extra_kinds(value: str | None) -> None:
    for entry in filter(None, (part.strip() for part in (value or "").split(","))):
        name, _, target = entry.partition("=")
        if not name or ":" not in target:
            raise SystemExit(f"VIRTPLANE_EXTRA_KINDS: expected name=module:Class, got {entry!r}")
        registry.KINDS.setdefault(name, target)


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pulumi-resource-virtplane",
                                     description="virtplane's Pulumi resource provider plugin (gRPC server)")
    parser.add_argument("engine", help="the Pulumi engine's address")
    parser.add_argument("--logtostderr", action="store_true", help="accepted; logs always go to stderr")
    parser.add_argument("--logflow", action="store_true", help="accepted and ignored")
    parser.add_argument("--tracing", help="accepted and ignored")
    parser.add_argument("-v", dest="verbosity", type=int, default=0, help="log verbosity (3 or more: debug)")
    known, _rest = parser.parse_known_args(argv)
    return known


DRIVER_THREADS = 64  # driver calls block (SOAP, HTTPS): as many at once as the engine's parallelism sends


async def serve(arguments: argparse.Namespace, argv: list[str]) -> None:
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(DRIVER_THREADS, "driver"))
    provider = VirtplaneProvider(VERSION, EngineLog(arguments.engine))
    server = grpc.aio.server(options=_GRPC_CHANNEL_OPTIONS)
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(
        VirtplaneServicer(argv, VERSION, provider, arguments.engine), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):  # the CLI stops plugins with SIGINT: stop cleanly
        loop.add_signal_handler(signum, lambda: asyncio.ensure_future(server.stop(grace=1)))
    sys.stdout.buffer.write(f"{port}\n".encode())
    sys.stdout.buffer.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # after the handshake, whatever a library prints goes to stderr
    sys.stdout = sys.stderr
    try:
        await server.wait_for_termination()
    finally:
        await asyncio.to_thread(provider.endpoint.close)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    arguments = _arguments(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter("virtplane plugin: %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    debug = arguments.verbosity >= 3 or bool(os.environ.get("VIRTPLANE_DEBUG"))
    root.setLevel(logging.DEBUG if debug else logging.WARNING)  # client libraries: warnings only
    logging.getLogger("virtplane").setLevel(logging.DEBUG if debug else logging.INFO)
    add_extra_kinds(os.environ.get("VIRTPLANE_EXTRA_KINDS"))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(arguments, argv))


if __name__ == "__main__":
    main()
