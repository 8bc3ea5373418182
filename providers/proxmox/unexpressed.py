"""What a Proxmox VE VM's configuration holds that no VirtualMachine field can say (keys of ``qm config``, PVE's
qm.conf manual): left as it is, and listed by ``virtplane import`` in a comment on the VM."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from virtplane.providers.proxmox.config import split_options

_KEYS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(pattern), words) for pattern, words in (
    (r"^usb\d+$", "a USB device"), (r"^serial\d+$", "a serial port"), (r"^parallel\d+$", "a parallel port"),
    (r"^audio\d+$", "a sound device"), (r"^virtiofs\d+$", "a shared directory (virtiofs)"),
    (r"^tpmstate\d+$", "a virtual TPM"), (r"^rng\d+$", "a random number generator"), (r"^watchdog$", "a watchdog"),
    (r"^args$", "extra QEMU arguments"), (r"^hookscript$", "a hook script"), (r"^unused\d+$", "an unused disk"),
))
_DRIVE = re.compile(r"^(ide|sata|scsi)\d+$")


def unexpressed(config: Mapping[str, Any]) -> list[str]:
    """One description per configuration key the spec cannot express, in key order (``usb0 (a USB device)``)."""
    found = []
    for key in sorted(config):
        if _DRIVE.match(key):
            volume, options = split_options(str(config[key]))
            volume = volume or options.get("file", "")
            if options.get("media") == "cdrom" and volume not in ("", "none", "cdrom") and "cloudinit" not in volume:
                found.append(f"{key} (a CD/DVD drive holding {volume})")
            continue
        words = next((words for pattern, words in _KEYS if pattern.match(key)), None)
        if words is not None:
            found.append(f"{key} ({words})")
    return found
