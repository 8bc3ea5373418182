"""SARIF 2.1.0 for GitHub code scanning: one run of tool "virtplane", a rule per policy (help text and a link to
its first vendor source), a result per finding (error = mandatory, warning = advisory, note = waived, marked as an
external suppression with the stack's reason) located at the line of the stack program that declares the VM."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

from virtplane.policies.evaluate import Report
from virtplane.policies.model import Finding
from virtplane.policies.report import display_path
from virtplane.policies.rules import EVERY

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/virtplane/virtplane#policy-checks"


def _rules() -> list[dict[str, object]]:
    rules = []
    for module in EVERY:
        rule = module.RULE
        sources = "\n".join(f"- [{s.title}]({s.url})" for s in rule.sources)
        rules.append({
            "id": rule.id, "name": rule.id.replace("hw.", "hw-"),
            "shortDescription": {"text": rule.title}, "fullDescription": {"text": rule.help},
            "help": {"text": f"{rule.help} Sources: " + "; ".join(f"{s.title} <{s.url}>" for s in rule.sources),
                     "markdown": f"{rule.help}\n\nSources:\n{sources}"},
            "helpUri": rule.help_uri,
            "defaultConfiguration": {"level": "error" if rule.level == "mandatory" else "warning"},
            "properties": {"tags": ["virtplane", "security" if rule.id.startswith("ct.") else "hardware"]},
        })
    return rules


def _level(finding: Finding) -> str:
    if finding.waived is not None:
        return "note"
    return "error" if finding.level == "mandatory" else "warning"


def _result(finding: Finding, index: dict[str, int], base: Path, fallback: str | None) -> dict[str, object]:
    where = display_path(finding.file, base) or fallback
    host = f" on host {finding.host}" if finding.host else ""
    result: dict[str, object] = {
        "ruleId": finding.rule, "ruleIndex": index[finding.rule], "level": _level(finding),
        "message": {"text": f"{finding.noun} {finding.resource} (endpoint {finding.endpoint}){host}: {finding.message}"
                            + (f" Fix: {finding.remediation}." if finding.remediation else "")},
        "partialFingerprints": {"virtplane/v1": f"{finding.rule}:{finding.endpoint}:{finding.resource}:"
                                                f"{finding.field or ''}"},
        "properties": {"resource": finding.resource, "endpoint": finding.endpoint, "host": finding.host,
                       "field": finding.field},
    }
    if where:
        result["locations"] = [{"physicalLocation": {
            "artifactLocation": {"uri": where, "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": finding.line or 1}}}]
    if finding.waived is not None:
        result["suppressions"] = [{"kind": "external", "justification": finding.waived}]
    return result


def document(report: Report, base: Path, fallback_file: str | None = None) -> dict[str, object]:
    index = {module.RULE.id: position for position, module in enumerate(EVERY)}
    try:
        version = metadata.version("virtplane")
    except metadata.PackageNotFoundError:
        version = "0"
    fallback = display_path(fallback_file, base)
    return {
        "$schema": SCHEMA_URI, "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "virtplane", "version": version, "informationUri": INFORMATION_URI,
                                "rules": _rules()}},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": base.resolve().as_uri() + "/"}},
            "results": [_result(f, index, base, fallback) for f in report.findings],
            "properties": {"stack": report.stack, "summary": report.summary()},
        }],
    }


def render(report: Report, base: Path, fallback_file: str | None = None) -> str:
    return json.dumps(document(report, base, fallback_file), indent=2) + "\n"


def failed(message: str, base: Path) -> str:
    """The SARIF log of a check that could not run (a stack error, an unreachable host): no results, and the
    invocation marked unsuccessful with the error as a tool execution notification (SARIF 2.1.0, 3.20)."""
    log = document(Report(stack="", vms=0), base)
    run = log["runs"][0]  # type: ignore[index]
    run["invocations"] = [{"executionSuccessful": False, "toolExecutionNotifications": [
        {"level": "error", "message": {"text": message}, "descriptor": {"id": "virtplane.error"}}]}]
    del run["properties"]
    return json.dumps(log, indent=2) + "\n"
