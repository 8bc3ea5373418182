"""The HTTP(S) listeners: XML-RPC on ``POST /`` (and ``/RPC2``, where Python's xmlrpc client posts when the URL
has no path), and ``/xapisim/<action>``, the control endpoint (loopback clients only, no login).

Every answer is XAPI's envelope, ``{Status: Success, Value: v}`` or ``{Status: Failure, ErrorDescription: [code,
params...]}`` (XenAPI reference, "Wire protocol"); a fault of the simulator itself is INTERNAL_ERROR [text], XAPI's
catch-all. A listener of a pool member answers every call with HOST_IS_SLAVE [master address] (the reference: "You
cannot make regular API calls directly on a supporter"; ocaml/xapi/xapi_session.ml checks it before the password).
The call log holds method names only, never parameters (passwords travel in them).
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import traceback
import xmlrpc.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import api, raw_vdi, tasks
from .api import Context
from .errors import XapiError
from .faults import DropConnection

LOOPBACK = ("127.", "::1", "::ffff:127.")


class Listener(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, address: tuple[str, int], pool: Any, *, member: bool, control: Any, calls: list[str],
                 calls_lock: threading.Lock) -> None:
        super().__init__(address, Handler)
        self.pool = pool
        self.member = member
        self.control = control
        self.calls = calls
        self.calls_lock = calls_lock


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Listener

    def setup(self) -> None:
        super().setup()
        # http.server writes headers and body apart; without this the client's delayed ACK adds ~40 ms to every
        # call, which a real XAPI does not, and which would weigh on one-call-per-VM clients most.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the call log is the record

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self) -> None:
        """``/import_raw_vdi``: a VDI's bytes (raw_vdi.py)."""
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        path, values = raw_vdi.request_values(self.path)
        if path != "/import_raw_vdi":
            self._reply(404, b"", "text/plain")
            return
        self._raw(lambda: raw_vdi.import_raw(self.server.pool, values, data) or b"")

    def do_GET(self) -> None:
        """``/export_raw_vdi``: a VDI's bytes (raw_vdi.py)."""
        path, values = raw_vdi.request_values(self.path)
        if path != "/export_raw_vdi":
            self._reply(404, b"", "text/plain")
            return
        self._raw(lambda: raw_vdi.export_raw(self.server.pool, values))

    def _raw(self, transfer: Any) -> None:
        with self.server.calls_lock:
            self.server.calls.append(self.path.split("?")[0])
        try:
            with self.server.pool.db.lock:
                data = transfer()
        except XapiError as error:
            self._reply(raw_vdi.status_of(error), json.dumps(error.description()).encode(), "application/json")
            return
        self._reply(200, data, "application/octet-stream")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/xapisim/"):
            self._control(body)
            return
        if self.path.split("?")[0] not in ("/", "/RPC2"):
            self._reply(404, b"", "text/plain")
            return
        try:
            params, method = xmlrpc.client.loads(body, use_builtin_types=False)
        except Exception:
            self._reply(400, b"not an XML-RPC request", "text/plain")
            return
        try:
            answer = self._answer(str(method), params)
        except DropConnection:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        payload = xmlrpc.client.dumps((answer,), methodresponse=True, allow_none=False, encoding="utf-8")
        self._reply(200, payload.encode("utf-8"), "text/xml")

    def _answer(self, method: str, params: tuple[Any, ...]) -> dict[str, Any]:
        pool = self.server.pool
        with self.server.calls_lock:
            self.server.calls.append(method)
        if self.server.member:
            return _failure(XapiError("HOST_IS_SLAVE", pool.master_address))
        pool.faults.before(method)  # a dropped connection before the call, or a slow one
        try:
            context = Context(pool, None)
            value = tasks.start(context, method, params) if method.startswith("Async.") else api.call(
                context, method, params)
            answer = {"Status": "Success", "Value": value}
        except XapiError as error:
            answer = _failure(error)
        except Exception as error:  # a bug of ours: answer as XAPI answers its own, keep serving
            traceback.print_exc(file=sys.stderr)
            answer = _failure(XapiError("INTERNAL_ERROR", f"{type(error).__name__}: {error}"))
        pool.faults.after(method)  # the call ran; its answer may be lost
        return answer

    def _control(self, body: bytes) -> None:
        if not self.client_address[0].startswith(LOOPBACK):
            self._reply(403, b"", "text/plain")
            return
        try:
            payload = json.loads(body or b"{}")
            result = self.server.control(self.path[len("/xapisim/"):].strip("/"), payload)
        except (ValueError, KeyError) as error:
            self._reply(400, json.dumps({"error": str(error)}).encode(), "application/json")
            return
        self._reply(200, json.dumps(result).encode(), "application/json")


def _failure(error: XapiError) -> dict[str, Any]:
    return {"Status": "Failure", "ErrorDescription": error.description()}
