"""`protokit new service`: validate, plan and write a service (into a new project or the one the directory
belongs to), then run `protokit gen` in-process; on any failure nothing is left behind."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from protokit import config
from protokit.errors import ProtokitError
from protokit.scaffold.layout import find_layout, join_path, sibling_options
from protokit.scaffold.names import check_package, default_package, parse_service_name
from protokit.scaffold.plan import plan_service
from protokit.scaffold.render import Spec, curl
from protokit.scaffold.results import ServiceResult
from protokit.scaffold.writer import write_then


def new_service(
    name: str, directory: Path | str = ".", package: str | None = None, streaming: bool = True
) -> ServiceResult:
    """Create the service NAME in `directory` (a new project, or the protokit project it belongs to)."""
    names = parse_service_name(name)
    if package is not None:
        check_package(package)
    else:
        package = default_package(names)
        check_package(package, origin=" (the default from the service name; choose one with --package)")
    target = Path(directory).absolute()
    if target.exists() and not target.is_dir():
        raise ProtokitError(f"{directory} is not a directory")
    blocker = next((p for p in target.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise ProtokitError(f"{blocker} is not a directory")
    layout = find_layout(target, names, package)
    proto_dir = join_path(layout.module, package.replace(".", "/"))
    proto_name = f"{package.replace('.', '/')}/{names.file_stem}.proto"
    spec = Spec(
        names=names,
        package=package,
        streaming=streaming,
        layout=layout,
        proto_name=proto_name,
        options=tuple(sibling_options(layout.root / proto_dir)),
    )
    plan = plan_service(spec)
    new_top = not (layout.root / layout.out / package.split(".")[0]).exists()
    generated = write_then(layout.root, plan.files, lambda: _generate(layout.root), "the new service")
    result = ServiceResult(
        root=layout.root,
        service=spec.full_service,
        proto=join_path(layout.module, proto_name),
        new_project=not layout.has_buf_yaml,
        created=list(plan.files),
        generated_files=generated,
        hints=plan.hints,
    )
    result.next_steps = _service_next_steps(spec, result, added_top_level=new_top and layout.has_buf_yaml)
    return result


def _generate(root: Path) -> int:
    """`protokit gen` in-process; the implementation file exists already, so gen leaves it alone."""
    from protokit import gen

    project = config.load_project(root)
    result = gen.generate(project, config.load_gen_config(project))
    return result.files


def _cd(root: Path) -> str | None:
    cwd = Path.cwd().resolve()
    resolved = root.resolve()
    if resolved == cwd:
        return None
    try:
        return f"cd {shlex.quote(os.path.relpath(resolved, cwd))}"
    except ValueError:  # another drive
        return f"cd {shlex.quote(str(resolved))}"


def _service_next_steps(spec: Spec, result: ServiceResult, added_top_level: bool) -> list[str]:
    steps = []
    cd = _cd(result.root)
    if cd:
        steps.append(cd)
    test = f"tests/test_{spec.names.file_stem}.py"
    if result.new_project:
        steps.append("pip install -e '.[dev]' && pytest")  # as the README says: pytest is in the dev extra
    elif added_top_level:
        top = spec.package.split(".")[0]
        steps.append(f"pip install -e '.[dev]' && pytest {test}   # again: {top} is a new package")
    else:
        steps.append(f"pytest {test}")
    steps.append("protokit lint && protokit gen --check")
    if result.new_project and not (result.root / ".git").exists():
        steps.append(f'git init -q && git add -A && git commit -qm "Add {spec.service}"')
    steps.append("protokit breaking --against HEAD   # after a commit: the contract gate CI runs")
    if any(h.path.endswith("__main__.py") for h in result.hints):
        steps.append(f"python -m {spec.implementation_module} --port 50051")
    else:
        steps.append(f"python -m {spec.layout.python_package} --port 50051")
    steps.append(curl(spec, f"Create{spec.resource}", '{"displayName": "First"}'))
    steps.append(curl(spec, f"Get{spec.resource}", '{"id": "<id from the response>"}'))
    return steps
