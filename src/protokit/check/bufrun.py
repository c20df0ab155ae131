"""Running the real buf binary on protoc images, the way buf would run on the workspace itself.

buf reads a protoc image but ignores buf.yaml's per-module sections for it, so protokit works out
each module's effective lint/breaking config itself (buf v2: a module's own section replaces the
top-level one), rewrites its paths from workspace-relative to image-relative, and passes it
explicitly as v2 JSON. Findings come back with image paths and get the module prefix again.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protokit.config import Module, Project
from protokit.config.yamlfile import Node
from protokit.errors import ProtokitError
from protokit.findings import Finding


@dataclass(frozen=True)
class Section:
    """One module's effective lint or breaking config, ready for `buf --config`."""

    module: Module
    config: dict[str, Any]
    ignore_all: bool  # `ignore` names the module directory itself: buf would report nothing


def plain(node: Node | None) -> Any:
    """A YAML node as plain Python values."""
    if node is None:
        return None
    if isinstance(node.value, dict):
        return {k: plain(v) for k, v in node.value.items()}
    if isinstance(node.value, list):
        return [plain(v) for v in node.value]
    return node.value


def _rewrite(paths: Sequence[str], module: Module) -> tuple[list[str], bool]:
    """Workspace-relative paths -> paths inside this module's image; True if one is the module itself."""
    prefix = "" if module.path == "." else module.path + "/"
    out, whole_module = [], False
    for p in paths:
        p = posixpath.normpath(p)  # buf cleans the paths: "./protos/a/" is "protos/a"
        if p == module.path:
            whole_module = True
        elif not prefix or p.startswith(prefix):
            out.append(p[len(prefix) :])
    return out, whole_module


def effective_sections(project: Project, kind: str) -> list[Section]:
    """kind is "lint" or "breaking"."""
    top: dict[str, Any] = {}
    # Check plugins and policies run inside buf: passed on as written, buf finds and runs them (or fails).
    checks: dict[str, Any] = {}
    if project.buf_yaml is not None and isinstance(project.buf_yaml.value, dict):
        top = plain(project.buf_yaml.value.get(kind)) or {}
        checks = {k: plain(v) for k, v in project.buf_yaml.value.items() if k in ("plugins", "policies")}
    sections = []
    for module in project.modules:
        own = plain(module.lint if kind == "lint" else module.breaking)
        if module.config_version != "v2":
            # v1/v1beta1: buf reads the section in its own version; its paths are module-relative already.
            sections.append(Section(module, {"version": module.config_version, kind: own or {}}, False))
            continue
        raw = dict(own if own is not None else top)
        ignore_all = False
        if "ignore" in raw:
            raw["ignore"], ignore_all = _rewrite(raw["ignore"], module)
        if "ignore_only" in raw:
            only = {rule: _rewrite(paths, module)[0] for rule, paths in raw["ignore_only"].items()}
            raw["ignore_only"] = {rule: paths for rule, paths in only.items() if paths}
        sections.append(Section(module, {"version": "v2", kind: raw, **checks}, ignore_all))
    return sections


def buf_env() -> dict[str, str]:
    """The environment buf runs in: garbage collection only near a memory limit, unless the user set GOGC
    or GOMEMLIMIT. A lint or breaking run is a short batch job whose heap dies with it; Go's default
    collector spends a quarter of buf's time on a 1,000-file image (measured: 0.93 s -> 0.69 s, peak
    memory 370 -> 470 MB). The limit, a quarter of physical memory, bounds the heap all the same."""
    env = dict(os.environ)
    if "GOGC" not in env and "GOMEMLIMIT" not in env:
        try:
            memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):  # pragma: no cover - not on Linux or macOS
            return env
        env["GOGC"] = "off"
        env["GOMEMLIMIT"] = f"{max(memory // 4, 512 << 20) >> 20}MiB"
    return env


def run_buf(buf: Path, args: Sequence[str], cwd: Path, config_file: str = "buf.yaml") -> list[dict[str, Any]]:
    """Run buf with --error-format=json; findings as dicts. Any other failure (an invalid rule in
    buf.yaml, a broken buf install) is relayed as an error, exit 2. buf's warnings about the config
    (which protokit passes inline) are relayed once per process, naming `config_file`."""
    proc = subprocess.run(
        [str(buf), *args, "--error-format", "json"],
        cwd=cwd,
        env=buf_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode not in (0, 100):
        message = proc.stderr.strip() or proc.stdout.strip() or f"buf exited {proc.returncode}"
        raise ProtokitError(f"buf {args[0]} failed ({buf}): {message.removeprefix('Failure: ')}")
    for warning in buf_warnings(proc.stderr):
        _relay(config_file, warning)
    findings = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            findings.append(json.loads(line))
    if proc.returncode == 100 and not findings:
        raise ProtokitError(f"buf failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return findings


_WARN = re.compile(r"^(?:\x1b\[[0-9;]*m)?WARN(?:\x1b\[[0-9;]*m)?\s+(.*)$")
_relayed: set[tuple[str, str]] = set()
_relay_lock = threading.Lock()


def buf_warnings(stderr: str) -> list[str]:
    """The first line of each warning buf printed (`WARN\t<message>`, then indented detail lines)."""
    return [match.group(1).strip() for line in stderr.splitlines() if (match := _WARN.match(line))]


def _relay(config_file: str, warning: str) -> None:
    """Print a buf warning once per process, as `<file>: warning: <message>` (one buf run per module and
    check kind would otherwise repeat it)."""
    with _relay_lock:
        if (config_file, warning) in _relayed:
            return
        _relayed.add((config_file, warning))
    sys.stderr.write(f"{config_file}: warning: {warning}\n")


def check_config(buf: Path, section: Section, kind: str, cwd: Path) -> None:
    """Have buf validate a config without running checks (for when there is nothing to compare)."""
    args = ["config", f"ls-{kind}-rules", "--configured-only", "--config", json.dumps(section.config)]
    proc = subprocess.run([str(buf), *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        message = (proc.stderr.strip() or proc.stdout.strip()).removeprefix("Failure: ")
        raise ProtokitError(f"buf {kind} failed ({buf}): {message}")


def to_finding(raw: dict[str, Any], module: Module) -> Finding:
    path = raw.get("path", "")
    if path and module.path != ".":
        path = f"{module.path}/{path}"
    return Finding(
        path=path,
        start_line=int(raw.get("start_line", 0)),
        start_column=int(raw.get("start_column", 0)),
        end_line=int(raw.get("end_line", 0)),
        end_column=int(raw.get("end_column", 0)),
        type=str(raw.get("type", "")),
        message=str(raw.get("message", "")),
        source="buf",
        plugin=str(raw.get("plugin", "")),
        policy=str(raw.get("policy", "")),
    )


def path_args(names: Sequence[str]) -> list[str]:
    """--path for each file: exact names, so imports (google/*, buf/*) and other modules stay out."""
    args = []
    for name in sorted(set(names)):
        args += ["--path", name]
    return args
