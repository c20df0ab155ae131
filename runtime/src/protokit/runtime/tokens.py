"""Bearer tokens from a file: what `PROTOKIT_AUTH_TOKENS_FILE` turns on, no code needed.

The file holds one caller per line, its subject and the SHA-256 of its token (never the token itself):

    # subject  sha256 of the token
    billing    sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    reports    sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752

Make a token and its line with `python -m protokit.runtime.tokens SUBJECT` (the token is printed once; keep
it in the caller's secret store). A presented token is hashed and compared with every entry in constant
time (`hmac.compare_digest`), so neither timing nor the file reveals a valid token. The caller becomes
`Principal(subject)`. Blank lines and `#` comments are ignored; anything else that is not a valid line is
a `ConfigError` naming `file:line`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from .auth import Principal
from .settings import ConfigError

__all__ = ["TokenFile", "digest_line", "main"]

_LINE = re.compile(r"(?P<subject>\S+)\s+sha256:(?P<digest>[0-9a-fA-F]{64})")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def digest_line(subject: str, token: str) -> str:
    """The tokens-file line for `subject` holding `token`."""
    return f"{subject} sha256:{_digest(token).hex()}"


class TokenFile:
    """A `TokenVerifier` over the entries of a tokens file (see the module doc)."""

    def __init__(self, entries: Sequence[tuple[str, bytes]]) -> None:
        self._entries = tuple(entries)

    @classmethod
    def load(cls, path: str | Path) -> TokenFile:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigError(f"cannot read the tokens file {path}: {reason}") from None
        entries: list[tuple[str, bytes]] = []
        subjects: dict[str, int] = {}
        for number, line in enumerate(text.splitlines(), 1):
            content = line.split("#", 1)[0].strip()
            if not content:
                continue
            match = _LINE.fullmatch(content)
            if match is None:
                raise ConfigError(f"{path}:{number}: expected 'SUBJECT sha256:<64 hex digits>'")
            subject = match["subject"]
            if subject in subjects:
                raise ConfigError(f"{path}:{number}: subject {subject!r} is already on line {subjects[subject]}")
            subjects[subject] = number
            entries.append((subject, bytes.fromhex(match["digest"])))
        if not entries:
            raise ConfigError(f"{path}: no tokens (auth would refuse every call)")
        return cls(entries)

    async def __call__(self, token: str) -> Principal | None:
        presented = _digest(token)
        found = None
        for subject, digest in self._entries:  # every entry, whether or not one matched: constant time
            if hmac.compare_digest(presented, digest):
                found = subject
        return Principal(found) if found is not None else None


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m protokit.runtime.tokens SUBJECT`: a new token on stdout's first line, its file line next."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not re.fullmatch(r"\S+", args[0]) or args[0].startswith("-"):
        print("usage: python -m protokit.runtime.tokens SUBJECT", file=sys.stderr)
        return 2
    token = secrets.token_urlsafe(32)
    print(token)
    print(digest_line(args[0], token))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
