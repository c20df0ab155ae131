"""The `protokit` command's entry point: a warm `protokit lint` is answered from the cache before the
CLI (typer, rich, the toolchain) loads; everything else goes to protokit.cli."""

from __future__ import annotations

import os
import sys


def main() -> None:
    if sys.argv[1:2] == ["lint"] and not os.environ.get("PROTOKIT_DEBUG"):
        from protokit.check import lintanswer

        try:
            answer = lintanswer.replay(sys.argv[2:])
        except Exception:  # a broken cache costs the full run, never the answer
            answer = None
        if answer is not None:
            output, code = answer
            sys.stdout.write(output)
            sys.stdout.flush()
            raise SystemExit(code)
    from protokit.cli import main as cli_main

    cli_main()
