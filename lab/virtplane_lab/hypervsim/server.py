"""The HTTP(S) listener: ``POST /wsman`` (authenticated WSMan) and ``/hypervsim/*`` (the local control
endpoint for faults and state, loopback clients only, no login)."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import soap
from .auth import ConnectionAuth, Unauthorized
from .faults import DropConnection, Faults
from .shells import Shells


class Endpoint(ThreadingHTTPServer):
    """One simulated Hyper-V host's WinRM listener."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], *, user: str, password: str, shells: Shells, faults: Faults,
                 control: Any) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6  # listen on an IPv6 address (HYPERV_SERVER [::1]:port)
        super().__init__(address, Handler)
        self.user = user
        self.password = password
        self.shells = shells
        self.faults = faults
        self.control = control  # callable(path, payload) -> dict
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def drop_all_connections(self, keep: socket.socket | None = None) -> None:
        with self.connections_lock:
            connections = [c for c in self.connections if c is not keep]
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Endpoint
    # http.server writes a reply's headers and body in two sends; with Nagle's algorithm on, the body waits for the
    # client's delayed ACK of the headers, ~40 ms per WinRM message, which a real host's listener (http.sys) does not
    # add and which made every pipeline (several messages) slow: TCP_NODELAY on every connection.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.auth = ConnectionAuth(self.server.user, self.server.password)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the command log is the record; the access log would be noise

    def _reply(self, status: int, body: bytes = b"", content_type: str = "application/soap+xml;charset=UTF-8",
               headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        for name, value in headers or []:
            self.send_header(name, value)
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/hypervsim/"):
            self._control()
        else:
            self._reply(404)

    def do_POST(self) -> None:
        if self.path.startswith("/hypervsim/"):
            self._control()
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.rstrip("/").lower() != "/wsman":
            self._reply(404)
            return
        encrypted = self.headers.get("Content-Type", "").startswith("multipart/")
        try:
            verdict = self.auth.authenticate(self.headers.get("Authorization"), encrypted)
        except Unauthorized as refusal:
            self._reply(401, headers=refusal.headers)
            return
        if encrypted:
            try:
                body = self.auth.unwrap(body)
            except Exception:
                self._reply(401, headers=[("WWW-Authenticate", "Negotiate")])
                return
        if not body:
            self._reply(200, headers=verdict.reply_headers)
            return
        request: soap.Request | None = None
        try:
            request = soap.parse(body)
            status, answer = 200, self.server.shells.handle(request, verdict.user)
        except soap.Fault as fault:
            status, answer = 500, soap.fault(request, fault)
        except DropConnection:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        except Exception as error:  # a bug of ours: answer as a WSMan fault, keep serving
            traceback.print_exc(file=sys.stderr)
            status, answer = 500, soap.fault(request, soap.Fault(soap.CODE_ACTION_NOT_SUPPORTED,
                                                                 f"The simulator failed: {error}"))
        if encrypted:
            content_type, payload = self.auth.wrap(answer)
            self._reply(status, payload, content_type, headers=verdict.reply_headers)
        else:
            self._reply(status, answer, headers=verdict.reply_headers)

    def _control(self) -> None:
        if self.client_address[0] not in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
            self._reply(403)
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            payload = json.loads(self.rfile.read(length) or b"{}") if length else {}
            result = self.server.control(self.path[len("/hypervsim/"):], payload)
        except (ValueError, KeyError) as error:
            self._reply(400, json.dumps({"error": str(error)}).encode(), "application/json")
            return
        if self.path.rstrip("/").endswith("/reboot"):  # before answering: a client may connect again at once
            self.server.drop_all_connections(keep=self.connection)
        self._reply(200, json.dumps(result).encode(), "application/json")
