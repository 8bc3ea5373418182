"""vSphere endpoint settings: Endpoint inputs first, then the VSPHERE_* environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from virtplane.errors import SpecError
from virtplane.specs import field_path

ENV = {
    "server": "VSPHERE_SERVER",
    "username": "VSPHERE_USER",
    "password": "VSPHERE_PASSWORD",
    "datacenter": "VSPHERE_DATACENTER",
    "cluster": "VSPHERE_CLUSTER",
    "datastore": "VSPHERE_DATASTORE",
    "ca_file": "VSPHERE_CA_FILE",
    "insecure": "VSPHERE_ALLOW_UNVERIFIED_SSL",
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class VsphereSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    server: str
    username: str
    password: SecretStr
    datacenter: str | None = None
    cluster: str | None = None
    datastore: str | None = None
    ca_file: str | None = None
    insecure: bool = False

    @property
    def host(self) -> str:
        return self.server.rsplit(":", 1)[0] if self._has_port() else self.server

    @property
    def port(self) -> int:
        return int(self.server.rsplit(":", 1)[1]) if self._has_port() else 443

    def _has_port(self) -> bool:
        _head, sep, tail = self.server.rpartition(":")
        return bool(sep) and tail.isdigit() and "]" not in tail


def settings_from(endpoint: str, inputs: Mapping[str, Any], environ: Mapping[str, str]) -> VsphereSettings:
    values: dict[str, Any] = {}
    problems = []
    for field, variable in ENV.items():
        if inputs.get(field) is not None:
            values[field] = inputs[field]
        elif environ.get(variable) is not None:
            raw = environ[variable]
            if field == "insecure":
                if raw.strip().lower() not in _TRUE | _FALSE:
                    problems.append((field, f"{variable}={raw!r} is not a boolean (use true or false)"))
                    continue
                values[field] = raw.strip().lower() in _TRUE
            else:
                values[field] = raw
    for field in ("server", "username", "password"):
        if not values.get(field):
            problems.append((field, f"is not set: pass {field}=… to the Endpoint or set {ENV[field]}"))
    if problems:
        raise SpecError("Endpoint", endpoint, problems)
    server = str(values["server"]).removeprefix("https://").split("/", 1)[0]
    values["server"] = server
    try:
        return VsphereSettings.model_validate(values)
    except ValidationError as exc:
        raise SpecError("Endpoint", endpoint, [(field_path(e["loc"]), e["msg"]) for e in exc.errors()]
                        ) from None
