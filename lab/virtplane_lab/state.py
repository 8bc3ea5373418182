"""Where the lab keeps its running endpoints' details: ``$VIRTPLANE_LAB_DIR``, else a per-user directory
(``$XDG_STATE_HOME/virtplane/lab``, by default ``~/.local/state/virtplane/lab``), so ``virtplane lab status`` and
``virtplane lab env`` find the running lab from any directory. The lab's stack locks live there too
(``VIRTPLANE_LOCK_DIR``, exported by ``virtplane lab env``): every lab's simulators report the same backend
identities (one vcsim instance UUID, one host LAB-HV1), so two labs sharing the default lock directory would
take each other's runs for their own."""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from virtplane_lab.fakepve import FakepveInstance
from virtplane_lab.hyperv import HypervInstance
from virtplane_lab.libvirtd import LibvirtInstance
from virtplane_lab.process import Simulator
from virtplane_lab.vcsim import VcsimInstance
from virtplane_lab.xenserver import XenserverInstance


@dataclass
class Lab:
    """The lab's endpoints; any may be missing (a half-started or half-stopped lab, or a state file written
    before the lab had a Hyper-V host or a libvirt daemon)."""

    vsphere: VcsimInstance | None = None
    proxmox: FakepveInstance | None = None
    hyperv: HypervInstance | None = None
    libvirt: LibvirtInstance | None = None
    xenserver: XenserverInstance | None = None

    def running(self) -> list[Simulator | LibvirtInstance]:
        """The endpoints the lab knows of (started, not yet stopped)."""
        return [e for e in (self.vsphere, self.proxmox, self.hyperv, self.xenserver, self.libvirt) if e is not None]

    def complete(self) -> bool:
        """Every endpoint of today's lab is there (alive or not)."""
        return len(self.running()) == 5

    def alive(self) -> bool:
        """Every endpoint the lab knows of runs (an older two-endpoint lab still counts as running)."""
        return bool(self.running()) and all(e.alive() for e in self.running())

    def stop(self) -> None:
        for endpoint in self.running():
            endpoint.stop()


def lab_dir() -> Path:
    configured = os.environ.get("VIRTPLANE_LAB_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home).expanduser().resolve() / "virtplane" / "lab"


def lock_dir() -> Path:
    """The stack locks of runs against this lab."""
    return lab_dir() / "locks"


def _state_file() -> Path:
    return lab_dir() / "state.json"


def _from(data: dict[str, Any], key: str, cls: type[Any]) -> Any:
    return cls(**data[key]) if data.get(key) else None


def load() -> Lab | None:
    try:
        data = json.loads(_state_file().read_text())
    except (OSError, ValueError):
        return None
    try:
        return Lab(vsphere=_from(data, "vsphere", VcsimInstance), proxmox=_from(data, "proxmox", FakepveInstance),
                   hyperv=_from(data, "hyperv", HypervInstance),
                   xenserver=_from(data, "xenserver", XenserverInstance),
                   libvirt=_from(data, "libvirt", LibvirtInstance))
    except TypeError:
        return None  # written by another version of virtplane


def save(lab: Lab) -> None:
    _state_file().parent.mkdir(parents=True, exist_ok=True)
    _state_file().write_text(json.dumps({
        "vsphere": lab.vsphere.to_json() if lab.vsphere else None,
        "proxmox": lab.proxmox.to_json() if lab.proxmox else None,
        "hyperv": lab.hyperv.to_json() if lab.hyperv else None,
        "libvirt": lab.libvirt.to_json() if lab.libvirt else None,
        "xenserver": lab.xenserver.to_json() if lab.xenserver else None,
    }, indent=2))


def clear() -> None:
    _state_file().unlink(missing_ok=True)


def shell_exports(lab: Lab) -> str:
    """``export`` lines for a shell (the endpoints' settings and the lab's lock directory); passwords are read from
    their files, never printed."""
    lines = [line for endpoint in lab.running() for line in endpoint.shell_exports()]
    return "\n".join([*lines, f"export VIRTPLANE_LOCK_DIR={shlex.quote(str(lock_dir()))}"])
