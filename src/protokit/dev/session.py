"""`protokit dev`: the service runs, and follows every save.

- A proto edit: `protokit gen` (incremental, atomic), then a new server on the same port; the old one
  drains in-flight calls and stops. Then lint of the changed files and breaking changes against the
  CI's base ref are shown as warnings: a contract break is seen while typing, not in review.
- A proto that does not compile: its `path:line:col` errors; generated/ and the running server stay
  as they were; the next good save recovers.
- A .py edit under the service's source root: a new server only. One that fails to start is reported
  and the old one keeps serving.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from protokit import config
from protokit.dev.process import GRACE_SECONDS, ServiceProcess
from protokit.dev.target import Target, resolve
from protokit.errors import ProtokitError

Say = Callable[[str], None]  # one line for the user (rich markup allowed)
Echo = Callable[[str], None]  # one line of the service's own output, verbatim


@dataclass
class Changes:
    protos: list[str] = field(default_factory=list)  # project-relative
    configs: list[str] = field(default_factory=list)  # buf.yaml, buf.gen.yaml
    sources: list[str] = field(default_factory=list)  # .py under the service's source root

    def __bool__(self) -> bool:
        return bool(self.protos or self.configs or self.sources)


class DevSession:
    def __init__(self, root: Path, module: str | None, port: int, against: str | None, say: Say, echo: Echo) -> None:
        self.root = root
        self.module = module
        self.port = port
        self.say = say
        self.echo = echo
        self.project = config.load_project(root)
        self.gen = config.load_gen_config(self.project)
        self.target: Target = resolve(self.project, self.gen, module)
        self.against = against if against is not None else _default_ref(root)
        self.server: ServiceProcess | None = None
        self._draining: list[threading.Thread] = []

    # --- the service ------------------------------------------------------------------------------

    def start(self) -> None:
        """Generate, then serve; a failure here ends `protokit dev` (there is nothing to keep serving)."""
        self._generate()
        server = self._spawn()
        if server is None:
            raise ProtokitError(f"{self.target.label} did not start serving on port {self.port} (its output is above)")
        self.server = server
        self.say(f"[green]✓[/] serving {self.target.label} on 127.0.0.1:{self.port}")

    def _spawn(self) -> ServiceProcess | None:
        env = self.target.environment(dict(os.environ))
        env.update(
            PROTOKIT_HOST="127.0.0.1",
            PROTOKIT_PORT=str(self.port),
            PROTOKIT_REUSE_PORT="1",
            PROTOKIT_GRACE_PERIOD=str(GRACE_SECONDS),
            PROTOKIT_LOG_FORMAT="text",
            PROTOKIT_LOG_LEVEL=env.get("PROTOKIT_LOG_LEVEL", "INFO"),
            PROTOKIT_PARENT_PID=str(os.getpid()),
        )
        server = ServiceProcess(self.target, self.port, env, self.echo)
        return server if server.start() else None

    def _restart(self, started: float) -> bool:
        new = self._spawn()
        if new is None:
            self.say("[red]✗[/] the new code did not start (its output is above); the old server keeps serving")
            return False
        old, self.server = self.server, new
        if old is not None:
            self._draining = [*(t for t in self._draining if t.is_alive()), old.stop_later()]
        self.say(f"[green]✓[/] serving the new code ({time.monotonic() - started:.2f} s after the change)")
        return True

    def close(self) -> None:
        """Stop the server, and wait for old ones still draining: none outlives `protokit dev`."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        for thread in self._draining:
            thread.join()

    # --- reacting to saves ----------------------------------------------------------------------------

    def classify(self, paths: Iterable[Path]) -> Changes:
        changes = Changes()
        outs = [self.root / plugin.out for plugin in self.gen.plugins]
        modules = [self.root / module.path for module in self.project.modules]
        for path in sorted(set(paths)):
            if any(path.is_relative_to(out) for out in outs):
                continue
            rel = path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)
            if path.name in (config.BUF_YAML, config.BUF_GEN_YAML) and path.parent == self.root:
                changes.configs.append(rel)
            elif path.suffix == ".proto" and any(path.is_relative_to(m) for m in modules):
                changes.protos.append(rel)
            elif path.suffix == ".py" and any(path.is_relative_to(s) for s in self.target.sources):
                changes.sources.append(rel)
        return changes

    def changed(self, paths: Iterable[Path]) -> None:
        started = time.monotonic()
        changes = self.classify(paths)
        if not changes:
            return
        if changes.protos or changes.configs:
            what = ", ".join([*changes.configs, *changes.protos])
            self.say(f"[bold]changed:[/] {what}")
            try:
                if changes.configs:
                    self.project = config.load_project(self.root)
                    self.gen = config.load_gen_config(self.project)
                self._generate()
            except ProtokitError as exc:
                for line in exc.lines:
                    self.say(line)
                self.say(f"[red]✗[/] {exc.message}: generated/ and the running server are unchanged")
                return
        else:
            self.say(f"[bold]changed:[/] {', '.join(changes.sources)}")
        if self._restart(started) and changes.protos:
            self._check(changes.protos)

    def _generate(self) -> None:
        from protokit import gen

        result = gen.generate(self.project, self.gen)
        if result.written:
            self.say(f"  gen: {len(result.drift.stale) + len(result.drift.missing)} files written")

    def _check(self, protos: list[str]) -> None:
        """Lint of the changed files and breaking changes against the base ref: warnings, never fatal."""
        from protokit import formats
        from protokit.check import breaking, lint

        existing = [p for p in protos if (self.root / p).is_file()]
        try:
            if existing:
                found = lint.lint(self.project, existing).findings
                if found:
                    self.say(f"[yellow]lint:[/] {len(found)} finding(s)")
                    for line in formats.render(
                        found, formats.FindingFormat.text, "lint", len(existing), self.project
                    ).splitlines():
                        self.say(f"  {line}")
            if self.against:
                broken = breaking.breaking(self.project, self.against).findings
                if broken:
                    self.say(f"[yellow]breaking against {self.against}:[/] {len(broken)} change(s)")
                    for finding in broken:
                        self.say(f"  {finding.path}:{finding.start_line}:{finding.start_column}: {finding.message}")
        except ProtokitError as exc:
            self.say(f"[yellow]note:[/] checks skipped: {exc.message}")


def _default_ref(root: Path) -> str | None:
    """The base branch CI compares with: main, else master, when the repository has one."""
    for ref in ("main", "master"):
        done = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", ref], cwd=root, capture_output=True, check=False
        )
        if done.returncode == 0:
            return ref
    return None


def watch(session: DevSession) -> None:
    """Follow the project's files until Ctrl-C (watchfiles: debounced, generated/ and caches ignored)."""
    import watchfiles

    outs = {str(session.root / plugin.out) for plugin in session.gen.plugins}
    ignore = watchfiles.DefaultFilter(ignore_paths=tuple(outs))
    # step: how long the tree must stay quiet before a batch of changes is handled (an editor's save is
    # often a write, a rename and a chmod); debounce: the most one batch waits.
    # yield_on_timeout: an empty batch once the watches are in place (a large tree takes a moment), so
    # "watching" is only said when a save would be seen.
    ready = False
    batches = watchfiles.watch(
        session.root, watch_filter=ignore, debounce=400, step=30, rust_timeout=200, yield_on_timeout=True
    )
    for batch in batches:
        if not ready:
            ready = True
            session.say(f"watching {session.root} (Ctrl-C to stop)")
        if batch:
            session.changed(Path(path) for _, path in batch)
