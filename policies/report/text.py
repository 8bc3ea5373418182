"""Findings for people: grouped by resource, mandatory first, each with its host, field, message and remedy."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from virtplane.policies.evaluate import Report
from virtplane.policies.model import Finding
from virtplane.policies.report import display_path


def _label(finding: Finding) -> str:
    if finding.waived is not None:
        return f"[dim]waived[/] [dim]({escape(finding.waived)})[/]"
    if finding.downgraded is not None:
        return f"[yellow]advisory[/] [dim](downgraded: {escape(finding.downgraded)})[/]"
    return "[bold red]mandatory[/]" if finding.level == "mandatory" else "[yellow]advisory[/]"


def render(console: Console, report: Report, base: Path) -> None:
    counted = f"{report.vms} VMs" + (f", {report.containers} container{'s' * (report.containers != 1)}"
                                      if report.containers else "")
    console.print(f"[bold]Policy check[/] for stack [bold]{escape(report.stack)}[/] ({counted})")
    ordered = sorted(report.findings, key=lambda f: (f.waived is not None, f.level != "mandatory"))
    for finding in ordered:
        where = display_path(finding.file, base)
        site = f" [dim]{escape(where)}:{finding.line}[/]" if where and finding.line else ""
        host = f" on {escape(finding.host)}" if finding.host else ""
        field = f" field '{escape(finding.field)}'" if finding.field else ""
        console.print(f"  {_label(finding)} [bold]{finding.rule}[/] {finding.noun} [bold]{escape(finding.resource)}[/]"
                      f"{host}{field}{site}")
        console.print(f"      {escape(finding.message)}")
        if finding.remediation and finding.blocking:
            console.print(f"      [dim]fix: {escape(finding.remediation)}[/]")
    summary = report.summary()
    verdict = "[bold red]blocked[/]" if summary["mandatory"] else "[green]passed[/]"
    console.print(f"{verdict}: {summary['mandatory']} mandatory, {summary['advisory']} advisory, "
                  f"{summary['waived']} waived.")
