"""What a GPU board and a vGPU profile name say, where the hypervisor does not: pure lookups, no I/O.

- Boards, by PCI vendor and device id: the frame buffer and the size of BAR1 (the BAR that maps the frame
  buffer; BARs are powers of two), and whether the board's vGPU is SR-IOV based (NVIDIA Ampere and later: such
  vGPUs are virtual functions, so they need the host's IOMMU and SR-IOV on). Sizes are NVIDIA's product briefs'.
  A board that maps more than 16 GB (BAR1 of 16 GiB or more, plus its other BARs) needs UEFI firmware and 64-bit
  MMIO in the VM (VMware KB 2142307, VMware's "How to Enable Nvidia V100 GPU in Passthrough mode on vSphere").
- NVIDIA vGPU profile names: ``grid_<board>-<frame buffer in GB><series>`` on vSphere (``grid_a100-20c``),
  ``grid_<board>-<slices>-<GB><series>`` for MIG-backed ones (``grid_a100-3-20c``); Proxmox mdev types carry
  ``framebuffer=<MiB>M`` in their description (NVIDIA "Virtual GPU Software User Guide", vGPU types).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GIB_MIB = 1024
LARGE_BAR_GIB = 16  # a board mapping more than 16 GB needs 64-bit MMIO (VMware KB 2142307)


@dataclass(frozen=True)
class Board:
    name: str
    token: str  # how NVIDIA's vGPU profile names call it ("a100" in grid_a100-20c)
    frame_buffer_gib: int
    bar1_gib: int
    sriov_vgpu: bool  # Ampere or later: vGPUs are SR-IOV virtual functions


_NVIDIA = "0x10de"
BOARDS: dict[tuple[str, str], Board] = {
    (_NVIDIA, "0x20b0"): Board("A100 SXM4 40GB", "a100", 40, 64, True),
    (_NVIDIA, "0x20b2"): Board("A100 SXM4 80GB", "a100", 80, 128, True),
    (_NVIDIA, "0x20f1"): Board("A100 PCIe 40GB", "a100", 40, 64, True),
    (_NVIDIA, "0x20b5"): Board("A100 PCIe 80GB", "a100", 80, 128, True),
    (_NVIDIA, "0x20b7"): Board("A30", "a30", 24, 32, True),
    (_NVIDIA, "0x2235"): Board("A40", "a40", 48, 64, True),
    (_NVIDIA, "0x2236"): Board("A10", "a10", 24, 32, True),
    (_NVIDIA, "0x2331"): Board("H100 PCIe", "h100", 80, 128, True),
    (_NVIDIA, "0x26b5"): Board("L40", "l40", 48, 64, True),
    (_NVIDIA, "0x26b9"): Board("L40S", "l40s", 48, 64, True),
    (_NVIDIA, "0x27b8"): Board("L4", "l4", 24, 32, True),
    (_NVIDIA, "0x1db4"): Board("V100 PCIe 16GB", "v100", 16, 16, False),
    (_NVIDIA, "0x1db6"): Board("V100 PCIe 32GB", "v100", 32, 32, False),
    (_NVIDIA, "0x1eb8"): Board("T4", "t4", 16, 0, False),  # BAR1 of 256 MiB: no large BAR
}

_GRID = re.compile(r"^grid_(?P<board>[a-z0-9]+)-(?:(?P<slices>\d+)-)?(?P<gb>\d+)(?P<series>[a-z]+)$")
_FRAMEBUFFER = re.compile(r"framebuffer=(\d+)M", re.IGNORECASE)


def board(vendor_id: str | None, device_id: str | None, device_name: str | None = None) -> Board | None:
    """The board by its ids, else by a board name its device name carries ("GA100 [A100 PCIe 80GB]"): the known
    board of that token with the smallest BARs."""
    known = BOARDS.get(((vendor_id or "").lower(), (device_id or "").lower()))
    if known is not None or not device_name:
        return known
    named = [b for b in BOARDS.values() if board_named(b.token, device_name)]
    return min(named, key=lambda b: b.bar1_gib) if named else None


def _power_of_two_at_least(value: int) -> int:
    return 1 << max(value - 1, 0).bit_length()


def bar_gib(vendor_id: str | None, device_id: str | None, memory_mib: int | None,
            device_name: str | None = None) -> int | None:
    """The size of the board's frame-buffer BAR in GiB: known boards from the table; other boards whose frame
    buffer the host reports are taken to map it all (a power of two at least as large); else None."""
    known = board(vendor_id, device_id, device_name)
    if known is not None:
        return known.bar1_gib
    if memory_mib:
        return _power_of_two_at_least(-(-memory_mib // GIB_MIB))
    return None


def large_bar(vendor_id: str | None, device_id: str | None, memory_mib: int | None,
              device_name: str | None = None) -> bool | None:
    """True when the board maps more than 16 GB (None: not known)."""
    size = bar_gib(vendor_id, device_id, memory_mib, device_name)
    return None if size is None else size >= LARGE_BAR_GIB


def mmio_size_gib(bars_gib: list[int]) -> int:
    """``pciPassthru.64bitMMIOSizeGB`` for a VM's large-BAR devices: their BARs added up, rounded up to a power of
    two."""
    return _power_of_two_at_least(sum(bars_gib))


@dataclass(frozen=True)
class Profile:
    board: str | None  # the board token ("a100"), None when the name does not say
    size_mib: int | None  # frame buffer of one instance
    series: str | None  # "c" (compute), "q", "b", "a"
    mig: bool


def profile(name: str, description: str | None = None) -> Profile:
    """What a vGPU profile's name (and, for mdev types, description) says about it."""
    found = _GRID.match(name.strip().lower())
    if found:
        return Profile(found["board"], int(found["gb"]) * GIB_MIB, found["series"], found["slices"] is not None)
    framebuffer = _FRAMEBUFFER.search(description or "")
    return Profile(None, int(framebuffer[1]) if framebuffer else None, None, False)


def board_named(token: str, device_name: str | None) -> bool:
    """Whether a GPU's name names the board a profile's token stands for ("a100" in "GA100 [A100 PCIe 80GB]")."""
    return re.search(rf"(?<![a-z0-9]){re.escape(token)}(?![a-z0-9])", (device_name or "").lower()) is not None
