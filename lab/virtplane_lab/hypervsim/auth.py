"""HTTP authentication for one connection: Basic, and NTLM (Negotiate) with WinRM message encryption.

NTLM is pyspnego's acceptor (``spnego.server``), which reads the account from the file named by
``NTLM_USER_FILE``; :func:`write_ntlm_user_file` writes that file. A finished NTLM exchange belongs to
the TCP connection, as on a real WinRM listener; the bodies that follow are ``multipart/encrypted``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import spnego

BOUNDARY = b"--Encrypted Boundary"
SPNEGO_ENCRYPTED = "application/HTTP-SPNEGO-session-encrypted"
CHALLENGE_HEADERS = [("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", 'Basic realm="WSMAN"')]


def write_ntlm_user_file(path: Path, user: str, password: str, host_name: str) -> None:
    """The NTLM account file (Heimdal ``DOMAIN:USER:PASSWORD`` lines), readable by its owner only; the
    user may log in as ``user`` or ``HOST\\user``."""
    path.write_text(f":{user}:{password}\n{host_name}:{user}:{password}\n")
    path.chmod(0o600)
    os.environ["NTLM_USER_FILE"] = str(path)


class Unauthorized(Exception):
    """Answer 401 with these headers."""

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        super().__init__("unauthorized")
        self.headers = headers


@dataclass
class Verdict:
    """What a request may do after authentication."""

    user: str
    reply_headers: list[tuple[str, str]] = field(default_factory=list)
    handshake_only: bool = False  # an NTLM step with no SOAP body to process


@dataclass
class ConnectionAuth:
    """The authentication state of one TCP connection."""

    user: str
    password: str
    context: Any = None  # a finished spnego server context: messages on this connection are sealed with it
    _pending: Any = None

    def authenticate(self, authorization: str | None, encrypted_body: bool) -> Verdict:
        if authorization:
            scheme, _, value = authorization.partition(" ")
            scheme = scheme.lower()
            if scheme == "basic":
                return self._basic(value.strip())
            if scheme in ("negotiate", "ntlm"):
                return self._ntlm(value.strip())
        if self.context is not None and encrypted_body:
            return Verdict(user=self.user)
        raise Unauthorized(CHALLENGE_HEADERS)

    def _basic(self, value: str) -> Verdict:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized(CHALLENGE_HEADERS) from None
        user = user.rpartition("\\")[2]
        if user.lower() == self.user.lower() and hmac.compare_digest(password.encode(), self.password.encode()):
            return Verdict(user=user)
        raise Unauthorized(CHALLENGE_HEADERS)

    def _ntlm(self, value: str) -> Verdict:
        try:
            token = base64.b64decode(value, validate=True)
        except binascii.Error:
            raise Unauthorized(CHALLENGE_HEADERS) from None
        if self._pending is None:
            protocol = "ntlm" if token.startswith(b"NTLMSSP\x00") else "negotiate"
            self._pending = spnego.server(protocol=protocol, options=spnego.NegotiateOptions.wrapping_winrm)
        try:
            out = self._pending.step(token)
        except Exception:  # wrong password, malformed token: a plain 401, like WinRM
            self._pending = None
            raise Unauthorized(CHALLENGE_HEADERS) from None
        if not self._pending.complete:
            raise Unauthorized([("WWW-Authenticate", "Negotiate " + base64.b64encode(out or b"").decode())])
        self.context, self._pending = self._pending, None
        headers = [("WWW-Authenticate", "Negotiate " + base64.b64encode(out).decode())] if out else []
        return Verdict(user=self.user, reply_headers=headers, handshake_only=True)

    # WinRM message encryption ("Encrypted Boundary" MIME parts)

    def unwrap(self, body: bytes) -> bytes:
        if self.context is None:
            raise Unauthorized(CHALLENGE_HEADERS)
        parts = [p for p in re.split(re.escape(BOUNDARY) + rb"\r\n", body) if p]
        message = b""
        for i in range(0, len(parts) - 1, 2):
            payload = parts[i + 1]
            payload = re.sub(re.escape(BOUNDARY) + rb"--\r\n$", b"", payload)
            payload = payload.replace(b"\tContent-Type: application/octet-stream\r\n", b"", 1)
            header_length = struct.unpack("<i", payload[:4])[0]
            header = payload[4:4 + header_length]
            message += self.context.unwrap_winrm(header, payload[4 + header_length:])
        return message

    def wrap(self, message: bytes) -> tuple[str, bytes]:
        header, data, padding = self.context.wrap_winrm(message)
        length = len(message) + padding
        head = b"\r\n".join([
            BOUNDARY,
            f"\tContent-Type: {SPNEGO_ENCRYPTED}".encode(),
            f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={length}".encode(),
            BOUNDARY,
            b"\tContent-Type: application/octet-stream",
            b"",
        ])
        payload = head + struct.pack("<i", len(header)) + header + data + BOUNDARY + b"--\r\n"
        content_type = f'multipart/encrypted;protocol="{SPNEGO_ENCRYPTED}";boundary="Encrypted Boundary"'
        return content_type, payload
