"""Rendering the view model with Jinja2 templates shipped as the protokit.templates package.

Comment text reaches the templates only as data (already escaped for docstrings by the model),
never as template source, so `{{ }}` and `{% %}` in a .proto comment are printed verbatim.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Sequence

import jinja2

from protokit.servicegen.model import FileModel

TEMPLATES = "protokit.templates"
SERVICE_TEMPLATE = "service.py.j2"
IMPLEMENTATION_TEMPLATE = "implementation.py.j2"


# ruff format's default line length: the Python files are laid out to pass `ruff format --check`.
LINE_LENGTH = 88


def wrap(indent: int, head: str, items: Sequence[str], tail: str, parameters: bool = False) -> str:
    """`head + items + tail` laid out as ruff format does: one line if it fits, else the items on one
    indented line, else one item per line with a trailing comma. `head` ends with the bracket.
    `parameters`: the items are a def's parameters, where a lone one split off gets a trailing comma."""
    pad = " " * indent
    one = f"{pad}{head}{', '.join(items)}{tail}"
    if len(one) <= LINE_LENGTH:
        return one
    middle = f"{pad}    {', '.join(items)}"
    if len(items) == 1 or len(middle) <= LINE_LENGTH:
        comma = "," if parameters and len(items) == 1 else ""
        return f"{pad}{head}\n{middle}{comma}\n{pad}{tail}"
    return f"{pad}{head}\n" + "".join(f"{pad}    {item},\n" for item in items) + f"{pad}{tail}"


def docstring_literal(text: str, indent: int = 0) -> str:
    """Model docstring text (already escaped) as a triple-quoted literal.

    One line stays on one line; longer text gets the closing quotes on their own line, continuation
    lines indented by `indent` spaces (blank lines stay empty: no trailing whitespace).
    """
    first, *rest = text.split("\n")
    if not rest:
        return f'"""{first}"""'
    pad = " " * indent
    body = "\n".join(pad + line if line else "" for line in rest)
    return f'"""{first}\n{body}\n{pad}"""'


def template_environment(package: str) -> jinja2.Environment:
    """Jinja set up for generating Python source from the templates shipped in `package`: no HTML
    escaping, exact newlines, and an error (not an empty string) for any undefined name."""

    def load(name: str) -> str:
        return importlib.resources.files(package).joinpath(name).read_text(encoding="utf-8")

    return jinja2.Environment(
        loader=jinja2.FunctionLoader(load),
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


@functools.cache
def environment() -> jinja2.Environment:
    env = template_environment(TEMPLATES)
    env.filters["docstring"] = docstring_literal
    env.globals["wrap"] = wrap
    return env


def render_file(model: FileModel) -> str:
    """The generated `<name>_protokit.py` module: servicer bases, registration helpers and clients."""
    return environment().get_template(SERVICE_TEMPLATE).render(file=model)


def render_implementation(model: FileModel) -> str:
    """The user's implementation skeleton: created once, then theirs (no DO NOT EDIT header)."""
    return environment().get_template(IMPLEMENTATION_TEMPLATE).render(file=model)
