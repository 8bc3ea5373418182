"""The Hyper-V simulator's parameter conversions and wildcards (pure logic, no server)."""

from __future__ import annotations

import uuid

import pytest

from virtplane_lab.hypervsim.errors import CmdletError
from virtplane_lab.hypervsim.params import Param, convert
from virtplane_lab.hypervsim.targets import wildcard


@pytest.mark.parametrize(("param", "value", "expected"), [
    (Param("Int64"), 4 * 1024**3, 4 * 1024**3),
    (Param("UInt64"), "17179869184", 17179869184),
    (Param("Boolean"), 1, True),
    (Param("Switch"), None, True),
    (Param("Enum", choices=("On", "Off")), "off", "Off"),
    (Param("String[]"), "one", ["one"]),
    (Param("Guid"), "6f1c2a8e-0d1b-4c4e-9d5e-1a2b3c4d5e6f", uuid.UUID("6f1c2a8e-0d1b-4c4e-9d5e-1a2b3c4d5e6f")),
    (Param("Version"), "9.3", "9.3"),
])
def test_values_convert_to_the_parameter_type(param, value, expected):
    assert convert("X", param, value) == expected


@pytest.mark.parametrize(("param", "value", "wording"), [
    (Param("UInt32"), -1, "too large or too small for an UInt32"),
    (Param("Int16", choices=("1", "2")), 3, "does not belong to the set \"1,2\""),
    (Param("Int32", range=(1, 4094)), 5000, "greater than the maximum allowed range of 4094"),
    (Param("Boolean"), "yes", "Boolean parameters accept only Boolean values and numbers"),
    (Param("Int64"), None, "Missing an argument for parameter 'X'"),
    (Param("Enum", choices=("TurnOff", "Save")), "Off", "TurnOff, Save"),
])
def test_values_the_binder_refuses_are_terminating_binding_errors(param, value, wording):
    with pytest.raises(CmdletError) as raised:
        convert("X", param, value)
    assert raised.value.terminating and wording in raised.value.message


@pytest.mark.parametrize(("pattern", "name", "matches"), [
    ("web-*", "WEB-1", True),
    ("web[1]", "web[1]", False),
    ("web`[1`]", "web[1]", True),
    ("db?", "db10", False),
    ("o'neil;$(x)", "o'neil;$(x)", True),
])
def test_powershell_wildcards(pattern, name, matches):
    assert bool(wildcard(pattern).match(name)) is matches
