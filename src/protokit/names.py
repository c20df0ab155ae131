"""English forms of names: the plural of a resource, PascalCase from snake_case.

Shared by scaffolding (names from `new service NAME`) and resource recognition (names read from a
team's proto); kept free of heavy imports so the recognition model stays a pure, cheap layer.
"""

from __future__ import annotations


def pluralize(word: str) -> str:
    """English plural by the simple rules: y -> ies after a consonant; s, x, z, ch, sh -> +es; else +s."""
    lower = word.lower()
    if lower.endswith("y") and len(word) > 1 and lower[-2] not in "aeiou":
        return word[:-1] + "ies"
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    return word + "s"


def pascal_case(snake: str) -> str:
    """lower_snake_case -> PascalCase: stock_level -> StockLevel."""
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_") if part)
