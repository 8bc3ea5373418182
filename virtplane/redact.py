"""Keeps secrets out of everything virtplane prints: every secret seen is registered and masked."""

from __future__ import annotations

import threading

_secrets: set[str] = set()
_lock = threading.Lock()
MASK = "***"


def register(secret: str | None) -> None:
    if secret and len(secret) >= 3:
        with _lock:
            _secrets.add(secret)


def redact(text: str) -> str:
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, MASK)
    return text
