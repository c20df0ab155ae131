"""`protokit lint --list-rules` / `protokit breaking --list-rules`: buf's rules, as `buf config
ls-lint-rules` lists them for the project's buf.yaml version, followed by protokit's own, in buf's table
(or its JSON lines)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from protokit.bufbin import find_buf
from protokit.check import rules
from protokit.errors import ProtokitError


def rows(command: str, root: Path) -> list[dict[str, Any]]:
    """One dict per rule with buf's JSON keys; protokit's rules are on by default, like buf's defaults."""
    buf = find_buf()
    proc = subprocess.run(
        [str(buf), "config", f"ls-{command}-rules", "--format", "json"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        message = (proc.stderr.strip() or proc.stdout.strip()).removeprefix("Failure: ")
        raise ProtokitError(f"buf config ls-{command}-rules failed ({buf}): {message}")
    theirs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    ours = [
        {
            "id": rule.id,
            "categories": [rule.category],
            "default": True,
            "purpose": rule.purpose,
            "plugin": "",
            "deprecated": False,
            "replacements": None,
        }
        for rule in rules.of(command)
    ]
    return theirs + ours


def table(listed: list[dict[str, Any]]) -> str:
    """buf's text layout: ID, CATEGORIES, DEFAULT and PURPOSE columns, two spaces apart."""
    cells = [("ID", "CATEGORIES", "DEFAULT", "PURPOSE")] + [
        (r["id"], ", ".join(r["categories"]), "*" if r["default"] else "", r["purpose"]) for r in listed
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(3)]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3] + "\n"
        for row in cells
    )


def json_lines(listed: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in listed)
