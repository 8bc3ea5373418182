"""Reading a committed inventory file for an offline check (``virtplane check --inventory``, the CrossGuard pack).

A PR gate that can pass because its input was wrong is worse than none, so a file that could turn a mandatory finding
into "cannot verify" is an error, in one sentence naming the file and what is wrong: not JSON, not a
``virtplane.inventory/1`` document, no hosts for an endpoint the VMs use, or hosts of another hypervisor there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from virtplane.errors import VirtplaneError
from virtplane.inventory import SCHEMA, Inventory
from virtplane.specs import field_path

WRITE_IT = "write it with `virtplane inventory --out FILE`"


def load(path: Path) -> Inventory:
    try:
        text = path.read_text()
    except OSError as exc:
        raise VirtplaneError(f"cannot read inventory {path}: {exc.strerror}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VirtplaneError(f"inventory {path} is not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        found = document.get("schema") if isinstance(document, dict) else None
        said = f"its schema is {found!r}" if found is not None else "it names no schema"
        raise VirtplaneError(f"inventory {path} is not a {SCHEMA} document: {said} ({WRITE_IT})")
    try:
        return Inventory.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = field_path(first["loc"])
        raise VirtplaneError(f"inventory {path} is not a {SCHEMA} document: {where}: {first['msg']}") from None


def require_coverage(inventory: Inventory, used: Mapping[str, str | None], path: Path) -> None:
    """Hosts for every endpoint in ``used`` (endpoint -> the hypervisor the stack declares, None if not known), of
    that hypervisor: otherwise a mandatory finding would become "cannot verify" and the check pass where the live
    one fails."""
    covered = sorted({host.endpoint for host in inventory.hosts})
    missing = sorted(name for name in used if name not in covered)
    if missing:
        names = ", ".join(f"'{name}'" for name in missing)
        has = f"it has hosts of {', '.join(repr(name) for name in covered)}" if covered else "it has no hosts"
        raise VirtplaneError(f"inventory {path} has no hosts of endpoint {names}, which the stack's VMs use ({has}); "
                             f"{WRITE_IT} for this stack")
    for name, kind in sorted(used.items()):
        others = sorted({host.hypervisor for host in inventory.by_endpoint(name)} - {kind})
        if kind is not None and others:
            raise VirtplaneError(f"inventory {path} lists {', '.join(others)} hosts for endpoint '{name}', which the "
                                 f"stack declares as {kind}")
