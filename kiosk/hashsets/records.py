"""What every hash-set source reader produces: batches of raw digests and property rows.

Readers (``hashset_text``, ``hashset_nsrl_vics``) turn their format into ``Batch`` values through a
``Collector``; the store builder (``hashset_build``) consumes them. Keeping this contract small
is what lets one builder serve seven formats, and lets the readers be tested without a store.

Every malformed record goes through ``Context.invalid``: an error naming the file and line (or
record), or — when the importer asked to skip them — a count in the manifest. Digests of the empty
file are always dropped and counted: every empty file would match them (IPED, LOKI and the Sleuth
Kit drop them too).
"""

from __future__ import annotations

import binascii
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from kiosk.errors import HashSetError

ALGORITHMS = ("md5", "sha1", "sha256")
WIDTH = {"md5": 16, "sha1": 20, "sha256": 32}
BY_WIDTH = {w: a for a, w in WIDTH.items()}
BY_HEX_LENGTH = {2 * w: a for a, w in WIDTH.items()}
LABEL = {"md5": "MD5", "sha1": "SHA-1", "sha256": "SHA-256"}
ALGORITHM_NAMES = {
    "md5": "md5",
    "sha1": "sha1",
    "sha-1": "sha1",
    "sha256": "sha256",
    "sha-256": "sha256",
}
# what a store may hold: the cryptographic digests, and PDQ hashes (kiosk.hashsets.perceptual),
# which are never told apart from SHA-256 by width: a reader names its algorithm
STORED_WIDTH = {**WIDTH, "pdq": 32}
EMPTY_FILE = {a: hashlib.new(a, b"").digest() for a in ALGORITHMS}
EMPTY_DIGESTS = frozenset(EMPTY_FILE.values())
BATCH_RECORDS = 1 << 18
STRENGTH = ("sha256", "sha1", "md5")  # strongest first
BLOCK = 1 << 23  # text sources are read in blocks of whole lines
MAX_LINE = 1 << 16  # a longer "line" is binary junk, not a hash-set record
BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class Batch:
    """Digests by algorithm, and property rows ``(digest, category, props JSON)`` for hits.

    An item of a digest list may hold several digests back to back (a fast-path block): the
    builder only ever concatenates them.
    """

    digests: dict[str, list[bytes]] = field(default_factory=lambda: {a: [] for a in STORED_WIDTH})
    props: list[tuple[bytes, str | None, str]] = field(default_factory=list)
    records: int = 0


@dataclass(slots=True)
class ImportStats:
    """What the import kept and dropped; written to the manifest."""

    records: int = 0
    skipped_invalid: int = 0
    excluded_empty_file: int = 0
    excluded_by_category_map: int = 0
    first_invalid: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "skipped_invalid": self.skipped_invalid,
            "first_invalid": self.first_invalid,
            "excluded_empty_file": self.excluded_empty_file,
            "excluded_by_category_map": self.excluded_by_category_map,
        }


@dataclass(slots=True)
class Context:
    """Options of one import and the running counts."""

    skip_invalid: bool = False
    category_map: dict[str, str | None] | None = None
    keep_props: bool = True  # False: digests only (a known-good set needs nothing else)
    stats: ImportStats = field(default_factory=ImportStats)

    def invalid(self, where: str, why: str) -> None:
        """A malformed record: raise, or count it when skipping was asked for."""
        if not self.skip_invalid:
            raise HashSetError(f"{where}: {why}")
        self.stats.skipped_invalid += 1
        if self.stats.first_invalid is None:
            self.stats.first_invalid = f"{where}: {why}"


def bad_digest(text: bytes | str, algorithm: str | None) -> str:
    """Why ``text`` was refused, without echoing it (it may be kilobytes of junk)."""
    what = LABEL[algorithm] if algorithm else "MD5, SHA-1 or SHA-256"
    return f"not a{'n' if what[0] == 'M' else ''} {what} digest ({len(text)} characters)"


def parse_digest(text: bytes | str, algorithm: str | None = None) -> tuple[str, bytes] | None:
    """``(algorithm, raw digest)`` from hex, upper or lower case; inferred from the length."""
    try:
        raw = binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        return None
    found = BY_WIDTH.get(len(raw))
    if found is None or (algorithm is not None and found != algorithm):
        return None
    return found, raw


class Collector:
    """Gathers records into batches; drops empty-file digests; counts what it kept."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.batch = Batch()

    def add(
        self,
        digests: list[tuple[str, bytes]],
        category: str | None = None,
        props: dict[str, Any] | None = None,
    ) -> bool:
        """Add one record; True when the batch is full and should be handed on."""
        stats = self.ctx.stats
        if any(d in EMPTY_DIGESTS for _, d in digests):
            stats.excluded_empty_file += 1
            return False
        if not self.ctx.keep_props and len(digests) > 1:
            # digests only: the strongest names the record (the scan computes all three of a
            # file, so a file whose weaker digest is listed has its stronger one listed too)
            digests = [min(digests, key=lambda d: STRENGTH.index(d[0]))]
        # ensure_ascii keeps undecodable names (surrogate escapes) storable as SQLite text
        text = (
            json.dumps({k: v for k, v in props.items() if v not in (None, "")}, sort_keys=True)
            if props and self.ctx.keep_props
            else None
        )
        b = self.batch
        for algorithm, d in digests:
            b.digests[algorithm].append(d)
            if text is not None or category is not None:
                b.props.append((d, category, text or "{}"))
        b.records += 1
        stats.records += 1
        return b.records >= BATCH_RECORDS

    def add_block(self, algorithm: str, raw: bytes, n: int) -> bool:
        """Add ``n`` digests given back to back (checked by the caller); True when full."""
        b = self.batch
        b.digests[algorithm].append(raw)
        b.records += n
        self.ctx.stats.records += n
        return b.records >= BATCH_RECORDS

    def take(self) -> Batch:
        b, self.batch = self.batch, Batch()
        return b


def open_source(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as e:
        raise HashSetError(f"{path}: cannot be read: {e.strerror or e}") from e


def blocks(f: IO[bytes], where: str) -> Iterator[tuple[int, bytes]]:
    """Whole lines, ~8 MiB at a time: ``(number of the block's first line, block)``.

    A "line" longer than MAX_LINE with no end in sight is binary junk: an error, not a 2 GB read.
    """
    lineno, rest, first = 1, b"", True
    while data := f.read(BLOCK):
        if first:
            data, first = data.removeprefix(BOM), False
        data = rest + data
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            rest = data
        else:
            block, rest = data[:cut], data[cut:]
            yield lineno, block
            lineno += block.count(b"\n")
        if len(rest) > MAX_LINE:
            raise HashSetError(f"{where} line {lineno}: longer than {MAX_LINE} bytes: not text")
    if rest:
        yield lineno, rest


def lines(f: IO[bytes], where: str) -> Iterator[tuple[int, bytes]]:
    """Numbered lines, stripped of surrounding white space."""
    for lineno, block in blocks(f, where):
        for i, line in enumerate(block.split(b"\n")[: block.count(b"\n") or 1], lineno):
            yield i, line.strip()


def text(raw: bytes) -> str:
    """Names from sources keep undecodable bytes (as surrogate escapes) rather than fail."""
    return raw.decode("utf-8", "surrogateescape")
