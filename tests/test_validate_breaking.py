"""Validation-contract breaking changes: protovalidate rules that reject what the baseline accepted.

Every case compiles a baseline and a current version of a small proto with the real protoc (through
protokit.compile) and compares the two images; each tightening has a loosening or no-change twin
that must stay clean.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Collection
from pathlib import Path

import pytest

from conftest import REPO
from protokit.check import rules
from protokit.check.validate_breaking import RULES, compare
from protokit.compile import build_descriptor_set
from protokit.config import load_project
from protokit.findings import Finding

TEMPLATE = """syntax = "proto3";
package a.v1;
import "buf/validate/validate.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/timestamp.proto";
enum Role { ROLE_UNSPECIFIED = 0; ROLE_A = 1; ROLE_B = 2; }
message X {
  %s
}
"""
DECL_LINE = 8  # the line of the first declaration inside message X
MESSAGE_LINE = 7
V = "(buf.validate.field)"

Build = Callable[[str, str], bytes]
Check = Callable[..., list[Finding]]


@pytest.fixture
def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Build:
    """Compile one version of protos/a/v1/x.proto in its own project dir; returns the image."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("PROTOKIT_CACHE_DIR", str(cache))

    def run(name: str, source: str) -> bytes:
        root = tmp_path / name
        (root / "protos" / "a" / "v1").mkdir(parents=True, exist_ok=True)
        (root / "buf.yaml").write_text(
            "version: v2\nmodules:\n  - path: protos\ndeps:\n  - buf.build/bufbuild/protovalidate\n"
        )
        (root / "protos" / "a" / "v1" / "x.proto").write_text(source)
        return build_descriptor_set(load_project(root), cache, ["a/v1/x.proto"], ("protos",))

    return run


@pytest.fixture
def check(build: Build) -> Check:
    """Findings for message X's body going from `before` to `after`."""

    def run(before: str, after: str, disabled: Collection[str] = ()) -> list[Finding]:
        old = build("base", TEMPLATE % before)
        new = build("head", TEMPLATE % after)
        return compare(old, new, ["a/v1/x.proto"], lambda n: "protos/" + n, disabled)

    return run


def case(before: str, after: str, *expected: str, line: int = DECL_LINE, id: str) -> object:
    return pytest.param(before, after, sorted(expected), line, id=id)


CASES = [
    # required
    case("string s = 1;", f"string s = 1 [{V}.required = true];", "VALIDATE_REQUIRED_ADDED", id="required-added"),
    case(f"string s = 1 [{V}.required = true];", "string s = 1;", id="required-removed"),
    case(f"string s = 1 [{V}.required = true];", f"string s = 1 [{V}.required = true];", id="required-unchanged"),
    case(
        f"string s = 1 [{V}.required = false];",
        f"string s = 1 [{V}.string.max_len = 5, {V}.required = false];",
        "VALIDATE_MAX_LEN_DECREASED",
        id="required-false-stays-false",
    ),
    # string and bytes lengths
    case(
        f"string s = 1 [{V}.string.min_len = 3];",
        f"string s = 1 [{V}.string.min_len = 5];",
        "VALIDATE_MIN_LEN_INCREASED",
        id="min-len-raised",
    ),
    case(f"string s = 1 [{V}.string.min_len = 5];", f"string s = 1 [{V}.string.min_len = 3];", id="min-len-lowered"),
    case("string s = 1;", f"string s = 1 [{V}.string.min_len = 1];", "VALIDATE_MIN_LEN_INCREASED", id="min-len-new"),
    case(f"string s = 1 [{V}.string.min_len = 1];", "string s = 1;", id="min-len-removed"),
    case(
        f"string s = 1 [{V}.string.max_len = 50];",
        f"string s = 1 [{V}.string.max_len = 40];",
        "VALIDATE_MAX_LEN_DECREASED",
        id="max-len-lowered",
    ),
    case(f"string s = 1 [{V}.string.max_len = 40];", f"string s = 1 [{V}.string.max_len = 50];", id="max-len-raised"),
    case("string s = 1;", f"string s = 1 [{V}.string.max_len = 40];", "VALIDATE_MAX_LEN_DECREASED", id="max-len-new"),
    case(f"string s = 1 [{V}.string.max_len = 40];", "string s = 1;", id="max-len-removed"),
    case(
        f"string s = 1 [{V}.string = {{min_len: 2, max_len: 20}}];",
        f"string s = 1 [{V}.string.len = 10];",
        "VALIDATE_MIN_LEN_INCREASED",
        "VALIDATE_MAX_LEN_DECREASED",
        id="len-new",
    ),
    case(
        f"string s = 1 [{V}.string.len = 10];",
        f"string s = 1 [{V}.string = {{min_len: 2, max_len: 20}}];",
        id="len-replaced-by-wider-range",
    ),
    case(
        f"string s = 1 [{V}.string.len = 10];",
        f"string s = 1 [{V}.string.len = 12];",
        "VALIDATE_MIN_LEN_INCREASED",
        id="len-raised",
    ),
    case(
        f"string s = 1 [{V}.string.len = 12];",
        f"string s = 1 [{V}.string.len = 10];",
        "VALIDATE_MAX_LEN_DECREASED",
        id="len-lowered",
    ),
    case(
        f"string s = 1 [{V}.string.min_bytes = 1];",
        f"string s = 1 [{V}.string.min_bytes = 4];",
        "VALIDATE_MIN_LEN_INCREASED",
        id="min-bytes-raised",
    ),
    case(
        f"string s = 1 [{V}.string.max_bytes = 64];",
        f"string s = 1 [{V}.string.max_bytes = 32];",
        "VALIDATE_MAX_LEN_DECREASED",
        id="max-bytes-lowered",
    ),
    case(
        f"string s = 1 [{V}.string.max_bytes = 32];",
        f"string s = 1 [{V}.string = {{max_bytes: 64, min_len: 0}}];",
        id="max-bytes-raised",
    ),
    case(
        f"bytes b = 1 [{V}.bytes.min_len = 1];",
        f"bytes b = 1 [{V}.bytes.min_len = 2];",
        "VALIDATE_MIN_LEN_INCREASED",
        id="bytes-min-len-raised",
    ),
    case(
        f"bytes b = 1 [{V}.bytes.max_len = 10];",
        f"bytes b = 1 [{V}.bytes.max_len = 5];",
        "VALIDATE_MAX_LEN_DECREASED",
        id="bytes-max-len-lowered",
    ),
    case(
        f"bytes b = 1 [{V}.bytes = {{min_len: 2, max_len: 5}}];",
        f"bytes b = 1 [{V}.bytes = {{min_len: 1, max_len: 9}}];",
        id="bytes-lengths-loosened",
    ),
    # repeated and map sizes
    case(
        "repeated string r = 1;",
        f"repeated string r = 1 [{V}.repeated.min_items = 1];",
        "VALIDATE_MIN_ITEMS_INCREASED",
        id="min-items-new",
    ),
    case(
        f"repeated string r = 1 [{V}.repeated.min_items = 2];",
        f"repeated string r = 1 [{V}.repeated.min_items = 1];",
        id="min-items-lowered",
    ),
    case(
        f"repeated string r = 1 [{V}.repeated.max_items = 100];",
        f"repeated string r = 1 [{V}.repeated.max_items = 10];",
        "VALIDATE_MAX_ITEMS_DECREASED",
        id="max-items-lowered",
    ),
    case(
        f"repeated string r = 1 [{V}.repeated.max_items = 10];",
        f"repeated string r = 1 [{V}.repeated.max_items = 100];",
        id="max-items-raised",
    ),
    case(
        f"map<string, int32> m = 1 [{V}.map.min_pairs = 1];",
        f"map<string, int32> m = 1 [{V}.map.min_pairs = 2];",
        "VALIDATE_MIN_ITEMS_INCREASED",
        id="min-pairs-raised",
    ),
    case(
        f"map<string, int32> m = 1 [{V}.map.max_pairs = 5];",
        f"map<string, int32> m = 1 [{V}.map.max_pairs = 3];",
        "VALIDATE_MAX_ITEMS_DECREASED",
        id="max-pairs-lowered",
    ),
    case(
        f"map<string, int32> m = 1 [{V}.map = {{min_pairs: 2, max_pairs: 3}}];",
        f"map<string, int32> m = 1 [{V}.map = {{min_pairs: 1, max_pairs: 5}}];",
        id="map-pairs-loosened",
    ),
    case(
        "repeated string r = 1;",
        f"repeated string r = 1 [{V}.repeated.unique = true];",
        "VALIDATE_UNIQUE_ADDED",
        id="unique-added",
    ),
    case(f"repeated string r = 1 [{V}.repeated.unique = true];", "repeated string r = 1;", id="unique-removed"),
    case(
        f"repeated string r = 1 [{V}.repeated.items.string.max_len = 10];",
        f"repeated string r = 1 [{V}.repeated.items.string.max_len = 5];",
        "VALIDATE_MAX_LEN_DECREASED",
        id="items-max-len-lowered",
    ),
    case(
        f"repeated string r = 1 [{V}.repeated.items.string.max_len = 5];",
        f"repeated string r = 1 [{V}.repeated = {{max_items: 3, items: {{string: {{max_len: 10}}}}}}];",
        "VALIDATE_MAX_ITEMS_DECREASED",
        id="items-loosened-but-max-items-new",
    ),
    case(
        f"map<string, int32> m = 1 [{V}.map.keys.string.min_len = 1];",
        f"map<string, int32> m = 1 [{V}.map = {{keys: {{string: {{min_len: 2}}}}, values: {{int32: {{gt: 0}}}}}}];",
        "VALIDATE_MIN_LEN_INCREASED",
        "VALIDATE_RANGE_NARROWED",
        id="map-keys-and-values-tightened",
    ),
    # numeric ranges
    case(
        f"int32 n = 1 [{V}.int32 = {{gte: 0, lte: 1000}}];",
        f"int32 n = 1 [{V}.int32 = {{gte: 1, lte: 1000}}];",
        "VALIDATE_RANGE_NARROWED",
        id="int32-lower-raised",
    ),
    case(
        f"int32 n = 1 [{V}.int32 = {{gte: 0, lte: 1000}}];",
        f"int32 n = 1 [{V}.int32 = {{gte: 0, lte: 500}}];",
        "VALIDATE_RANGE_NARROWED",
        id="int32-upper-lowered",
    ),
    case(
        f"int32 n = 1 [{V}.int32 = {{gte: 0, lte: 1000}}];",
        f"int32 n = 1 [{V}.int32 = {{gte: -1, lte: 2000}}];",
        id="int32-widened",
    ),
    case(f"int32 n = 1 [{V}.int32 = {{gte: 0, lte: 1000}}];", "int32 n = 1;", id="int32-range-removed"),
    case(f"int32 n = 1 [{V}.int32.gte = 5];", f"int32 n = 1 [{V}.int32.gt = 4];", id="int32-gte5-is-gt4"),
    case(f"int32 n = 1 [{V}.int32.lte = 9];", f"int32 n = 1 [{V}.int32.lt = 10];", id="int32-lte9-is-lt10"),
    case(
        f"int32 n = 1 [{V}.int32.gte = 5];",
        f"int32 n = 1 [{V}.int32.gt = 5];",
        "VALIDATE_RANGE_NARROWED",
        id="int32-gte-to-gt",
    ),
    case(f"int32 n = 1 [{V}.int32.gt = 5];", f"int32 n = 1 [{V}.int32.gte = 5];", id="int32-gt-to-gte"),
    case("int64 n = 1;", f"int64 n = 1 [{V}.int64.lt = 10];", "VALIDATE_RANGE_NARROWED", id="int64-upper-new"),
    case(f"uint64 n = 1 [{V}.uint64.lt = 10];", "uint64 n = 1;", id="uint64-upper-removed"),
    case("uint32 n = 1;", f"uint32 n = 1 [{V}.uint32.const = 7];", "VALIDATE_RANGE_NARROWED", id="const-new"),
    case(f"uint32 n = 1 [{V}.uint32.const = 7];", "uint32 n = 1;", id="const-removed"),
    case(f"uint32 n = 1 [{V}.uint32.const = 7];", f"uint32 n = 1 [{V}.uint32.lte = 7];", id="const-to-range"),
    case(
        f"sint32 n = 1 [{V}.sint32.gt = -5];",
        f"sint32 n = 1 [{V}.sint32.gt = -3];",
        "VALIDATE_RANGE_NARROWED",
        id="sint32-lower-raised",
    ),
    case(f"fixed64 n = 1 [{V}.fixed64.lte = 100];", f"fixed64 n = 1 [{V}.fixed64.lte = 200];", id="fixed64-widened"),
    case(
        f"sfixed32 n = 1 [{V}.sfixed32.lte = 100];",
        f"sfixed32 n = 1 [{V}.sfixed32.lt = 100];",
        "VALIDATE_RANGE_NARROWED",
        id="sfixed32-lte-to-lt",
    ),
    case(
        f"double d = 1 [{V}.double.gte = 5];",
        f"double d = 1 [{V}.double.gt = 5];",
        "VALIDATE_RANGE_NARROWED",
        id="double-gte-to-gt",
    ),
    case(
        f"double d = 1 [{V}.double.gt = 4];",
        f"double d = 1 [{V}.double.gte = 5];",
        "VALIDATE_RANGE_NARROWED",
        id="double-gt4-is-not-gte5",
    ),
    case(f"double d = 1 [{V}.double.gt = 5];", f"double d = 1 [{V}.double.gte = 5];", id="double-gt-to-gte"),
    case(
        f"float f = 1 [{V}.float = {{gt: 0.1, lt: 0.9}}];",
        f"float f = 1 [{V}.float = {{gt: 0.1, lt: 0.5}}];",
        "VALIDATE_RANGE_NARROWED",
        id="float-upper-lowered",
    ),
    case(
        "double d = 1;", f"double d = 1 [{V}.double.finite = true];", "VALIDATE_RANGE_NARROWED", id="double-finite-new"
    ),
    case(f"double d = 1 [{V}.double.finite = true];", "double d = 1;", id="double-finite-removed"),
    # exclusive ranges: an upper bound below the lower one accepts values outside the gap
    case(
        f"int32 n = 1 [{V}.int32 = {{lt: 0, gt: 10}}];",
        f"int32 n = 1 [{V}.int32 = {{lt: -5, gt: 10}}];",
        "VALIDATE_RANGE_NARROWED",
        id="exclusive-range-gap-grown",
    ),
    case(
        f"int32 n = 1 [{V}.int32 = {{lt: 0, gt: 10}}];",
        f"int32 n = 1 [{V}.int32 = {{lt: 5, gt: 10}}];",
        id="exclusive-range-gap-shrunk",
    ),
    case(
        f"int32 n = 1 [{V}.int32 = {{gte: 0, lte: 10}}];",
        f"int32 n = 1 [{V}.int32 = {{lt: 0, gt: 10}}];",
        "VALIDATE_RANGE_NARROWED",
        id="range-to-exclusive",
    ),
    case(f"int32 n = 1 [{V}.int32 = {{lt: 5, gt: 4}}];", "int32 n = 1;", id="exclusive-range-covering-all-ints"),
    case(
        f"int32 n = 1 [{V}.int32 = {{lt: 5, gt: 4}}];",
        f"int32 n = 1 [{V}.int32 = {{lt: 5, gt: 3}}];",
        id="exclusive-integers-accept-everything",
    ),
    case(
        f"int32 n = 1 [{V}.int32 = {{in: [1, 2]}}];",
        f"int32 n = 1 [{V}.int32 = {{in: [1, 2], gt: 0}}];",
        id="range-added-around-in-list",
    ),
    case(
        f"int32 n = 1 [{V}.int32 = {{in: [1, 2]}}];",
        f"int32 n = 1 [{V}.int32 = {{in: [1, 2], gt: 1}}];",
        "VALIDATE_RANGE_NARROWED",
        id="range-added-inside-in-list",
    ),
    # durations and timestamps
    case(
        f"google.protobuf.Duration d = 1 [{V}.duration.gte = {{seconds: 1}}];",
        f"google.protobuf.Duration d = 1 [{V}.duration.gte = {{seconds: 2}}];",
        "VALIDATE_RANGE_NARROWED",
        id="duration-lower-raised",
    ),
    case(
        f"google.protobuf.Duration d = 1 [{V}.duration.lte = {{seconds: 10}}];",
        f"google.protobuf.Duration d = 1 [{V}.duration.lte = {{seconds: 20}}];",
        id="duration-upper-raised",
    ),
    case(
        f"google.protobuf.Duration d = 1 [{V}.duration.gte = {{seconds: 1}}];",
        f"google.protobuf.Duration d = 1 [{V}.duration.gt = {{seconds: 0, nanos: 999999999}}];",
        id="duration-gt-is-gte-next-nanosecond",
    ),
    case(
        "google.protobuf.Timestamp t = 1;",
        f"google.protobuf.Timestamp t = 1 [{V}.timestamp.gt_now = true];",
        "VALIDATE_RANGE_NARROWED",
        id="timestamp-gt-now-new",
    ),
    case(
        f"google.protobuf.Timestamp t = 1 [{V}.timestamp.lt_now = true];",
        "google.protobuf.Timestamp t = 1;",
        id="timestamp-lt-now-removed",
    ),
    case(
        f"google.protobuf.Timestamp t = 1 [{V}.timestamp.within = {{seconds: 7200}}];",
        f"google.protobuf.Timestamp t = 1 [{V}.timestamp.within = {{seconds: 3600}}];",
        "VALIDATE_RANGE_NARROWED",
        id="timestamp-within-lowered",
    ),
    case(
        f"google.protobuf.Timestamp t = 1 [{V}.timestamp.within = {{seconds: 3600}}];",
        f"google.protobuf.Timestamp t = 1 [{V}.timestamp.within = {{seconds: 7200}}];",
        id="timestamp-within-raised",
    ),
    case(
        f"google.protobuf.Timestamp t = 1 [{V}.timestamp.gte = {{seconds: 1000}}];",
        f"google.protobuf.Timestamp t = 1 [{V}.timestamp.gte = {{seconds: 2000}}];",
        "VALIDATE_RANGE_NARROWED",
        id="timestamp-lower-raised",
    ),
    # patterns, prefixes, suffixes, substrings
    case(
        "string s = 1;", f'string s = 1 [{V}.string.pattern = "^[a-z]+$"];', "VALIDATE_PATTERN_ADDED", id="pattern-new"
    ),
    case(
        f'string s = 1 [{V}.string.pattern = "^[a-z]+$"];',
        f'string s = 1 [{V}.string.pattern = "^[a-z0-9]+$"];',
        "VALIDATE_PATTERN_ADDED",
        id="pattern-changed",
    ),
    case(f'string s = 1 [{V}.string.pattern = "^[a-z]+$"];', "string s = 1;", id="pattern-removed"),
    case(
        f'string s = 1 [{V}.string.pattern = "^[a-z]+$"];',
        f'string s = 1 [{V}.string.pattern = "^[a-z]+$"];',
        id="pattern-unchanged",
    ),
    case(
        f'bytes b = 1 [{V}.bytes.pattern = "^a"];',
        f'bytes b = 1 [{V}.bytes.pattern = "^b"];',
        "VALIDATE_PATTERN_ADDED",
        id="bytes-pattern-changed",
    ),
    case("string s = 1;", f'string s = 1 [{V}.string.prefix = "ab"];', "VALIDATE_PATTERN_ADDED", id="prefix-new"),
    case(
        f'string s = 1 [{V}.string.prefix = "ab"];',
        f'string s = 1 [{V}.string.prefix = "abc"];',
        "VALIDATE_PATTERN_ADDED",
        id="prefix-longer",
    ),
    case(
        f'string s = 1 [{V}.string.prefix = "abc"];', f'string s = 1 [{V}.string.prefix = "ab"];', id="prefix-shorter"
    ),
    case(
        f'string s = 1 [{V}.string.suffix = "xyz"];',
        f'string s = 1 [{V}.string.suffix = "wxyz"];',
        "VALIDATE_PATTERN_ADDED",
        id="suffix-longer",
    ),
    case(
        f'string s = 1 [{V}.string.suffix = "wxyz"];', f'string s = 1 [{V}.string.suffix = "yz"];', id="suffix-shorter"
    ),
    case(
        f'string s = 1 [{V}.string.contains = "b"];',
        f'string s = 1 [{V}.string.contains = "abc"];',
        "VALIDATE_PATTERN_ADDED",
        id="contains-longer",
    ),
    case(
        f'string s = 1 [{V}.string.contains = "abc"];',
        f'string s = 1 [{V}.string.contains = "b"];',
        id="contains-shorter",
    ),
    case(
        f'string s = 1 [{V}.string.not_contains = "abc"];',
        f'string s = 1 [{V}.string.not_contains = "b"];',
        "VALIDATE_PATTERN_ADDED",
        id="not-contains-shorter",
    ),
    case(
        f'string s = 1 [{V}.string.not_contains = "b"];',
        f'string s = 1 [{V}.string.not_contains = "abc"];',
        id="not-contains-longer",
    ),
    case(
        f'bytes b = 1 [{V}.bytes.prefix = "\\x01"];',
        f'bytes b = 1 [{V}.bytes.prefix = "\\x01\\x02"];',
        "VALIDATE_PATTERN_ADDED",
        id="bytes-prefix-longer",
    ),
    # in and not_in
    case(
        f'string s = 1 [{V}.string = {{in: ["a", "b", "c"]}}];',
        f'string s = 1 [{V}.string = {{in: ["a", "b"]}}];',
        "VALIDATE_IN_NARROWED",
        id="in-value-removed",
    ),
    case(
        f'string s = 1 [{V}.string = {{in: ["a", "b"]}}];',
        f'string s = 1 [{V}.string = {{in: ["a", "b", "c"]}}];',
        id="in-value-added",
    ),
    case("string s = 1;", f'string s = 1 [{V}.string = {{in: ["a"]}}];', "VALIDATE_IN_NARROWED", id="in-new"),
    case(f'string s = 1 [{V}.string = {{in: ["a"]}}];', "string s = 1;", id="in-removed"),
    case(
        f"int32 n = 1 [{V}.int32 = {{in: [1, 2]}}];",
        f"int32 n = 1 [{V}.int32 = {{in: [1]}}];",
        "VALIDATE_IN_NARROWED",
        id="int32-in-value-removed",
    ),
    case(
        f"Role r = 1 [{V}.enum = {{in: [1, 2]}}];",
        f"Role r = 1 [{V}.enum = {{in: [2]}}];",
        "VALIDATE_IN_NARROWED",
        id="enum-in-value-removed",
    ),
    case(f"Role r = 1 [{V}.enum = {{in: [2]}}];", f"Role r = 1 [{V}.enum = {{in: [2, 1]}}];", id="enum-in-extended"),
    case("string s = 1;", f'string s = 1 [{V}.string.const = "x"];', "VALIDATE_IN_NARROWED", id="string-const-new"),
    case(f'string s = 1 [{V}.string.const = "x"];', "string s = 1;", id="string-const-removed"),
    case("bool b = 1;", f"bool b = 1 [{V}.bool.const = true];", "VALIDATE_IN_NARROWED", id="bool-const-new"),
    case(
        f'string s = 1 [{V}.string = {{not_in: ["a"]}}];',
        f'string s = 1 [{V}.string = {{not_in: ["a", "b"]}}];',
        "VALIDATE_NOT_IN_EXTENDED",
        id="not-in-value-added",
    ),
    case(
        f'string s = 1 [{V}.string = {{not_in: ["a", "b"]}}];',
        f'string s = 1 [{V}.string = {{not_in: ["b"]}}];',
        id="not-in-value-removed",
    ),
    case("Role r = 1;", f"Role r = 1 [{V}.enum = {{not_in: [0]}}];", "VALIDATE_NOT_IN_EXTENDED", id="enum-not-in-new"),
    case(
        f"double d = 1 [{V}.double = {{not_in: [1.5]}}];",
        f"double d = 1 [{V}.double = {{not_in: [1.5]}}];",
        id="double-not-in-unchanged",
    ),
    # well-known formats
    case("string s = 1;", f"string s = 1 [{V}.string.email = true];", "VALIDATE_FORMAT_ADDED", id="email-new"),
    case(f"string s = 1 [{V}.string.email = true];", "string s = 1;", id="email-removed"),
    case(
        f"string s = 1 [{V}.string.email = true];", f"string s = 1 [{V}.string.email = false];", id="email-switched-off"
    ),
    case(
        f"string s = 1 [{V}.string.email = true];",
        f"string s = 1 [{V}.string.hostname = true];",
        "VALIDATE_FORMAT_ADDED",
        id="email-to-hostname",
    ),
    case(f"string s = 1 [{V}.string.ipv4 = true];", f"string s = 1 [{V}.string.ip = true];", id="ipv4-to-ip"),
    case(
        f"string s = 1 [{V}.string.ip = true];",
        f"string s = 1 [{V}.string.ipv4 = true];",
        "VALIDATE_FORMAT_ADDED",
        id="ip-to-ipv4",
    ),
    case(f"string s = 1 [{V}.string.uri = true];", f"string s = 1 [{V}.string.uri_ref = true];", id="uri-to-uri-ref"),
    case(
        f"string s = 1 [{V}.string.hostname = true];",
        f"string s = 1 [{V}.string.address = true];",
        id="hostname-to-address",
    ),
    case("string s = 1;", f"string s = 1 [{V}.string.tuuid = true];", "VALIDATE_FORMAT_ADDED", id="tuuid-new"),
    case(
        "string s = 1;",
        f"string s = 1 [{V}.string.host_and_port = true];",
        "VALIDATE_FORMAT_ADDED",
        id="host-and-port-new",
    ),
    case(
        "string s = 1;",
        f"string s = 1 [{V}.string.well_known_regex = KNOWN_REGEX_HTTP_HEADER_NAME];",
        "VALIDATE_FORMAT_ADDED",
        id="well-known-regex-new",
    ),
    case(
        f"string s = 1 [{V}.string = {{well_known_regex: KNOWN_REGEX_HTTP_HEADER_VALUE, strict: false}}];",
        f"string s = 1 [{V}.string.well_known_regex = KNOWN_REGEX_HTTP_HEADER_VALUE];",
        "VALIDATE_FORMAT_ADDED",
        id="well-known-regex-strict",
    ),
    case(
        f"string s = 1 [{V}.string.well_known_regex = KNOWN_REGEX_HTTP_HEADER_VALUE];",
        f"string s = 1 [{V}.string = {{well_known_regex: KNOWN_REGEX_HTTP_HEADER_VALUE, strict: false}}];",
        id="well-known-regex-lenient",
    ),
    case("bytes b = 1;", f"bytes b = 1 [{V}.bytes.uuid = true];", "VALIDATE_FORMAT_ADDED", id="bytes-uuid-new"),
    case(f"bytes b = 1 [{V}.bytes.ipv6 = true];", f"bytes b = 1 [{V}.bytes.ip = true];", id="bytes-ipv6-to-ip"),
    # enums
    case(
        "Role r = 1;",
        f"Role r = 1 [{V}.enum.defined_only = true];",
        "VALIDATE_DEFINED_ONLY_ADDED",
        id="defined-only-new",
    ),
    case(f"Role r = 1 [{V}.enum.defined_only = true];", "Role r = 1;", id="defined-only-removed"),
    # ignore
    case(
        f"string s = 1 [{V}.ignore = IGNORE_IF_ZERO_VALUE, {V}.string.email = true];",
        f"string s = 1 [{V}.string.email = true];",
        "VALIDATE_IGNORE_NARROWED",
        id="ignore-if-zero-removed",
    ),
    case(
        f"string s = 1 [{V}.string.email = true];",
        f"string s = 1 [{V}.ignore = IGNORE_IF_ZERO_VALUE, {V}.string.email = true];",
        id="ignore-if-zero-added",
    ),
    case(f"string s = 1 [{V}.ignore = IGNORE_IF_ZERO_VALUE];", "string s = 1;", id="ignore-removed-no-rules"),
    case(
        f"string s = 1 [{V}.ignore = IGNORE_ALWAYS, {V}.string.min_len = 3];",
        f"string s = 1 [{V}.string.min_len = 3];",
        "VALIDATE_IGNORE_NARROWED",
        "VALIDATE_MIN_LEN_INCREASED",
        id="ignore-always-removed",
    ),
    case(
        f"string s = 1 [{V}.string.min_len = 3];",
        f"string s = 1 [{V}.ignore = IGNORE_ALWAYS, {V}.string.min_len = 30];",
        id="ignore-always-added",
    ),
    case(
        f"string s = 1 [{V}.ignore = IGNORE_ALWAYS, {V}.string.min_len = 3];",
        f"string s = 1 [{V}.ignore = IGNORE_ALWAYS, {V}.string.min_len = 30];",
        id="ignore-always-kept",
    ),
    case(
        f"repeated string r = 1 [{V}.repeated.items = {{ignore: IGNORE_IF_ZERO_VALUE, string: {{uuid: true}}}}];",
        f"repeated string r = 1 [{V}.repeated.items.string.uuid = true];",
        "VALIDATE_IGNORE_NARROWED",
        id="items-ignore-narrowed",
    ),
    # CEL
    case(
        "string s = 1;",
        f'string s = 1 [{V}.cel = {{id: "s.lower", expression: "this == this.lowerAscii()"}}];',
        "VALIDATE_CEL_ADDED",
        id="cel-new",
    ),
    case(
        f'string s = 1 [{V}.cel = {{id: "s.lower", expression: "this == this.lowerAscii()"}}];',
        "string s = 1;",
        id="cel-removed",
    ),
    case(
        f'string s = 1 [{V}.cel = {{id: "s.lower", expression: "this == this.lowerAscii()"}}];',
        f'string s = 1 [{V}.cel = {{id: "renamed", expression: "this == this.lowerAscii()"}}];',
        id="cel-renamed",
    ),
    # the type changed: buf's business, not a validation finding
    case(f"string s = 1 [{V}.string.min_len = 3];", f"int32 s = 1 [{V}.int32.gt = 3];", id="type-changed"),
    # oneofs
    case(
        "oneof choice { string a = 1; string b = 2; }",
        "oneof choice { option (buf.validate.oneof).required = true; string a = 1; string b = 2; }",
        "VALIDATE_ONEOF_REQUIRED_ADDED",
        id="oneof-required-new",
    ),
    case(
        "oneof choice { option (buf.validate.oneof).required = true; string a = 1; string b = 2; }",
        "oneof choice { string a = 1; string b = 2; }",
        id="oneof-required-removed",
    ),
    case(
        "string a = 1;",
        "string a = 1;\n  oneof choice { option (buf.validate.oneof).required = true; string b = 2; }",
        "VALIDATE_ONEOF_REQUIRED_ADDED",
        line=DECL_LINE + 1,
        id="required-oneof-added",
    ),
    case("string a = 1;", "string a = 1;\n  oneof choice { string b = 2; }", id="optional-oneof-added"),
    case(
        "string a = 1; string b = 2; string c = 3;",
        'option (buf.validate.message).oneof = {fields: ["a", "b"]};\n  string a = 1; string b = 2; string c = 3;',
        "VALIDATE_MESSAGE_ONEOF_ADDED",
        line=MESSAGE_LINE,
        id="message-oneof-new",
    ),
    case(
        'option (buf.validate.message).oneof = {fields: ["a", "b"]};\n  string a = 1; string b = 2; string c = 3;',
        'option (buf.validate.message).oneof = {fields: ["a", "b"], required: true};\n'
        "  string a = 1; string b = 2; string c = 3;",
        "VALIDATE_MESSAGE_ONEOF_ADDED",
        line=MESSAGE_LINE,
        id="message-oneof-required",
    ),
    case(
        'option (buf.validate.message).oneof = {fields: ["a", "b"]};\n  string a = 1; string b = 2; string c = 3;',
        'option (buf.validate.message).oneof = {fields: ["a", "b", "c"]};\n  string a = 1; string b = 2; string c = 3;',
        "VALIDATE_MESSAGE_ONEOF_ADDED",
        line=MESSAGE_LINE,
        id="message-oneof-more-fields",
    ),
    case(
        'option (buf.validate.message).oneof = {fields: ["a", "b", "c"]};\n  string a = 1; string b = 2; string c = 3;',
        'option (buf.validate.message).oneof = {fields: ["a", "b"]};\n  string a = 1; string b = 2; string c = 3;',
        id="message-oneof-fewer-fields",
    ),
    case(
        'option (buf.validate.message).oneof = {fields: ["a", "b"], required: true};\n  string a = 1; string b = 2;',
        "string a = 1; string b = 2;",
        id="message-oneof-removed",
    ),
    case(
        "string a = 1;",
        'option (buf.validate.message).cel = {id: "x", expression: "this.a != \'\'"};\n  string a = 1;',
        "VALIDATE_CEL_ADDED",
        line=MESSAGE_LINE,
        id="message-cel-new",
    ),
    # nested messages
    case(
        f"message Inner {{ string s = 1 [{V}.string.max_len = 10]; }}",
        f"message Inner {{\n    string s = 1 [{V}.string.max_len = 5];\n  }}",
        "VALIDATE_MAX_LEN_DECREASED",
        line=DECL_LINE + 1,
        id="nested-tightened",
    ),
    case(
        f"message Inner {{ string s = 1 [{V}.string.max_len = 5]; }}",
        f"message Inner {{\n    string s = 1 [{V}.string.max_len = 10];\n  }}",
        id="nested-loosened",
    ),
    # fields and messages that are new
    case(
        "string a = 1;",
        f"string a = 1;\n  string b = 2 [{V}.required = true];",
        "VALIDATE_REQUIRED_ADDED",
        line=DECL_LINE + 1,
        id="new-required-field",
    ),
    case(
        "string a = 1;",
        f"string a = 1;\n  string b = 2 [{V}.string.email = true];",
        line=DECL_LINE + 1,
        id="new-optional-field-with-rules",
    ),
    case(
        "string a = 1;",
        f"string a = 1;\n  message New {{ string b = 1 [{V}.required = true]; }}",
        id="new-message-with-required-field",
    ),
    case(f"string a = 1;\n  string b = 2 [{V}.required = true];", "string a = 1;", id="field-deleted"),
]


@pytest.mark.parametrize(("before", "after", "expected", "line"), CASES)
def test_change(check: Check, before: str, after: str, expected: list[str], line: int) -> None:
    findings = check(before, after)
    assert sorted(f.type for f in findings) == expected, [f.message for f in findings]
    for f in findings:
        assert (f.path, f.start_line, f.source) == ("protos/a/v1/x.proto", line, "protokit"), f
        assert f.message.endswith("."), f.message


def test_no_change_is_clean(check: Check) -> None:
    body = "\n  ".join(
        [
            f"string s = 1 [{V}.required = true, {V}.string = {{min_len: 1, max_len: 9, email: true}}];",
            f"repeated int32 r = 2 [{V}.repeated = {{min_items: 1, items: {{int32: {{gt: 0, in: [1, 2]}}}}}}];",
            f"Role e = 3 [{V}.enum = {{defined_only: true, not_in: [0]}}];",
            f"google.protobuf.Timestamp t = 4 [{V}.timestamp = {{gt_now: true, within: {{seconds: 60}}}}];",
        ]
    )
    assert check(body, body) == []


def test_message_text_and_span(check: Check) -> None:
    [f] = check("string email = 1;", f"string email = 1 [{V}.string.email = true];")
    assert f.message == (
        'Field "email" on message "a.v1.X" newly requires a valid email address (string.email); '
        "clients sending other values are now rejected."
    )
    # the whole field declaration: `string email = 1 [...];` on line 8, indented by two spaces
    assert (f.start_line, f.start_column, f.end_line) == (DECL_LINE, 3, DECL_LINE)
    assert f.end_column == 3 + len(f"string email = 1 [{V}.string.email = true];")


def test_message_texts(check: Check) -> None:
    items = "\n  repeated string r = 2 [(buf.validate.field).repeated.items.string.max_len = %d];"
    findings = check(
        f"int32 n = 1 [{V}.int32 = {{gte: 0, lte: 1000}}];" + items % 9,
        f"int32 n = 1 [{V}.int32 = {{gt: 0, lte: 1000}}];" + items % 5,
    )
    assert [f.message for f in findings] == [
        'Field "n" on message "a.v1.X" narrows its accepted range from {gte: 0, lte: 1000} to {gt: 0, lte: 1000} '
        "(int32); clients sending values outside the new range are now rejected.",
        'Field "r" on message "a.v1.X" (each item) lowers its maximum length in characters from 9 to 5 '
        "(string.max_len); clients sending longer values are now rejected.",
    ]
    assert [f.start_line for f in findings] == [DECL_LINE, DECL_LINE + 1]


def test_enum_values_are_named(check: Check) -> None:
    [f] = check(f"Role r = 1 [{V}.enum = {{in: [1, 2]}}];", f"Role r = 1 [{V}.enum = {{in: [2]}}];")
    assert "no longer accepts [ROLE_A (1)] (enum.in)" in f.message


def test_pattern_message_says_regexes_are_not_compared(check: Check) -> None:
    [f] = check(f'string s = 1 [{V}.string.pattern = "^a"];', f'string s = 1 [{V}.string.pattern = "^a|^b"];')
    assert "regular expressions cannot be compared" in f.message


def test_disabled_rule_is_suppressed(check: Check) -> None:
    before = "string s = 1;"
    after = f"string s = 1 [{V}.required = true, {V}.string.email = true];"
    assert [f.type for f in check(before, after)] == ["VALIDATE_FORMAT_ADDED", "VALIDATE_REQUIRED_ADDED"]
    assert [f.type for f in check(before, after, {"VALIDATE_REQUIRED_ADDED"})] == ["VALIDATE_FORMAT_ADDED"]


def test_only_listed_files_are_checked(build: Build) -> None:
    old = build("base", TEMPLATE % "string s = 1;")
    new = build("head", TEMPLATE % f"string s = 1 [{V}.required = true];")
    assert compare(old, new, [], str) == []
    assert [f.path for f in compare(old, new, ["a/v1/x.proto"], str)] == ["a/v1/x.proto"]


def test_messages_are_matched_by_name_not_position(build: Build) -> None:
    old = build("base", TEMPLATE % f"string s = 1 [{V}.string.max_len = 9];")
    moved = (
        TEMPLATE.replace("message X", "message Y") % "" + f"message X {{ string s = 1 [{V}.string.max_len = 5]; }}\n"
    )
    new = build("head", moved)
    [f] = compare(old, new, ["a/v1/x.proto"], str)
    assert (f.type, f.start_line) == ("VALIDATE_MAX_LEN_DECREASED", 10)


def test_rule_registry() -> None:
    """Every VALIDATE handler has exactly one spec in the registry, and every VALIDATE spec a handler."""
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))
    specs = rules.of(rules.BREAKING)
    assert sorted(ids) == sorted(s.id for s in specs)
    assert all(s.id.startswith("VALIDATE_") and s.category == "VALIDATE" and s.purpose for s in specs)


def _user_service(root: Path, cache: Path, text: str | None = None) -> bytes:
    if text is not None:
        (root / "protos" / "user" / "v1" / "user_service.proto").write_text(text)
    return build_descriptor_set(load_project(root), cache, ["user/v1/user_service.proto"], ("protos",))


def test_user_service_against_itself_is_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROTOKIT_CACHE_DIR", str(tmp_path / "cache"))
    image = _user_service(REPO, tmp_path / "cache")
    assert compare(image, image, ["user/v1/user_service.proto"], lambda n: "protos/" + n) == []


def test_user_service_tightened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROTOKIT_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "proj"
    shutil.copytree(REPO / "protos", root / "protos")
    shutil.copy(REPO / "buf.yaml", root / "buf.yaml")
    original = (root / "protos" / "user" / "v1" / "user_service.proto").read_text()
    baseline = _user_service(root, tmp_path / "cache")
    assert "    lte: 1000\n" in original and "ignore: IGNORE_IF_ZERO_VALUE\n" in original
    tightened = original.replace("    lte: 1000\n", "    lte: 500\n").replace("    ignore: IGNORE_IF_ZERO_VALUE\n", "")
    current = _user_service(root, tmp_path / "cache", tightened)
    findings = compare(baseline, current, ["user/v1/user_service.proto"], lambda n: "protos/" + n)
    lines = tightened.splitlines()
    assert [(f.type, lines[f.start_line - 1].strip()) for f in findings] == [
        ("VALIDATE_IGNORE_NARROWED", "string avatar_uri = 3 [(buf.validate.field) = {"),
        ("VALIDATE_RANGE_NARROWED", "int32 page_size = 1 [(buf.validate.field).int32 = {"),
    ]
    assert compare(current, baseline, ["user/v1/user_service.proto"], str) == []
