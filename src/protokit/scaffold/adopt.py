"""`protokit new service --from PATH...`: a working project around a team's existing protos, in place.

The protos are never touched. `adoption.plan_adoption` works out the project (modules, deps, a lint
baseline); `resources.recognise` decides which RPCs are standard methods; `adopted` turns that into the
view the templates print. This module puts it together: what to write (only files that do not exist;
hints for the ones that do), the transaction, `protokit gen`, and what a re-run finds missing in code
that already exists (reported, never edited).
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2

from protokit import version
from protokit.check.pyrules import _STDLIB as STDLIB_MODULES
from protokit.compile import GOOGLEAPIS_DEP
from protokit.config import Project
from protokit.errors import ProtokitError
from protokit.implementations import missing_methods, planned
from protokit.scaffold.adopted import MAX_BATCH, FileView, build_file
from protokit.scaffold.adoption import AdoptionPlan, plan_adoption
from protokit.scaffold.hints import Hint, gen_yaml_hints, pyproject_hints
from protokit.scaffold.layout import (
    BUF_GEN_YAML,
    BUF_YAML,
    DEFAULT_OUT,
    DEFAULT_SOURCE_ROOT,
    PYPROJECT,
    GenInfo,
    file_in_the_way,
    join_path,
)
from protokit.scaffold.names import RESERVED_TOP_LEVEL
from protokit.scaffold.plan import WORKFLOW
from protokit.scaffold.render import render
from protokit.scaffold.resources import ServicePlan, recognise
from protokit.scaffold.writer import write_then
from protokit.servicegen.model import format_imports, snake_case
from protokit.sources import load_sources

# The Python packages of googleapis' protos (googleapis-common-protos), which carry no type information.
_GOOGLEAPIS_MODULES = ("google.api.*", "google.longrunning.*", "google.rpc.*", "google.type.*")
# Names main() in __main__.py defines or imports, which a service's variable must not take.
_MAIN_NAMES = frozenset({"argparse", "args", "argv", "data", "exc", "main", "overrides", "parser", "run", "settings"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class MethodReport:
    service: str  # full name
    method: str
    kind: str  # the standard method, or "stub"
    reason: str  # a stub's


@dataclass
class AdoptResult:
    root: Path
    services: list[str]
    methods: list[MethodReport]
    created: list[str] = field(default_factory=list)  # project-relative, in writing order
    kept: list[str] = field(default_factory=list)  # implementation and test files that exist: left alone
    missing: list[str] = field(default_factory=list)  # what existing implementations lack
    hints: list[Hint] = field(default_factory=list)
    baselined: int = 0
    generated_files: int = 0
    next_steps: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "services": self.services,
            "methods": [
                {"service": m.service, "method": m.method, "kind": m.kind, "reason": m.reason} for m in self.methods
            ],
            "created": self.created,
            "kept": self.kept,
            "missing": self.missing,
            "baselined": self.baselined,
            "generated_files": self.generated_files,
            "hints": [{"path": h.path, "message": h.message, "snippet": h.snippet} for h in self.hints],
            "next_steps": self.next_steps,
        }


def adopt_service(
    paths: Sequence[str | Path], directory: Path | str = ".", python_package: str | None = None
) -> AdoptResult:
    """Make the project at `directory` around the protos under `paths`, with working code and tests."""
    root = Path(directory).resolve()
    if not root.is_dir():
        raise ProtokitError(f"{directory} is not a directory")
    plan = plan_adoption(root, paths)
    files = list(descriptor_pb2.FileDescriptorSet.FromString(plan.image).file)
    names = _module_names(plan)
    targets = sorted({names[s.file] for s in plan.services})
    service_plans = recognise(files, targets)
    gen = _gen_info(root)
    out = (gen.out if gen else None) or DEFAULT_OUT
    implementations = gen.implementations if gen else None
    package = _python_package(root, implementations, python_package, files)
    implementations = implementations or f"{DEFAULT_SOURCE_ROOT}/{package}"
    source_root = str(Path(implementations).parent.as_posix()) or "."
    sources = load_sources(Project(root, plan.modules))
    modules = {name: path for path, name in planned(root / implementations, sources).items()}

    views = []
    for proto in targets:
        path = modules[proto]
        module = f"{package}.{path.stem}"
        views.append((path, build_file(proto, [p for p in service_plans if p.file == proto], files, module)))

    project = _project_view(plan, out, implementations, package, source_root, service_plans, views)
    writes: dict[str, str] = {}
    result = AdoptResult(
        root=root,
        services=[p.full_name for p in service_plans],
        methods=[MethodReport(p.full_name, m.name, m.kind, m.reason) for p in service_plans for m in p.methods],
        hints=list(plan.hints),
        baselined=plan.baseline.count,
    )
    if plan.buf_yaml is not None:
        writes[BUF_YAML] = plan.buf_yaml
    for name, template in (
        (BUF_GEN_YAML, "buf.gen.yaml.j2"),
        (PYPROJECT, "pyproject.toml.j2"),
        (".gitignore", "gitignore.j2"),
        ("README.md", "adopted_README.md.j2"),
        (WORKFLOW, "contract.yml.j2"),
        ("Dockerfile", "Dockerfile.j2"),
        (".dockerignore", "dockerignore.j2"),
    ):
        if not (root / name).exists():
            writes[name] = render(template, p=project)
    package_dir = root / implementations
    if not (package_dir / "__init__.py").exists():
        writes[join_path(implementations, "__init__.py")] = render("adopted_init.py.j2", p=project)
    main = join_path(implementations, "__main__.py")
    if not (root / main).exists():
        writes[main] = render("adopted_main.py.j2", p=project)
    for path, view in views:
        relative = path.relative_to(root).as_posix()
        test = f"tests/test_{path.stem}.py"
        if path.exists():
            result.kept.append(relative)
            services = {s.name: [m.name for m in s.methods] for s in view.services}
            result.missing += missing_methods(path, relative, services, classes=True)
        else:
            writes[relative] = render("adopted.py.j2", f=view, max_batch=MAX_BATCH)
        if (root / test).exists():
            result.kept.append(test)
        else:
            writes[test] = render("adopted_test.py.j2", f=view)
    if gen is not None:
        importer = views[0][0].relative_to(root).as_posix()
        result.hints += gen_yaml_hints(gen, out, implementations, importer)
    if (root / PYPROJECT).exists() and PYPROJECT not in writes:
        result.hints += pyproject_hints(root / PYPROJECT, source_root, out, package)
    for written in writes:
        blocker = file_in_the_way(root, str(Path(written).parent))
        if blocker:
            raise ProtokitError(f"{blocker} is a file, where the project needs a directory")

    result.generated_files = write_then(root, writes, lambda: _generate(root), "the adopted protos")
    result.created = list(writes)
    result.next_steps = _next_steps(project)
    return result


def _module_names(plan: AdoptionPlan) -> dict[str, str]:
    """Project-relative path -> the name protoc knows the file by (relative to its module root)."""
    found = {}
    for path in (*plan.given, *plan.extra):
        for module in plan.modules:
            prefix = "" if module.path == "." else module.path + "/"
            if path.startswith(prefix):
                found[path] = path[len(prefix) :]
                break
    return found


def _gen_info(root: Path) -> GenInfo | None:
    """What an existing buf.gen.yaml says (rejected as gen rejects it); None when there is none."""
    if not (root / BUF_GEN_YAML).is_file():
        return None
    from protokit import config
    from protokit.scaffold.layout import gen_info

    return gen_info(config.load_project(root))


def _python_package(
    root: Path, implementations: str | None, wanted: str | None, files: Sequence[descriptor_pb2.FileDescriptorProto]
) -> str:
    """The implementation package: --python-package, the directory buf.gen.yaml names, or one from the
    project directory's name; it must not be (or hide) a generated top-level package, the stdlib or a dependency."""
    generated = {f.package.split(".")[0] for f in files if f.package} | {f.name.split("/")[0] for f in files}
    if implementations is not None:
        candidates = [Path(implementations).name]
    elif wanted is not None:
        candidates = [wanted]
    else:
        base = re.sub(r"[^a-z0-9_]+", "_", root.name.lower()).strip("_")
        base = base if base and not base[0].isdigit() else f"service_{base}"
        candidates = [base, f"{base}_service"]
    for candidate in candidates:
        reason = _clash(candidate, generated)
        if reason is None:
            return candidate
    raise ProtokitError(
        f"the Python package {candidates[0]!r} {_clash(candidates[0], generated)}; choose another with "
        "--python-package NAME"
    )


def _clash(name: str, generated: set[str]) -> str | None:
    if not _IDENTIFIER.fullmatch(name):
        return "is not a Python identifier"
    if keyword.iskeyword(name):
        return "is a Python keyword"
    if name in generated:
        return f"is the top-level package protoc generates for the protos ({name}/)"
    if name in STDLIB_MODULES:
        return "would shadow the standard library module of that name"
    if name in RESERVED_TOP_LEVEL:
        return "would shadow a package the service depends on"
    return None


def _project_view(
    plan: AdoptionPlan,
    out: str,
    implementations: str,
    package: str,
    source_root: str,
    services: Sequence[ServicePlan],
    views: Sequence[tuple[Path, FileView]],
) -> dict[str, Any]:
    where = [source_root, out] if source_root != out else [out]
    distribution = (
        plan.root.name.lower().replace("_", "-")
        if re.fullmatch(r"[A-Za-z0-9._-]+", plan.root.name)
        else package.replace("_", "-")
    )
    first = services[0]
    return {
        "adopted": True,
        "module": plan.modules[0].path,
        "modules": [m.path for m in plan.modules],
        "out": out,
        "implementations": implementations,
        "python_package": package,
        "source_root": source_root,
        "where": ", ".join(f'"{w}"' for w in where),
        "distribution": distribution,
        "service": ", ".join(s.name for s in services),
        "service_full": first.full_name,
        "services": [
            {
                "name": s.name,
                "full_name": s.full_name,
                "module": f"{package}.{path.stem}",
                "var": _main_variable(s.name),
            }
            for path, view in views
            for s in view.services
        ],
        "package": ", ".join(sorted({s.full_name.rpartition(".")[0] for s in services})),
        "protos": list(plan.given),
        "runtime_requirement": version.runtime_requirement(),
        "toolchain_requirement": version.toolchain_requirement(),
        "baseline_toml": plan.baseline.pyproject_toml(),
        "untyped_modules": ", ".join(f'"{m}"' for m in _GOOGLEAPIS_MODULES) if GOOGLEAPIS_DEP in plan.deps else "",
        "extra_requirements": ["googleapis-common-protos>=1.63"] if GOOGLEAPIS_DEP in plan.deps else [],
        "generated_packages": ", ".join(f'"{top}"' for top in _generated_tops(views)),
        "baselined": plan.baseline.count,
        "curl_example": _curl_example(views),
        "main_imports": format_imports(
            [(f"{package}.{path.stem}", s.name, "") for path, view in views for s in view.services]
        ),
        "first_stores": ", ".join(f"{store.attribute}=..." for store in views[0][1].services[0].stores),
    }


def _main_variable(service: str) -> str:
    """The variable `__main__` holds a service in: its snake_case name, unless main() uses that name already."""
    name = snake_case(service)
    return f"{name}_service" if name in _MAIN_NAMES or keyword.iskeyword(name) else name


def _generated_tops(views: Sequence[tuple[Path, FileView]]) -> list[str]:
    """The top-level packages of the generated modules the implementation imports."""
    return sorted({module.split(".")[0] for _, view in views for module in view.aliases})


def _curl_example(views: Sequence[tuple[Path, FileView]]) -> str:
    for _, view in views:
        for service in view.services:
            for method in service.methods:
                if method.kind in ("list", "get", "create"):
                    body = "{}"
                    return (
                        f"buf curl --protocol grpc --http2-prior-knowledge -d '{body}' "
                        f"http://127.0.0.1:50051/{service.full_name}/{method.name}"
                    )
    service = views[0][1].services[0]
    return f"buf curl --protocol grpc --http2-prior-knowledge --list-methods http://127.0.0.1:50051/{service.full_name}"


def _generate(root: Path) -> int:
    from protokit import config, gen

    project = config.load_project(root)
    return gen.generate(project, config.load_gen_config(project)).files


def _next_steps(project: dict[str, Any]) -> list[str]:
    return [
        "pip install -e '.[dev]' && pytest",
        "protokit lint && protokit gen --check",
        f"protokit dev --port 50051   # or: python -m {project['python_package']} --port 50051",
        project["curl_example"],
    ]


def render_adopted(result: AdoptResult, fmt: str = "text") -> None:
    """Print what `new service --from` did: files, which RPCs work and which are stubs (and why), what
    existing code lacks, hints, next steps."""
    if fmt == "json":
        import json
        import sys

        sys.stdout.write(json.dumps(result.to_json(), sort_keys=True) + "\n")
        return
    from rich.markup import escape

    from protokit.report import stdout_console
    from protokit.scaffold.results import render_hints, render_steps

    out = stdout_console()
    services = ", ".join(result.services) if len(result.services) <= 3 else f"{len(result.services)} services"
    out.print(f"[green]✓[/] {escape(services)} at {escape(str(result.root))}")
    for path in result.created:
        out.print(f"  [green]+[/] {escape(path)}")
    for path in result.kept:
        out.print(f"  [dim]=[/] {escape(path)} (exists: left as it is)")
    out.print(f"  [green]✓[/] protokit gen: {result.generated_files} generated files")
    working = [m for m in result.methods if m.kind != "stub"]
    stubs = [m for m in result.methods if m.kind == "stub"]
    out.print(f"\n[bold]{len(working)} RPC(s) with working code, {len(stubs)} stub(s)[/] (UNIMPLEMENTED, with a TODO):")
    for m in result.methods:
        name = f"{m.service.rpartition('.')[2]}.{m.method}"
        if m.kind == "stub":
            out.print(f"  [yellow]{'stub':<12}[/] {escape(name)}: {escape(m.reason)}")
        else:
            out.print(f"  [green]{m.kind:<12}[/] {escape(name)}")
    if result.baselined:
        out.print(
            f"\n[bold]lint baseline:[/] {result.baselined} existing finding(s) recorded (ignore_only), so "
            "`protokit lint` passes today and reports every new one"
        )
    for line in result.missing:
        out.print(f"[yellow]missing:[/] {escape(line)}")
    render_hints(out, result.hints)
    render_steps(out, result.next_steps)
