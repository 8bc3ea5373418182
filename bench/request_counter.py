"""Counting the HTTP requests a measurement makes, for the benchmarks' side-by-side columns."""

from __future__ import annotations

import http.client
import threading
from typing import Any


class RequestCounter:
    """Counts the HTTP requests this process sends (each SOAP call, each PVE API call is one), by wrapping
    http.client's putrequest for the duration of a measurement: every request passes there (requests, urllib3,
    pyvmomi or http.client itself), and nothing of virtplane's or the client libraries' code is touched."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self._original = http.client.HTTPConnection.putrequest

    def __enter__(self) -> RequestCounter:
        counter = self

        def counting(conn: http.client.HTTPConnection, *args: Any, **kwargs: Any) -> Any:
            with counter._lock:
                counter.count += 1
            return counter._original(conn, *args, **kwargs)

        http.client.HTTPConnection.putrequest = counting  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        http.client.HTTPConnection.putrequest = self._original  # type: ignore[method-assign]
