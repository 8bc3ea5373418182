"""Parameter types and the conversions PowerShell's binder applies to PSRP values."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from .errors import binding_error

RANGES = {
    "Int16": (-(2**15), 2**15 - 1), "Int32": (-(2**31), 2**31 - 1), "Int64": (-(2**63), 2**63 - 1),
    "UInt16": (0, 2**16 - 1), "UInt32": (0, 2**32 - 1), "UInt64": (0, 2**64 - 1), "Byte": (0, 255),
}


@dataclass(frozen=True)
class Param:
    """A cmdlet parameter: its .NET type (``Int64``, ``String[]``, ``Switch``, ``Enum`` …)."""

    type: str
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()  # for Enum / ValidateSet
    range: tuple[int, int] | None = None  # ValidateRange
    extra: dict[str, Any] = field(default_factory=dict)


def _fail(name: str, value: Any, type_name: str, detail: str) -> Exception:
    return binding_error(f"Cannot bind parameter '{name}'. Cannot convert value \"{value}\" to type "
                         f"\"System.{type_name}\". Error: \"{detail}\"", "CannotConvertArgumentNoMessage")


def _integer(name: str, value: Any, type_name: str) -> int:
    if isinstance(value, (bool, int)):
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            raise _fail(name, value, type_name, "Input string was not in a correct format.") from None
    else:
        raise _fail(name, value, type_name, f"Invalid cast from '{type(value).__name__}' to '{type_name}'.")
    low, high = RANGES[type_name]
    if not low <= number <= high:
        raise _fail(name, value, type_name, f"Value was either too large or too small for an {type_name}.")
    return number


def convert(name: str, param: Param, value: Any) -> Any:
    """``value`` as the parameter's type; a binding error (terminating) when PowerShell would refuse it."""
    kind = param.type
    if kind == "Switch":
        if value is None:
            return True
        if isinstance(value, bool):
            return value
        raise _fail(name, value, "Management.Automation.SwitchParameter", "Invalid cast.")
    if value is None:
        raise binding_error(f"Missing an argument for parameter '{name}'. Specify a parameter of type "
                            f"'System.{kind}' and try again.", "MissingArgument")
    if kind.endswith("[]"):
        items = list(value) if isinstance(value, list | tuple) else [value]
        return [convert(name, Param(kind[:-2], choices=param.choices, range=param.range), item) for item in items]
    if kind in RANGES:
        number = _integer(name, value, kind)
        if param.range and not param.range[0] <= number <= param.range[1]:
            raise binding_error(f"Cannot validate argument on parameter '{name}'. The {number} argument is "
                                f"{'less' if number < param.range[0] else 'greater'} than the "
                                f"{'minimum' if number < param.range[0] else 'maximum'} allowed range of "
                                f"{param.range[0] if number < param.range[0] else param.range[1]}. Supply an "
                                "argument that is "
                                f"{'greater' if number < param.range[0] else 'less'} than or equal to "
                                f"{param.range[0] if number < param.range[0] else param.range[1]} and then try the "
                                "command again.", "ParameterArgumentValidationError")
        if param.choices and str(number) not in param.choices:
            raise binding_error(f"Cannot validate argument on parameter '{name}'. The argument \"{number}\" does "
                                f"not belong to the set \"{','.join(param.choices)}\" specified by the ValidateSet "
                                "attribute. Supply an argument that is in the set and then try the command again.",
                                "ParameterArgumentValidationError")
        return number
    if kind == "Boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        raise binding_error(f"Cannot process argument transformation on parameter '{name}'. Cannot convert value "
                            f"\"System.{type(value).__name__}\" to type \"System.Boolean\". Boolean parameters "
                            "accept only Boolean values and numbers, such as $True, $False, 1 or 0.",
                            "ParameterArgumentTransformationError")
    if kind == "String":
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, bool):
            return "True" if value else "False"
        raise _fail(name, value, "String", "Invalid cast.")
    if kind == "Guid":
        if isinstance(value, uuid.UUID):
            return uuid.UUID(str(value))
        try:
            return uuid.UUID(str(value))
        except ValueError:
            raise _fail(name, value, "Guid", "Guid should contain 32 digits with 4 dashes "
                        "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).") from None
    if kind == "Version":
        text = str(value)
        parts = text.split(".")
        if not 2 <= len(parts) <= 4 or not all(p.isdigit() for p in parts):
            raise _fail(name, value, "Version", "Version string portion was too short or too long.")
        return ".".join(str(int(p)) for p in parts)
    if kind == "Enum":
        for choice in param.choices:
            if isinstance(value, str) and value.strip().lower() == choice.lower():
                return choice
        raise binding_error(f"Cannot bind parameter '{name}'. Cannot convert value \"{value}\" to type "
                            f"\"{param.extra.get('enum', 'Enum')}\". Error: \"Unable to match the identifier name "
                            f"{value} to a valid enumerator name. Specify one of the following enumerator names and "
                            f"try again: {', '.join(param.choices)}\"", "CannotConvertArgumentNoMessage")
    if kind == "Object":  # objects arrive only through the pipeline in this simulator
        return value
    raise AssertionError(f"unknown parameter type {kind}")
