"""buf's `--error-format` outputs, byte for byte, for protokit's findings (buf's and its own alike).

Written after bufbuild/buf `private/bufpkg/bufanalysis/print.go`: msvs, github-actions, junit and
gitlab-code-quality (whose fingerprint is SHAKE-256 of the issue's own JSON, as Go encodes it). Like
buf, each prints nothing when there are no findings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from protokit.config import BUF_YAML, Module, Project
from protokit.findings import Finding

_INPUT = "<input>"


def _at_least_1(value: int) -> int:
    return max(value, 1)


def _path(f: Finding) -> str:
    return f.path or _INPUT


def _origin(f: Finding) -> str:
    """(plugin, policy) after a message, as buf prints the source of a plugin's or policy's finding."""
    names = ", ".join(n for n in (f.plugin, f.policy) if n)
    return f" ({names})" if names else ""


def _text(f: Finding) -> str:
    """buf's FileAnnotation.String(): path:line:col:message."""
    return f"{_path(f)}:{_at_least_1(f.start_line)}:{_at_least_1(f.start_column)}:{f.message or f.type}{_origin(f)}"


def to_msvs(findings: Sequence[Finding]) -> str:
    return "".join(
        f"{_path(f)}({_at_least_1(f.start_line)},{_at_least_1(f.start_column)}) : error {f.type or 'FAILURE'} : "
        f"{f.message or f.type or 'FAILURE'}{_origin(f)}\n"
        for f in findings
    )


def to_github_actions(findings: Sequence[Finding]) -> str:
    lines = []
    for f in findings:
        where = ""
        if f.start_line > 0:
            where = f",line={f.start_line}" + (f",col={f.start_column}" if f.start_column > 0 else "")
            if f.end_line > 0:
                where += f",endLine={f.end_line}" + (f",endColumn={f.end_column}" if f.end_column > 0 else "")
        lines.append(f"::error file={_path(f)}{where}::{f.message}{_origin(f)}\n")
    return "".join(lines)


def _xml_attr(value: str) -> str:
    """Go's encoding/xml escaping of attribute values."""
    for raw, escaped in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&#34;"), ("'", "&#39;")):
        value = value.replace(raw, escaped)
    return value.replace("\t", "&#x9;").replace("\n", "&#xA;").replace("\r", "&#xD;")


def to_junit(findings: Sequence[Finding]) -> str:
    """A testsuite per file (in order of first appearance, named without .proto), a testcase per finding."""
    if not findings:
        return ""
    by_path: dict[str, list[Finding]] = {}
    for f in findings:
        by_path.setdefault(_path(f), []).append(f)
    out = ["<testsuites>"]
    for path, items in by_path.items():
        name = path.removesuffix(".proto")
        out.append(f'  <testsuite name="{_xml_attr(name)}" tests="{len(items)}" failures="{len(items)}" errors="0">')
        for f in items:
            case = f.type
            if f.start_column:
                case += f"_{f.start_line}_{f.start_column}"
            elif f.start_line:
                case += f"_{f.start_line}"
            out.append(f'    <testcase name="{_xml_attr(case)}">')
            out.append(f'      <failure message="{_xml_attr(_text(f))}" type="{_xml_attr(f.type)}"></failure>')
            out.append("    </testcase>")
        out.append("  </testsuite>")
    out.append("</testsuites>")
    return "\n".join(out) + "\n"


def _go_json(value: Any) -> str:
    """encoding/json's compact output: UTF-8 as is, <, > and & escaped as HTML-safe \\u sequences."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _gitlab_issue(f: Finding) -> dict[str, Any]:
    def position(line: int, column: int) -> dict[str, int]:
        return {k: v for k, v in (("line", line), ("column", column)) if v}  # omitempty

    issue: dict[str, Any] = {
        "description": f.message,
        "check_name": f.type,
        "location": {
            "path": f.path,
            "positions": {
                "begin": position(f.start_line, f.start_column),
                "end": position(f.end_line, f.end_column),
            },
        },
        "severity": "minor",
    }
    issue = {k: v for k, v in issue.items() if v != ""}
    if not f.path:
        del issue["location"]["path"]
    fingerprint = hashlib.shake_256(_go_json(issue).encode()).hexdigest(64)
    # The fingerprint goes where Go's struct puts it: after check_name.
    ordered: dict[str, Any] = {k: issue[k] for k in ("description", "check_name") if k in issue}
    return {**ordered, "fingerprint": fingerprint, **{k: v for k, v in issue.items() if k not in ordered}}


def to_gitlab_code_quality(findings: Sequence[Finding]) -> str:
    if not findings:
        return ""
    return _go_json([_gitlab_issue(f) for f in findings]) + "\n"


@dataclass(frozen=True)
class IgnoreBaseline:
    """Findings as `ignore_only` entries: what a lint baseline records, before it is printed."""

    # buf's rules: (buf.yaml file, its version) -> rule -> paths, as that file's version reads them.
    blocks: dict[tuple[str, str], dict[str, list[str]]]
    # protokit's own rules (buf rejects unknown rule IDs): rule -> project-relative paths, for
    # pyproject.toml's [tool.protokit.lint.ignore_only].
    own: dict[str, list[str]]


def ignore_baseline(findings: Sequence[Finding], project: Project) -> IgnoreBaseline:
    """Every finding's rule and path, per file it belongs in; rules and paths sorted.

    Unlike buf 1.75, which prints `version: v1` with module-relative paths whatever the buf.yaml, the
    entries are in the version of the buf.yaml they go into: v2 paths are relative to buf.yaml's
    directory, v1 paths to their module (one block per module file).
    """
    blocks: dict[tuple[str, str], dict[str, set[str]]] = {}
    own: dict[str, set[str]] = {}
    for f in findings:
        if f.source != "buf":
            own.setdefault(f.type, set()).add(f.path)
            continue
        module = _module_of(f.path, project)
        if module is None or module.config_version == "v2":
            key, path = (BUF_YAML, "v2"), f.path
        else:
            prefix = "" if module.path == "." else module.path + "/"
            key, path = (_module_file(module), module.config_version), f.path.removeprefix(prefix)
        blocks.setdefault(key, {}).setdefault(f.type, set()).add(path)
    return IgnoreBaseline(
        blocks={key: _sorted(rules) for key, rules in sorted(blocks.items())},
        own=_sorted(own),
    )


def _sorted(rules: dict[str, set[str]]) -> dict[str, list[str]]:
    return {rule: sorted(paths) for rule, paths in sorted(rules.items())}


def ignore_only_lines(rules: Mapping[str, Sequence[str]], indent: str = "  ") -> list[str]:
    """An `ignore_only:` mapping as YAML lines at `indent` (its place under `lint:`)."""
    out = [f"{indent}ignore_only:"]
    for rule, paths in rules.items():
        out.append(f"{indent}  {rule}:")
        out += [f"{indent}    - {p}" for p in paths]
    return out


def to_ignore_yaml(findings: Sequence[Finding], project: Project) -> str:
    """A lint baseline to paste: every finding's rule and path under `ignore_only` (see ignore_baseline).

    protokit's own rules are not buf's, so their baseline is pyproject.toml's, shown as comments.
    """
    if not findings:
        return ""
    baseline = ignore_baseline(findings, project)
    out = []
    for (file, version), rules in baseline.blocks.items():
        if len(baseline.blocks) > 1 or file != BUF_YAML:
            out.append(f"# {file}")
        out += [f"version: {version}", "lint:", *ignore_only_lines(rules)]
    if baseline.own:
        out.append("# protokit's own rules: in pyproject.toml")
        out.append("# [tool.protokit.lint.ignore_only]")
        out += [f"# {rule} = {json.dumps(paths)}" for rule, paths in baseline.own.items()]
    return "\n".join(out) + "\n"


def _module_of(path: str, project: Project) -> Module | None:
    """The module a project-relative path belongs to (the longest matching module directory)."""
    matches = [m for m in project.modules if m.path == "." or path.startswith(m.path + "/")]
    return max(matches, key=lambda m: len(m.path), default=None)


def _module_file(module: Module) -> str:
    """The buf.yaml a v1/v1beta1 module's settings live in: the file it was read from (v1beta1 roots
    share their directory's), or, for a buf.work.yaml directory without one, the one to create."""
    where = module.where.path
    return where if where.endswith(BUF_YAML) else f"{module.path}/{BUF_YAML}"
