"""Errors that end a command with a clear message instead of a traceback."""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


@dataclass(frozen=True)
class Location:
    """A place in an input file; path is relative to the project root where possible."""

    path: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.column or 1}"
        return self.path


class ProtokitError(Exception):
    """Bad input, config or environment: exit 2 with one message per problem.

    `lines` are protoc-style `path:line:col: message` strings when there is a position.
    """

    exit_code = EXIT_USAGE

    def __init__(self, message: str, lines: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.lines = lines or []


class ConfigError(ProtokitError):
    """buf.yaml, buf.gen.yaml or pyproject.toml is unreadable or invalid."""

    def __init__(self, where: Location, message: str) -> None:
        super().__init__(f"{where}: {message}", [f"{where}: {message}"])
        self.where = where


class CompileError(ProtokitError):
    """protoc rejected the inputs; `lines` are its diagnostics, one per problem, with project-relative
    paths. The first is also the message, so a report prints each problem once and nothing else."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(lines[0] if lines else "compilation failed", lines)
