"""What `protokit dev` runs: the service's module and the import path it needs."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from protokit.config import GenConfig, Project
from protokit.errors import ProtokitError


@dataclass(frozen=True)
class Target:
    module: str  # run as `python -m module`, or, with `function`, call module.function()
    pythonpath: tuple[Path, ...]  # the source root and the generated code
    sources: tuple[Path, ...]  # where an edited .py means a restart
    function: str | None = None  # a [project.scripts] entry point's function

    @property
    def argv(self) -> list[str]:
        """What follows `python`."""
        if self.function is None:
            return ["-m", self.module]
        return ["-c", f"import sys; from {self.module} import {self.function}; sys.exit({self.function}())"]

    @property
    def label(self) -> str:
        return self.module if self.function is None else f"{self.module}:{self.function}"

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        paths = [str(p) for p in self.pythonpath]
        if base.get("PYTHONPATH"):
            paths.append(base["PYTHONPATH"])
        return {**base, "PYTHONPATH": os.pathsep.join(paths)}


def resolve(project: Project, gen: GenConfig, module: str | None) -> Target:
    """MODULE if given; else the package of buf.gen.yaml's implementations=DIR when it has a __main__.py
    (what `new service` and `new service --from` write, and the example UserService); else the first
    [project.scripts] entry point of pyproject.toml."""
    from protokit.implementations import implementation_dir
    from protokit.scaffold.layout import package_of

    outs = tuple(dict.fromkeys(project.root / plugin.out for plugin in gen.plugins))
    directory = implementation_dir(project, gen)
    if module is None:
        if directory is not None and (directory / "__main__.py").is_file():
            module, source = package_of(project.root, directory)
            return Target(module, (source, *outs), (source,))
        script = _script(project.root)
        if script is None:
            raise ProtokitError(
                "name the module to run (protokit dev MODULE): buf.gen.yaml has no implementations=DIR with "
                "a __main__.py, and pyproject.toml no [project.scripts] entry"
            )
        module, _, function = script.partition(":")
        return _named(project.root, directory, outs, module.strip(), function.strip() or None)
    return _named(project.root, directory, outs, module, None)


def _named(root: Path, directory: Path | None, outs: tuple[Path, ...], module: str, function: str | None) -> Target:
    """A module named by the user or by pyproject, found in src/ (or the root), the implementation's
    source root, or installed."""
    from protokit.scaffold.layout import package_of

    source = root / "src"
    roots: tuple[Path, ...] = (source,) if source.is_dir() else (root,)
    if directory is not None:
        roots = (package_of(root, directory)[1], *roots)
    if not _findable(module, (*roots, *outs)):
        raise ProtokitError(f"module {module!r} not found under {', '.join(str(r) for r in roots)} or installed")
    return Target(module, tuple(dict.fromkeys((*roots, *outs))), tuple(dict.fromkeys(roots)), function)


def _script(root: Path) -> str | None:
    """The first [project.scripts] entry point of pyproject.toml ("pkg.__main__:main"), if any."""
    import tomllib

    try:
        data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    scripts = data.get("project", {}).get("scripts", {})
    entries = [v for v in scripts.values() if isinstance(v, str)] if isinstance(scripts, dict) else []
    return entries[0] if entries else None


def _findable(module: str, roots: tuple[Path, ...]) -> bool:
    top = module.split(".")[0]
    if any((root / top).is_dir() or (root / f"{top}.py").is_file() for root in roots):
        return True
    return importlib.util.find_spec(top) is not None
