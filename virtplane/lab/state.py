"""Where the lab keeps its running endpoints' details: ``$VIRTPLANE_LAB_DIR`` or ``./.lab``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from virtplane.lab.vcsim import VcsimInstance


def lab_dir() -> Path:
    return Path(os.environ.get("VIRTPLANE_LAB_DIR", ".lab")).resolve()


def _state_file() -> Path:
    return lab_dir() / "state.json"


def load() -> VcsimInstance | None:
    try:
        data = json.loads(_state_file().read_text())
    except (OSError, ValueError):
        return None
    return VcsimInstance(**data["vsphere"])


def save(vsphere: VcsimInstance) -> None:
    _state_file().parent.mkdir(parents=True, exist_ok=True)
    _state_file().write_text(json.dumps({"vsphere": vsphere.to_json()}, indent=2))


def clear() -> None:
    _state_file().unlink(missing_ok=True)


def shell_exports(vsphere: VcsimInstance) -> str:
    """``export`` lines for a shell; the password is read from its file, never printed."""
    return "\n".join([
        f"export VSPHERE_SERVER={vsphere.host}",
        f"export VSPHERE_USER={vsphere.user}",
        f'export VSPHERE_PASSWORD="$(cat {vsphere.password_file})"',
        f"export VSPHERE_CA_FILE={vsphere.ca_file}",
    ])
