"""Rendering results for people (rich text, honouring NO_COLOR and pipes) and machines (JSON)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape

from protokit.gen import GenResult

# Short runs finish before a progress bar would be readable; only show one for real work.
_PROGRESS_MIN_FILES = 50


def stdout_console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def error(message: str, lines: list[str]) -> None:
    console = stderr_console()
    # protoc-style lines already say everything; the summary only adds noise when they repeat it.
    for line in lines:
        console.print(escape(line))
    if not lines or message not in lines:
        console.print(f"[bold red]error:[/] {escape(message)}")


@contextmanager
def progress() -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback for long work; a no-op when stderr is not a terminal."""
    console = stderr_console()
    if not console.is_terminal:
        yield lambda phase, done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def update(phase: str, done: int, total: int) -> None:
        if total < _PROGRESS_MIN_FILES:
            return
        if phase not in tasks:
            if not tasks:
                bar.start()
            tasks[phase] = bar.add_task(phase, total=total)
        bar.update(tasks[phase], completed=done, total=total)

    try:
        yield update
    finally:
        if tasks:
            bar.stop()


def gen_json(result: GenResult, check: bool) -> dict[str, Any]:
    drift = result.drift
    status = ("clean" if drift.clean else "stale") if check else "written" if result.written else "unchanged"
    return {
        "status": status,
        "out": list(result.out_roots),
        "files": result.files,
        "regenerated": result.generated,
        "regenerated_outputs": result.units,
        "cached": result.cached,
        "stale": sorted(drift.stale),
        "missing": sorted(drift.missing),
        "extra": sorted(drift.extra),
        "user_files": sorted(drift.user_files),
        "created": sorted(result.implementations),
        "unimplemented": result.unimplemented,
    }


def render_gen(result: GenResult, check: bool, fmt: str) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps(gen_json(result, check), sort_keys=True) + "\n")
        return
    out = stdout_console()
    drift = result.drift
    roots = ", ".join(f"{r}/" for r in result.out_roots)
    for path in sorted(drift.user_files):
        stderr_console().print(f"[yellow]note:[/] left alone (not generated): {escape(path)}")
    if check:
        if drift.clean:
            out.print(f"[green]✓[/] {roots} is up to date ({result.files} files)")
            return
        for label, paths in (("stale", drift.stale), ("missing", drift.missing), ("extra", drift.extra)):
            for path in sorted(paths):
                out.print(f"[red]{label:>7}[/] {escape(path)}")
        out.print(f"[bold red]✗[/] {roots} is out of date: run [bold]protokit gen[/]")
        return
    for path in result.implementations:
        out.print(f"[green]+[/] created {escape(path)} (your implementation: protokit never overwrites it)")
    for line in result.unimplemented:
        stderr_console().print(f"[yellow]note:[/] {escape(line)}")
    if not result.written:
        out.print(f"[green]✓[/] {roots} is up to date ({result.files} files)")
        return
    changed = len(drift.stale) + len(drift.missing)
    removed = f", {len(drift.extra)} removed" if drift.extra else ""
    ran = [f"{result.generated} protos regenerated"] if result.generated or not result.plugin_runs else []
    ran += [f"{escape(label)} run over every proto" for label in result.plugin_runs]
    out.print(
        f"[green]✓[/] {roots} updated: {changed} files written{removed} ({', '.join(ran)}, {result.cached} from cache)"
    )
