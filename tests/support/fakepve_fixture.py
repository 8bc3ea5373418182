"""The ``fakepve`` fixture, overriding fakepve's own: the same fresh fake per test (same marker options), but a
``HardwarePve``, so every node carries the lab's seeded hardware (see ``virtplane_lab.pve_hardware``).

It reuses the serving thread and option parsing of fakepve's pytest plugin (the version pinned in pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fakepve.pytest_plugin import HOST, _options, _Serving

from virtplane_lab.fakepve_hardware import HardwarePve


@pytest.fixture
def fakepve(request: pytest.FixtureRequest, _fakepve_pki: tuple[str, str]) -> Iterator[Any]:
    """A started HardwarePve for one test (options from the ``fakepve`` marker: user, password, time_scale)."""
    options = _options(request)
    pve = HardwarePve(user=options["user"], password=options["password"], host=HOST, port=0)
    pve.time_scale = options["time_scale"]
    serving = _Serving(pve, *_fakepve_pki)
    try:
        yield pve
    finally:
        serving.stop()
