"""The gist of a failed HTTP connection (requests, urllib3), for the providers that speak HTTP through requests
(Proxmox VE's API, Hyper-V's WinRM through pypsrp): ``Connection refused``, ``no answer within 15 s``, never a
library's repr such as ``HTTPConnectionPool(...): Max retries exceeded``."""

from __future__ import annotations

import re

import requests

_ERRNO = re.compile(r"\[Errno -?\d+\] (?P<reason>[^'\"()\]]+)")
_CERTIFICATE = re.compile(r"certificate verify failed: (?P<reason>[^'\"()\]]+)")


def connection_reason(exc: BaseException, connect_timeout: float, read_timeout: float) -> str:
    """The gist of a requests failure (``Connection refused``, ``no answer within 15 s``), never a repr."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"no answer within {connect_timeout:g} s"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"no answer within {read_timeout:g} s"
    if isinstance(exc, requests.exceptions.SSLError):
        found = _CERTIFICATE.search(text)
        return f"certificate verify failed: {found['reason'].strip()}" if found else "the TLS handshake failed"
    found = _ERRNO.search(text)
    if found:
        return found["reason"].strip()
    if "RemoteDisconnected" in text or "Connection aborted" in text or "reset" in text.lower():
        return "the connection was closed before an answer came"
    if "timed out" in text.lower():
        return f"no answer within {connect_timeout:g} s"
    return type(exc).__name__
