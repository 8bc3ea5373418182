"""Proxmox VE endpoint settings: Endpoint inputs first, then the PROXMOX_VE_* environment variables.

The variable names follow the bpg/proxmox Terraform provider, which Proxmox users already set. Every secret
is a SecretStr field (the engine masks those values in everything it prints); an API token is split into
its id (``user@realm!tokenid``, not secret) and its secret at parse time, so the secret alone is masked too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from virtplane.endpoint_settings import flag, gather
from virtplane.errors import SpecError
from virtplane.specs import field_path

ENV = {
    "endpoint": "PROXMOX_VE_ENDPOINT",
    "username": "PROXMOX_VE_USERNAME",
    "password": "PROXMOX_VE_PASSWORD",
    "api_token": "PROXMOX_VE_API_TOKEN",
    "insecure": "PROXMOX_VE_INSECURE",
    "ca_file": "PROXMOX_VE_CA_FILE",
    "node": "PROXMOX_VE_NODE",
    "storage": "PROXMOX_VE_STORAGE",
    "bridge": "PROXMOX_VE_BRIDGE",
    "snippets_storage": "PROXMOX_VE_SNIPPETS_STORAGE",
    "snippets_path": "PROXMOX_VE_SNIPPETS_PATH",
}
INPUT_ONLY = ("task_timeout", "request_timeout")
DEFAULT_PORT = 8006
_TOKEN = re.compile(r"^(?P<user>[^\s!=@]+@[^\s!=@]+)!(?P<name>[A-Za-z][A-Za-z0-9._-]*)=(?P<secret>\S+)$")


class ProxmoxSettings(BaseModel):
    """How to reach and log into one Proxmox VE cluster, and the defaults for what is placed on it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint_name: str
    host: str
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    api_token_id: str | None = None  # user@realm!tokenid: who, not a secret
    api_token_secret: SecretStr | None = None
    insecure: bool = False
    ca_file: str | None = None
    node: str | None = None
    storage: str | None = None
    bridge: str = "vmbr0"
    # Cloud-init snippets (providers/proxmox/cloudinit.py): a storage with the snippets content type, and its snippets
    # directory as mounted where virtplane runs (PVE's API cannot upload snippets).
    snippets_storage: str | None = None
    snippets_path: str | None = None
    task_timeout: float = Field(default=300.0, gt=0)
    request_timeout: float = Field(default=60.0, gt=0)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}/"

    @property
    def principal(self) -> str:
        """Who we act as, for messages: ``token root@pam!ci`` or ``user root@pam``."""
        return f"token {self.api_token_id}" if self.api_token_id else f"user {self.username}"

    @property
    def verify(self) -> bool | str:
        """The CA bundle when given, else True (the system's CAs); False only when ``insecure`` is set."""
        if self.insecure:
            return False
        return self.ca_file or True


def settings_from(endpoint: str, inputs: Mapping[str, Any], environ: Mapping[str, str]) -> ProxmoxSettings:
    values, problems = gather("a Proxmox endpoint", inputs, environ, ENV, INPUT_ONLY)
    flag(values, "insecure", problems)
    if not values.get("endpoint"):
        problems.append(("endpoint", f"is not set: pass endpoint=… to the Endpoint or set {ENV['endpoint']}"))
    else:
        problems += _address(str(values.pop("endpoint")), values)
    problems += _credentials(values)
    if problems:
        raise SpecError("Endpoint", endpoint, problems)
    try:
        return ProxmoxSettings.model_validate({"endpoint_name": endpoint, **values})
    except ValidationError as exc:
        raise SpecError("Endpoint", endpoint, [(field_path(e["loc"]), e["msg"]) for e in exc.errors()]
                        ) from None


def _address(text: str, values: dict[str, Any]) -> list[tuple[str, str]]:
    """``https://host:8006/``, ``host:8006`` or ``host`` into host and port."""
    parts = urlsplit(text if "://" in text else f"https://{text}")
    if parts.scheme != "https" or not parts.hostname:
        return [("endpoint", f"expected an https URL like https://pve.example.com:8006/ or host[:port], got {text!r}")]
    try:
        port = parts.port
    except ValueError:
        return [("endpoint", f"the port in {text!r} is not a number from 1 to 65535")]
    values["host"] = parts.hostname
    values["port"] = port or DEFAULT_PORT
    return []


def _credentials(values: dict[str, Any]) -> list[tuple[str, str]]:
    token = values.pop("api_token", None)
    if token is not None:
        raw = token.get_secret_value() if isinstance(token, SecretStr) else str(token)
        match = _TOKEN.match(raw.strip())
        if match is None:
            return [("api_token", "expected the form user@realm!tokenid=secret (as PVE shows it when the token is "
                                  f"made); check {ENV['api_token']}")]
        values["api_token_id"] = f"{match['user']}!{match['name']}"
        values["api_token_secret"] = match["secret"]
        return []  # a password given too is kept, unused: as a SecretStr it is still masked wherever it shows
    username, password = values.get("username"), values.get("password")
    if not username and not password:
        return [("api_token", f"no credentials: pass api_token=… (or set {ENV['api_token']}), or username=… and "
                              f"password=… (or set {ENV['username']} and {ENV['password']})")]
    if not username:
        return [("username", f"is not set: pass username=… to the Endpoint or set {ENV['username']}")]
    if not password:
        return [("password", f"is not set: pass password=… to the Endpoint or set {ENV['password']} "
                             f"(or use an API token: {ENV['api_token']})")]
    if "@" not in str(username):
        values["username"] = f"{username}@pam"  # PVE's default realm, as its login form assumes
    return []
