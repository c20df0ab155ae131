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
    module: str  # run as `python -m module`
    pythonpath: tuple[Path, ...]  # the source root and the generated code
    sources: tuple[Path, ...]  # where an edited .py means a restart

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        paths = [str(p) for p in self.pythonpath]
        if base.get("PYTHONPATH"):
            paths.append(base["PYTHONPATH"])
        return {**base, "PYTHONPATH": os.pathsep.join(paths)}


def resolve(project: Project, gen: GenConfig, module: str | None) -> Target:
    """MODULE if given; else the package of buf.gen.yaml's implementations=DIR when it has a __main__.py
    (what `new service` and `new service --from` write, and the example UserService)."""
    from protokit.implementations import implementation_dir
    from protokit.scaffold.layout import package_of

    outs = tuple(dict.fromkeys(project.root / plugin.out for plugin in gen.plugins))
    directory = implementation_dir(project, gen)
    if module is None:
        if directory is None or not (directory / "__main__.py").is_file():
            raise ProtokitError(
                "name the module to run (protokit dev MODULE): buf.gen.yaml has no implementations=DIR "
                "with a __main__.py to run"
            )
        module, source = package_of(project.root, directory)
        return Target(module, (source, *outs), (source,))
    source = project.root / "src"
    roots: tuple[Path, ...] = (source,) if source.is_dir() else (project.root,)
    if directory is not None:
        roots = (package_of(project.root, directory)[1], *roots)
    found = _findable(module, (*roots, *outs))
    if not found:
        raise ProtokitError(f"module {module!r} not found under {', '.join(str(r) for r in roots)} or installed")
    return Target(module, tuple(dict.fromkeys((*roots, *outs))), tuple(dict.fromkeys(roots)))


def _findable(module: str, roots: tuple[Path, ...]) -> bool:
    top = module.split(".")[0]
    if any((root / top).is_dir() or (root / f"{top}.py").is_file() for root in roots):
        return True
    return importlib.util.find_spec(top) is not None
