"""buf.yaml v1 and v1beta1, and buf.work.yaml, read into the same modules as v2 (buf still reads them all).

- v1: the directory of buf.yaml is the module; `build.excludes` are relative to it.
- v1beta1: each of `build.roots` (default ".") is a root; `build.excludes` are relative to the buf.yaml
  directory and must lie in a root. protokit makes each root a module.
- buf.work.yaml (v1): `directories:` lists module directories, each with its own v1/v1beta1 buf.yaml or
  none (buf's defaults).

A v1/v1beta1 module keeps its `lint:`/`breaking:` sections with their version: buf interprets them (rule
IDs and categories differ between versions) and their paths are relative to the module (v1beta1: the
root), which are already the paths inside protokit's images. Keys are checked as strictly as buf does.
"""

from __future__ import annotations

import os
from pathlib import Path

from protokit.config import BREAKING_KEYS, BUF_WORK_YAML, BUF_YAML, LINT_RULE_KEYS, Module, yamlfile
from protokit.errors import ConfigError, Location

_TOP_KEYS = frozenset({"version", "name", "deps", "build", "lint", "breaking"})
_LINT_KEYS = LINT_RULE_KEYS | {"allow_comment_ignores"}
_WORK_KEYS = frozenset({"version", "directories"})


def workspace_dirs(root: Path) -> list[str]:
    """buf.work.yaml's `directories`, checked but not required to exist."""
    return [directory for directory, _ in _workspace(root)]


def workspace_modules(root: Path) -> tuple[tuple[Module, ...], tuple[str, ...]]:
    """The modules of buf.work.yaml's directories, and the deps their buf.yaml files declare."""
    modules: list[Module] = []
    deps: list[str] = []
    for directory, where in _workspace(root):
        if not (root / directory).is_dir():
            raise ConfigError(where, f'directory "{directory}" does not exist')
        found, found_deps = module_files(root, directory, where)
        modules.extend(found)
        deps.extend(found_deps)
    return tuple(modules), tuple(dict.fromkeys(deps))


def _workspace(root: Path) -> list[tuple[str, Location]]:
    node = yamlfile.load(root / BUF_WORK_YAML, BUF_WORK_YAML)
    top = yamlfile.mapping(node, BUF_WORK_YAML, _WORK_KEYS)
    version = top.get("version")
    if version is None or version.value != "v1":
        raise ConfigError(version.where if version else Location(BUF_WORK_YAML, 1, 1), 'version must be "v1"')
    if "directories" not in top:
        raise ConfigError(Location(BUF_WORK_YAML, 1, 1), 'missing "directories"')
    where = top["directories"].where
    return [
        (_inside(raw, where, "directory"), where) for raw in yamlfile.string_list(top["directories"], "directories")
    ]


def module_files(root: Path, directory: str, where: Location) -> tuple[tuple[Module, ...], tuple[str, ...]]:
    """The module(s) of one directory: its v1/v1beta1 buf.yaml, or buf's defaults without one."""
    display = BUF_YAML if directory == "." else f"{directory}/{BUF_YAML}"
    if not (root / display).is_file():
        return (Module(directory, where=where, config_version="v1"),), ()
    node = yamlfile.load(root / display, display)
    top = yamlfile.mapping(node, display, _TOP_KEYS)
    version = top["version"].value if "version" in top else "v1beta1"  # buf's default for buf.yaml
    if version not in ("v1", "v1beta1"):
        at = top["version"].where if "version" in top else Location(display, 1, 1)
        raise ConfigError(at, f'version "{version}" here must be v1 or v1beta1')
    for key, allowed in (("lint", _LINT_KEYS), ("breaking", BREAKING_KEYS)):
        if key in top:
            yamlfile.mapping(top[key], f"{key}", allowed)
    build = yamlfile.mapping(top["build"], "build", frozenset({"roots", "excludes"})) if "build" in top else {}
    if "roots" in build and version == "v1":
        raise ConfigError(build["roots"].where, "build.roots cannot be set on version v1")
    roots = yamlfile.string_list(build["roots"], "build.roots") if "roots" in build else ["."]
    excludes = yamlfile.string_list(build["excludes"], "build.excludes") if "excludes" in build else []
    here = top.get("version", node).where
    modules = []
    for raw_root in roots:
        path = _join(directory, _inside(raw_root, build["roots"].where if "roots" in build else here, "root"))
        mine = [e for e in excludes if _within(raw_root, e)]
        modules.append(
            Module(
                path,
                excludes=tuple(_join(directory, os.path.normpath(e)) for e in mine),
                lint=top.get("lint"),
                breaking=top.get("breaking"),
                where=here,
                config_version=version,
            )
        )
    for exclude in excludes:
        if not any(_within(r, exclude) for r in roots):
            where = build["excludes"].where
            raise ConfigError(where, f'exclude "{exclude}" is not contained in any root, which is not valid')
    deps = tuple(d.split(":")[0] for d in yamlfile.string_list(top["deps"], "deps")) if "deps" in top else ()
    return tuple(modules), deps


def _within(root: str, path: str) -> bool:
    root, path = os.path.normpath(root), os.path.normpath(path)
    return root == "." or path.startswith(root + os.sep)


def _join(directory: str, path: str) -> str:
    return Path(os.path.normpath(os.path.join(directory, path))).as_posix()


def _inside(raw: str, where: Location, what: str) -> str:
    normalised = os.path.normpath(raw)
    if os.path.isabs(raw) or normalised == ".." or normalised.startswith(".." + os.sep):
        raise ConfigError(where, f'{what} "{raw}" must be a relative path inside the project')
    return Path(normalised).as_posix()
