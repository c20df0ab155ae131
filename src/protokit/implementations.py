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


def planned(directory: Path, sources: SourceSet) -> dict[Path, str]:
    """Implementation path -> proto file, for every proto file that declares a service.

    `<stem>.py` (user_service.py); protos that share a file name in different directories get their
    directories in the name too (a_v1_service.py, b_v1_service.py).
    """
    with_services = [name for name, file in sources.files.items() if file.has_service]
    stems = {name: os.path.basename(name)[: -len(".proto")] for name in with_services}
    clashing = {stem for stem in stems.values() if list(stems.values()).count(stem) > 1}
    paths: dict[Path, str] = {}
    for name in with_services:
        stem = name[: -len(".proto")].replace("/", "_") if stems[name] in clashing else stems[name]
        paths[directory / (stem.replace("-", "_").replace(".", "_") + ".py")] = name
    return paths


def create_missing(project: Project, config: GenConfig, sources: SourceSet) -> list[str]:
    """Write the implementation skeletons that do not exist yet; returns their project-relative paths."""
    directory = implementation_dir(project, config)
    if directory is None:
        return []
    missing = {path: name for path, name in planned(directory, sources).items() if not path.exists()}
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
