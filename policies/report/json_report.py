"""The JSON document of ``virtplane check --format json`` (schema 1): findings and a summary."""

from __future__ import annotations

import json
from pathlib import Path

from virtplane.policies.evaluate import Report
from virtplane.policies.report import display_path


def document(report: Report, base: Path) -> dict[str, object]:
    findings = []
    for finding in report.findings:
        item = finding.to_json()
        item["file"] = display_path(finding.file, base)
        findings.append(item)
    return {"schema": 1, "command": "check", "stack": report.stack, "findings": findings,
            "summary": report.summary()}


def render(report: Report, base: Path) -> str:
    return json.dumps(document(report, base), indent=2) + "\n"
