"""The provider configuration: Endpoint settings in, one connected virtplane Provider out (made on first use).

The engine starts one plugin process per Pulumi provider (an explicit ``virtplane.Endpoint`` or the default
provider built from ``virtplane:*`` stack config), so a process serves exactly one endpoint. Its name is the
provider resource's name, written into ownership markers as ``endpoint=``; a default provider's versioned
name (``default_0_1_0``) is taken as ``default`` so an upgrade of the plugin keeps its objects.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from virtplane import redact
from virtplane.endpoint_settings import PLUGIN_ONLY, endpoint_settings
from virtplane.errors import SpecError, VirtplaneError
from virtplane.plugin import guards
from virtplane.providers.base import Provider
from virtplane.providers.registry import KINDS, provider_class

_DEFAULT_PROVIDER = re.compile(r"^default(_\d+_\d+_\d+.*)?$")
ENGINE_KEYS = frozenset({"version", "__internal"})  # keys the engine adds to a provider's inputs


def endpoint_name(provider_urn: str, provider_name: str = "") -> str:
    name = provider_name or (provider_urn.split("::")[-1] if "::" in provider_urn else "")
    if _DEFAULT_PROVIDER.match(name):
        return "default"
    return name or "default"


def settings_inputs(config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The endpoint kind and its settings from the provider's inputs (engine keys dropped)."""
    values = {key: value for key, value in config.items()
              if key not in ENGINE_KEYS | PLUGIN_ONLY and value is not None}
    kind = str(values.pop("kind", None) or next(iter(KINDS)))
    return kind, values


def check_settings(name: str, config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Problems with these settings as (setting, reason) pairs, without connecting (environment included)."""
    allowance = config.get("allowDataLoss")
    plugin_problems = [] if allowance is None or guards.flag(allowance) is not None else [
        ("allowDataLoss", f"got {allowance!r}; expected true or false")]
    return plugin_problems + _endpoint_problems(name, config)


def _endpoint_problems(name: str, config: Mapping[str, Any]) -> list[tuple[str, str]]:
    kind, values = settings_inputs(config)
    if kind not in KINDS:
        return [("kind", f"got {kind!r}; expected one of {', '.join(KINDS)}")]
    cls = provider_class(kind, name)
    known = [setting.name for setting in endpoint_settings(cls)]
    problems = [(key, f"is not a setting of a {kind} endpoint; known: {', '.join(known)}")
                for key in values if key not in known]
    if problems:
        return problems
    try:
        cls.settings_from(name, values, os.environ)
    except SpecError as error:
        return [(field, redact.redact(message)) for field, message in error.problems]
    return []


def variables_config(variables: Mapping[str, str]) -> dict[str, Any]:
    """The deprecated ``virtplane:config:<key>`` map of Configure, as settings (non-strings are JSON)."""
    import json

    config: dict[str, Any] = {}
    for key, raw in variables.items():
        setting = key.split(":")[-1]
        try:
            config[setting] = json.loads(raw) if raw[:1] in "{[0123456789-tfn" else raw
        except ValueError:
            config[setting] = raw
    return config


class Endpoint:
    """The configured endpoint of this plugin process; connects once, when first needed."""

    def __init__(self) -> None:
        self.name = "default"
        self.kind = next(iter(KINDS))
        self.values: dict[str, Any] = {}
        self.allow_data_loss = False  # allowDataLoss, or VIRTPLANE_ALLOW_DATA_LOSS
        self._provider: Provider | None = None
        self._lock = asyncio.Lock()

    def configure(self, name: str, config: Mapping[str, Any]) -> None:
        self.name = name
        self.kind, self.values = settings_inputs(config)
        self.allow_data_loss = bool(guards.flag(config.get("allowDataLoss"))) or guards.allowed_by_environment()
        for setting, value in self.values.items():
            if isinstance(value, str) and setting in self.secret_names():
                redact.register(value)

    def secret_names(self) -> set[str]:
        names = {"password", "api_token"}
        if self.kind in KINDS:
            names |= {s.name for s in endpoint_settings(provider_class(self.kind, self.name)) if s.secret}
        return names

    async def provider(self) -> Provider:
        async with self._lock:
            if self._provider is None:
                self._provider = await asyncio.to_thread(self._connect)
            return self._provider

    def _connect(self) -> Provider:
        cls = provider_class(self.kind, self.name)
        settings = cls.settings_from(self.name, self.values, os.environ)
        for value in dict(settings).values():
            if isinstance(value, SecretStr):
                redact.register(value.get_secret_value())
        try:
            return cls.connect(settings)
        except VirtplaneError:
            raise
        except Exception as error:  # a library's own failure: one sentence, secrets masked
            raise VirtplaneError(f"Endpoint '{self.name}': cannot connect: {type(error).__name__}: {error}"
                                 ) from None

    def close(self) -> None:
        if self._provider is not None:
            self._provider.close()
            self._provider = None
