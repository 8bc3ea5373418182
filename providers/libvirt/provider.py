"""The libvirt Provider: one libvirt connection (one host), its kind drivers and its host facts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from pydantic import BaseModel

from virtplane.inventory import Host
from virtplane.providers.base import Provider
from virtplane.providers.libvirt import client
from virtplane.providers.libvirt import settings as settings_module
from virtplane.providers.libvirt.host import HostReader
from virtplane.providers.libvirt.network import NetworkDriver
from virtplane.providers.libvirt.settings import ENV, INPUT_ONLY, LibvirtSettings
from virtplane.providers.libvirt.vm import VirtualMachineDriver


class LibvirtProvider(Provider):
    name = "libvirt"
    settings_model = LibvirtSettings
    setting_names = (*ENV, *INPUT_ONLY)
    identity_settings = frozenset({"uri"})  # one host
    unserved_reasons = {"Container": "libvirt-lxc is not supported yet: it needs cgroups managed for each container "
                                     "and a root filesystem already on the host, which libvirt's API cannot bring "
                                     "there from a template"}
    offers_linked_clones = True  # a qcow2 overlay whose backing store is the source domain's volume

    def __init__(self, conn: Any, settings: LibvirtSettings) -> None:
        self.connection = conn  # libvirt's virConnect, thread-safe
        self.settings = settings
        self.host = HostReader(conn, settings)
        self.drivers = {
            "VirtualMachine": VirtualMachineDriver(conn, self.host, settings),
            "Network": NetworkDriver(conn, settings),
        }

    @classmethod
    def settings_from(cls, endpoint: str, inputs: Mapping[str, Any], environ: Mapping[str, str]) -> BaseModel:
        return settings_module.settings_from(endpoint, inputs, environ)

    @classmethod
    def connect(cls, settings: BaseModel) -> LibvirtProvider:
        config = cast(LibvirtSettings, settings)
        return cls(client.open_connection(config.uri, config.endpoint_name), config)

    @classmethod
    def name_problem(cls, kind: str, name: str) -> str | None:
        """libvirt takes any domain or network name without '/' (its names become file names: the domain's and
        network's XML, and virtplane's volume names, which hold the domain's name)."""
        if "/" in name:
            return "must not contain '/' (libvirt names its files after it)"
        return "must be at most 200 characters (volume names hold it)" if len(name) > 200 else None

    def identity(self) -> str:
        """The host's UUID (``getCapabilities`` host/uuid); the test driver has none, and each of its connections
        is a world of its own, so its URI stands in."""
        uuid = self.host.cpu().uuid
        return f"host {uuid}" if uuid else f"test driver {self.settings.uri}"

    def hosts(self) -> list[Host]:
        return [self.host.facts()]

    def close(self) -> None:
        try:
            self.connection.close()
        except Exception as error:  # closing a connection that broke: nothing left to release
            if not client.is_libvirt_error(error):
                raise
