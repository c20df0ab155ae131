"""What `new service` and `new proto` return, and how the command line prints it (text or JSON)."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protokit.scaffold.hints import Hint


@dataclass
class ServiceResult:
    root: Path
    service: str  # full name: acme.billing.v1.BillingService
    proto: str  # project-relative path of the new proto
    new_project: bool  # False: added to a project that has a buf.yaml
    created: list[str] = field(default_factory=list)  # project-relative, in writing order
    generated_files: int = 0  # files in the generated tree after gen
    hints: list[Hint] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "service": self.service,
            "proto": self.proto,
            "new_project": self.new_project,
            "created": self.created,
            "generated_files": self.generated_files,
            "hints": [{"path": h.path, "message": h.message, "snippet": h.snippet} for h in self.hints],
            "next_steps": self.next_steps,
        }


@dataclass
class ProtoResult:
    root: Path
    path: str  # project-relative
    package: str
    message: str
    created: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "path": self.path,
            "package": self.package,
            "message": self.message,
            "created": self.created,
            "next_steps": self.next_steps,
        }


def render_service(result: ServiceResult, fmt: str = "text") -> None:
    """Print what `new service` did: created files, hints for existing files, next steps."""
    if fmt == "json":
        sys.stdout.write(json.dumps(result.to_json(), sort_keys=True) + "\n")
        return
    from rich.markup import escape

    from protokit.report import stdout_console

    out = stdout_console()
    where = "a new project" if result.new_project else "the project"
    out.print(f"[green]✓[/] {escape(result.service)} in {where} at {escape(str(result.root))}")
    for path in result.created:
        out.print(f"  [green]+[/] {escape(path)}")
    out.print(f"  [green]✓[/] protokit gen: {result.generated_files} generated files")
    render_hints(out, result.hints)
    render_steps(out, result.next_steps)


def render_proto(result: ProtoResult, fmt: str = "text") -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps(result.to_json(), sort_keys=True) + "\n")
        return
    from rich.markup import escape

    from protokit.report import stdout_console

    out = stdout_console()
    out.print(f"[green]+[/] {escape(result.path)} (package {escape(result.package)}, message {escape(result.message)})")
    render_steps(out, result.next_steps)


def render_hints(out: Any, hints: Sequence[Hint]) -> None:
    from rich.markup import escape

    for hint in hints:
        out.print(f"[yellow]note:[/] {escape(hint.path)} {escape(hint.message)}")
        if hint.snippet:
            out.print(textwrap.indent(escape(hint.snippet), "    "))


def render_steps(out: Any, steps: Sequence[str]) -> None:
    from rich.markup import escape

    if steps:
        out.print("\n[bold]Next steps:[/]")
        for step in steps:
            out.print(f"  {escape(step)}")
