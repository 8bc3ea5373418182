"""JUnit XML: a test case per (VM, rule) the rules evaluated, a <failure> per blocking (mandatory, not waived)
finding, waived mandatory findings as <skipped>, advisories in <system-out>."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from xml.etree import ElementTree

from virtplane.policies.evaluate import Report
from virtplane.policies.model import Finding
from virtplane.policies.report import display_path


def render(report: Report, base: Path) -> str:
    by_case: dict[tuple[str, str, str], list[Finding]] = defaultdict(list)
    for finding in report.findings:
        by_case[(finding.resource, finding.endpoint, finding.rule)].append(finding)
    failures = len(report.blocking)
    suites = ElementTree.Element("testsuites", name="virtplane check", tests=str(len(report.evaluated)),
                                 failures=str(failures), errors="0")
    suite = ElementTree.SubElement(suites, "testsuite", name=f"virtplane check {report.stack}",
                                   tests=str(len(report.evaluated)), failures=str(failures), errors="0",
                                   skipped=str(sum(1 for f in report.findings if f.waived and f.level == "mandatory")))
    for resource, endpoint, rule in report.evaluated:
        found = by_case.get((resource, endpoint, rule), [])
        case = ElementTree.SubElement(suite, "testcase", classname=f"{endpoint}.{resource}", name=rule)
        if found and found[0].file:
            case.set("file", display_path(found[0].file, base) or "")
            case.set("line", str(found[0].line or 1))
        notes = []
        for finding in found:
            text = f"{finding.message}" + (f" (host {finding.host})" if finding.host else "")
            if finding.blocking:
                failure = ElementTree.SubElement(case, "failure", message=text, type="mandatory")
                failure.text = finding.remediation
            elif finding.waived is not None and finding.level == "mandatory":
                ElementTree.SubElement(case, "skipped", message=f"waived: {finding.waived}: {text}")
            else:
                notes.append(f"{finding.level}: {text}")
        if notes:
            ElementTree.SubElement(case, "system-out").text = "\n".join(notes)
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(suites, encoding="unicode") + "\n"


def failed(message: str) -> str:
    """The JUnit XML of a check that could not run: one test case in error, with the error as its message."""
    suites = ElementTree.Element("testsuites", name="virtplane check", tests="1", failures="0", errors="1")
    suite = ElementTree.SubElement(suites, "testsuite", name="virtplane check", tests="1", failures="0", errors="1")
    case = ElementTree.SubElement(suite, "testcase", classname="virtplane", name="check")
    ElementTree.SubElement(case, "error", message=message, type="error")
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(suites, encoding="unicode") + "\n"
