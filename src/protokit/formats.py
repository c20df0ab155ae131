"""Findings rendered for people (rich text grouped by file) and machines.

Machine formats are stable: keys and element names do not change between releases. buf's
`--error-format` names print what buf prints (bufformats); `json` is buf's plus a `source` key, and
`github` (annotations titled with the rule ID) and `sarif` are protokit's own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from enum import StrEnum
from itertools import groupby
from typing import TYPE_CHECKING, Any

from protokit.findings import Finding
from protokit.version import __version__

if TYPE_CHECKING:
    from protokit.config import Project

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


class FindingFormat(StrEnum):
    text = "text"
    json = "json"
    github = "github"
    sarif = "sarif"
    # buf's names, with buf's output
    msvs = "msvs"
    junit = "junit"
    github_actions = "github-actions"
    gitlab_code_quality = "gitlab-code-quality"
    config_ignore_yaml = "config-ignore-yaml"  # lint only, as in buf


def to_json_lines(findings: Sequence[Finding]) -> str:
    return "".join(json.dumps(f.to_json(), sort_keys=False) + "\n" for f in findings)


def _github_escape(value: str, property_value: bool = False) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


def to_github(findings: Sequence[Finding]) -> str:
    """GitHub Actions workflow commands: one ::error annotation per finding."""
    lines = []
    for f in findings:
        props = []
        if f.path:
            props.append(f"file={_github_escape(f.path, True)}")
            props += [f"line={f.start_line}", f"col={f.start_column}"]
            props += [f"endLine={f.end_line}", f"endColumn={f.end_column}"]
        props.append(f"title={_github_escape(f.type, True)}")
        lines.append(f"::error {','.join(props)}::{_github_escape(f.message)}\n")
    return "".join(lines)


def to_sarif(findings: Sequence[Finding], purposes: dict[str, str] | None = None) -> str:
    """SARIF 2.1.0 with the schema's required fields, for code-scanning uploads."""
    purposes = purposes or {}
    rule_ids = sorted({f.type for f in findings})
    rules = [
        {
            "id": rid,
            "shortDescription": {"text": purposes.get(rid, rid)},
            "properties": {"source": _source(rid, findings)},
        }
        for rid in rule_ids
    ]
    results: list[dict[str, Any]] = []
    for f in findings:
        result: dict[str, Any] = {
            "ruleId": f.type,
            "ruleIndex": rule_ids.index(f.type),
            "level": "error",
            "message": {"text": f.message},
        }
        if f.path:
            result["locations"] = [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": f.path},
                        "region": {
                            "startLine": max(f.start_line, 1),
                            "startColumn": max(f.start_column, 1),
                            "endLine": max(f.end_line, 1),
                            "endColumn": max(f.end_column, 1),
                        },
                    }
                }
            ]
        results.append(result)
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "protokit",
                        "version": __version__,
                        "informationUri": "https://github.com/protokit/protokit",
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def _source(rule_id: str, findings: Sequence[Finding]) -> str:
    return next(f.source for f in findings if f.type == rule_id)


def render_text(findings: Sequence[Finding], what: str, files: int) -> str:
    """Grouped by file, rule ID shown; a summary line last. Styled as stdout takes it (colour on a
    terminal, plain in a pipe), returned rather than printed so a warm run can replay it."""
    from rich.markup import escape

    from protokit.report import stdout_console

    console = stdout_console()
    with console.capture() as captured:
        _print_text(console, findings, what, files, escape)
    return captured.get()


def _print_text(console: Any, findings: Sequence[Finding], what: str, files: int, escape: Any) -> None:
    for path, group in groupby(sorted(findings, key=lambda f: (f.path, f)), key=lambda f: f.path):
        console.print(f"[bold underline]{escape(path or '(workspace)')}[/]")
        for f in group:
            where = f"{f.start_line}:{f.start_column}" if f.path else ""
            tag = "" if f.source == "buf" else " [dim](protokit)[/]"
            console.print(f"  [cyan]{where:>8}[/]  {escape(f.message)}  [yellow]{f.type}[/]{tag}")
        console.print()
    if findings:
        files_hit = len({f.path for f in findings})
        console.print(f"[bold red]✗[/] {len(findings)} {what} finding(s) in {files_hit} file(s)")
    else:
        console.print(f"[green]✓[/] {what}: no findings ({files} files)")


def render(findings: Sequence[Finding], fmt: FindingFormat, what: str, files: int, project: Project) -> str:
    """The findings in `fmt`, as text to write to stdout."""
    from protokit import bufformats

    writers: dict[FindingFormat, Callable[[], str]] = {
        FindingFormat.text: lambda: render_text(findings, what, files),
        FindingFormat.json: lambda: to_json_lines(findings),
        FindingFormat.github: lambda: to_github(findings),
        FindingFormat.sarif: lambda: to_sarif(findings, rule_purposes()),
        FindingFormat.msvs: lambda: bufformats.to_msvs(findings),
        FindingFormat.junit: lambda: bufformats.to_junit(findings),
        FindingFormat.github_actions: lambda: bufformats.to_github_actions(findings),
        FindingFormat.gitlab_code_quality: lambda: bufformats.to_gitlab_code_quality(findings),
        FindingFormat.config_ignore_yaml: lambda: bufformats.to_ignore_yaml(findings, project),
    }
    return writers[fmt]()


def rule_purposes() -> dict[str, str]:
    """Purposes of protokit's own rules for SARIF rule descriptions (buf's rules keep their IDs)."""
    from protokit.check import rules

    return {rule.id: rule.purpose for rule in rules.RULES}
