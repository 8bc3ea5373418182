"""``virtplane desktops``: a pool's desktops as a broker needs them, read live in one observe and one guest-state
read: name, number, host, power, address (from the guest tools, where they report one), vGPU profiles, whether it
is in use (and what told), and the golden image it was cloned from."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from virtplane.declared import DesiredStack
from virtplane.errors import VirtplaneError
from virtplane.pools.planning import describe
from virtplane.providers.base import Provider

COLUMNS = ["name", "number", "host", "power", "address", "vgpu", "in_use", "state", "template"]
SCHEMA = 1


def desktops(desired: DesiredStack, providers: Mapping[str, Provider], pool_name: str) -> list[dict[str, Any]]:
    pool = desired.pools.get(pool_name)
    if pool is None:
        known = ", ".join(sorted(desired.pools)) or "none"
        raise VirtplaneError(f"stack {desired.identity} declares no DesktopPool '{pool_name}' (pools: {known})")
    if pool.endpoint not in providers:  # a pool of no desktops on an endpoint nothing else uses
        return []
    driver = providers[pool.endpoint].driver("VirtualMachine")
    declared = {r.kind: {} for r in desired.resources.values()}
    for resource in desired.resources.values():
        if resource.endpoint == pool.endpoint:
            declared[resource.kind][resource.name] = resource.spec
    owned = driver.observe(desired.identity, declared).owned
    live = {name: observed for name, observed in owned.items() if pool.number_of(name) is not None}
    states = driver.guest_states(list(live.values())) if live else {}
    rows = []
    for name, observed in sorted(live.items(), key=lambda item: pool.number_of(item[0]) or 0):
        state = states.get(name)
        vgpus = [str(gpu.get("profile")) for gpu in observed.state.get("gpus") or [] if gpu.get("mode") == "vgpu"]
        rows.append({"name": name, "number": pool.number_of(name), "host": observed.state.get("node"),
                     "power": state.power if state else observed.state.get("power"),
                     "address": state.address if state else None, "vgpu": vgpus,
                     "in_use": state.in_use if state else None, "state": describe(state) if state else None,
                     "template": observed.owner.source if observed.owner else None})
    return rows


def render(pool: str, rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"schema": SCHEMA, "pool": pool, "desktops": rows}, indent=2)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "vgpu": ";".join(row["vgpu"]), "in_use": str(row["in_use"]).lower()})
    return buffer.getvalue()
