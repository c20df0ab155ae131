"""Bearer-token authentication: the verifier protocol, the principal and `current_principal()`."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Principal", "TokenVerifier", "current_principal"]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: `subject` identifies it (and keys its rate limit); `claims` are free-form."""

    subject: str
    claims: Mapping[str, Any] = field(default_factory=dict)


class TokenVerifier(Protocol):
    """Checks the token of an `authorization: Bearer <token>` header.

    Return the caller's `Principal`, or None when the token is not valid (the RPC then fails with
    UNAUTHENTICATED). Raising a `DomainError` fails the RPC with that error's code; any other exception
    fails it with INTERNAL.
    """

    async def __call__(self, token: str) -> Principal | None: ...


_PRINCIPAL: ContextVar[Principal | None] = ContextVar("protokit_principal", default=None)


def current_principal() -> Principal | None:
    """The caller of the RPC being handled, or None (authentication off, or a public method)."""
    return _PRINCIPAL.get()
