"""Cloud-init documents as a VM receives them: checked, normalized and summed up in one digest (no templating
here: virtplane/templating.py renders the stack's Jinja2 templates into these documents).

- **user-data** is text in one of the formats cloud-init takes: cloud-config YAML (a mapping, first line
  ``#cloud-config``), a script (``#!``), a boothook (``#cloud-boothook``), an include list (``#include``), a
  cloud-config archive (``#cloud-config-archive``) or a MIME multipart message whose parts are those
  (https://cloudinit.readthedocs.io/en/latest/explanation/format.html).
- **meta-data** is a YAML mapping; an ``instance-id`` is always present (cloud-init runs its per-instance modules
  again when it changes: virtplane makes it name the VM and the digest of its user-data and network-config, so a
  changed template re-initializes the guest at its next boot) and ``local-hostname`` defaults to the VM's name.
- **network-config** is a YAML mapping of network configuration version 1 or 2, at the top or under ``network``.

The **digest** (``sha256:…``) covers the user-data text and the meta-data and network-config *mappings* (so a
hypervisor that must re-encode one — vSphere carries network-config inside the metadata — reads back the same
digest). Plans and drift show only the digest: the documents may hold secrets.
"""

from __future__ import annotations

import email
import hashlib
import json
import re
from dataclasses import dataclass
from email.message import Message
from typing import Any

import yaml

DIGEST_PREFIX = "sha256:"
SHORT_DIGEST = 12  # hex digits of the digest people read in a plan

# Content types cloud-init handles in a multipart user-data message (cloudinit/handlers, user_data.py).
PART_TYPES = frozenset({
    "text/cloud-config", "text/cloud-config-archive", "text/x-shellscript", "text/x-shellscript-per-boot",
    "text/x-shellscript-per-instance", "text/x-shellscript-per-once", "text/cloud-boothook", "text/x-include-url",
    "text/x-include-once-url", "text/part-handler", "text/jinja2", "text/plain"})
_HEADERS = {"#cloud-config": "cloud-config", "#!": "script", "#cloud-boothook": "boothook", "#include": "include",
            "#cloud-config-archive": "archive", "## template: jinja": "jinja"}


class DocumentError(ValueError):
    """A document cloud-init would not take; the message never quotes the document (it may hold secrets)."""


def user_data_format(text: str) -> str:
    """The format of user-data (``cloud-config``, ``script``, ``multipart`` …); DocumentError when cloud-init would
    not recognize it or its content does not parse."""
    first = text.lstrip("\ufeff").split("\n", 1)[0].strip()
    if first.lower().startswith("content-type:") or first.lower().startswith("mime-version:"):
        _check_multipart(text)
        return "multipart"
    kind = next((name for header, name in sorted(_HEADERS.items(), key=lambda item: -len(item[0]))
                 if first.startswith(header)), None)
    if kind is None:
        raise DocumentError("must begin with '#cloud-config' (cloud-config YAML), '#!' (a script) or be a MIME "
                            "multipart message ('Content-Type: multipart/mixed'); the first line is neither")
    if kind == "cloud-config":
        mapping(text, "cloud-config YAML")
    elif kind == "archive":
        _check_archive(text)
    return kind


def mapping(text: str, what: str) -> dict[str, Any]:
    """``text`` parsed as a YAML mapping; DocumentError naming the line and column (never the text) otherwise."""
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DocumentError(f"is not valid {what}: {yaml_problem(exc)}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise DocumentError(f"is not valid {what}: it is a {type(loaded).__name__}, not a mapping of keys to values")
    return loaded


def yaml_problem(exc: yaml.YAMLError) -> str:
    """What PyYAML found and where, without the snippet of the document its own message quotes."""
    problem = getattr(exc, "problem", None) or "it does not parse"
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{problem}{where}"


def _check_multipart(text: str) -> None:
    message = email.message_from_string(text)
    if not message.is_multipart():
        raise DocumentError("declares MIME headers but is not a multipart message (Content-Type: multipart/mixed)")
    parts = [part for part in message.walk() if not part.is_multipart()]
    if not parts:
        raise DocumentError("is a multipart message without parts")
    for index, part in enumerate(parts):
        _check_part(index, part)


def _check_part(index: int, part: Message) -> None:
    kind = part.get_content_type()
    if kind not in PART_TYPES:
        known = ", ".join(sorted(PART_TYPES))
        raise DocumentError(f"part {index + 1} has content type {kind!r}, which cloud-init does not handle "
                            f"(known: {known})")
    if kind == "text/cloud-config":
        payload = part.get_payload(decode=True)
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(part.get_payload())
        try:
            mapping(text, "cloud-config YAML")
        except DocumentError as exc:
            raise DocumentError(f"part {index + 1} (text/cloud-config) {exc}") from None


def _check_archive(text: str) -> None:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DocumentError(f"is not a valid cloud-config archive: {yaml_problem(exc)}") from None
    if not isinstance(loaded, list):
        raise DocumentError("is not a valid cloud-config archive: it must be a YAML list of parts")


def network_mapping(text: str) -> dict[str, Any]:
    """network-config as a mapping of version 1 or 2 (at the top, or under ``network``)."""
    loaded = mapping(text, "network-config YAML")
    inner = loaded.get("network") if isinstance(loaded.get("network"), dict) else loaded
    if inner.get("version") not in (1, 2):
        raise DocumentError("is not network configuration cloud-init takes: it needs 'version: 1' or 'version: 2' "
                            "(at the top, or under 'network:')")
    return loaded


def meta_mapping(text: str) -> dict[str, Any]:
    meta = mapping(text, "meta-data YAML")
    if not str(meta.get("instance-id") or "").strip():
        raise DocumentError("needs an 'instance-id' (cloud-init tells a new instance from a reboot by it)")
    return meta


@dataclass(frozen=True)
class Documents:
    """What a VM's cloud-init datasource serves: user-data text, meta-data and network-config mappings."""

    user_data: str
    meta_data: dict[str, Any]
    network_config: dict[str, Any] | None = None

    @property
    def digest(self) -> str:
        return digest(self.user_data, self.meta_data, self.network_config)

    def meta_text(self) -> str:
        return dump(self.meta_data)

    def network_text(self) -> str | None:
        return None if self.network_config is None else dump(self.network_config)


def dump(value: dict[str, Any]) -> str:
    """A mapping as YAML text, the same way every time (sorted keys, block style)."""
    return yaml.safe_dump(value, sort_keys=True, default_flow_style=False, allow_unicode=True)


def digest(user_data: str, meta_data: dict[str, Any], network_config: dict[str, Any] | None) -> str:
    document = json.dumps({"user_data": user_data, "meta_data": meta_data, "network_config": network_config},
                          sort_keys=True, separators=(",", ":"), default=str)
    return DIGEST_PREFIX + hashlib.sha256(document.encode()).hexdigest()


def short(value: str) -> str:
    """``sha256:<64 hex>`` -> ``sha256:<12 hex>`` (what a plan shows); other text as it is."""
    if isinstance(value, str) and value.startswith(DIGEST_PREFIX):
        return value[:len(DIGEST_PREFIX) + SHORT_DIGEST]
    return value


def default_meta_data(vm_name: str, user_data: str, network_config: dict[str, Any] | None,
                      given: dict[str, Any] | None = None) -> dict[str, Any]:
    """meta-data for a VM: ``given`` (the stack's own meta-data template, when it has one) with an ``instance-id``
    that names the VM and changes with its user-data and network-config, and ``local-hostname`` the VM's name,
    unless ``given`` sets them."""
    body = hashlib.sha256(json.dumps([user_data, network_config], sort_keys=True, default=str).encode()
                          ).hexdigest()[:SHORT_DIGEST]
    meta = {"instance-id": f"{_slug(vm_name)}-{body}", "local-hostname": vm_name}
    meta.update(given or {})
    return meta


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip("-") or "vm"


def documents(user_data: str, meta_data: str, network_config: str | None) -> Documents:
    """The documents of a CloudInitSpec's texts, each checked (DocumentError names which one is wrong)."""
    checks = [("user_data", user_data_format, user_data), ("meta_data", meta_mapping, meta_data),
              ("network_config", network_mapping, network_config)]
    parsed: dict[str, Any] = {}
    for label, check, text in checks:
        try:
            parsed[label] = None if text is None else check(text)
        except DocumentError as exc:
            raise DocumentError(f"{label}: {exc}") from None
    return Documents(user_data, parsed["meta_data"], parsed["network_config"])
