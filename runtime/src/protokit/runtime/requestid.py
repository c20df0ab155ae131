"""Request ids: a new unpredictable one per RPC, or the caller's own `x-request-id` when it is safe to log.

A new id is 128 random bits as 32 hex digits (the shape of a W3C trace id). Ids are cut from a pool
filled by one `os.urandom` call per 256 ids: the same randomness at a fifth of the cost per id. A forked
child starts with an empty pool, so it never repeats its parent's ids.

A caller's id is kept only if it is 1-128 characters from `SAFE_CHARACTERS`: it goes into log lines
verbatim, and spaces, quotes or control characters would let a caller forge fields or lines.
"""

from __future__ import annotations

import os
import re

__all__ = ["REQUEST_ID_KEY", "SAFE_CHARACTERS", "accepted_request_id", "new_request_id"]

REQUEST_ID_KEY = "x-request-id"
SAFE_CHARACTERS = "A-Z a-z 0-9 . _ : / + = @ -"
_safe = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}").fullmatch

_IDS_PER_POOL = 256
_pool = ""
_next = 0


def _empty_pool() -> None:
    global _pool, _next
    _pool, _next = "", 0


os.register_at_fork(after_in_child=_empty_pool)


def new_request_id() -> str:
    """32 lowercase hex digits of fresh randomness."""
    global _pool, _next
    start = _next
    if start >= len(_pool):
        _pool, start = os.urandom(16 * _IDS_PER_POOL).hex(), 0
    _next = start + 32
    return _pool[start : start + 32]


def accepted_request_id(value: object) -> str | None:
    """`value` if it is a request id safe to log and echo, else None."""
    if isinstance(value, str) and _safe(value):
        return value
    return None
