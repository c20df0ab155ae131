"""Which baseline module each module of the working tree is compared with, the way `buf breaking`
pairs them.

buf builds one image per module (files named relative to the module root), sorts the modules by
path and compares the i-th current module with the i-th baseline module. So a renamed module
(protos -> api) is still compared, and so is a module whose root moved to or from the repository
root (buf.yaml added or removed). When the working tree has more modules, buf first sets aside the
new ones, keeping a module only if one of its files is in a baseline module not yet matched; buf
does that only when all modules share one breaking config and fails otherwise, protokit always does
(a new module breaks nothing). Fewer modules than the baseline fails, as in buf.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from protokit.errors import ProtokitError


def pair_modules(
    current: Mapping[str, Collection[str]], baseline: Mapping[str, Collection[str]], label: str
) -> list[tuple[str, str]]:
    """(current module, baseline module) pairs; both map module paths to their files' names."""
    cur = sorted(m for m, names in current.items() if names)
    base = sorted(m for m, names in baseline.items() if names)
    paired = _without_new_modules(cur, current, base, baseline) if len(cur) > len(base) else cur
    if len(paired) != len(base):
        raise ProtokitError(
            f"--against {label}: cannot pair the modules of the working tree ({', '.join(cur) or 'none'}) "
            f"with those of the baseline ({', '.join(base)}); buf breaking fails too: "
            f'"input contained {len(cur)} images, whereas against contained {len(base)} images"'
        )
    return list(zip(paired, base, strict=True))


def _without_new_modules(
    cur: list[str], current: Mapping[str, Collection[str]], base: list[str], baseline: Mapping[str, Collection[str]]
) -> list[str]:
    files = {b: set(baseline[b]) for b in base}
    matched: set[str] = set()
    kept = []
    for module in cur:
        for name in sorted(current[module]):
            hit = next((b for b in base if b not in matched and name in files[b]), None)
            if hit is not None:
                matched.add(hit)
                kept.append(module)
                break
    return kept
