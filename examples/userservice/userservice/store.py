"""The example UserService's storage: sqlite3 from the standard library.

Passwords are stored as scrypt hashes and never leave the store. Hashing costs ~50-70 ms of CPU, so it
runs in a worker thread (`stage`), never on the event loop that serves every other RPC.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from google.protobuf.timestamp_pb2 import Timestamp
from user.v1 import user_service_pb2 as pb

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- insertion order, for stable paging
    id TEXT NOT NULL UNIQUE,
    username TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL UNIQUE,
    password_hash BLOB NOT NULL,
    role INTEGER NOT NULL,
    profile BLOB NOT NULL,
    create_time_ns INTEGER NOT NULL,
    update_time_ns INTEGER NOT NULL
)
"""
_COLUMNS = "seq, id, username, email, role, profile, create_time_ns, update_time_ns"
_INSERT = (
    "INSERT INTO users (id, username, email, password_hash, role, profile, create_time_ns, update_time_ns)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_OPTIONAL: tuple[Literal["username", "email", "role"], ...] = ("username", "email", "role")
# The largest sequence number (SQLite's INTEGER): a page token beyond it cannot name a row.
MAX_SEQ = 2**63 - 1


class UserNotFound(LookupError):
    pass


class UserConflict(ValueError):
    """A username or email that another user already has."""


def _timestamp(ns: int) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(ns)
    return ts


def _hash_password(password: str) -> bytes:
    salt = os.urandom(16)
    return salt + hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)


@dataclass(frozen=True)
class NewUser:
    """A CreateUserRequest ready to insert: its password hashed (and dropped)."""

    username: str
    email: str
    role: int
    profile: bytes
    password_hash: bytes


async def stage(request: pb.CreateUserRequest) -> NewUser:
    """Hash the password in a worker thread (hashlib releases the GIL), so the event loop keeps serving."""
    password_hash = await asyncio.to_thread(_hash_password, request.password)
    return NewUser(
        username=request.username,
        email=request.email,
        role=request.role or pb.USER_ROLE_MEMBER,  # an unspecified role means a regular member
        profile=request.profile.SerializeToString(deterministic=True),
        password_hash=password_hash,
    )


class UserStore:
    """Users in sqlite3. One connection guarded by a lock: sqlite calls are short, and the
    asyncio server calls them from its event loop thread."""

    def __init__(self, path: str = ":memory:") -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()

    def _row_to_user(self, row: tuple[int, str, str, str, int, bytes, int, int]) -> pb.User:
        _seq, uid, username, email, role, profile, created, updated = row
        user = pb.User(id=uid, username=username, email=email, role=pb.UserRole.ValueType(role))
        user.profile.ParseFromString(profile)
        user.create_time.CopyFrom(_timestamp(created))
        user.update_time.CopyFrom(_timestamp(updated))
        return user

    async def create(self, request: pb.CreateUserRequest) -> pb.User:
        return self.insert([await stage(request)])[0]

    def insert(self, new_users: Sequence[NewUser]) -> list[pb.User]:
        """Insert staged users in one transaction: all of them, or (on a conflict) none."""
        now = time.time_ns()
        ids = [str(uuid.uuid4()) for _ in new_users]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for uid, new in zip(ids, new_users, strict=True):
                    values = (uid, new.username, new.email, new.password_hash, new.role, new.profile, now, now)
                    try:
                        self._db.execute(_INSERT, values)
                    except sqlite3.IntegrityError as exc:
                        raise UserConflict(f"username {new.username!r} or email {new.email!r} is taken") from exc
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return [
            self._row_to_user((0, uid, new.username, new.email, new.role, new.profile, now, now))
            for uid, new in zip(ids, new_users, strict=True)
        ]

    def get(self, uid: str) -> pb.User:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM users WHERE id = ?", (uid,)).fetchone()
        if row is None:
            raise UserNotFound(f"user {uid} not found")
        return self._row_to_user(row)

    def update(self, request: pb.UpdateUserRequest) -> pb.User:
        # Without a mask: the optional fields that are set, and the profile.
        paths = list(request.update_mask.paths) or [
            *(name for name in _OPTIONAL if request.HasField(name)),
            "profile",
        ]
        values: dict[str, object] = {}
        for path in paths:
            top = path.split(".")[0]
            if top == "profile":
                values["profile"] = request.profile.SerializeToString(deterministic=True)
            elif top in ("username", "email", "role"):
                values[top] = getattr(request, top)
        current = self.get(request.id)
        if not values:
            return current
        values["update_time_ns"] = time.time_ns()
        assignments = ", ".join(f"{column} = ?" for column in values)
        try:
            with self._lock:
                self._db.execute(f"UPDATE users SET {assignments} WHERE id = ?", (*values.values(), request.id))
        except sqlite3.IntegrityError as exc:
            raise UserConflict("username or email is taken") from exc
        return self.get(request.id)

    def delete(self, uid: str) -> pb.User:
        user = self.get(uid)
        with self._lock:
            self._db.execute("DELETE FROM users WHERE id = ?", (uid,))
        return user

    def page(self, after: int, size: int) -> tuple[list[pb.User], int]:
        """Up to `size` users in insertion order after sequence number `after` (0: from the start), and the
        sequence number the next page starts after (0: there is none)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM users WHERE seq > ? ORDER BY seq LIMIT ?", (after, size + 1)
            ).fetchall()
        users = [self._row_to_user(r) for r in rows[:size]]
        return users, rows[size - 1][0] if len(rows) > size else 0
