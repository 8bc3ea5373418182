"""The settings an Endpoint accepts for each kind, derived from the provider itself.

A provider's ``settings_model`` is what its settings become once parsed (Proxmox splits ``endpoint`` into
``host`` and ``port``, ``api_token`` into its id and its secret), so the names a user writes are the
provider's ``setting_names`` where it declares them, else its settings module's ``ENV`` table (setting ->
environment variable) and ``INPUT_ONLY`` names. A setting is secret when its model field is a ``SecretStr``,
or when the model keeps its secret part in a ``SecretStr`` field named after it (``api_token`` ->
``api_token_secret``).
"""

from __future__ import annotations

import sys
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, SecretStr

from virtplane.providers.base import Provider

# The Pulumi provider's own settings, beside the endpoint's: ``allowDataLoss`` lets ``pulumi up`` destroy data
# (virtplane/plugin/guards.py); the CLI takes ``--allow-data-loss`` per run instead and ignores it.
PLUGIN_ONLY = frozenset({"allowDataLoss"})


@dataclass(frozen=True)
class Setting:
    name: str
    type: str  # "string", "boolean", "integer" or "number"
    secret: bool
    environment: str | None  # the variable it falls back to, if any


def endpoint_settings(cls: type[Provider]) -> list[Setting]:
    """The settings an Endpoint of this provider accepts, in the settings module's order."""
    module = sys.modules[cls.settings_model.__module__]
    environment: dict[str, str] = dict(getattr(module, "ENV", {}))
    names = list(getattr(cls, "setting_names", None) or ())  # the provider's own list, where it has one
    if not names:
        names = [*environment, *(name for name in getattr(module, "INPUT_ONLY", ()) if name not in environment)]
    if not names:  # a provider without an ENV table: its model's fields are its settings
        names = list(cls.settings_model.model_fields)
    model = cls.settings_model
    return [Setting(name, _type_of(model, name), _is_secret(model, name), environment.get(name)) for name in names]


def _annotation(model: type[BaseModel], name: str) -> Any:
    field = model.model_fields.get(name)
    return None if field is None else field.annotation


def _members(annotation: Any) -> tuple[Any, ...]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return tuple(a for a in typing.get_args(annotation) if a is not type(None))
    return (annotation,)


def _is_secret(model: type[BaseModel], name: str) -> bool:
    candidates = [name, *(field for field in model.model_fields if field.startswith(f"{name}_"))]
    return any(SecretStr in _members(_annotation(model, field)) for field in candidates)


def _type_of(model: type[BaseModel], name: str) -> str:
    members = _members(_annotation(model, name))
    if bool in members:
        return "boolean"
    if int in members:
        return "integer"
    if float in members:
        return "number"
    return "string"


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


def gather(hypervisor: str, inputs: Mapping[str, Any], environ: Mapping[str, str], variables: Mapping[str, str],
           input_only: Iterable[str] = ()) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """An Endpoint's raw settings: each argument given, else its environment variable (an empty one counts as
    unset); arguments without a variable only as arguments. Returns them with a problem for each argument the kind
    does not know (``hypervisor`` names it: "a Proxmox endpoint")."""
    input_only = list(input_only)
    known = [*variables, *input_only]
    problems = [(name, f"unknown setting for {hypervisor}; known: {', '.join(known)}")
                for name in sorted(set(inputs) - set(known))]
    values: dict[str, Any] = {}
    for name, variable in variables.items():
        if inputs.get(name) is not None:
            values[name] = inputs[name]
        elif environ.get(variable) not in (None, ""):
            values[name] = environ[variable]
    values.update({name: inputs[name] for name in input_only if inputs.get(name) is not None})
    return values, problems


def flag(values: dict[str, Any], name: str, problems: list[tuple[str, str]]) -> None:
    """Turn ``values[name]`` given as text ("true", "0"…) into a bool, or add a problem naming it."""
    if isinstance(values.get(name), str):
        raw = values[name].strip().lower()
        if raw not in TRUE_WORDS | FALSE_WORDS:
            problems.append((name, f"{values[name]!r} is not a boolean (use true or false)"))
        values[name] = raw in TRUE_WORDS
