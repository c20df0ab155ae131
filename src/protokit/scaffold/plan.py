"""The plan of a new service: every check that must pass before the first write, then the files to create
(rendered, in writing order) and the hints for the existing files it leaves alone."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from protokit.errors import ProtokitError
from protokit.scaffold.hints import Hint, gen_yaml_hints, pyproject_hints
from protokit.scaffold.layout import (
    BUF_GEN_YAML,
    BUF_YAML,
    PYPROJECT,
    Layout,
    file_in_the_way,
    join_path,
    protos,
    relative,
)
from protokit.scaffold.render import Spec, project_view, render

WORKFLOW = ".github/workflows/contract.yml"


@dataclass
class Plan:
    root: Path
    files: dict[str, str] = field(default_factory=dict)  # project-relative path -> content, in order
    hints: list[Hint] = field(default_factory=list)


def _check_package_clash(layout: Layout, package: str) -> None:
    """The generated top-level package of `package` must not be the implementation's or another
    package in the source root: one would hide the other on sys.path."""
    top = package.split(".")[0]
    implementation_top = layout.python_package.split(".")[0]
    source = layout.root / layout.source_root
    if top == implementation_top:
        raise ProtokitError(
            f"package {package!r} would make {layout.out}/{top} a Python package that clashes with the "
            f"implementation package {layout.python_package!r} ({layout.implementations}); choose another "
            f"--package, e.g. acme.{package}"
        )
    if ((source / top).exists() or (source / f"{top}.py").exists()) and source.resolve() != (
        layout.root / layout.out
    ).resolve():
        raise ProtokitError(
            f"package {package!r} would make {layout.out}/{top} a Python package that clashes with "
            f"{join_path(layout.source_root, top)}; choose another --package"
        )


def _check_new_service(spec: Spec, proto_path: str, impl_path: str, test_path: str) -> None:
    layout = spec.layout
    root = layout.root
    declared = re.compile(rf"(?m)^\s*service\s+{re.escape(spec.service)}\s*\{{")
    stem = spec.names.file_stem + ".proto"
    for proto in protos(root, layout.modules):
        try:
            text = proto.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if declared.search(text):
            raise ProtokitError(f"service {spec.service} already exists in {relative(proto, root)}")
        if proto.name == stem:
            raise ProtokitError(
                f"{relative(proto, root)} already has the file name {stem}: its implementation would be "
                f"{impl_path} too; choose another service name"
            )
    for path, what in ((proto_path, "proto"), (impl_path, "implementation"), (test_path, "test")):
        if (root / path).exists() or (root / path).is_symlink():
            raise ProtokitError(f"{spec.service} already exists: its {what} file {path} is there")
    for directory in (layout.module, layout.out, layout.implementations, "tests"):
        blocker = file_in_the_way(root, directory)
        if blocker:
            raise ProtokitError(f"{blocker} is a file, where the new service needs a directory")
    for path in (proto_path, impl_path, test_path):
        blocker = file_in_the_way(root, str(Path(path).parent))
        if blocker:
            raise ProtokitError(f"{blocker} is a file, where the new service needs a directory")


def _defined_names(spec: Spec) -> list[str]:
    """The top-level names the new proto defines in its package."""
    r, p = spec.resource, spec.plural
    names = [
        r,
        *(f"{verb}{r}{kind}" for verb in ("Get", "Create", "Update", "Delete") for kind in ("Request", "Response")),
    ]
    names += [f"List{p}Request", f"List{p}Response", spec.service]
    if spec.streaming:
        names += [
            f"{r}Event",
            *(f"{verb}{p}{kind}" for verb in ("BatchCreate", "Watch") for kind in ("Request", "Response")),
        ]
    return names


def _check_names_free(spec: Spec, proto: Path) -> None:
    """Names of the new proto that another file of its package (its directory) defines already."""
    if not proto.parent.is_dir():
        return
    wanted = "|".join(re.escape(name) for name in _defined_names(spec))
    defined = re.compile(rf"(?m)^\s*(?:message|enum|service)\s+({wanted})\b")
    for sibling in sorted(proto.parent.glob("*.proto")):
        try:
            match = defined.search(sibling.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
        if match:
            raise ProtokitError(
                f"{spec.package}.{match.group(1)} is already defined in {relative(sibling, spec.layout.root)}; "
                f"choose another service name or --package"
            )


def plan_service(spec: Spec) -> Plan:
    layout = spec.layout
    root = layout.root
    plan = Plan(root=root)
    proto_path = join_path(layout.module, spec.proto_name)
    impl_path = join_path(layout.implementations, f"{spec.names.file_stem}.py")
    test_path = f"tests/test_{spec.names.file_stem}.py"
    _check_new_service(spec, proto_path, impl_path, test_path)
    _check_package_clash(layout, spec.package)
    _check_names_free(spec, root / proto_path)

    plan.files[proto_path] = render("service.proto.j2", s=spec)
    plan.files[impl_path] = render("implementation.py.j2", s=spec)
    impl_dir = root / layout.implementations
    if not impl_dir.exists():
        plan.files[join_path(layout.implementations, "__init__.py")] = render("init.py.j2", s=spec)
    main_path = join_path(layout.implementations, "__main__.py")
    if (root / main_path).exists():
        plan.hints.append(
            Hint(
                main_path,
                f"exists, so it does not serve {spec.service} yet (`python -m {spec.implementation_module}` "
                f"serves it alone); to serve it with the others, add {spec.service}() to the services "
                "run(...) gets, and import it:",
                "\n".join(spec.main_imports),
            )
        )
    else:
        plan.files[main_path] = render("main.py.j2", s=spec)
    plan.files[test_path] = render("test_service.py.j2", s=spec)

    project = project_view(spec, proto_path, impl_path)
    for path, template in (
        (BUF_YAML, "buf.yaml.j2"),
        (BUF_GEN_YAML, "buf.gen.yaml.j2"),
        (PYPROJECT, "pyproject.toml.j2"),
        (".gitignore", "gitignore.j2"),
        ("README.md", "README.md.j2"),
        (WORKFLOW, "contract.yml.j2"),
        ("Dockerfile", "Dockerfile.j2"),
        (".dockerignore", "dockerignore.j2"),
    ):
        if not (root / path).exists():
            plan.files[path] = render(template, p=project)
    if layout.gen is not None:
        importer = f"{layout.implementations}/{spec.names.file_stem}.py"
        plan.hints.extend(gen_yaml_hints(layout.gen, layout.out, layout.implementations, importer))
    if (root / PYPROJECT).exists():
        plan.hints.extend(pyproject_hints(root / PYPROJECT, layout.source_root, layout.out, layout.python_package))
    return plan
