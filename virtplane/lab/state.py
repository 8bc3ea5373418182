"""Where the lab keeps its running endpoints' details: ``$VIRTPLANE_LAB_DIR`` or ``./.lab``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from virtplane.lab.fakepve import FakepveInstance
from virtplane.lab.process import Simulator
from virtplane.lab.vcsim import VcsimInstance


@dataclass
class Lab:
    """The lab's endpoints; either may be missing (a half-started or half-stopped lab)."""

    vsphere: VcsimInstance | None = None
    proxmox: FakepveInstance | None = None

    def running(self) -> list[Simulator]:
        """The endpoints the lab knows of (started, not yet stopped)."""
        return [e for e in (self.vsphere, self.proxmox) if e is not None]

    def alive(self) -> bool:
        return all(e is not None and e.alive() for e in (self.vsphere, self.proxmox))

    def stop(self) -> None:
        for endpoint in self.running():
            endpoint.stop()


def lab_dir() -> Path:
    return Path(os.environ.get("VIRTPLANE_LAB_DIR", ".lab")).resolve()


def _state_file() -> Path:
    return lab_dir() / "state.json"


def load() -> Lab | None:
    try:
        data = json.loads(_state_file().read_text())
    except (OSError, ValueError):
        return None
    try:
        return Lab(vsphere=VcsimInstance(**data["vsphere"]) if data.get("vsphere") else None,
                   proxmox=FakepveInstance(**data["proxmox"]) if data.get("proxmox") else None)
    except TypeError:
        return None  # written by another version of virtplane


def save(lab: Lab) -> None:
    _state_file().parent.mkdir(parents=True, exist_ok=True)
    _state_file().write_text(json.dumps({
        "vsphere": lab.vsphere.to_json() if lab.vsphere else None,
        "proxmox": lab.proxmox.to_json() if lab.proxmox else None,
    }, indent=2))


def clear() -> None:
    _state_file().unlink(missing_ok=True)


def shell_exports(lab: Lab) -> str:
    """``export`` lines for a shell; passwords are read from their files, never printed."""
    return "\n".join(line for endpoint in lab.running() for line in endpoint.shell_exports())
