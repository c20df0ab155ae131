"""`protokit new proto` (prototool's `create`): one lint-clean proto file whose package follows from its
directory under the module root."""

from __future__ import annotations

import keyword
import os
import re
from pathlib import Path

from protokit import config
from protokit.errors import ProtokitError
from protokit.names import pascal_case
from protokit.scaffold.layout import BUF_YAML, file_in_the_way, join_path, relative, sibling_options
from protokit.scaffold.names import LOWER_SNAKE, check_package
from protokit.scaffold.render import render
from protokit.scaffold.results import ProtoResult
from protokit.scaffold.writer import Transaction


def new_proto(path: Path | str, cwd: Path | None = None) -> ProtoResult:
    """Create one lint-clean proto file at `path` (relative to `cwd`) inside a module of the project."""
    here = (cwd or Path.cwd()).absolute()
    raw = str(path)
    target = Path(os.path.normpath(here / path))
    if target.suffix != ".proto":
        raise ProtokitError(f"{raw}: a proto file name ends in .proto, e.g. protos/acme/inventory/v1/stock.proto")
    root = config.find_root(here)
    if not (root / BUF_YAML).is_file():
        # Without one, where the file goes (which module, which package) is a guess.
        raise ProtokitError(f"no {BUF_YAML} found in {here} or any parent directory (run `protokit new service`)")
    project = config.load_project(root)
    module = next((m for m in project.modules if target.is_relative_to(root / m.path if m.path != "." else root)), None)
    if module is None:
        roots = ", ".join(f"{m.path}/" for m in project.modules)
        raise ProtokitError(f"{raw} is outside the module roots of {BUF_YAML} ({roots})")
    module_dir = root if module.path == "." else root / module.path
    rel = target.relative_to(module_dir)
    if target.exists() or target.is_symlink():
        raise ProtokitError(f"{raw} already exists")
    blocker = file_in_the_way(root, relative(target.parent, root))
    if blocker:
        raise ProtokitError(f"{blocker} is a file, where {raw} needs a directory")
    stem = rel.stem
    if not LOWER_SNAKE.fullmatch(stem):
        raise ProtokitError(
            f"{raw}: the file name {rel.name!r} is not lower_snake_case (a-z, 0-9, _, starting with a letter)"
        )
    directories = rel.parent.parts
    if not directories:
        raise ProtokitError(
            f"{raw}: a proto needs a package, which is its directory under {module.path}/: put it in a "
            f"versioned directory, e.g. {join_path(module.path, 'acme/inventory/v1', rel.name)}"
        )
    package = ".".join(directories)
    check_package(package, what=f"{raw}: package", origin=" (from its directory)")
    message = pascal_case(stem)
    if keyword.iskeyword(message) or message == "DESCRIPTOR":
        raise ProtokitError(f"{raw}: the message would be named {message!r}, a Python keyword or reserved name")
    defined = re.compile(rf"(?m)^\s*(?:message|enum|service)\s+{re.escape(message)}\b")
    for sibling in sorted(target.parent.glob("*.proto")) if target.parent.is_dir() else []:
        try:
            text = sibling.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if defined.search(text):
            raise ProtokitError(f"{package}.{message} is already defined in {relative(sibling, root)}")
    view = {"package": package, "message": message, "options": sibling_options(target.parent)}
    content = render("proto.proto.j2", p=view)
    transaction = Transaction(root)
    try:
        transaction.write(target, content)
    except OSError as exc:
        transaction.rollback()
        raise ProtokitError(f"cannot write {raw}: {exc.strerror or exc}") from exc
    except BaseException:
        transaction.rollback()
        raise
    display = relative(target, root)
    steps = ["protokit lint", "protokit gen"]
    return ProtoResult(root=root, path=display, package=package, message=message, created=[display], next_steps=steps)
