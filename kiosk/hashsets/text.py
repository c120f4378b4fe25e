"""Line-based hash-set sources: plain lists, md5sum/sha*sum output, LOKI/THOR IOCs, hashdeep.

Formats as described in shared/reference/hashsets-and-rule-packs.md §1.5. Plain lists are the
shape of the largest sets, so they get a block fast path: when every line of an 8 MiB block is
one hex digest of the same length, the whole block is decoded by one C call, and only a block
that is not that regular is read line by line (which also gives the line number of an error).
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kiosk.errors import HashSetError
from kiosk.hashsets.records import (
    ALGORITHM_NAMES,
    ALGORITHMS,
    BATCH_RECORDS,
    BY_HEX_LENGTH,
    EMPTY_DIGESTS,
    EMPTY_FILE,
    WIDTH,
    Batch,
    Collector,
    Context,
    bad_digest,
    blocks,
    lines,
    open_source,
    parse_digest,
    text,
)

HEX = rb"[0-9A-Fa-f]{32,64}"
LOKI_LINE = re.compile(HEX + rb"\s*;.*")
GNU_SUM_LINE = re.compile(rb"\\?" + HEX + rb" [ *].+")
BSD_SUM_LINE = re.compile(rb"(MD5|SHA1|SHA256) \((.*)\) = (" + HEX + rb")")
PLAIN_LINE = re.compile(HEX)
XWAYS_HEADER = {b"md5", b"sha-1", b"sha1", b"sha-256", b"sha256"}  # X-Ways: first line names it


def _uniform_block(block: bytes) -> tuple[str, bytes, int] | None:
    """``(algorithm, raw digests, count)`` if every line is one same-length hex digest, else None.

    A block holding an empty-file digest, a comment, a blank line or anything odd returns None
    and is read line by line instead.
    """
    length = block.find(b"\n") + 1
    crlf = length >= 2 and block[length - 2] == 0x0D
    algorithm = BY_HEX_LENGTH.get(length - 1 - crlf)
    n = len(block) // length if length else 0
    if algorithm is None or n * length != len(block) or block[length - 1 :: length] != b"\n" * n:
        return None
    if crlf and block[length - 2 :: length] != b"\r" * n:
        return None
    try:
        raw = binascii.unhexlify(block.replace(b"\r\n" if crlf else b"\n", b""))
    except binascii.Error:
        return None
    if EMPTY_FILE[algorithm] in raw:
        return None
    return algorithm, raw, n


def read_plain(path: Path, ctx: Context, info: dict[str, Any]) -> Iterator[Batch]:
    """One digest a line, MD5/SHA-1/SHA-256 told by length; ``#`` comments; an X-Ways header."""
    out = Collector(ctx)
    stats = ctx.stats
    unhex = binascii.unhexlify
    with open_source(path) as f:
        for first_line, block in blocks(f, str(path)):
            fast = _uniform_block(block)  # an X-Ways header or a BOM line just fails it
            if fast is not None:
                if out.add_block(*fast):
                    yield out.take()
                continue
            b = out.batch
            by_width = {WIDTH[a]: b.digests[a] for a in ALGORITHMS}
            kept = 0
            for lineno, line in enumerate(block.split(b"\n"), first_line):
                s = line.strip()
                if not s or s[0] == 0x23 or (lineno == 1 and s.lower() in XWAYS_HEADER):
                    continue
                try:
                    d = unhex(s)
                    target = by_width[len(d)]
                except (binascii.Error, KeyError):
                    ctx.invalid(f"{path} line {lineno}", bad_digest(s, None))
                    continue
                if d in EMPTY_DIGESTS:
                    stats.excluded_empty_file += 1
                    continue
                target.append(d)
                kept += 1
            b.records += kept
            stats.records += kept
            if b.records >= BATCH_RECORDS:
                yield out.take()
    yield out.take()


def read_sums(path: Path, ctx: Context, info: dict[str, Any]) -> Iterator[Batch]:
    """``md5sum``/``sha1sum``/``sha256sum`` output, GNU (``hex  name``) or BSD ``--tag``."""
    out = Collector(ctx)
    with open_source(path) as f:
        for lineno, s in lines(f, str(path)):
            if not s or s.startswith(b"#"):
                continue
            where = f"{path} line {lineno}"
            bsd = BSD_SUM_LINE.fullmatch(s)
            algorithm: str | None
            if bsd:
                algorithm = ALGORITHM_NAMES[bsd.group(1).decode().lower()]
                name, hex_part = bsd.group(2), bsd.group(3)
            else:
                escaped = s.startswith(b"\\")
                hex_part, sep, name = s[escaped:].partition(b" ")
                if not sep or name[:1] not in (b" ", b"*"):
                    ctx.invalid(where, "not '<digest>  <name>' nor 'ALG (name) = <digest>'")
                    continue
                name = name[1:]
                if escaped:  # GNU escapes "\" and newline in names, and marks the line with "\"
                    name = name.replace(b"\\n", b"\n").replace(b"\\\\", b"\\")
                algorithm = None
            parsed = parse_digest(hex_part, algorithm)
            if parsed is None:
                ctx.invalid(where, bad_digest(hex_part, algorithm))
                continue
            if out.add([parsed], None, {"file_name": text(name)}):
                yield out.take()
    yield out.take()


def read_loki(path: Path, ctx: Context, info: dict[str, Any]) -> Iterator[Batch]:
    """LOKI/THOR IOC files: ``hash;description`` or ``hash;score;description``, mixed algorithms."""
    out = Collector(ctx)
    with open_source(path) as f:
        for lineno, s in lines(f, str(path)):
            if not s or s.startswith(b"#"):
                continue
            hex_part, sep, rest = s.partition(b";")
            hex_part = hex_part.strip()
            parsed = parse_digest(hex_part)
            if not sep or parsed is None:
                why = bad_digest(hex_part, None) if sep else "not 'hash;description'"
                ctx.invalid(f"{path} line {lineno}", why)
                continue
            score: int | None = None
            first, sep2, after = rest.partition(b";")
            if sep2 and first.strip().isdigit():
                score, rest = int(first), after
            if out.add([parsed], None, {"description": text(rest.strip()), "score": score}):
                yield out.take()
    yield out.take()


def read_hashdeep(path: Path, ctx: Context, info: dict[str, Any]) -> Iterator[Batch]:
    """hashdeep/md5deep ``%%%% HASHDEEP-1.0`` files: a ``%%%% size,…,filename`` line names columns.

    Extra commas belong to the file name (the last column), as the format says.
    """
    out = Collector(ctx)
    columns: list[str] | None = None
    with open_source(path) as f:
        for lineno, s in lines(f, str(path)):
            where = f"{path} line {lineno}"
            if lineno == 1:
                if not s.startswith(b"%%%% HASHDEEP-1."):
                    raise HashSetError(f"{where}: not a hashdeep file (no '%%%% HASHDEEP-1.0')")
                continue
            if s.startswith(b"%%%%"):
                names = [c.strip().lower() for c in text(s[4:]).split(",")]
                if len(names) < 3 or names[0] != "size" or names[-1] != "filename":
                    raise HashSetError(f"{where}: hashdeep columns must be 'size,…,filename'")
                if not any(n in ALGORITHM_NAMES for n in names):
                    raise HashSetError(f"{where}: no MD5, SHA-1 or SHA-256 column")
                columns = info["columns"] = names
                continue
            if not s or s.startswith(b"#"):
                continue
            if columns is None:
                raise HashSetError(f"{where}: a record before the '%%%% size,…' header")
            fields = s.split(b",", len(columns) - 1)
            if len(fields) != len(columns) or not fields[0].isdigit():
                ctx.invalid(where, f"expected {len(columns)} comma-separated fields")
                continue
            digests: list[tuple[str, bytes]] = []
            for col, value in zip(columns[1:-1], fields[1:-1], strict=True):
                algorithm = ALGORITHM_NAMES.get(col)
                if algorithm is None:
                    continue  # tiger, whirlpool: kiosk does not compute them
                parsed = parse_digest(value, algorithm)
                if parsed is None:
                    ctx.invalid(where, bad_digest(value, algorithm))
                    break
                digests.append(parsed)
            else:
                props = {"file_name": text(fields[-1]), "size": int(fields[0])}
                if out.add(digests, None, props):
                    yield out.take()
    if columns is None:
        raise HashSetError(f"{path}: no '%%%% size,…,filename' header line")
    yield out.take()
