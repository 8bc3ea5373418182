"""libvirt endpoint settings: Endpoint inputs first, then the environment.

``uri`` is a libvirt connection URI (``qemu:///system``, ``qemu+ssh://root@kvm1/system``,
``qemu+tls://kvm1/system``, ``test:///abs/node.xml``), read from ``LIBVIRT_DEFAULT_URI`` as virsh does.
Authentication is libvirt's own (SSH keys and agent, TLS client certificates under /etc/pki, SASL): virtplane
holds no credential of its own, so it has none to leak. ``storage_pool`` is where new volumes go (default
``default``); ``network`` is the network a NIC that names no declared network and no existing one is refused
for, and the one the lab's NICs use (default ``default``). ``shutdown_timeout`` is how long a guest gets to
shut down cleanly (ACPI) before it is destroyed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from virtplane.errors import SpecError
from virtplane.providers.power import SHUTDOWN_TIMEOUT

ENV = {"uri": "LIBVIRT_DEFAULT_URI"}
INPUT_ONLY = ("storage_pool", "network", "shutdown_timeout")


class LibvirtSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint_name: str
    uri: str = Field(min_length=1)
    storage_pool: str = "default"
    network: str = "default"
    shutdown_timeout: float = Field(default=SHUTDOWN_TIMEOUT, ge=0)


def settings_from(endpoint: str, inputs: Mapping[str, Any], environ: Mapping[str, str]) -> LibvirtSettings:
    known = [*ENV, *INPUT_ONLY]
    problems = [(name, f"unknown setting for a libvirt endpoint; known: {', '.join(known)}")
                for name in sorted(set(inputs) - set(known))]
    values = {name: inputs[name] for name in known if inputs.get(name) is not None}
    if "uri" not in values and environ.get(ENV["uri"]):
        values["uri"] = environ[ENV["uri"]]
    if not values.get("uri"):
        problems.append(("uri", f"is required: set it on the Endpoint or in {ENV['uri']} "
                                "(e.g. qemu:///system or qemu+ssh://root@host/system)"))
    if problems:
        raise SpecError("Endpoint", endpoint, problems)
    try:
        return LibvirtSettings(endpoint_name=endpoint, **values)
    except ValidationError as exc:
        raise SpecError("Endpoint", endpoint, [(".".join(map(str, e["loc"])), e["msg"]) for e in exc.errors()]
                        ) from None
