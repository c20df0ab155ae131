"""`protokit doctor`: what protokit runs with, so a bug report or a CI failure starts from facts."""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from protokit import toolchain, version
from protokit.errors import ProtokitError

# betterproto2 comes with the toolchain's `dataclasses` extra ("protokit" on the index is another project).
BETTERPROTO_EXTRA = f"{version.TOOLCHAIN}[dataclasses]"


@dataclass(frozen=True)
class Check:
    name: str
    value: str
    ok: bool = True


def run_checks(project_root: Path | None) -> list[Check]:
    from protokit.bufbin import BUF_VERSION, buf_version, locate_buf

    checks = [
        Check("python", f"{platform.python_version()} ({sys.executable})"),
        Check("protoc", f"{toolchain.protoc_version()} (grpcio-tools, bundled)"),
    ]
    checks.extend(Check(dist, found) for dist, found in toolchain.versions().items())
    checks.append(_runtime_check())
    if "betterproto2-compiler" not in toolchain.versions():
        checks.append(Check("betterproto2-compiler", f"not installed (pip install '{BETTERPROTO_EXTRA}')", True))
    try:
        buf = locate_buf()
        version = buf_version(buf.path)
        tested = "" if version == BUF_VERSION else f"; protokit is tested with {BUF_VERSION}"
        checks.append(Check("buf", f"{version} ({buf.path}, from {buf.source}{tested})"))
    except ProtokitError as exc:
        checks.append(Check("buf", exc.message, ok=False))
    if project_root is not None:
        checks.extend(_plugin_checks(project_root))
    return checks


def _runtime_check() -> Check:
    """The runtime generated code will import: the same release as this toolchain."""
    found = toolchain.version_of(version.RUNTIME)
    if found is None:
        return Check(version.RUNTIME, f"not installed (pip install '{version.runtime_requirement()}')", ok=False)
    if found != version.__version__:
        return Check(version.RUNTIME, f"{found}; this protokit generates code for {version.__version__}", ok=False)
    return Check(version.RUNTIME, found)


def _plugin_checks(root: Path) -> list[Check]:
    from protokit.config import BUF_GEN_YAML, load_gen_config, load_project
    from protokit.plugins.registry import resolve

    if not (root / BUF_GEN_YAML).is_file():
        return []
    checks = []
    try:
        project = load_project(root)
        config = load_gen_config(project)
    except ProtokitError as exc:
        return [Check(BUF_GEN_YAML, exc.message, ok=False)]
    for spec in config.plugins:
        try:
            plugin = resolve(spec, root)
        except ProtokitError as exc:
            checks.append(Check(f"plugin {spec.name}", exc.message, ok=False))
            continue
        if plugin.executable:
            how = f"executable {plugin.executable[0]}"
        elif plugin.handler:
            how = "in-process"
        else:
            how = f"built into protoc (--{plugin.protoc_flag})"
        checks.append(Check(f"plugin {spec.name}", f"{how} -> {spec.out}/"))
    return checks
