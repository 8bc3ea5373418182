"""Check: validate a resource's inputs with the spec, as (Pulumi property path, reason) failures.

Values not known yet (preview: another resource's output) are left out and not judged; while any is
unknown only field-level errors of the known fields are reported (cross-field checks wait for the values).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from virtplane.errors import SpecError
from virtplane.kinds import build_spec
from virtplane.kinds import kind as registered_kind
from virtplane.plugin.values import has_unknown
from virtplane.specs import Spec, describe_error, validate_name


def pulumi_path(location: str) -> str:
    """``disks.0.size`` (pydantic) -> ``disks[0].size`` (Pulumi property path)."""
    return re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", location)


def known_inputs(inputs: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The inputs whose values are known, and the names of those that are not."""
    unknown = {key for key, value in inputs.items() if has_unknown(value)}
    return {key: value for key, value in inputs.items() if key not in unknown}, unknown


def failures(kind: str, name: str, inputs: dict[str, Any]) -> list[tuple[str, str]]:
    known, unknown = known_inputs(inputs)
    if not unknown:
        try:
            build_spec(kind, name, known)
        except SpecError as error:
            return [(pulumi_path(field), message) for field, message in error.problems]
        return []
    try:
        validate_name(kind, name)
    except SpecError as error:
        return error.problems
    model = registered_kind(kind).spec
    try:
        model.model_validate(known)
    except ValidationError as error:
        found = [describe_error(model, e) for e in error.errors()]
        return [(pulumi_path(field), message) for field, message in found
                if re.split(r"[.\[]", field)[0] not in unknown and message != "is required"]
    return []


def spec_of(kind: str, name: str, known: dict[str, Any], unknown: set[str]) -> Spec:
    """The spec of the known inputs; while some are unknown (preview), without the cross-field checks that
    would judge the unknown ones by their defaults."""
    if not unknown:
        return build_spec(kind, name, known)
    model = registered_kind(kind).spec
    try:
        return model.model_validate(known)
    except ValidationError as error:
        raise SpecError(kind, name, [describe_error(model, e) for e in error.errors()]) from None
