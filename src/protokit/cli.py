"""The `protokit` command line: parse options, call the library, render the result.

Library modules are imported inside commands so `protokit --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from protokit.version import __version__

if TYPE_CHECKING:
    from protokit import config, formats
from protokit.errors import EXIT_FINDINGS, ProtokitError

app = typer.Typer(
    name="protokit",
    help="Proto-first toolchain for Python gRPC services: lint, breaking-change gate, typed code generation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # click's plain help, as buf's and git's: typer's rich help loads rich's markdown and syntax modules
    # (~0.1 s of CPU, more than the rest of `protokit --help`). Command output still goes through rich.
    rich_markup_mode=None,
)


_LIST_RULES_HELP = "List buf's rules and protokit's own (IDs, categories, defaults, purposes), then exit."


class GenFormat(StrEnum):
    text = "text"
    json = "json"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"protokit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """protokit makes .proto files the contract of a Python gRPC service."""


@app.command()
def gen(
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if generated code is stale.")] = False,
    template: Annotated[
        Path | None, typer.Option("--template", help="Generation config (default: buf.gen.yaml of the project).")
    ] = None,
    fmt: Annotated[GenFormat, typer.Option("--format", help="Output format.")] = GenFormat.text,
) -> None:
    """Generate typed Python code from the protos. buf.gen.yaml names the plugins and their outputs."""
    from protokit import config, report
    from protokit import gen as gen_lib

    project = _project()
    gen_config = config.load_gen_config(project, template.resolve() if template else None)
    with report.progress() as progress:
        result = gen_lib.generate(project, gen_config, check=check, progress=progress)
    report.render_gen(result, check, fmt.value)
    if check and not result.drift.clean:
        raise typer.Exit(EXIT_FINDINGS)


@app.command()
def lint(
    paths: Annotated[
        list[str] | None, typer.Argument(help="Files or directories to lint (default: all modules).")
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="text, json, github, sarif; or one of buf's: msvs, junit, github-actions, gitlab-code-quality, "
            "config-ignore-yaml (a baseline to paste).",
        ),
    ] = "text",
    list_rules: Annotated[bool, typer.Option("--list-rules", help=_LIST_RULES_HELP)] = False,
) -> None:
    """Lint the protos: buf's rules and protokit's PY rules. buf.yaml picks buf's; PY rules check Python targets."""
    from protokit import formats
    from protokit.check import lint as lint_lib
    from protokit.check import lintanswer

    if list_rules:
        _list_rules("lint", fmt)
        return
    chosen = _finding_format(fmt, "lint")
    answer_key = lintanswer.key(sys.argv[2:])  # before linting: what is read after can only be newer
    project = _project()
    result = lint_lib.lint(project, paths or [])
    output = formats.render(result.findings, chosen, "lint", result.files, project)
    sys.stdout.write(output)
    code = EXIT_FINDINGS if result.findings else 0
    lintanswer.remember(answer_key, output, code)
    if code:
        raise typer.Exit(code)


@app.command()
def breaking(
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            help="Required. Baseline: a git ref (main, origin/main, v1.2.0, HEAD~1), a directory or an image.",
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="text, json, github, sarif; or one of buf's: msvs, junit, github-actions, gitlab-code-quality.",
        ),
    ] = "text",
    list_rules: Annotated[bool, typer.Option("--list-rules", help=_LIST_RULES_HELP)] = False,
) -> None:
    """Report breaking changes against a git ref, directory or image. buf's rules plus validation contracts."""
    from protokit import formats
    from protokit.check import breaking as breaking_lib

    if list_rules:
        _list_rules("breaking", fmt)
        return
    if against is None:
        raise typer.BadParameter("missing: the baseline to compare with", param_hint="'--against'")
    chosen = _finding_format(fmt, "breaking")
    project = _project()
    result = breaking_lib.breaking(project, against)
    sys.stdout.write(
        formats.render(result.findings, chosen, f"breaking against {result.against}", result.files, project)
    )
    if result.findings:
        raise typer.Exit(EXIT_FINDINGS)


def _list_rules(command: str, fmt: str) -> None:
    from protokit import config
    from protokit.check import rulelist

    if fmt not in ("text", "json"):
        raise typer.BadParameter(f"{fmt!r}: --list-rules prints text or json", param_hint="'--format'")
    listed = rulelist.rows(command, config.find_root(Path.cwd()))
    sys.stdout.write(rulelist.table(listed) if fmt == "text" else rulelist.json_lines(listed))


def _project() -> config.Project:
    """The project around the working directory, every module holding .proto files."""
    from protokit import config, sources

    project = config.load_project(config.find_root(Path.cwd()))
    sources.check_modules_have_files(project)
    return project


def _finding_format(value: str, command: str) -> formats.FindingFormat:
    from protokit import formats

    # buf breaking has no config-ignore-yaml either: an ignore baseline is a lint idea.
    choices = [
        f for f in formats.FindingFormat if command == "lint" or f is not formats.FindingFormat.config_ignore_yaml
    ]
    if value not in choices:
        names = ", ".join(f.value for f in choices)
        raise typer.BadParameter(f"{value!r} is not one of {names}", param_hint="'--format'")
    return formats.FindingFormat(value)


@app.command()
def doctor() -> None:
    """Show the protoc, buf, plugins and Python protokit uses. With versions, and where buf comes from."""
    from protokit import config, report
    from protokit import doctor as doctor_lib

    console = report.stdout_console()
    failed = False
    for check in doctor_lib.run_checks(config.find_root(Path.cwd())):
        mark = "[green]✓[/]" if check.ok else "[red]✗[/]"
        failed |= not check.ok
        console.print(f"{mark} [bold]{check.name}[/]: {check.value}", markup=True)
    if failed:
        raise typer.Exit(2)


def _echo(line: str) -> None:
    sys.stderr.write(line + "\n")


@app.command()
def dev(
    module: Annotated[
        str | None,
        typer.Argument(
            metavar="[MODULE]",
            help="The service to run as python -m MODULE (default: the package of buf.gen.yaml's implementations=).",
            show_default=False,
        ),
    ] = None,
    port: Annotated[int, typer.Option("--port", help="The port the service keeps across restarts.")] = 50051,
    against: Annotated[
        str | None,
        typer.Option("--against", help="Warn of breaking changes against this ref (default: main, if it exists)."),
    ] = None,
) -> None:
    """Run the service and follow every save: a proto edit regenerates and restarts, a .py edit restarts."""
    from protokit import config
    from protokit.dev.session import DevSession, watch
    from protokit.report import stderr_console

    console = stderr_console()
    session = DevSession(
        config.find_root(Path.cwd()),
        module,
        port,
        against,
        say=console.print,
        echo=_echo,
    )
    try:
        session.start()
        watch(session)
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        session.close()


new_app = typer.Typer(
    name="new",
    help="Create a service or a proto file. A service is a whole project, or one more service in a project.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(new_app)


@new_app.command("service")
def new_service(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="NAME | PATH...",
            help="PascalCase, with or without the Service suffix: Billing. With --from: .proto files or directories.",
            show_default=False,
        ),
    ] = None,
    from_protos: Annotated[
        bool,
        typer.Option(
            "--from",
            help="Build the project around existing protos (PATH...), in place, without touching them: "
            "working code for standard methods, stubs for the rest, tests for every RPC, a lint baseline.",
        ),
    ] = False,
    package: Annotated[
        str | None,
        typer.Option(
            "--package", metavar="PACKAGE", help="Proto package, e.g. acme.billing.v1 (default: from NAME, billing.v1)."
        ),
    ] = None,
    python_package: Annotated[
        str | None,
        typer.Option(
            "--python-package",
            metavar="NAME",
            help="With --from: the implementation package (default: from the project directory's name).",
        ),
    ] = None,
    directory: Annotated[
        Path,
        typer.Option("--dir", metavar="DIR", help="Project directory: new or empty, or inside a protokit project."),
    ] = Path("."),
    streaming: Annotated[
        bool,
        typer.Option(
            "--streaming/--no-streaming", help="Add a client-streaming batch create and a bidirectional watch."
        ),
    ] = True,
    fmt: Annotated[GenFormat, typer.Option("--format", help="Output format.")] = GenFormat.text,
) -> None:
    """Create a working service: from NAME (a documented proto, generated code, an in-memory implementation,
    tests), or with --from around the team's own protos."""
    from protokit import scaffold

    arguments = names or []
    if from_protos:
        if package is not None:
            raise typer.BadParameter("--package names a new proto's package; with --from the protos have theirs")
        if not arguments:
            raise typer.BadParameter("name the .proto files or directories to build the service from")
        from protokit.scaffold.adopt import adopt_service, render_adopted

        render_adopted(adopt_service(arguments, directory, python_package=python_package), fmt.value)
        return
    if python_package is not None:
        raise typer.BadParameter("--python-package goes with --from")
    if len(arguments) != 1:
        raise typer.BadParameter("name one service (NAME), or build from protos with --from PATH...")
    result = scaffold.new_service(arguments[0], directory, package=package, streaming=streaming)
    scaffold.render_service(result, fmt.value)


@new_app.command("proto")
def new_proto(
    path: Annotated[
        Path, typer.Argument(metavar="PATH", help="The new file, e.g. protos/acme/inventory/v1/stock.proto.")
    ],
    fmt: Annotated[GenFormat, typer.Option("--format", help="Output format.")] = GenFormat.text,
) -> None:
    """Create one lint-clean proto file. Its package follows from its directory under the module root."""
    from protokit import scaffold

    result = scaffold.new_proto(path)
    scaffold.render_proto(result, fmt.value)


def main() -> None:
    """Entry point: library errors become one clear message and exit 2, never a traceback.

    Typer's standalone mode already turns usage errors into exit 2 with click's message.
    """
    try:
        app()
    except ProtokitError as exc:
        if os.environ.get("PROTOKIT_DEBUG"):
            raise
        from protokit import report

        report.error(exc.message, exc.lines)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("PROTOKIT_DEBUG"):
            raise
        sys.stderr.write(f"protokit: internal error: {exc!r}\n(set PROTOKIT_DEBUG=1 for a traceback)\n")
        sys.exit(70)
