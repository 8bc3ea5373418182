"""Wrappers around the provider's HTTP transport, to watch or disturb traffic at the wire (our code runs as is)."""

from __future__ import annotations

import threading
from http.client import RemoteDisconnected
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from urllib3.exceptions import ProtocolError

from virtplane.providers.proxmox.provider import ProxmoxProvider


class _Wrapper(BaseAdapter):
    def __init__(self, inner: BaseAdapter):
        super().__init__()
        self.inner = inner

    def close(self) -> None:
        self.inner.close()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        return self.inner.send(request, **kwargs)


class LoseAnswer(_Wrapper):
    """The first request for ``method`` on a path ending with ``suffix`` reaches PVE, but its answer is lost."""

    def __init__(self, inner: BaseAdapter, method: str, suffix: str):
        super().__init__(inner)
        self.method, self.suffix, self.lost = method, suffix, 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = self.inner.send(request, **kwargs)
        if not self.lost and request.method == self.method and urlsplit(request.url).path.endswith(self.suffix):
            self.lost += 1
            raise requests.ConnectionError(ProtocolError("Connection aborted.", RemoteDisconnected(
                "Remote end closed connection without response")), request=request)
        return response


class CountInFlight(_Wrapper):
    """Counts requests by (method, path) and the most that were in flight at once."""

    def __init__(self, inner: BaseAdapter):
        super().__init__(inner)
        self.seen: list[tuple[str, str]] = []
        self.urls: list[tuple[str, str]] = []  # (method, URL with its query)
        self.peak = 0
        self._now = 0
        self._lock = threading.Lock()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        with self._lock:
            self.seen.append((str(request.method), urlsplit(request.url).path))
            self.urls.append((str(request.method), str(request.url)))
            self._now += 1
            self.peak = max(self.peak, self._now)
        try:
            return self.inner.send(request, **kwargs)
        finally:
            with self._lock:
                self._now -= 1


def wrap(provider: ProxmoxProvider, make: Any, *args: Any) -> Any:
    """Put ``make(current transport, *args)`` in front of the provider's HTTPS transport (reads too); returns it."""
    provider.client.direct_reads = False
    session = provider.client.session
    wrapper = make(session.get_adapter("https://"), *args)
    session.mount("https://", wrapper)
    return wrapper


class RecordUrls(_Wrapper):
    """Every request's method and full URL (query included), in order."""

    def __init__(self, inner: BaseAdapter):
        super().__init__(inner)
        self.seen: list[tuple[str, str]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.seen.append((str(request.method), str(request.url)))
        return self.inner.send(request, **kwargs)
