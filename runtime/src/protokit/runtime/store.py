"""Storage for the standard methods of a resource: the `Repository` interface and its SQLite default.

    from protokit.runtime.store import SqliteRepository

    users = SqliteRepository(pb.User, "data/users.db", id_field="id",
                             create_time_field="create_time", update_time_field="update_time")

    user = await users.create(pb.User(username="ada"))        # id generated (str(uuid4()), or the next integer)
    user = await users.get(user.id)                            # NotFound
    await users.update(user)                                   # the whole message; NotFound
    user = await users.modify(user.id, lambda u: apply_mask(request.user, u, paths))   # read-change-write
    await users.delete(user.id)                                # NotFound; returns what was stored
    page, next_token = await users.list(page_size=50, page_token=request.page_token)   # InvalidArgument
    page, next_token = await users.list(50, token, where=compile_filter(request.filter, pb.User))  # matches
    created = await users.create_many([...])                   # all or nothing; AlreadyExists
    with users.watch(context) as events:                       # a `fanout.Subscription`
        async for change, user in events:                      # ("created" | "updated" | "deleted", User)
            ...

(`apply_mask` and `compile_filter` are in `protokit.runtime.messages`.) Errors are `protokit.runtime.errors`
domain errors, so a handler lets them propagate and the client receives NOT_FOUND, ALREADY_EXISTS or
INVALID_ARGUMENT.

`modify` is the read-change-write of an update: `change` runs inside the write transaction, so two
concurrent modifications of one item both land, one after the other. A `where` list pages over the matching
messages only, reading the table in bounded chunks.

`SqliteRepository` (stdlib sqlite3) keeps one table per resource: `id` (unique), `seq` (the creation order,
never reused) and `message` (the serialized protobuf, unknown fields included). The database runs in WAL
mode with synchronous=FULL, and a write returns only after its transaction committed, so an acknowledged
write survives a crash of the process or of the machine. All SQLite calls run on one worker thread per
repository, never on the event loop; writes from other repositories or processes on the same file wait
for SQLite's lock (`busy_timeout`). Page tokens are opaque: the position after the last item returned,
signed with a key kept in the database, so a tampered token, or one from another table or database, is
INVALID_ARGUMENT. `page_size` 0 means DEFAULT_PAGE_SIZE; larger than MAX_PAGE_SIZE means MAX_PAGE_SIZE
(AIP-158); negative is INVALID_ARGUMENT.

Watch events fan out through a `fanout.Fanout` with a bounded backlog per watcher (`watch_buffer`, else the
server's stream_buffer setting): a watcher that falls behind is cut off with RESOURCE_EXHAUSTED, the others
keep receiving. Events are published in commit order, once the write committed (even if the awaiting
task was cancelled meanwhile), and only for writes made through this repository object: use one per
resource per process.

Another database: implement `Repository` (the members below, with the same errors and ordering) and
pass it where the generated service takes its repository; `SqliteRepository` is the reference for the
semantics, and a `Fanout[Event[M]]` gives `watch()` for free (publish after each commit).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import concurrent.futures
import hashlib
import hmac
import os
import re
import sqlite3
import struct
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Generic, Literal, NamedTuple, Protocol, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from .errors import AlreadyExists, InvalidArgument, NotFound
from .fanout import Fanout, Subscription

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "ChangeType",
    "Event",
    "Id",
    "Repository",
    "SqliteRepository",
]

M = TypeVar("M", bound=Message)
R = TypeVar("R")

Id = str | int
# The changes a Watch reports; protokit.resources maps them to a proto enum's *_CREATED/*_UPDATED/*_DELETED.
ChangeType = Literal["created", "updated", "deleted"]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

# SQLite integers are signed 64-bit: a larger uint64 id cannot be stored, so it cannot name a row either.
_MIN_INT = -(2**63)
_MAX_INT = 2**63 - 1
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_META = "protokit_meta"
_TOKEN_VERSION = 1
_TOKEN_MAC_BYTES = 16
_TOKEN_BYTES = 1 + 8 + _TOKEN_MAC_BYTES
_MAX_TOKEN_CHARS = 64  # longer than any token we issue: rejected before decoding anything
_SCAN_ROWS = 500  # rows read at a time by a filtered list
_STRING = FieldDescriptor.CPPTYPE_STRING
_INTEGERS = frozenset(
    {
        FieldDescriptor.CPPTYPE_INT32,
        FieldDescriptor.CPPTYPE_INT64,
        FieldDescriptor.CPPTYPE_UINT32,
        FieldDescriptor.CPPTYPE_UINT64,
    }
)
_TIMESTAMP = "google.protobuf.Timestamp"


class Event(NamedTuple, Generic[M]):
    """One committed change: `change, message = event`. A deletion carries the message as it was stored.
    Every watcher receives the same message object: read it, do not change it."""

    change: ChangeType
    message: M


class Repository(Protocol[M]):
    """The storage of one resource type, keyed by its id field; every method is safe to call concurrently."""

    async def get(self, id: Id) -> M:
        """The stored message; NotFound."""
        ...

    async def create(self, message: M) -> M:
        """Stores a copy of `message` and returns it. An unset id (empty string, 0) gets a new one: a uuid4 in
        its canonical dashed form (`str(uuid.uuid4())`, what a `string.uuid` rule accepts), or the next integer
        (never reused); a set id is the caller's choice. AlreadyExists."""
        ...

    async def create_many(self, messages: Sequence[M]) -> builtins.list[M]:
        """Like `create` for each message, in one transaction: all are stored or none (AlreadyExists if an id
        is taken or repeats in the batch)."""
        ...

    async def update(self, message: M) -> M:
        """Replaces the stored message of `message`'s id with `message` (whole); NotFound."""
        ...

    async def modify(self, id: Id, change: Callable[[M], None]) -> M:
        """Reads the stored message, calls `change(message)` to change it in place, stores and returns the result,
        all in one write transaction: concurrent modifications of one id never lose a change. The id and the
        create time stay as stored, the update time is set as `update` sets it. An exception from `change`
        writes nothing and propagates as raised (an `InvalidArgument` reaches the client). NotFound.

        `change` runs where the transaction runs (SqliteRepository: its worker thread, holding the write lock):
        keep it quick and synchronous, and do not call the repository from it."""
        ...

    async def delete(self, id: Id) -> M:
        """Removes the message and returns it; NotFound."""
        ...

    async def list(
        self, page_size: int = 0, page_token: str = "", where: Callable[[M], bool] | None = None
    ) -> tuple[builtins.list[M], str]:
        """A page in creation order and the token of the next page ("" after the last page). page_size 0 is
        the default size, more than the maximum is the maximum, negative or a token this repository did not
        issue is InvalidArgument.

        With `where`, only messages for which `where(message)` is true: a page holds page_size of them (the
        last page may hold fewer), and the token is "" when no matching message follows the page. `where`
        runs like `modify`'s `change` (quick, synchronous); what it raises propagates."""
        ...

    def watch(self, context: Any = None, wants: Callable[[Event[M]], bool] | None = None) -> Subscription[Event[M]]:
        """Subscribes now (no event committed after this call is missed) to `Event`s in commit order; see
        `fanout.Fanout.subscribe` for `context` and `wants`."""
        ...

    @property
    def watchers(self) -> int:
        """How many `watch()` subscriptions are open (tests wait for a Watch call to have subscribed)."""
        ...

    def close(self) -> None:
        """Releases what the repository holds (connections, threads); called once the server has stopped."""
        ...


class SqliteRepository(Generic[M]):
    """`Repository` on a SQLite file (see the module doc). Opening creates the file, its directory and the
    table if needed; it blocks briefly, so open repositories at startup. `close()` when done."""

    def __init__(
        self,
        message_type: type[M],
        path: str | os.PathLike[str],
        *,
        id_field: str = "id",
        table: str | None = None,
        create_time_field: str | None = None,
        update_time_field: str | None = None,
        watch_buffer: int | None = None,
        busy_timeout: float = 5.0,
    ) -> None:
        descriptor = message_type.DESCRIPTOR
        self.message_type = message_type
        self.id_field = id_field
        self._integer_ids = _id_kind(descriptor, id_field) == "integer"
        self._create_time_field = _timestamp_field(descriptor, create_time_field)
        self._update_time_field = _timestamp_field(descriptor, update_time_field)
        self.table = table if table is not None else descriptor.full_name.replace(".", "_")
        if not _TABLE_NAME.fullmatch(self.table) or self.table.lower().startswith(("sqlite_", _META)):
            raise ValueError(f"invalid table name {self.table!r}")
        self._quoted = f'"{self.table}"'
        self._last_id_key = f"last_id:{self.table}"
        self._fanout: Fanout[Event[M]] = Fanout(watch_buffer)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One thread owns the connection: SQLite calls never block the event loop, and this repository's
        # writes are serialised, so their events are published in commit order.
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"protokit-store-{self.table}")
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a read-then-write (next integer id,
        # update) holds the write lock from its first read, even against other connections to the file.
        self._conn = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        try:
            self._token_key = self._open()
        except BaseException:
            self._conn.close()
            self._executor.shutdown(wait=False)
            raise

    # --- the Repository methods ---------------------------------------------------------------------

    async def get(self, id: Id) -> M:
        return await self._call(self._get, self._check_id(id))

    async def create(self, message: M) -> M:
        return (await self._call(self._create_all, [self._own(message)], asyncio.get_running_loop()))[0]

    async def create_many(self, messages: Sequence[M]) -> builtins.list[M]:
        batch = [self._own(m) for m in messages]
        if not batch:
            return []
        return await self._call(self._create_all, batch, asyncio.get_running_loop())

    async def update(self, message: M) -> M:
        return await self._call(self._update, self._own(message), asyncio.get_running_loop())

    async def modify(self, id: Id, change: Callable[[M], None]) -> M:
        return await self._call(self._modify, self._check_id(id), change, asyncio.get_running_loop())

    async def delete(self, id: Id) -> M:
        return await self._call(self._delete, self._check_id(id), asyncio.get_running_loop())

    async def list(
        self, page_size: int = 0, page_token: str = "", where: Callable[[M], bool] | None = None
    ) -> tuple[builtins.list[M], str]:
        if page_size < 0:
            raise InvalidArgument(f"page_size must not be negative, got {page_size}")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = self._read_token(page_token) if page_token else 0
        return await self._call(self._list, size, after, where)

    def watch(self, context: Any = None, wants: Callable[[Event[M]], bool] | None = None) -> Subscription[Event[M]]:
        return self._fanout.subscribe(context, wants)

    @property
    def watchers(self) -> int:
        return len(self._fanout)

    # --- lifetime -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Waits for the operation in progress, then closes the database; later calls raise RuntimeError."""
        self._executor.shutdown(wait=True)
        self._conn.close()

    def __enter__(self) -> SqliteRepository[M]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- SQLite work, on the worker thread (`_open`: on the constructing thread, before any other) ---

    def _open(self) -> bytes:
        conn = self._conn
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RuntimeError(f"{self.path}: SQLite cannot use WAL here (journal_mode is {mode})")
        # FULL: every commit syncs the WAL, so a write is on disk before we acknowledge it (NORMAL would
        # lose the last commits on power loss).
        conn.execute("PRAGMA synchronous=FULL")
        id_type = "INTEGER" if self._integer_ids else "TEXT"

        def schema(conn: sqlite3.Connection) -> bytes:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {_META} (name TEXT PRIMARY KEY, value NOT NULL)")
            # AUTOINCREMENT: seq is never reused, so a page token stays a position even after deletes.
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._quoted} (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                f" id {id_type} NOT NULL UNIQUE, message BLOB NOT NULL)"
            )
            declared = conn.execute(f"SELECT type FROM pragma_table_info('{self.table}') WHERE name = 'id'").fetchone()
            if declared is None or str(declared[0]).upper() != id_type:
                raise ValueError(
                    f"{self.path}: table {self.table} stores {declared[0] if declared else 'no'} ids, but"
                    f" {self.message_type.DESCRIPTOR.full_name}.{self.id_field} is {id_type}"
                )
            conn.execute(f"INSERT OR IGNORE INTO {_META} (name, value) VALUES ('token_key', ?)", (os.urandom(32),))
            key = conn.execute(f"SELECT value FROM {_META} WHERE name = 'token_key'").fetchone()[0]
            return bytes(key)

        return _transaction(conn, schema)

    def _get(self, id: Id) -> M:
        return self.message_type.FromString(self._find(self._conn, id))

    def _create_all(self, messages: builtins.list[M], loop: asyncio.AbstractEventLoop) -> builtins.list[M]:
        now = time.time_ns()

        def insert(conn: sqlite3.Connection) -> builtins.list[M]:
            return [self._insert(conn, message, now) for message in messages]

        created = _transaction(self._conn, insert)
        self._publish(loop, [Event("created", m) for m in created])
        return created

    def _insert(self, conn: sqlite3.Connection, message: M, now: int) -> M:
        stored = message  # already our own copy
        id = getattr(stored, self.id_field)
        if not id:
            id = self._next_integer(conn) if self._integer_ids else str(uuid.uuid4())
            setattr(stored, self.id_field, id)
        elif self._integer_ids and not _MIN_INT <= id <= _MAX_INT:
            raise InvalidArgument(f"{self.id_field} {id} is out of the stored range {_MIN_INT}..{_MAX_INT}")
        for name in (self._create_time_field, self._update_time_field):
            if name is not None:
                getattr(stored, name).FromNanoseconds(now)
        try:
            conn.execute(f"INSERT INTO {self._quoted} (id, message) VALUES (?, ?)", (id, _serialize(stored)))
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"{self._kind} {id!r} already exists") from None
        if self._integer_ids and id > 0:
            # The high-water mark, so a generated id never repeats one deleted since (or chosen by a caller).
            conn.execute(
                f"INSERT INTO {_META} (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
                (self._last_id_key, id),
            )
        return stored

    def _next_integer(self, conn: sqlite3.Connection) -> int:
        mark = conn.execute(f"SELECT value FROM {_META} WHERE name = ?", (self._last_id_key,)).fetchone()
        largest = conn.execute(f"SELECT max(id) FROM {self._quoted}").fetchone()[0]
        return max(mark[0] if mark else 0, largest or 0) + 1

    def _update(self, message: M, loop: asyncio.AbstractEventLoop) -> M:
        id = getattr(message, self.id_field)
        now = time.time_ns()

        def replace(conn: sqlite3.Connection) -> M:
            old = self.message_type.FromString(self._find(conn, id))
            return self._rewrite(conn, old, message, now)  # `message` is already our own copy

        updated = _transaction(self._conn, replace)
        self._publish(loop, [Event("updated", updated)])
        return updated

    def _modify(self, id: Id, change: Callable[[M], object], loop: asyncio.AbstractEventLoop) -> M:
        def read_change_write(conn: sqlite3.Connection) -> M:
            # The read is inside the write transaction (BEGIN IMMEDIATE): no other write to this id can land
            # between it and ours, in this process or another.
            blob = self._find(conn, id)
            changed = self.message_type.FromString(blob)
            result = change(changed)
            if asyncio.iscoroutine(result):  # an `async def`: its changes would never happen
                result.close()
                raise TypeError("modify() takes a plain function as `change`, not a coroutine function")
            stored = self.message_type.FromString(blob)
            setattr(changed, self.id_field, getattr(stored, self.id_field))  # the row's key: not change's to alter
            return self._rewrite(conn, stored, changed, time.time_ns())

        modified = _transaction(self._conn, read_change_write)
        self._publish(loop, [Event("updated", modified)])
        return modified

    def _rewrite(self, conn: sqlite3.Connection, old: M, new: M, now: int) -> M:
        """Writes `new` over the row of `old` (same id): create time as stored, update time `now`."""
        if self._create_time_field is not None:
            # Set by the store on create: the new message's copy of it (maybe unset) is not the caller's to change.
            name = self._create_time_field
            if old.HasField(name):
                getattr(new, name).CopyFrom(getattr(old, name))
            else:
                new.ClearField(name)
        if self._update_time_field is not None:
            getattr(new, self._update_time_field).FromNanoseconds(now)
        id = getattr(old, self.id_field)
        conn.execute(f"UPDATE {self._quoted} SET message = ? WHERE id = ?", (_serialize(new), id))
        return new

    def _delete(self, id: Id, loop: asyncio.AbstractEventLoop) -> M:
        def remove(conn: sqlite3.Connection) -> M:
            old = self._find(conn, id)
            conn.execute(f"DELETE FROM {self._quoted} WHERE id = ?", (id,))
            return self.message_type.FromString(old)

        deleted = _transaction(self._conn, remove)
        self._publish(loop, [Event("deleted", deleted)])
        return deleted

    def _list(self, size: int, after: int, where: Callable[[M], bool] | None) -> tuple[builtins.list[M], str]:
        # Unfiltered, one more row than the page tells whether a next page exists. Filtered, rows are read in
        # chunks until the page is full and one more match is found (or the table ends): memory stays bounded
        # however few rows match. One read transaction, so every chunk sees the same snapshot.
        chunk = size + 1 if where is None else _SCAN_ROWS
        items: builtins.list[M] = []
        last = after  # the seq of the last item in the page
        conn = self._conn
        conn.execute("BEGIN")
        try:
            cursor = after
            while True:
                rows = conn.execute(
                    f"SELECT seq, message FROM {self._quoted} WHERE seq > ? ORDER BY seq LIMIT ?", (cursor, chunk)
                ).fetchall()
                for seq, blob in rows:
                    message = self.message_type.FromString(blob)
                    if where is not None and not where(message):
                        continue
                    if len(items) == size:  # a match after a full page: there is a next page
                        return items, self._make_token(last)
                    items.append(message)
                    last = seq
                if len(rows) < chunk:
                    return items, ""
                cursor = rows[-1][0]
        finally:
            conn.execute("COMMIT")  # a read transaction: ends it, writes nothing

    def _publish(self, loop: asyncio.AbstractEventLoop, events: builtins.list[Event[M]]) -> None:
        # Fanout is not thread-safe: publish on the loop. Scheduled before this call's result is, so the
        # events are out when the write's await returns; and in commit order, as this thread commits.
        # Copies: the caller owns the message a write returns and may change it; watchers share one copy.
        if events:
            loop.call_soon_threadsafe(self._publish_now, [Event(e.change, self._copy(e.message)) for e in events])

    def _publish_now(self, events: builtins.list[Event[M]]) -> None:
        for event in events:
            self._fanout.publish(event)

    # --- helpers ------------------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., R], *args: Any) -> R:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @property
    def _kind(self) -> str:
        return self.message_type.DESCRIPTOR.name

    def _copy(self, message: M) -> M:
        copy = self.message_type()
        copy.CopyFrom(message)  # keeps unknown fields
        return copy

    def _own(self, message: M) -> M:
        """A copy of the caller's message, taken before the worker thread sees it: the caller's stays as it was,
        and another task changing it meanwhile cannot change what is written."""
        if not isinstance(message, self.message_type):
            raise TypeError(f"expected {self.message_type.DESCRIPTOR.full_name}, got {type(message).__name__}")
        return self._copy(message)

    def _check_id(self, id: Id) -> Id:
        wanted = int if self._integer_ids else str
        if not isinstance(id, wanted) or isinstance(id, bool):
            raise TypeError(f"{self._kind}.{self.id_field} is {wanted.__name__}, got {type(id).__name__}")
        return id

    def _find(self, conn: sqlite3.Connection, id: Id) -> bytes:
        """The stored bytes of `id`; NotFound. An integer beyond SQLite's range names no row (and would not bind)."""
        row = None
        if not (isinstance(id, int) and not _MIN_INT <= id <= _MAX_INT):
            row = conn.execute(f"SELECT message FROM {self._quoted} WHERE id = ?", (id,)).fetchone()
        if row is None:
            raise NotFound(f"{self._kind} {id!r} not found")
        return bytes(row[0])

    def _mac(self, payload: bytes) -> bytes:
        # The table is part of what is signed, so another resource's token fails here, as does another
        # database's (a different key).
        signed = b"protokit.store\0" + self.table.encode() + b"\0" + payload
        return hmac.new(self._token_key, signed, hashlib.sha256).digest()[:_TOKEN_MAC_BYTES]

    def _make_token(self, seq: int) -> str:
        payload = struct.pack(">BQ", _TOKEN_VERSION, seq)
        return _encode(payload + self._mac(payload))

    def _read_token(self, token: str) -> int:
        """The seq a token of ours continues after; InvalidArgument for anything else."""
        invalid = InvalidArgument("invalid page_token: pass the next_page_token of a previous page, unchanged")
        if len(token) > _MAX_TOKEN_CHARS or not token.isascii():
            raise invalid
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise invalid from None
        # The decoder skips stray characters and unused low bits: only the exact text we issued is accepted.
        if len(raw) != _TOKEN_BYTES or _encode(raw) != token:
            raise invalid
        payload, mac = raw[:9], raw[9:]
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise invalid
        version, seq = struct.unpack(">BQ", payload)
        if version != _TOKEN_VERSION:
            raise invalid
        return int(seq)


def _transaction(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], R]) -> R:
    """`body` in a write transaction: committed if it returns, rolled back if it raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = body(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _serialize(message: Message) -> bytes:
    return message.SerializeToString(deterministic=True)


# `descriptor: Any`: the stubs type a message's DESCRIPTOR as a union of the Python and upb classes.
def _id_kind(descriptor: Any, id_field: str) -> Literal["string", "integer"]:
    field = descriptor.fields_by_name.get(id_field)
    if field is None:
        raise ValueError(f"{descriptor.full_name} has no field {id_field!r}")
    if field.is_repeated:
        raise TypeError(f"{descriptor.full_name}.{id_field} is repeated; an id is a single string or integer")
    if field.cpp_type == _STRING and field.type == FieldDescriptor.TYPE_STRING:
        return "string"
    if field.cpp_type in _INTEGERS:
        return "integer"
    raise TypeError(f"{descriptor.full_name}.{id_field} is not a string or an integer")


def _timestamp_field(descriptor: Any, name: str | None) -> str | None:
    if name is None:
        return None
    field = descriptor.fields_by_name.get(name)
    if field is None or field.is_repeated or field.message_type is None or field.message_type.full_name != _TIMESTAMP:
        raise TypeError(f"{descriptor.full_name}.{name} is not a {_TIMESTAMP} field")
    return name
