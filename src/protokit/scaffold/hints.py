"""Hints: what an existing file (buf.gen.yaml, pyproject.toml) lacks for the new service, and exactly what
to add, since protokit never edits a file it did not create."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protokit import version
from protokit.scaffold.layout import BUF_GEN_YAML, PROTOKIT_PLUGIN, PYPROJECT, GenInfo

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class Hint:
    """An existing file that lacks something the new service needs: what to add, exactly."""

    path: str  # relative to the project root
    message: str
    snippet: str = ""


def gen_yaml_hints(gen: GenInfo, out: str, implementations: str, importer: str) -> list[Hint]:
    """What an existing buf.gen.yaml lacks for the implementation file `importer` (in `implementations`)."""
    hints = []
    if not gen.implementations:
        hints.append(
            Hint(
                BUF_GEN_YAML,
                f"has no {PROTOKIT_PLUGIN} with implementations=DIR, which generates the servicer base and "
                f"client {importer} imports; add this plugin:",
                f"  - local: {PROTOKIT_PLUGIN}\n    out: {out}\n    opt:\n      - implementations={implementations}",
            )
        )
    if not gen.has_python or not gen.has_grpc:
        missing = []
        if not gen.has_python:
            missing.append(
                f"  - protoc_builtin: python\n    protoc_path: [python, -m, grpc_tools.protoc]\n    out: {out}"
            )
        if not gen.has_grpc:
            missing.append(f"  - local: protoc-gen-grpc_python\n    out: {out}")
        hints.append(
            Hint(BUF_GEN_YAML, "lacks the Python generators the service's code imports; add:", "\n".join(missing))
        )
    return hints


def _requires(requirements: object, distribution: str) -> bool:
    """Whether a list of PEP 508 requirements names `distribution` (names compare normalised)."""
    wanted = re.sub(r"[-_.]+", "-", distribution).lower()
    for requirement in _strings(requirements):
        name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
        if name and re.sub(r"[-_.]+", "-", name.group(1)).lower() == wanted:
            return True
    return False


def _dependency_hints(data: dict[str, Any]) -> list[Hint]:
    """The runtime in [project] dependencies, the toolchain in the dev extra; and no "protokit", which on
    the package index is an unrelated project."""
    if _lookup(data, "project", "name") in (version.TOOLCHAIN, version.RUNTIME):
        return []
    hints = []
    deps = _lookup(data, "project", "dependencies")
    dev = _lookup(data, "project", "optional-dependencies", "dev")
    if _requires(deps, "protokit") or _requires(dev, "protokit"):
        hints.append(
            Hint(
                PYPROJECT,
                'requires "protokit", which on the package index is an unrelated project; remove it (the '
                f"runtime is {version.RUNTIME}, the toolchain {version.TOOLCHAIN})",
            )
        )
    if not _requires(deps, version.RUNTIME):
        hints.append(
            Hint(
                PYPROJECT,
                "does not depend on the runtime the generated code imports; add to [project] dependencies:",
                f'"{version.runtime_requirement()}"',
            )
        )
    if not _requires(dev, version.TOOLCHAIN):
        hints.append(
            Hint(
                PYPROJECT,
                "has no protokit toolchain for development and CI; add to [project.optional-dependencies] dev:",
                f'"{version.toolchain_requirement()}"',
            )
        )
    return hints


def pyproject_hints(path: Path, source_root: str, out: str, python_package: str) -> list[Hint]:
    """What an existing pyproject.toml lacks to install and test the implementation package (in source_root)
    and the generated packages (in out)."""
    roots = [r for r in dict.fromkeys((source_root, out)) if r != "."]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return [
            Hint(
                PYPROJECT,
                f"could not be read ({exc}); it needs {version.RUNTIME} as a dependency and these "
                f"importable package directories: {', '.join(roots)}",
            )
        ]
    hints = []
    hints.extend(_dependency_hints(data))
    packages = _lookup(data, "tool", "setuptools", "packages")
    listed = ", ".join(f'"{r}"' for r in roots)
    if isinstance(packages, list):
        hints.append(
            Hint(
                PYPROJECT,
                f"lists its packages explicitly ([tool.setuptools] packages); the service also needs "
                f"{python_package} from {source_root}/ and the generated packages in {out}/, "
                "for example instead of the list:",
                f"[tool.setuptools.packages.find]\nwhere = [{listed}]",
            )
        )
    elif [r for r in roots if r not in _strings(_lookup(packages, "find", "where"))]:
        hints.append(
            Hint(
                PYPROJECT,
                "does not make every package the service needs installable (with setuptools; other "
                "build backends need the same directories):",
                f"[tool.setuptools.packages.find]\nwhere = [{listed}]",
            )
        )
    pythonpath = _strings(_lookup(data, "tool", "pytest", "ini_options", "pythonpath"))
    if [r for r in roots if r not in pythonpath]:
        hints.append(
            Hint(
                PYPROJECT,
                "does not put the packages on pytest's path, so the tests need an install first; to run "
                "them without one add:",
                f"[tool.pytest.ini_options]\npythonpath = [{listed}]",
            )
        )
    return hints


def _lookup(data: Any, *keys: str) -> Any:
    """data[k1][k2]... of parsed TOML, or None where a table is missing or not a table."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _strings(value: Any) -> list[str]:
    """A TOML string or array of strings as a list; anything else as []."""
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
