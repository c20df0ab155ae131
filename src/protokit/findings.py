"""A finding from lint or breaking, in buf's JSON shape plus where it came from.

Paths are relative to the directory of buf.yaml, exactly as `buf lint` prints them, so CI
annotations land on the real file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class Finding:
    path: str  # "" for findings that belong to no file
    start_line: int
    start_column: int
    end_line: int
    end_column: int
    type: str  # the rule ID, e.g. FIELD_LOWER_SNAKE_CASE or PY_FIELD_KEYWORD
    message: str
    source: str = "buf"  # "buf" or "protokit"
    plugin: str = ""  # the buf check plugin, or the policy, that reported it (buf.yaml plugins/policies)
    policy: str = ""

    def to_json(self) -> dict[str, Any]:
        """buf's --error-format=json keys (path, plugin and policy omitted when empty, as buf does) plus
        `source`."""
        data = asdict(self)
        for key in ("path", "plugin", "policy"):
            if not data[key]:
                del data[key]
        return data


def at_location(path: str, span: list[int] | tuple[int, ...] | None, rule: str, message: str) -> Finding:
    """A protokit finding at a SourceCodeInfo span ([line, col, end_col] or [line, col, end_line, end_col],
    zero-based), reported one-based like buf; no span means the start of the file."""
    if not span:
        return Finding(path, 1, 1, 1, 1, rule, message, "protokit")
    if len(span) == 3:
        line, col, end_line, end_col = span[0], span[1], span[0], span[2]
    else:
        line, col, end_line, end_col = span[0], span[1], span[2], span[3]
    return Finding(path, line + 1, col + 1, end_line + 1, end_col + 1, rule, message, "protokit")
