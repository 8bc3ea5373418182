"""The inputs that describe a live object as it is, as the spec accepts them: what ``virtplane import`` writes into a
stack and what the Pulumi plugin's Read answers an import with (a Read with the id alone), so both agree."""

from __future__ import annotations

import re
from typing import Any

from virtplane.errors import SpecError
from virtplane.kinds import build_spec
from virtplane.kinds import kind as registered_kind


def importable(kind: str, name: str, inputs: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The imported inputs Check accepts: a field the spec cannot express as the object has it (a Hyper-V
    adapter connected to no switch has no network) is left out — unset, so not managed — with the reason."""
    inputs = dict(inputs)
    left_out: list[tuple[str, str]] = []
    while True:
        try:
            build_spec(kind, name, inputs)
            return inputs, left_out
        except SpecError as error:
            failing = [(path, reason) for path, reason in error.problems if re.split(r"[.\[]", path)[0] in inputs]
            if not failing:
                return inputs, left_out  # not about a field (the name): Check reports it as it is
            for path, reason in failing:
                top = re.split(r"[.\[]", path)[0]
                if inputs.pop(top, None) is not None:
                    left_out.append((top, f"{path} {reason}"))


def inputs_from_state(kind: str, state: dict[str, Any]) -> dict[str, Any]:
    """The inputs that describe a live object as it is (an import): every field it reports, unset parts,
    create-only fields and those read back only as a digest (cloud-init) left out."""
    fields = registered_kind(kind).spec.model_fields
    skipped = registered_kind(kind).create_only | registered_kind(kind).digest_only
    inputs: dict[str, Any] = {}
    for key, value in state.items():
        if key not in fields or key in skipped or value is None:
            continue
        if isinstance(value, list):
            value = [{k: v for k, v in item.items() if v is not None} if isinstance(item, dict) else item
                     for item in value]
        inputs[key] = value
    return inputs
