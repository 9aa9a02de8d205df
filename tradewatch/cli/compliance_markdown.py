"""A ``ComplianceReport`` as Markdown for people: the policy and period, the counts by code and
by severity, then every issue in time order (``tradewatch compliance check --format markdown``)."""

from __future__ import annotations

from tradewatch.domain.compliance.issue import ISSUE_CODES, ComplianceIssue, ComplianceReport


def _cell(value: object) -> str:
    """Text safe inside a Markdown table cell (pipes escaped, one line)."""
    text = "-" if value is None or value == "" else str(value)
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").split())


def _time(iso: str) -> str:
    """2024-01-02T14:30:00.000000123Z -> 2024-01-02 14:30:00.000000123"""
    return iso.replace("T", " ").removesuffix("Z")


def _pair(first: str | None, second: str | None) -> str:
    return f"{first or '-'} / {second or '-'}"


def _issue_row(issue: ComplianceIssue) -> str:
    cells = (_time(issue.occurred_at_iso), issue.code, issue.severity, _pair(issue.strategy_id, issue.symbol),
             _pair(issue.order_id, issue.signal_id), issue.message)
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def report_markdown(report: ComplianceReport, source: str) -> str:
    """The report as Markdown; ``source`` says where the events came from (a file, the trail)."""
    body = report.to_dict()
    severities = body["counts_by_severity"]
    lines = [
        "# Compliance report",
        "",
        "| | |",
        "| --- | --- |",
        f"| policy | version {_cell(report.policy_version)}, SHA-256 `{report.policy_hash}` |",
        f"| period (UTC, end exclusive) | {_time(body['period_start_iso'])} to {_time(body['period_end_iso'])} |",
        f"| events | {_cell(source)} |",
        f"| events examined | {report.events_examined:,} |",
        f"| issues | {len(report.issues):,} |",
        "",
        "## Issues by severity",
        "",
        "| severity | issues |",
        "| --- | ---: |",
        *(f"| {severity} | {count:,} |" for severity, count in severities.items()),
        "",
        "## Issues by code",
        "",
        "| code | default severity | issues |",
        "| --- | --- | ---: |",
        *(f"| {code} | {ISSUE_CODES[code].severity} | {count:,} |" for code, count in body["counts_by_code"].items()),
        "",
        "## Issues",
        "",
    ]
    if report.issues:
        lines += ["| time (UTC) | code | severity | strategy / symbol | order / signal | message |",
                  "| --- | --- | --- | --- | --- | --- |",
                  *(_issue_row(issue) for issue in report.issues)]
    else:
        lines.append("No issues: every event examined kept to the policy.")
    return "\n".join(lines) + "\n"


__all__ = ["report_markdown"]
