"""Hyper-V endpoint settings: Endpoint inputs first, then the HYPERV_* environment variables.

Transport: WinRM over HTTPS (5986) by default with the server's certificate verified (``ca_file`` or the
system's CAs; ``insecure`` turns verification off, only when set explicitly). ``tls=False`` uses HTTP
(5985), where Negotiate/NTLM/Kerberos/CredSSP wrap every message (WinRM message encryption). Basic
authentication sends the password as it is: it is allowed over HTTPS, and over HTTP only with
``allow_unencrypted=True``.

Authentication: ``negotiate`` by default (Kerberos in a domain, NTLM otherwise); ``credssp`` delegates the
user's credentials to the host, which it needs to open VHDs on an SMB share with the user's identity (the
"double hop": with Negotiate the host reaches the share anonymously and is denied); ``ntlm``, ``kerberos`` and
``basic`` (local accounts over HTTPS) as asked.

``server`` is ``host``, ``host:port``, an IPv6 address (``fe80::1``) or ``[IPv6]:port``.
``connections`` is how many WinRM shells (runspace pools) the endpoint opens at most, so apply's parallel
workers run at the same time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from virtplane.endpoint_settings import gather
from virtplane.errors import SpecError
from virtplane.specs import field_path

ENV = {
    "server": "HYPERV_SERVER",
    "username": "HYPERV_USERNAME",
    "password": "HYPERV_PASSWORD",
    "auth": "HYPERV_AUTH",
    "tls": "HYPERV_TLS",
    "ca_file": "HYPERV_CA_FILE",
    "insecure": "HYPERV_INSECURE",
    "allow_unencrypted": "HYPERV_ALLOW_UNENCRYPTED",
    "switch": "HYPERV_SWITCH",
    "vhd_path": "HYPERV_VHD_PATH",
}
INPUT_ONLY = ("operation_timeout", "shutdown_timeout", "connections")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class HypervSettings(BaseModel):
    """How to reach and log into one Hyper-V host, and the defaults for what is placed on it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint_name: str
    host: str
    port: int = Field(ge=1, le=65535)
    username: str
    password: SecretStr
    auth: Literal["negotiate", "ntlm", "kerberos", "credssp", "basic"] = "negotiate"
    tls: bool = True
    ca_file: str | None = None
    insecure: bool = False
    allow_unencrypted: bool = False
    switch: str | None = None  # the VM switch networks are VLANs on
    vhd_path: str | None = None  # where new VHDX files go (default: the host's VirtualHardDiskPath)
    operation_timeout: int = Field(default=120, gt=0)
    shutdown_timeout: float = Field(default=120.0, ge=0)
    connections: int = Field(default=4, ge=1, le=64)

    @property
    def address_host(self) -> str:
        """The host as it stands in a URL: an IPv6 address in brackets."""
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def address(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.address_host}:{self.port}/wsman"

    @property
    def cert_validation(self) -> bool | str:
        if self.insecure:
            return False
        return self.ca_file or True


def _flag(value: Any) -> bool | Any:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return value


def settings_from(endpoint: str, inputs: Mapping[str, Any], environ: Mapping[str, str]) -> HypervSettings:
    values, problems = gather("a Hyper-V endpoint", inputs, environ, ENV, INPUT_ONLY)
    for name in ("tls", "insecure", "allow_unencrypted"):
        if name in values:
            values[name] = _flag(values[name])
    for name in ("server", "username", "password"):
        if not values.get(name):
            problems.append((name, f"is required: set it on the Endpoint or in {ENV[name]}"))
    if problems:
        raise SpecError("Endpoint", endpoint, problems)
    try:
        host, port = split_server(str(values.pop("server")))
    except ValueError as exc:
        raise SpecError("Endpoint", endpoint, [("server", str(exc))]) from None
    tls = values.get("tls", True)
    if isinstance(values.get("auth"), str):
        values["auth"] = values["auth"].lower()
    try:
        settings = HypervSettings(endpoint_name=endpoint, host=host,
                                  port=int(port) if port else (5986 if tls is not False else 5985), **values)
    except (ValidationError, ValueError) as exc:
        details = exc.errors() if isinstance(exc, ValidationError) else [{"loc": ("server",), "msg": str(exc)}]
        raise SpecError("Endpoint", endpoint, [(field_path(e["loc"]), e["msg"]) for e in details]) from None
    if settings.auth == "basic" and not settings.tls and not settings.allow_unencrypted:
        raise SpecError("Endpoint", endpoint, [(
            "auth", "Basic authentication over HTTP would send the password in clear text; use TLS (tls=true, "
                    "the default), NTLM (auth='ntlm'), or set allow_unencrypted=true for a lab on loopback")])
    return settings


def split_server(server: str) -> tuple[str, str]:
    """``host``, ``host:port``, a bare IPv6 address or ``[IPv6]:port`` -> (host, port or "")."""
    import ipaddress

    text = server.strip()
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError(f"'{server}' is not host, host:port or [IPv6 address]:port")
        port = rest[1:]
    elif text.count(":") > 1:
        host, port = text, ""
    else:
        host, _, port = text.partition(":")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise ValueError(f"'{host}' is not an IPv6 address") from None
    if not host or (port and not port.isdigit()):
        raise ValueError(f"'{server}' is not host, host:port or [IPv6 address]:port")
    return host, port
