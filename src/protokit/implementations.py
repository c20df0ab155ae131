"""The generation gap: the user's implementation file for each proto file with services, created once.

Generated bases are rewritten on every `protokit gen`; the subclass implementing them lives in a
file protokit writes only when it does not exist yet, so edits are never lost. A proto change then
surfaces as a type error in that file (mypy) or an UNIMPLEMENTED method, never as a lost edit.
The directory comes from the protoc-gen-protokit entry of buf.gen.yaml: `opt: [implementations=DIR]`
(buf generate passes the option to the plugin, which ignores it).
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from protokit import cache
from protokit.config import GenConfig, Project
from protokit.errors import ConfigError
from protokit.sources import SourceSet

OPTION = "implementations"


def implementation_dir(project: Project, config: GenConfig) -> Path | None:
    for spec in config.plugins:
        if os.path.basename(spec.name) != "protoc-gen-protokit":
            continue
        for opt in spec.opt:
            key, _, value = opt.partition("=")
            if key.strip() == OPTION:
                if not value.strip() or os.path.isabs(value) or os.path.normpath(value).startswith(".."):
                    raise ConfigError(spec.where, f"{OPTION}= must name a directory inside the project")
                return project.root / os.path.normpath(value.strip())
    return None


# The first line of every implementation file protokit creates names the proto it was made for: that is
# how a file keeps its name when protos added later would make another name the natural one.
_CREATED = re.compile(r"# Created by (?:protokit|`protokit new service`) from (\S+?); this file is yours to edit\.")


def created_from(path: Path) -> str | None:
    """The proto an implementation file was created for, from its first line; None for any other file."""
    try:
        with open(path, encoding="utf-8") as fh:
            first = fh.readline(1024)
    except (OSError, UnicodeDecodeError):
        return None
    match = _CREATED.match(first)
    return match.group(1) if match else None


def planned(directory: Path, sources: SourceSet) -> dict[Path, str]:
    """Implementation path -> proto file, for every proto file that declares a service.

    A file that exists and says which proto it was created for keeps that proto. For the others:
    `<stem>.py` (user_service.py), or, where protos share a file name in different directories or the
    name is another proto's file already, one with the directories in it (a_v1_service.py).
    """
    with_services = [name for name, file in sources.files.items() if file.has_service]
    remembered: dict[str, Path] = {}
    if directory.is_dir():
        for path in sorted(directory.glob("*.py")):
            proto = created_from(path)
            if proto in sources.files and proto not in remembered:
                remembered[proto] = path
    taken = {path.name for path in remembered.values()}
    new = [name for name in with_services if name not in remembered]
    stems = {name: os.path.basename(name)[: -len(".proto")] for name in new}
    clashing = {stem for stem in stems.values() if list(stems.values()).count(stem) > 1}
    paths = {path: name for name, path in remembered.items()}
    for name in new:
        plain = _python_file(stems[name])
        owner = created_from(directory / plain)
        qualify = stems[name] in clashing or plain in taken or (owner is not None and owner != name)
        paths[directory / (_python_file(name[: -len(".proto")].replace("/", "_")) if qualify else plain)] = name
    return dict(sorted(paths.items()))


def _classes(directory: Path) -> set[str]:
    """The top-level class names of the Python modules in `directory` (read with ast)."""
    names: set[str] = set()
    for path in sorted(directory.glob("*.py")) if directory.is_dir() else []:
        try:
            tree = ast.parse(path.read_bytes())
        except (OSError, SyntaxError, ValueError):
            continue
        names |= {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    return names


def _served(project: Project, sources: SourceSet, name: str, classes: set[str]) -> bool:
    """Whether every service of proto `name` has a class of its name in the directory already (a file the
    user renamed and whose first line no longer says where it came from): no second skeleton then."""
    try:
        services = declared_services((project.root / sources.files[name].display).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return False
    return bool(services) and set(services) <= classes


def _python_file(stem: str) -> str:
    return stem.replace("-", "_").replace(".", "_") + ".py"


def create_missing(project: Project, config: GenConfig, sources: SourceSet) -> list[str]:
    """Write the implementation skeletons that do not exist yet; returns their project-relative paths."""
    directory = implementation_dir(project, config)
    if directory is None:
        return []
    missing = {path: name for path, name in planned(directory, sources).items() if not path.exists()}
    if missing:
        implemented = _classes(directory)
        missing = {path: name for path, name in missing.items() if not _served(project, sources, name, implemented)}
    if not missing:
        return []
    from google.protobuf import descriptor_pb2

    from protokit.compile import build_descriptor_set
    from protokit.servicegen import build, render_implementation

    names = sorted(set(missing.values()))
    image = build_descriptor_set(project, cache.cache_dir(), names, config.inputs, sources.imports_validate)
    files = {f.name: f for f in descriptor_pb2.FileDescriptorSet.FromString(image).file}
    created = []
    for path, name in sorted(missing.items()):
        source = render_implementation(build(files[name], files))
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(path, "x", encoding="utf-8") as fh:  # "x": never replace a file that appeared meanwhile
                fh.write(source)
        except FileExistsError:
            continue
        created.append(project.display(path))
    return created


# A cheap reading of the services a proto declares (comments and strings removed first); the compiler has
# the final word, this only says which RPC names an implementation class should define.
_NOISE = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
_SERVICE = re.compile(r"\bservice\s+(\w+)\s*\{")
_RPC = re.compile(r"\brpc\s+(\w+)\s*\(")


def declared_services(text: str) -> dict[str, list[str]]:
    """Service name -> its RPC names, in declaration order."""
    code = _NOISE.sub(" ", text)
    services: dict[str, list[str]] = {}
    for match in _SERVICE.finditer(code):
        depth, end = 1, match.end()
        while depth and end < len(code):
            depth += {"{": 1, "}": -1}.get(code[end], 0)
            end += 1
        services[match.group(1)] = _RPC.findall(code, match.end(), end)
    return services


def missing_methods(
    path: Path, display: str, services: Mapping[str, Sequence[str]], classes: bool = False
) -> list[str]:
    """What the implementation module at `path` lacks for `services`: methods its classes (named as the
    services) do not define, which answer UNIMPLEMENTED from the generated base; with `classes`, also a
    service without a class. Read with `ast`: never imported, never edited."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        return [f"{display}: could not be read ({exc}), so it was not checked"]
    defined = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    missing = []
    for service, rpcs in services.items():
        node = defined.get(service)
        if node is None:
            if classes:
                missing.append(f"{display}: has no class {service}")
            continue
        methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        absent = [rpc for rpc in rpcs if rpc not in methods]
        if absent:
            missing.append(f"{display}: {service} does not implement {', '.join(absent)} (UNIMPLEMENTED until it does)")
    return missing


def unimplemented(project: Project, config: GenConfig, sources: SourceSet) -> list[str]:
    """For every implementation file that exists: the RPCs of its proto its service classes lack."""
    directory = implementation_dir(project, config)
    if directory is None:
        return []
    missing = []
    for path, name in sorted(planned(directory, sources).items()):
        if path.is_file():
            proto = project.root / sources.files[name].display
            try:
                services = declared_services(proto.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                continue
            missing += missing_methods(path, project.display(path), services)
    return missing
