"""The project's configuration: buf.yaml (modules) and buf.gen.yaml (generation), both buf's v2 format,
modelled here; in the package, bufyaml_v1 reads buf.yaml v1/v1beta1 and buf.work.yaml, pyproject_config
`[tool.protokit]` in pyproject.toml, and yamlfile loads YAML with positions.

protokit reads the same files buf does, so one configuration drives `buf` and `protokit` alike.
Parsing is strict like buf's: an unknown key is an error naming the file, line and column.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from protokit.config import yamlfile
from protokit.config.yamlfile import Node
from protokit.errors import ConfigError, Location, ProtokitError

# Re-exported: the rest of protokit finds them here, with the rest of the configuration.
from protokit.projectroot import BUF_GEN_YAML as BUF_GEN_YAML
from protokit.projectroot import BUF_WORK_YAML as BUF_WORK_YAML
from protokit.projectroot import BUF_YAML as BUF_YAML
from protokit.projectroot import find_root as find_root

# Dependencies protokit serves offline from installed wheels instead of the Buf Schema Registry.
OFFLINE_DEPS = frozenset({"buf.build/bufbuild/protovalidate", "buf.build/googleapis/googleapis"})

_BUF_YAML_KEYS = frozenset({"version", "name", "modules", "deps", "lint", "breaking", "plugins", "policies"})
_MODULE_KEYS = frozenset({"path", "name", "includes", "excludes", "lint", "breaking"})
# The keys of a lint or breaking section, checked here so a typo points at its line (buf's own error
# would point at the JSON protokit hands it). v1 differs: allow_comment_ignores (bufyaml_v1).
LINT_RULE_KEYS = frozenset(
    {
        "use",
        "except",
        "ignore",
        "ignore_only",
        "enum_zero_value_suffix",
        "rpc_allow_same_request_response",
        "rpc_allow_google_protobuf_empty_requests",
        "rpc_allow_google_protobuf_empty_responses",
        "service_suffix",
        "disable_builtin",
    }
)
BREAKING_KEYS = frozenset({"use", "except", "ignore", "ignore_only", "ignore_unstable_packages", "disable_builtin"})
_V2_SECTIONS = {"lint": LINT_RULE_KEYS | {"disallow_comment_ignores"}, "breaking": BREAKING_KEYS}
_PLUGIN_KEYS_V2 = {
    "plugins": frozenset({"plugin", "options"}),
    "policies": frozenset({"policy", "ignore", "ignore_only"}),
}
_GEN_KEYS = frozenset({"version", "clean", "managed", "plugins", "inputs"})
_PLUGIN_KEYS = frozenset(
    {
        "remote",
        "local",
        "protoc_builtin",
        "out",
        "opt",
        "include_imports",
        "include_wkt",
        "strategy",
        "protoc_path",
        "revision",
        "types",
        "exclude_types",
    }
)
_INPUT_KEYS = frozenset({"directory", "paths", "exclude_paths"})


@dataclass(frozen=True)
class Module:
    """One module root of buf.yaml: a directory whose .proto files import each other by relative path."""

    path: str  # relative to the project root, "." for the root itself
    excludes: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()  # when set, only files under these directories belong to the module
    lint: Node | None = None
    breaking: Node | None = None
    where: Location = field(default=Location(BUF_YAML), compare=False)  # its `path:` in buf.yaml
    # The buf.yaml version its lint/breaking sections are written in (paths, rule names differ).
    config_version: str = "v2"


@dataclass(frozen=True)
class PluginSpec:
    """One `plugins:` entry of buf.gen.yaml."""

    kind: str  # "protoc_builtin" or "local"
    name: str  # builtin name ("python") or the local plugin's name or path (argv[0])
    argv: tuple[str, ...]  # for local plugins: the command to run
    out: str  # relative to the project root
    opt: tuple[str, ...] = ()
    strategy: str | None = None  # "directory" or "all"; None: not set (buf's default is "directory")
    include_imports: bool = False
    where: Location = field(default_factory=lambda: Location(BUF_GEN_YAML))

    @property
    def parameter(self) -> str:
        return ",".join(self.opt)


@dataclass(frozen=True)
class GenConfig:
    plugins: tuple[PluginSpec, ...]
    clean: bool
    inputs: tuple[str, ...]  # module directories to generate, relative to the project root


@dataclass(frozen=True)
class Project:
    root: Path
    modules: tuple[Module, ...]
    buf_yaml: Node | None = None
    # buf.yaml `deps:` without their version pins: which OFFLINE_DEPS the protos may import from.
    deps: tuple[str, ...] = ()

    def display(self, path: Path) -> str:
        """A path as users see it in messages: relative to the project root when inside it."""
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def load_project(root: Path) -> Project:
    """Read buf.work.yaml or buf.yaml (v2, v1, v1beta1); a directory without either is a single module
    rooted at the directory (like buf)."""
    from protokit.config import bufyaml_v1

    if (root / BUF_WORK_YAML).is_file():
        modules, deps = bufyaml_v1.workspace_modules(root)
        return Project(root=root, modules=modules, deps=_offline(deps, Location(BUF_WORK_YAML)))
    file = root / BUF_YAML
    if not file.exists():
        return Project(root=root, modules=(Module("."),))
    node = yamlfile.load(file, BUF_YAML)
    version = node.value.get("version") if isinstance(node.value, dict) else None
    if version is None or version.value in ("v1", "v1beta1"):  # no version: v1beta1, as in buf
        modules, deps = bufyaml_v1.module_files(root, ".", Location(BUF_YAML, 1, 1))
        return Project(root=root, modules=modules, deps=_offline(deps, Location(BUF_YAML)))
    top = yamlfile.mapping(node, BUF_YAML, _BUF_YAML_KEYS)
    if version.value != "v2":
        raise ConfigError(version.where, f'unknown version "{version.value}" (expected v2, v1 or v1beta1)')
    _check_sections(top)
    for key, allowed in _PLUGIN_KEYS_V2.items():
        for item in top[key].value if key in top and isinstance(top[key].value, list) else []:
            yamlfile.mapping(item, key.removesuffix("s"), allowed)
    deps = tuple(d.split(":")[0] for d in yamlfile.string_list(top["deps"], "deps")) if "deps" in top else ()
    modules = _modules(root, top["modules"]) if "modules" in top else (Module("."),)
    return Project(root=root, modules=modules, buf_yaml=node, deps=_offline(deps, top.get("deps", node).where))


def _check_sections(table: dict[str, Node]) -> None:
    """buf.yaml v2 lint/breaking sections: known keys only, like buf."""
    for key, allowed in _V2_SECTIONS.items():
        if key in table:
            yamlfile.mapping(table[key], key, allowed)


def module_dirs(root: Path) -> list[str]:
    """The module directories buf.work.yaml or buf.yaml name, checked as load_project checks them but
    not required to exist: a git baseline reads them to know which directories to fetch."""
    if (root / BUF_WORK_YAML).is_file():
        from protokit.config import bufyaml_v1

        return bufyaml_v1.workspace_dirs(root)
    if not (root / BUF_YAML).is_file():
        return ["."]
    node = yamlfile.load(root / BUF_YAML, BUF_YAML)
    version = node.value.get("version") if isinstance(node.value, dict) else None
    if version is None or version.value != "v2":  # v1/v1beta1: the directory itself (roots lie inside)
        return ["."]
    top = yamlfile.mapping(node, BUF_YAML, _BUF_YAML_KEYS)
    return [m.path for m in _modules(root, top["modules"], must_exist=False)] if "modules" in top else ["."]


def _offline(deps: tuple[str, ...], where: Location) -> tuple[str, ...]:
    for dep in deps:
        if dep not in OFFLINE_DEPS:
            raise ConfigError(
                where,
                f'dependency "{dep}" needs the Buf Schema Registry; protokit works offline and provides '
                + ", ".join(sorted(OFFLINE_DEPS)),
            )
    return deps


def _modules(root: Path, node: Node, must_exist: bool = True) -> tuple[Module, ...]:
    if not isinstance(node.value, list) or not node.value:
        raise ConfigError(node.where, "modules must be a non-empty list")
    modules = []
    for item in node.value:
        entry = yamlfile.mapping(item, "module", _MODULE_KEYS)
        _check_sections(entry)
        if "path" not in entry:
            raise ConfigError(item.where, 'module is missing "path"')
        path = _relative_dir(root, entry["path"], "module path", must_exist)
        excludes = _subdirs(root, entry, "excludes", "exclude", path)
        includes = _subdirs(root, entry, "includes", "include", path)
        modules.append(Module(path, excludes, includes, entry.get("lint"), entry.get("breaking"), entry["path"].where))
    return tuple(modules)


def _subdirs(root: Path, entry: dict[str, Node], key: str, what: str, module: str) -> tuple[str, ...]:
    """A module's `includes` or `excludes`: directories strictly inside it (buf's checks and words)."""
    if key not in entry:
        return ()
    node = entry[key]
    out = []
    for raw in yamlfile.string_list(node, key):
        path = _relative_dir(root, Node(raw, node.where, {}), key, must_exist=False)
        if path == module:
            raise ConfigError(node.where, f'{what} path "{path}" is equal to module directory "{module}"')
        if module != "." and not path.startswith(module + "/"):
            raise ConfigError(node.where, f'{what} path "{path}" does not reside within module directory "{module}"')
        if (root / path).is_file():
            raise ConfigError(node.where, f'{key} can only be directories but file "{path}" discovered')
        out.append(path)
    return tuple(out)


def _relative_dir(root: Path, node: Node, what: str, must_exist: bool = True) -> str:
    raw = yamlfile.string(node, what)
    normalised = os.path.normpath(raw)
    if os.path.isabs(raw) or normalised.startswith(".."):
        raise ConfigError(node.where, f'{what} "{raw}" must be a relative path inside the project')
    if must_exist and not (root / normalised).is_dir():
        raise ConfigError(node.where, f'{what} "{raw}" is not a directory')
    return Path(normalised).as_posix()


def load_gen_config(project: Project, file: Path | None = None, *, check_inputs: bool = True) -> GenConfig:
    """Read buf.gen.yaml (v2): the plugins protokit gen runs and where their output goes.

    check_inputs=False leaves `inputs` unchecked (the module paths stand in): `new service` reads the
    plugins before it creates the directories the inputs name."""
    file = file or project.root / BUF_GEN_YAML
    display = project.display(file)
    if not file.exists():
        raise ProtokitError(f"{display}: not found (protokit gen reads buf's v2 buf.gen.yaml)")
    node = yamlfile.load(file, display)
    top = yamlfile.mapping(node, display, _GEN_KEYS)
    version = top.get("version")
    if version is None or version.value != "v2":
        where = version.where if version else Location(display, 1, 1)
        raise ConfigError(where, 'version must be "v2"')
    if "managed" in top:
        managed = top["managed"]
        enabled = managed.value.get("enabled") if isinstance(managed.value, dict) else None
        if enabled is not None and yamlfile.boolean(enabled, "managed.enabled"):
            raise ConfigError(
                managed.where,
                "managed mode rewrites file options for other languages; "
                "protokit gen does not support it for Python output",
            )
    if "plugins" not in top or not isinstance(top["plugins"].value, list) or not top["plugins"].value:
        raise ConfigError(
            top["plugins"].where if "plugins" in top else Location(display, 1, 1), "plugins must be a non-empty list"
        )
    plugins = tuple(_plugin(project, item) for item in top["plugins"].value)
    checked = "inputs" in top and check_inputs
    inputs = _inputs(project, top["inputs"]) if checked else tuple(m.path for m in project.modules)
    clean = yamlfile.boolean(top["clean"], "clean") if "clean" in top else False
    return GenConfig(plugins=plugins, clean=clean, inputs=inputs)


def _plugin(project: Project, item: Node) -> PluginSpec:
    entry = yamlfile.mapping(item, "plugin", _PLUGIN_KEYS)
    kinds = [k for k in ("remote", "local", "protoc_builtin") if k in entry]
    if len(kinds) != 1:
        raise ConfigError(item.where, "a plugin needs exactly one of local, protoc_builtin or remote")
    kind = kinds[0]
    if kind == "remote":
        raise ConfigError(
            entry["remote"].where,
            "remote plugins run on the Buf Schema Registry; protokit is offline: use a local or protoc_builtin plugin",
        )
    if "out" not in entry:
        raise ConfigError(item.where, 'plugin is missing "out"')
    out = _relative_dir(project.root, entry["out"], "out", must_exist=False)
    if kind == "protoc_builtin":
        name = yamlfile.string(entry[kind], "protoc_builtin")
        argv: tuple[str, ...] = ()
    else:
        if "protoc_path" in entry:
            raise ConfigError(entry["protoc_path"].where, "protoc_path only applies to protoc_builtin plugins")
        argv = tuple(yamlfile.string_list(entry[kind], "local"))
        name = argv[0]
    strategy = entry["strategy"].value if "strategy" in entry else None
    if strategy not in (None, "directory", "all"):
        raise ConfigError(entry["strategy"].where, 'strategy must be "directory" or "all"')
    for unsupported in ("types", "exclude_types", "include_wkt"):
        if unsupported in entry:
            raise ConfigError(
                entry[unsupported].key_where.get(unsupported, item.key_where[unsupported]),
                f'"{unsupported}" is not supported by protokit gen',
            )
    return PluginSpec(
        kind=kind,
        name=name,
        argv=argv,
        out=out,
        opt=tuple(yamlfile.string_list(entry["opt"], "opt")) if "opt" in entry else (),
        strategy=strategy,
        include_imports=yamlfile.boolean(entry["include_imports"], "include_imports")
        if "include_imports" in entry
        else False,
        where=item.where,
    )


def _inputs(project: Project, node: Node) -> tuple[str, ...]:
    if not isinstance(node.value, list) or not node.value:
        raise ConfigError(node.where, "inputs must be a non-empty list")
    dirs = []
    for item in node.value:
        entry = yamlfile.mapping(item, "input", _INPUT_KEYS)
        if "directory" not in entry:
            raise ConfigError(item.where, "protokit gen supports directory inputs only")
        dirs.append(_relative_dir(project.root, entry["directory"], "directory"))
    known = {m.path for m in project.modules}
    for d, item in zip(dirs, node.value, strict=True):
        if d not in known:
            raise ConfigError(item.where, f'input directory "{d}" is not a module of {BUF_YAML}')
    return tuple(dirs)
