"""Facts about the pool that drivers share within a plan: the pool's own record (uuid, master, default SR) and the
NIC device VLAN networks are made on. Read lazily, kept until ``refresh()`` (each observe starts with one)."""

from __future__ import annotations

import threading
from typing import Any

from virtplane.errors import ProviderError
from virtplane.providers.xenserver.client import XapiClient
from virtplane.providers.xenserver.pool_reader import PoolReader
from virtplane.providers.xenserver.records import NULL
from virtplane.providers.xenserver.settings import ENV, XenserverSettings
from virtplane.providers.xenserver.vlans import management_device


class PoolFacts:
    def __init__(self, client: XapiClient, settings: XenserverSettings) -> None:
        self._reader = PoolReader(client)
        self._settings = settings
        self._lock = threading.Lock()
        self._pool: tuple[str, dict[str, Any]] | None = None
        self._device: str | None = None

    def refresh(self) -> None:
        with self._lock:
            self._pool, self._device = None, None

    def record(self) -> dict[str, Any]:
        with self._lock:
            if self._pool is None:
                self._pool = self._reader.pool()
            return self._pool[1]

    def uuid(self) -> str:
        return str(self.record()["uuid"])

    def master(self) -> str:
        return str(self.record()["master"])

    def default_sr(self) -> str | None:
        sr = str(self.record().get("default_SR") or NULL)
        return None if sr == NULL else sr

    def device(self, pifs: dict[str, dict[str, Any]]) -> str:
        """The NIC device VLAN networks are on: the endpoint's setting, else the master's management device."""
        if self._settings.network_device:
            return self._settings.network_device
        found = management_device(pifs, self.master())
        if found is None:
            raise ProviderError(f"XenServer endpoint '{self._settings.endpoint_name}' has no management interface on "
                                f"its master to put VLAN networks on; set {ENV['network_device']} (e.g. eth0)")
        return found
