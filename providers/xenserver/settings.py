"""XenServer / XCP-ng endpoint settings: Endpoint inputs first, then the XENSERVER_* environment variables.

``server`` is the pool master's URL (``https://xs1.example.com/``; a bare host name means https on port 443). A
pool member answers with the master's address, which the client follows once, keeping the scheme and port. TLS is
verified: against ``ca_file`` when given, else the system's CAs; ``insecure`` turns verification off and only when
set explicitly. The password is a SecretStr (masked wherever the engine prints). ``template`` is the template a VM
declared without ``clone_from`` is made from; ``sr`` the SR new disks go to (default: the pool's default SR);
``network_device`` the NIC whose pool-wide network carries the VLAN networks (default: the management
interface's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from virtplane.endpoint_settings import flag, gather
from virtplane.errors import SpecError

ENV = {
    "server": "XENSERVER_URL",
    "username": "XENSERVER_USERNAME",
    "password": "XENSERVER_PASSWORD",
    "ca_file": "XENSERVER_CA_FILE",
    "insecure": "XENSERVER_INSECURE",
    "template": "XENSERVER_TEMPLATE",
    "sr": "XENSERVER_SR",
    "network_device": "XENSERVER_NETWORK_DEVICE",
}
INPUT_ONLY = ("task_timeout", "shutdown_timeout")
DEFAULT_TEMPLATE = "Other install media"  # the blank HVM template every XenServer and XCP-ng pool ships


class XenserverSettings(BaseModel):
    """How to reach and log into one pool, and the defaults for what is made on it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint_name: str
    url: str  # normalized: scheme://host[:port]/
    username: str
    password: SecretStr
    ca_file: str | None = None
    insecure: bool = False
    template: str = DEFAULT_TEMPLATE
    sr: str | None = None
    network_device: str | None = None
    task_timeout: float = Field(default=600.0, gt=0)
    shutdown_timeout: float = Field(default=120.0, ge=0)

    @property
    def verify(self) -> bool:
        return not self.insecure


def settings_from(endpoint: str, inputs: Mapping[str, Any], environ: Mapping[str, str]) -> XenserverSettings:
    values, problems = gather("a XenServer endpoint", inputs, environ, ENV, INPUT_ONLY)
    flag(values, "insecure", problems)
    for name in ("server", "username", "password"):
        if not values.get(name):
            problems.append((name, f"is required: set it on the Endpoint or in {ENV[name]}"))
    if values.get("server"):
        url = _url(str(values.pop("server")))
        if url is None:
            problems.append(("server", "expected the pool master's URL, like https://xs1.example.com/"))
        else:
            values["url"] = url
    if problems:
        raise SpecError("Endpoint", endpoint, problems)
    try:
        return XenserverSettings(endpoint_name=endpoint, **values)
    except ValidationError as exc:
        raise SpecError("Endpoint", endpoint, [(".".join(map(str, e["loc"])), e["msg"]) for e in exc.errors()]
                        ) from None


def _url(text: str) -> str | None:
    parts = urlsplit(text if "://" in text else f"https://{text}")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return None
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return None
    return urlunsplit((parts.scheme, parts.netloc, "/", "", ""))


def with_host(url: str, host: str) -> str:
    """``url`` pointed at another host of the pool (the master a member named), same scheme and port."""
    parts = urlsplit(url)
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, "/", "", ""))
