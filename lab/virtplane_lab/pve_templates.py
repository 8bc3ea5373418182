"""The OS templates the lab's fake Proxmox VE cluster holds for containers: ``vztmpl`` volumes on storage ``local``.

On a real node they are downloaded with ``pveam download local <template>`` and listed by
``GET /nodes/{node}/storage/local/content?content=vztmpl`` (volume ids ``local:vztmpl/<file>``, format ``tzst`` or
``txz``); the file names below are those of Proxmox's template index (``pveam available``). fakepve lists what a
storage's ``volumes`` hold, and once a storage holds any template, a container create naming one it does not hold
fails as PVE's does ("volume … does not exist").
"""

from __future__ import annotations

from typing import Any

STORAGE = "local"
TEMPLATES: dict[str, dict[str, Any]] = {
    "vztmpl/debian-12-standard_12.7-1_amd64.tar.zst": {"format": "tzst", "size": 126_515_062},
    "vztmpl/alpine-3.20-default_20240908_amd64.tar.xz": {"format": "txz", "size": 3_154_868},
}
DEBIAN = f"{STORAGE}:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"


def seed_templates(storages: dict[str, dict[str, Any]]) -> None:
    """Put the lab's templates on ``local`` (fakepve's ``storages`` table), as ``pveam download`` would."""
    volumes = storages[STORAGE].setdefault("volumes", {})
    for volname, facts in TEMPLATES.items():
        volumes.setdefault(volname, {"content": "vztmpl", "ctime": 1_725_753_600, **facts})
