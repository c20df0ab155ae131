"""protokit.runtime.store: SqliteRepository on real SQLite files in tmp dirs, real asyncio, no mocks.

Messages: the repository's generated `user.v1.User` (string ids, timestamps), and small message types built
from descriptors at import time for integer ids (no code generation needed).
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import grpc
import protovalidate
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from conftest import REPO

sys.path.insert(0, str(REPO / "generated"))

from user.v1.user_service_pb2 import User, UserProfile

from protokit.runtime import AlreadyExists, InvalidArgument, NotFound, SlowConsumer
from protokit.runtime.store import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Event,
    Repository,
    SqliteRepository,
)

FD = descriptor_pb2.FieldDescriptorProto


def _message_types() -> tuple[type[Message], type[Message], type[Message]]:
    """protokit_test.Item {int64 id; string name}, protokit_test.Ticket {uint64 id} and protokit_test.Tally
    {string id; int64 count; repeated string marks}, without protoc."""
    proto = descriptor_pb2.FileDescriptorProto(name="protokit_test/items.proto", package="protokit_test")
    proto.syntax = "proto3"
    item = proto.message_type.add(name="Item")
    item.field.add(name="id", number=1, type=FD.TYPE_INT64, label=FD.LABEL_OPTIONAL)
    item.field.add(name="name", number=2, type=FD.TYPE_STRING, label=FD.LABEL_OPTIONAL)
    ticket = proto.message_type.add(name="Ticket")
    ticket.field.add(name="id", number=1, type=FD.TYPE_UINT64, label=FD.LABEL_OPTIONAL)
    tally = proto.message_type.add(name="Tally")
    tally.field.add(name="id", number=1, type=FD.TYPE_STRING, label=FD.LABEL_OPTIONAL)
    tally.field.add(name="count", number=2, type=FD.TYPE_INT64, label=FD.LABEL_OPTIONAL)
    tally.field.add(name="marks", number=3, type=FD.TYPE_STRING, label=FD.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("protokit_test.Item")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("protokit_test.Ticket")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("protokit_test.Tally")),
    )


Item, Ticket, Tally = _message_types()


def users_repo(path: Path, **kwargs: Any) -> SqliteRepository[User]:
    return SqliteRepository(
        User, path, id_field="id", create_time_field="create_time", update_time_field="update_time", **kwargs
    )


def test_crud_round_trip(tmp_path: Path) -> None:
    async def main() -> None:
        with users_repo(tmp_path / "data" / "users.db") as users:
            store: Repository[User] = users  # the SQLite class satisfies the interface generated code uses
            draft = User(username="ada", email="ada@example.com", profile=UserProfile(display_name="Ada"))
            created = await store.create(draft)
            assert draft.id == "" and not draft.HasField("create_time")  # the caller's message is untouched
            # The canonical dashed form, which a `(buf.validate.field).string.uuid = true` rule accepts.
            assert str(uuid.UUID(created.id)) == created.id and uuid.UUID(created.id).version == 4
            assert protovalidate.collect_violations(created) == []
            assert created.create_time == created.update_time and created.create_time.seconds > 0
            assert await store.get(created.id) == created

            changed = User()
            changed.CopyFrom(created)
            changed.username = "ada_l"
            changed.ClearField("create_time")  # the store keeps the creation time, whatever the update says
            updated = await store.update(changed)
            assert updated.username == "ada_l" and updated.profile.display_name == "Ada"
            assert updated.create_time == created.create_time
            assert updated.update_time.ToNanoseconds() > created.update_time.ToNanoseconds()
            assert await store.get(created.id) == updated

            chosen = await store.create(User(id="user-7", username="grace"))
            assert chosen.id == "user-7" and (await store.get("user-7")).username == "grace"
            with pytest.raises(AlreadyExists, match="User 'user-7' already exists"):
                await store.create(User(id="user-7", username="other"))
            assert (await store.get("user-7")).username == "grace"

            assert await store.delete(created.id) == updated  # what was stored, for the Watch event and AIP-135
            for missing in (created.id, "", "nobody"):
                with pytest.raises(NotFound, match="not found"):
                    await store.get(missing)
                with pytest.raises(NotFound):
                    await store.delete(missing)
                with pytest.raises(NotFound):
                    await store.update(User(id=missing, username="x"))
            assert [u.id for u in (await store.list())[0]] == ["user-7"]

    asyncio.run(main())
    assert NotFound.code == grpc.StatusCode.NOT_FOUND and AlreadyExists.code == grpc.StatusCode.ALREADY_EXISTS


def test_misuse_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no field 'uid'"):
        SqliteRepository(User, tmp_path / "a.db", id_field="uid")
    with pytest.raises(TypeError, match="not a string or an integer"):
        SqliteRepository(User, tmp_path / "a.db", id_field="profile")
    with pytest.raises(TypeError, match=r"not a google\.protobuf\.Timestamp"):
        SqliteRepository(User, tmp_path / "a.db", create_time_field="username")
    with pytest.raises(ValueError, match="invalid table name"):
        SqliteRepository(User, tmp_path / "a.db", table="users; DROP TABLE x")

    async def main() -> None:
        with users_repo(tmp_path / "a.db") as users:
            with pytest.raises(TypeError, match=r"expected user\.v1\.User"):
                await users.create(UserProfile())  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="is str, got int"):
                await users.get(1)

    asyncio.run(main())


def test_database_is_wal_with_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "users.db"
    with users_repo(path) as users:
        assert users._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert users.table == "user_v1_User"
    with sqlite3.connect(path) as conn:  # WAL is a property of the file: every later opener uses it
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        columns = [row[1] for row in conn.execute("PRAGMA table_info(user_v1_User)")]
    assert columns == ["seq", "id", "message"]


def test_unknown_fields_survive_a_round_trip(tmp_path: Path) -> None:
    # Field 15 (varint 150) is unknown to this User: a newer client's field must not be lost by an old server.
    unknown = bytes([15 << 3 | 0, 0x96, 0x01])
    draft = User.FromString(User(username="ada").SerializeToString() + unknown)

    async def main() -> None:
        with users_repo(tmp_path / "users.db") as users:
            created = await users.create(draft)
            fetched = await users.get(created.id)
            assert fetched.SerializeToString().endswith(unknown)
            fetched.email = "ada@example.com"
            await users.update(fetched)
            assert (await users.get(created.id)).SerializeToString().endswith(unknown)
            assert (await users.list())[0][0].SerializeToString().endswith(unknown)

    asyncio.run(main())


async def _all_pages(store: SqliteRepository[Any], page_size: int, where: Any = None) -> tuple[list[list[Any]], str]:
    pages, token = [], ""
    while True:
        items, token = await store.list(page_size, token, where=where)
        pages.append(items)
        if not token:
            return pages, token


def test_pagination_is_stable_and_ends(tmp_path: Path) -> None:
    path = tmp_path / "users.db"

    async def main() -> None:
        with users_repo(path) as users:
            created = await users.create_many([User(username=f"user{i:04}") for i in range(1100)])
            ids = [u.id for u in created]

            pages, _ = await _all_pages(users, 100)
            assert [len(p) for p in pages] == [100] * 11
            assert [u.id for p in pages for u in p] == ids  # creation order, not id (uuid) order

            pages, _ = await _all_pages(users, 300)
            assert [len(p) for p in pages] == [300, 300, 300, 200]  # a short last page, then no token

            first, _ = await users.list()
            assert len(first) == DEFAULT_PAGE_SIZE
            big, token = await users.list(page_size=10**6)
            assert len(big) == MAX_PAGE_SIZE and token  # coerced to the maximum, not an error
            rest, end = await users.list(page_size=10**6, page_token=token)
            assert [u.id for u in rest] == ids[MAX_PAGE_SIZE:] and end == ""
            with pytest.raises(InvalidArgument, match="page_size must not be negative"):
                await users.list(page_size=-1)

            # Updates keep an item's place; deletes (even of the item a token stopped at) skip nothing.
            _, token = await users.list(10)
            await users.update(User(id=ids[3], username="renamed"))
            await users.delete(ids[9])
            await users.delete(ids[10])
            page2, _ = await users.list(10, token)
            assert [u.id for u in page2] == ids[11:21]
            again, _ = await users.list(10)
            assert [u.id for u in again] == ids[:9] + ids[11:12]
            assert again[3].username == "renamed"
            return_token = token

        # A token stays valid across a restart (the signing key lives in the database).
        with users_repo(path) as reopened:
            page3, _ = await reopened.list(10, return_token)
            assert [u.id for u in page3] == ids[11:21]

    asyncio.run(main())


def test_foreign_tampered_and_garbage_tokens_are_invalid_argument(tmp_path: Path) -> None:
    async def main() -> None:
        path = tmp_path / "users.db"
        with (
            users_repo(path) as users,
            SqliteRepository(User, path, table="admins") as admins,
            users_repo(tmp_path / "other.db") as elsewhere,
        ):
            for store in (users, admins, elsewhere):
                await store.create_many([User(username=f"u{i}") for i in range(5)])
            _, token = await users.list(2)
            _, admins_token = await admins.list(2)
            _, elsewhere_token = await elsewhere.list(2)
            assert token and token not in (admins_token, elsewhere_token)

            raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            tampered = []
            for index in range(len(raw)):  # every single-bit change: the version, the position, the MAC
                flipped = bytearray(raw)
                flipped[index] ^= 0x01
                tampered.append(base64.urlsafe_b64encode(bytes(flipped)).decode().rstrip("="))
            forged = bytearray(raw)
            forged[1:9] = (1).to_bytes(8, "big")  # another position with the old MAC
            tampered.append(base64.urlsafe_b64encode(bytes(forged)).decode().rstrip("="))
            garbage = [
                "x",
                "!!!!",
                "not a token at all",
                token[:-1],
                token + "A",
                token + "AAAA",
                token[:5] + "!" + token[5:],  # the decoder would skip it: the same bytes, not the same token
                token[:-1] + chr(ord(token[-1]) ^ 1),  # the last character's unused bits
                token + "==",
                "é" * 10,
                "A" * 10_000,
                base64.urlsafe_b64encode(bytes(25)).decode(),
                base64.urlsafe_b64encode(b"\x01" + (2).to_bytes(8, "big") + bytes(16)).decode(),
                "\x00",
            ]
            for bad in [admins_token, elsewhere_token, *tampered, *garbage]:
                with pytest.raises(InvalidArgument, match="invalid page_token"):
                    await users.list(2, bad)
            # The genuine token still works: rejecting the others changed nothing.
            page, _ = await users.list(2, token)
            assert len(page) == 2

    asyncio.run(main())


def test_create_many_is_all_or_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        with users_repo(tmp_path / "users.db") as users, users.watch() as events:
            await users.create(User(id="taken", username="first"))
            assert events.pending == 1
            batches = [
                [User(username="a"), User(id="dup", username="b"), User(id="dup", username="c")],  # within the batch
                [User(username="a"), User(username="b"), User(id="taken", username="c")],  # with a stored one
            ]
            for batch in batches:
                with pytest.raises(AlreadyExists):
                    await users.create_many(batch)
                items, _ = await users.list()
                assert [u.id for u in items] == ["taken"]  # nothing of the batch was written
                assert events.pending == 1  # and nothing was announced

            assert await users.create_many([]) == []
            created = await users.create_many([User(username=f"n{i}") for i in range(5)])
            assert [u.username for u in created] == [f"n{i}" for i in range(5)]
            assert [u.id for u in (await users.list())[0]] == ["taken", *(u.id for u in created)]
            assert events.pending == 6

    asyncio.run(main())


_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, sys.argv[2])
    from user.v1.user_service_pb2 import User
    from protokit.runtime.store import SqliteRepository

    async def main():
        users = SqliteRepository(User, sys.argv[1])
        i = 0
        while True:
            user = await users.create(User(username=f"user{i}"))
            print(user.id, flush=True)  # the acknowledgement: sent only after create() returned
            i += 1

    asyncio.run(main())
    """
)


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "users.db"
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), str(REPO / "generated")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: list[str] = []
    try:
        assert child.stdout is not None
        while len(acked) < 200:
            line = child.stdout.readline()
            assert line, f"writer died: {child.stderr.read() if child.stderr else ''}"
            acked.append(line.strip())
    finally:
        child.send_signal(signal.SIGKILL)  # mid-write: no close(), no checkpoint, no atexit
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert (tmp_path / "users.db-wal").stat().st_size > 0  # the commits are in the WAL, to be recovered

    async def main() -> None:
        with SqliteRepository(User, path) as users:
            for id in acked:
                assert (await users.get(id)).id == id
            items, _ = await users.list(MAX_PAGE_SIZE)
            ids = [u.id for u in items]
            assert ids[: len(acked)] == acked  # in order; an unacknowledged last write may be there too
            assert len(ids) - len(acked) <= 1

    asyncio.run(main())
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "items.db"

    async def main() -> None:
        # Two repositories on one file: two connections and worker threads contending for SQLite's lock.
        with SqliteRepository(Item, path) as one, SqliteRepository(Item, path) as two:

            async def writer(store: SqliteRepository[Any], task: int) -> list[int]:
                return [(await store.create(Item(name=f"t{task}-{n}"))).id for n in range(10)]

            results = await asyncio.gather(*(writer(one if t % 2 else two, t) for t in range(16)))
            ids = [id for result in results for id in result]
            assert sorted(ids) == list(range(1, 161))  # unique: the next id is taken inside the write lock

            items, _ = await one.list(MAX_PAGE_SIZE)
            assert sorted(i.name for i in items) == sorted(f"t{t}-{n}" for t in range(16) for n in range(10))

            # Concurrent updates of different items all land.
            await asyncio.gather(*((one if i % 2 else two).update(Item(id=i, name=f"v{i}")) for i in ids))
            items, _ = await two.list(MAX_PAGE_SIZE)
            assert {i.id: i.name for i in items} == {i: f"v{i}" for i in ids}

    asyncio.run(main())


def test_watch_events_in_commit_order(tmp_path: Path) -> None:
    async def main() -> None:
        with users_repo(tmp_path / "users.db") as users, users.watch() as events:
            created = await users.create(User(username="ada"))
            assert events.pending == 1  # published by the time the write's await returns
            created.username = "ada_l"
            updated = await users.update(created)
            deleted = await users.delete(created.id)
            with pytest.raises(NotFound):
                await users.delete(created.id)  # a failed write publishes nothing
            got = [await events.get() for _ in range(3)]
            assert got == [Event("created", got[0].message), Event("updated", updated), Event("deleted", deleted)]
            change, message = got[0]
            assert change == "created" and message.username == "ada"
            assert events.pending == 0

            # Many concurrent writers: events come in commit order, which is the listing's order.
            await asyncio.gather(*(users.create(User(username=f"u{i}")) for i in range(40)))
            seen = [(await events.get()).message.id for _ in range(40)]
            listed, _ = await users.list(100)
            assert seen == [u.id for u in listed]

            # `wants` filters per watcher.
            with users.watch(wants=lambda e: e.change == "deleted") as deletions:
                await users.delete(seen[0])
                await users.create(User(username="later"))
                assert deletions.pending == 1 and (await deletions.get()).message.id == seen[0]

    asyncio.run(main())


def test_slow_watcher_is_cut_off_and_others_keep_receiving(tmp_path: Path) -> None:
    async def main() -> None:
        with users_repo(tmp_path / "users.db", watch_buffer=4) as users:
            received: list[str] = []
            fast = users.watch()

            async def follow() -> None:
                async for change, user in fast:
                    assert change == "created"
                    received.append(user.username)

            follower = asyncio.create_task(follow())
            with users.watch() as slow:  # never reads
                for i in range(12):
                    await users.create(User(username=f"u{i}"))
                    await asyncio.sleep(0)
                assert slow.pending == 0  # its backlog was dropped at the bound, not kept growing
                with pytest.raises(SlowConsumer, match="fell 4 events behind"):
                    await slow.get()
            assert len(users._fanout) == 1  # only the fast watcher is still subscribed
            await users.create(User(username="after"))
            await asyncio.sleep(0)
            fast.close()
            await asyncio.wait_for(follower, 5)
            assert received == [f"u{i}" for i in range(12)] + ["after"]

    asyncio.run(main())


def test_integer_ids(tmp_path: Path) -> None:
    path = tmp_path / "items.db"

    async def main() -> None:
        with SqliteRepository(Item, path) as items:
            assert [(await items.create(Item(name=n))).id for n in "abc"] == [1, 2, 3]
            await items.delete(3)
            assert (await items.create(Item(name="d"))).id == 4  # a deleted id is never handed out again
            assert (await items.create(Item(id=100, name="chosen"))).id == 100
            await items.delete(100)
            assert (await items.create(Item(name="e"))).id == 101
            with pytest.raises(AlreadyExists, match="Item 101 already exists"):
                await items.create(Item(id=101))
            assert (await items.get(101)).name == "e"
            with pytest.raises(NotFound, match="Item 3 not found"):
                await items.get(3)
            with pytest.raises(TypeError, match="is int, got str"):
                await items.get("1")
            pages, _ = await _all_pages(items, 2)
            assert [i.id for p in pages for i in p] == [1, 2, 4, 101]

        with SqliteRepository(Item, path) as reopened:  # the high-water mark is stored, not remembered
            assert (await reopened.create(Item(name="f"))).id == 102

        with SqliteRepository(Ticket, tmp_path / "tickets.db") as tickets:
            top = 2**64 - 1  # a valid uint64 that SQLite's signed integers cannot hold
            with pytest.raises(NotFound):
                await tickets.get(top)
            with pytest.raises(NotFound):
                await tickets.delete(top)
            with pytest.raises(InvalidArgument, match="out of the stored range"):
                await tickets.create(Ticket(id=top))
            assert (await tickets.create(Ticket(id=2**63 - 1))).id == 2**63 - 1

    asyncio.run(main())
    # The same table opened for a message whose id is a string: refused, not silently mixed.
    with pytest.raises(ValueError, match="stores INTEGER ids"):
        SqliteRepository(User, path, table="protokit_test_Item")


def test_modify_from_concurrent_writers_loses_no_change(tmp_path: Path) -> None:
    path = tmp_path / "tallies.db"

    async def main() -> None:
        # Two repositories on one file as well: the read-change-write holds SQLite's write lock, not just ours.
        with SqliteRepository(Tally, path) as one, SqliteRepository(Tally, path) as two, one.watch() as events:
            tally = await one.create(Tally(id="t"))

            def bump(mark: str) -> Any:
                def change(message: Any) -> None:
                    message.count += 1
                    message.marks.append(mark)

                return change

            results = await asyncio.gather(*((one if i % 2 else two).modify("t", bump(f"m{i}")) for i in range(20)))
            stored = await one.get(tally.id)
            assert stored.count == 20
            assert sorted(stored.marks) == sorted(f"m{i}" for i in range(20))
            # Each modification saw the one before it: the counts returned are 1..20, once each.
            assert sorted(r.count for r in results) == list(range(1, 21))
            assert max(results, key=lambda r: r.count) == stored
            # Only writes through `one` are its events: the created, then its ten modifications in commit order.
            got = [await events.get() for _ in range(11)]
            assert [e.change for e in got] == ["created"] + ["updated"] * 10
            counts = [e.message.count for e in got[1:]]
            assert counts == sorted(counts)

    asyncio.run(main())


def test_modify_keeps_id_and_times_and_rolls_back_on_error(tmp_path: Path) -> None:
    async def main() -> None:
        with users_repo(tmp_path / "users.db") as users, users.watch() as events:
            created = await users.create(User(username="ada", email="ada@example.com"))
            await events.get()

            def rename(user: User) -> None:
                user.username = "ada_l"
                user.id = "someone-else"  # the key of the row: restored
                user.ClearField("create_time")  # set by the store: restored
                user.update_time.FromSeconds(1)  # set by the store: overwritten

            modified = await users.modify(created.id, rename)
            assert modified.id == created.id and modified.username == "ada_l" and modified.email == "ada@example.com"
            assert modified.create_time == created.create_time
            assert modified.update_time.ToNanoseconds() > created.update_time.ToNanoseconds()
            assert await users.get(created.id) == modified
            with pytest.raises(NotFound):
                await users.get("someone-else")
            assert await events.get() == Event("updated", modified)

            error = InvalidArgument("username: must be at least 3 characters")

            def refuse(user: User) -> None:
                user.username = "half-done"  # changed before the failure: must not be written
                raise error

            with pytest.raises(InvalidArgument) as raised:
                await users.modify(created.id, refuse)
            assert raised.value is error  # unchanged, so the client gets INVALID_ARGUMENT and this message
            assert await users.get(created.id) == modified
            assert events.pending == 0  # a rolled-back write publishes nothing

            async def not_a_plain_function(user: User) -> None:
                user.username = "never"

            with pytest.raises(TypeError, match="not a coroutine function"):
                await users.modify(created.id, not_a_plain_function)  # type: ignore[arg-type]
            assert await users.get(created.id) == modified

            calls: list[User] = []
            for missing in ("", "nobody"):
                with pytest.raises(NotFound, match="not found"):
                    await users.modify(missing, calls.append)
            assert calls == [] and events.pending == 0

            # The repository still writes after the failures (every transaction ended).
            again = await users.modify(created.id, lambda u: setattr(u, "email", "ada@lovelace.example"))
            assert (await users.get(created.id)).email == "ada@lovelace.example" == again.email

    asyncio.run(main())


def test_list_where_pages_over_matching_items(tmp_path: Path) -> None:
    async def main() -> None:
        with SqliteRepository(Item, tmp_path / "items.db") as items:
            await items.create_many([Item(name=f"n{i}") for i in range(1, 31)])  # ids 1..30

            def thirds(item: Any) -> bool:
                return bool(item.id % 3 == 0)

            pages, _ = await _all_pages(items, 4, thirds)
            assert [[i.id for i in p] for p in pages] == [[3, 6, 9, 12], [15, 18, 21, 24], [27, 30]]
            # A full last page and no match after it: no token (no empty page to fetch).
            pages, _ = await _all_pages(items, 5, thirds)
            assert [[i.id for i in p] for p in pages] == [[3, 6, 9, 12, 15], [18, 21, 24, 27, 30]]
            # The last match is followed by rows that do not match: still the end.
            page, token = await items.list(10, where=lambda i: i.id <= 10)
            assert [i.id for i in page] == list(range(1, 11)) and token == ""
            page, token = await items.list(9, where=lambda i: i.id <= 10)
            assert len(page) == 9 and token
            page, token = await items.list(9, token, where=lambda i: i.id <= 10)
            assert [i.id for i in page] == [10] and token == ""

            assert await items.list(where=lambda i: False) == ([], "")
            assert await items.list(where=lambda i: i.id > 30) == ([], "")

            # The token is the position after the last item returned: the rows skipped before it stay skipped,
            # the ones after it are read, whatever the filter.
            page, token = await items.list(2, where=lambda i: i.name in ("n5", "n7", "n20"))
            assert [i.id for i in page] == [5, 7] and token
            rest, _ = await items.list(3, token)
            assert [i.id for i in rest] == [8, 9, 10]

            with pytest.raises(InvalidArgument, match="page_size must not be negative"):
                await items.list(-1, where=thirds)
            with pytest.raises(InvalidArgument, match="invalid page_token"):
                await items.list(2, "forged", where=thirds)

            def broken(item: Any) -> bool:
                raise ValueError("bad filter")

            with pytest.raises(ValueError, match="bad filter"):
                await items.list(where=broken)
            assert (await items.create(Item(name="after"))).id == 31  # the read transaction ended

    asyncio.run(main())


def test_list_where_reads_in_chunks_and_stops_at_the_next_match(tmp_path: Path) -> None:
    async def main() -> None:
        with SqliteRepository(Item, tmp_path / "items.db") as items:
            await items.create_many([Item(name=f"n{i}") for i in range(1, 1201)])
            seen: list[int] = []

            def hundreds(item: Any) -> bool:
                seen.append(item.id)
                return bool(item.id % 100 == 0)

            page, token = await items.list(5, where=hundreds)
            assert [i.id for i in page] == [100, 200, 300, 400, 500] and token
            # Every row in order, once, up to the sixth match, which only tells that a next page exists.
            assert seen == list(range(1, 601))
            seen.clear()
            page, token = await items.list(5, token, where=hundreds)
            assert [i.id for i in page] == [600, 700, 800, 900, 1000] and token
            assert seen == list(range(501, 1101))
            page, token = await items.list(5, token, where=hundreds)
            assert [i.id for i in page] == [1100, 1200] and token == ""
            # Across several chunks with nothing matching.
            assert await items.list(where=lambda i: i.name == "absent") == ([], "")

    asyncio.run(main())


def test_importing_the_runtime_does_not_load_the_store() -> None:
    code = "import sys, protokit.runtime; print('protokit.runtime.store' in sys.modules, 'sqlite3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.split() == ["False", "False"]
