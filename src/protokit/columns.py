"""buf's columns for the positions protoc reports.

protoc counts a column per byte with tab stops of 8 (its tokenizer). buf's spans, and so its lint
findings, count terminal cells with tab stops of 4 (protocompile's TermWidth: uniseg.StringWidth
between tabs), so `é` is one column and `日` two; its compile errors count bytes, a tab one. Findings
and errors carry buf's columns, so annotations land on the same character whichever tool reported
them. Lines of printable ASCII agree and are skipped.
"""

from __future__ import annotations

import re
import unicodedata

from google.protobuf.descriptor_pb2 import FileDescriptorProto

# Tabs, control characters (no cells for buf, a byte for protoc) and anything beyond ASCII.
_ODD = re.compile(rb"[^\x20-\x7e\r\n]")
_PROTOC_TAB = 8
_BUF_TAB = 4
_ZERO_WIDTH = frozenset({"Mn", "Me", "Cf", "Cc", "Zl", "Zp"})  # uniseg: Control, Extend, ZWJ
_ZWJ, _VS15, _VS16 = "\u200d", "\ufe0e", "\ufe0f"


def plain(text: bytes) -> bool:
    """Whether protoc and buf count the same columns on this text."""
    return _ODD.search(text) is None


def _char_width(ch: str, prev: str) -> int:
    """One code point's cells, after uniseg's grapheme rules (approximated per code point)."""
    cp = ord(ch)
    if prev == _ZWJ and unicodedata.category(ch) == "So":
        return 0  # an emoji joined into the previous one's cluster
    if 0x1F3FB <= cp <= 0x1F3FF or unicodedata.category(ch) in _ZERO_WIDTH:
        return 0  # skin-tone modifiers extend the cluster too
    if cp in (0x2E3A, 0x2E3B):
        return 3 if cp == 0x2E3A else 4  # two- and three-em dashes
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def buf_width(text: str) -> int:
    """Cells `text` takes from the start of a line, as buf counts them."""
    column, prev, flag_half, jamo_l = 0, "", False, False
    for ch in text:
        symbol = bool(prev) and unicodedata.category(prev) == "So"
        regional = 0x1F1E6 <= ord(ch) <= 0x1F1FF
        jamo = 0x1100 <= ord(ch) <= 0x11FF
        if ch == "\t":
            column += _BUF_TAB - column % _BUF_TAB
        elif jamo and jamo_l:  # a syllable spelled from a leading consonant: the consonant's two cells
            pass
        elif regional:  # regional indicators: a pair (a flag) is one cluster of two cells
            column += 0 if flag_half else 2
        elif ch == _VS16 and symbol and _char_width(prev, "") == 1:
            column += 1  # emoji presentation widens a text-style symbol
        elif ch == _VS15 and symbol and _char_width(prev, "") == 2:
            column -= 1
        else:
            column += _char_width(ch, prev)
        flag_half = regional and not flag_half
        jamo_l = jamo and (jamo_l or ord(ch) < 0x1160)
        prev = ch
    return column


def buf_column(line: bytes, column: int) -> int:
    """protoc's zero-based column on `line` (without its newline) as buf's zero-based column in spans and
    lint findings (cells)."""
    offset, past = _offset(line, column)
    return buf_width(line[:offset].decode("utf-8", "replace")) + past


def byte_column(line: bytes, column: int) -> int:
    """protoc's zero-based column on `line` as buf's zero-based column in compile errors (bytes)."""
    offset, past = _offset(line, column)
    return offset + past


def _offset(line: bytes, column: int) -> tuple[int, int]:
    """The byte offset of protoc's `column` on `line`, and how far past the end of the line it lies."""
    protoc = 0
    for offset, byte in enumerate(line):
        if protoc >= column:
            return offset, 0
        protoc += _PROTOC_TAB - protoc % _PROTOC_TAB if byte == 9 else 1
    return len(line), max(0, column - protoc)


def convert_spans(file: FileDescriptorProto, text: bytes) -> None:
    """Rewrite the file's SourceCodeInfo spans from protoc's columns to buf's, in place."""
    lines = text.split(b"\n")
    odd = {i for i, line in enumerate(lines) if not plain(line)}
    if not odd:
        return
    for location in file.source_code_info.location:
        span = location.span
        end_line, end = (span[2], 3) if len(span) == 4 else (span[0], 2)
        if span[0] in odd:
            span[1] = buf_column(lines[span[0]], span[1])
        if end_line in odd:
            span[end] = buf_column(lines[end_line], span[end])
