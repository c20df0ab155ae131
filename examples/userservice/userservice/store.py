"""The example UserService's storage: sqlite3 from the standard library, plus an event hub for WatchUsers.

Passwords are stored as scrypt hashes and never leave the store.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
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
_OPTIONAL: tuple[Literal["username", "email", "role"], ...] = ("username", "email", "role")


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

    def create(self, request: pb.CreateUserRequest) -> pb.User:
        now = time.time_ns()
        uid = str(uuid.uuid4())
        role = request.role or pb.USER_ROLE_MEMBER  # an unspecified role means a regular member
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO users (id, username, email, password_hash, role, profile, create_time_ns,"
                    " update_time_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        uid,
                        request.username,
                        request.email,
                        _hash_password(request.password),
                        role,
                        request.profile.SerializeToString(deterministic=True),
                        now,
                        now,
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise UserConflict(f"username {request.username!r} or email {request.email!r} is taken") from exc
        return self.get(uid)

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

    def page(self, page_size: int, page_token: str) -> tuple[list[pb.User], str]:
        """One page in insertion order; the token is the last row's sequence number."""
        after = int(page_token) if page_token.isdigit() else 0
        size = page_size or 100
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM users WHERE seq > ? ORDER BY seq LIMIT ?", (after, size + 1)
            ).fetchall()
        users = [self._row_to_user(r) for r in rows[:size]]
        next_token = str(rows[size - 1][0]) if len(rows) > size else ""
        return users, next_token


@dataclass(eq=False)  # each watcher is its own identity (kept in a set)
class Watcher:
    queue: asyncio.Queue[pb.UserEvent] = field(default_factory=asyncio.Queue)
    user_ids: frozenset[str] = frozenset()
    types: frozenset[int] = frozenset()

    def wants(self, event: pb.UserEvent) -> bool:
        return (not self.user_ids or event.user.id in self.user_ids) and (not self.types or event.type in self.types)


class EventHub:
    """Fans user events out to every WatchUsers stream."""

    def __init__(self) -> None:
        self._watchers: set[Watcher] = set()

    def subscribe(self) -> Watcher:
        watcher = Watcher()
        self._watchers.add(watcher)
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def publish(self, kind: pb.UserEvent.Type.ValueType, user: pb.User) -> None:
        event = pb.UserEvent(type=kind, user=user, event_time=_timestamp(time.time_ns()))
        for watcher in list(self._watchers):
            if watcher.wants(event):
                watcher.queue.put_nowait(event)

    @staticmethod
    def configure(watcher: Watcher, user_ids: Iterable[str], types: Iterable[int]) -> None:
        watcher.user_ids = frozenset(user_ids)
        watcher.types = frozenset(types)
