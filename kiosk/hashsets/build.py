"""Building one hash-set version: digests into ``.hpk`` packs, properties into a side table.

Why it is built this way (figures in bench/hashsets.md):

- Digests are spilled to one scratch file per algorithm in runs of about a million, each run
  partitioned by the digest's first byte. Each partition is then sorted on its own (numpy: an
  argsort of the first eight bytes; a full-width sort only if two different digests share them),
  de-duplicated, and appended to the ``.hpk``. Memory is bounded by one partition (about 6 MiB
  for 50 M SHA-256, 125 MiB for 1 G), not by the set.
- Per-hash properties go to a SQLite side table, written without an index and indexed once at
  the end; the scanner reads it only on a hit.

Where the version goes and how it becomes active is ``hashset_store``'s business.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from kiosk import __version__
from kiosk.canonical import utc_text_seconds
from kiosk.errors import HashSetError
from kiosk.hashsets.formats import Source, read_source
from kiosk.hashsets.hpk import (
    FORMAT_VERSION,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    PAGE_SIZE,
    PAGES_SUFFIX,
)
from kiosk.hashsets.index import MANIFEST_FORMAT, PROPS
from kiosk.hashsets.nsrl_vics import load_category_map
from kiosk.hashsets.perceptual import ALGORITHM as PDQ
from kiosk.hashsets.perceptual import DEFAULT_THRESHOLD, check_threshold
from kiosk.hashsets.records import STORED_WIDTH, Batch, Context

SPILL_RECORDS = 1 << 20
PARTITION_BITS = 8


def bucket_bits(count: int) -> int:
    """About 16 digests a bucket: a lookup reads one table entry and searches ≤ ~5 steps."""
    return max(PARTITION_BITS, min(24, (count // 16).bit_length()))


class _Spill:
    """Digests of one algorithm, appended to a scratch file in partitioned runs."""

    def __init__(self, path: Path, width: int) -> None:
        self.width = width
        self.f = path.open("w+b")
        self.extents: list[list[tuple[int, int]]] = [[] for _ in range(1 << PARTITION_BITS)]
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.total = 0

    def add(self, items: list[bytes]) -> None:
        """Take a batch's digests (an item may be several digests back to back)."""
        if items:
            chunk = b"".join(items)
            self.pending.append(chunk)
            self.pending_bytes += len(chunk)
            if self.pending_bytes >= SPILL_RECORDS * self.width:
                self.flush()

    def flush(self) -> None:
        if not self.pending_bytes:
            return
        raw = b"".join(self.pending)
        self.pending, self.pending_bytes = [], 0
        rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, self.width)
        first = rec[:, 0]
        order = np.argsort(first, kind="stable")
        counts = np.bincount(first, minlength=1 << PARTITION_BITS)
        pos = self.f.seek(0, os.SEEK_END)
        self.f.write(rec[order].data)  # C-contiguous: written without a bytes copy
        self.f.flush()  # partitions are read back with os.pread, past Python's buffer
        for p in np.flatnonzero(counts):
            n = int(counts[p])
            self.extents[p].append((pos, n))
            pos += n * self.width
        self.total += len(rec)

    def partition(self, p: int) -> np.ndarray:
        w = self.width
        buf = b"".join(os.pread(self.f.fileno(), n * w, off) for off, n in self.extents[p])
        return np.frombuffer(buf, dtype=np.uint8).reshape(-1, w)

    def close(self) -> None:
        self.f.close()


def sort_unique(rec: np.ndarray) -> np.ndarray:
    """Rows sorted bytewise, duplicates removed (a u64-prefix sort is ~2x a full-width one)."""
    if len(rec) < 2:
        return rec
    keys = np.ascontiguousarray(rec[:, :8]).view(">u8").ravel().astype(np.uint64)
    order = np.argsort(keys)
    rec, keys = rec[order], keys[order]
    differ = (rec[1:] != rec[:-1]).any(axis=1)
    if ((keys[1:] == keys[:-1]) & differ).any():  # two digests share 8 bytes: sort fully
        w = rec.shape[1]
        rec = np.sort(np.ascontiguousarray(rec).view(f"V{w}").ravel()).view(np.uint8)
        rec = rec.reshape(-1, w)
        differ = (rec[1:] != rec[:-1]).any(axis=1)
    return rec[np.concatenate(([True], differ))]


def write_pack(spill: _Spill, path: Path) -> dict[str, Any]:
    """Sort, de-duplicate and write one ``.hpk``; returns its manifest entry."""
    spill.flush()
    w = spill.width
    bits = bucket_bits(spill.total)
    per_partition = 1 << (bits - PARTITION_BITS)
    starts = np.zeros((1 << bits) + 1, dtype="<u8")
    count = 0
    with path.open("wb") as out:
        out.seek(HEADER_SIZE + starts.nbytes)
        for p in range(1 << PARTITION_BITS):
            if not spill.extents[p]:
                continue
            rec = sort_unique(spill.partition(p))
            top = np.ascontiguousarray(rec[:, :4]).view(">u4").ravel() >> (32 - bits)
            lo = p * per_partition
            starts[lo + 1 : lo + 1 + per_partition] = np.bincount(
                top.astype(np.int64) - lo, minlength=per_partition
            )
            out.write(rec.data)
            count += len(rec)
        np.cumsum(starts, out=starts)
        out.seek(0)
        out.write(HEADER.pack(MAGIC, w, bits, FORMAT_VERSION, count).ljust(HEADER_SIZE, b"\0"))
        out.write(starts.tobytes())
    sha, pages = _digest_pages(path)
    return {
        "file": path.name,
        "count": count,
        "duplicates_merged": spill.total - count,
        "bucket_bits": bits,
        "size": path.stat().st_size,
        "sha256": sha,
        "pages": pages,
    }


def _digest_pages(path: Path) -> tuple[str, dict[str, Any]]:
    """The pack's SHA-256 and its page list ``<pack>.pages`` (written beside it), in one read:
    the list is what the signature covers, so a scan checks only the pages it reads."""
    whole = hashlib.sha256()
    pages = bytearray()
    with path.open("rb") as f:
        while page := f.read(PAGE_SIZE):
            whole.update(page)
            pages += hashlib.sha256(page).digest()
    pages_path = path.with_name(path.name + PAGES_SUFFIX)
    pages_path.write_bytes(pages)
    return whole.hexdigest(), {
        "file": pages_path.name,
        "page_size": PAGE_SIZE,
        "sha256": hashlib.sha256(pages).hexdigest(),
    }


class _Props:
    """The per-hash property side table, built without an index and indexed once at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self.db = sqlite3.connect(path)
        self.db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE props(digest BLOB NOT NULL, category TEXT, props TEXT NOT NULL);"
        )

    def add(self, rows: list[tuple[bytes, str | None, str]]) -> None:
        if rows:
            self.db.executemany("INSERT INTO props VALUES (?, ?, ?)", rows)
            self.rows += len(rows)

    def finish(self) -> dict[str, Any] | None:
        if not self.rows:
            self.db.close()
            self.path.unlink()
            return None
        self.db.executescript("CREATE INDEX props_digest ON props(digest); PRAGMA optimize;")
        self.db.commit()
        self.db.close()
        with self.path.open("rb") as f:
            sha = hashlib.file_digest(f, "sha256").hexdigest()
        return {
            "file": self.path.name,
            "rows": self.rows,
            "size": self.path.stat().st_size,
            "sha256": sha,
        }

    def abort(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.close()


@dataclass(frozen=True, slots=True)
class ImportRequest:
    """What forensic staff asked to import (``kiosk hashsets import``)."""

    name: str
    sources: tuple[Path, ...]
    disposition: str
    format: str | None = None
    category: str | None = None
    version: str | None = None
    category_map: Path | None = None
    description: str = ""
    skip_invalid: bool = False
    threshold: int | None = None  # perceptual (PDQ) sets: largest matching Hamming distance
    keep_properties: bool | None = None  # None: kept for known-bad sets, dropped for known-good

    @property
    def keeps_properties(self) -> bool:
        """Per-hash properties (file names, products, categories) are worth their size where a
        match is reported (known-bad); a known-good match only skips a file (RDSv3: ~410 bytes
        a row of names and products, bench/hashsets.md)."""
        if self.keep_properties is not None:
            return self.keep_properties
        return self.disposition != "known_good"


def _source_record(src: Source) -> dict[str, Any]:
    with src.path.open("rb") as f:
        sha = hashlib.file_digest(f, "sha256").hexdigest()
    return {
        "file": src.path.name,
        "format": src.format,
        "size": src.path.stat().st_size,
        "sha256": sha,
        "info": src.info,
    }


def build_version(build: Path, req: ImportRequest, version: str, now: datetime) -> dict[str, Any]:
    """Read every source into packs and a property table in ``build``; returns the manifest."""
    ctx = Context(
        skip_invalid=req.skip_invalid,
        category_map=load_category_map(req.category_map) if req.category_map else None,
        keep_props=req.keeps_properties,
    )
    spills = {a: _Spill(build / f".spill-{a}", w) for a, w in STORED_WIDTH.items()}
    props = _Props(build / PROPS)
    sources: list[dict[str, Any]] = []
    try:
        for path in req.sources:
            src, batches = read_source(path, req.format, ctx)
            for batch in batches:
                _take(batch, spills, props)
            sources.append(_source_record(src))
        if ctx.stats.records == 0:
            raise HashSetError(
                f"hash set {req.name}: the sources hold no usable digests"
                + (
                    f" ({ctx.stats.skipped_invalid} invalid skipped)"
                    if ctx.stats.skipped_invalid
                    else ""
                )
            )
        algorithms = {
            a: write_pack(s, build / f"{a}.hpk")
            for a, s in spills.items()
            if s.total + s.pending_bytes
        }
        props_entry = props.finish()
        if PDQ in algorithms and len(algorithms) > 1:
            raise HashSetError(
                f"hash set {req.name}: PDQ hashes and file digests cannot share one set"
            )
        if PDQ in algorithms and req.disposition != "known_bad":
            raise HashSetError(f"hash set {req.name}: a perceptual (PDQ) set must be known_bad")
        if req.threshold is not None and PDQ not in algorithms:
            raise HashSetError(f"hash set {req.name}: --threshold applies to PDQ sets only")
    except BaseException:
        props.abort()
        raise
    finally:
        for algo, spill in spills.items():
            spill.close()
            (build / f".spill-{algo}").unlink(missing_ok=True)
    perceptual = {}
    if PDQ in algorithms:
        perceptual["pdq_threshold"] = check_threshold(
            DEFAULT_THRESHOLD if req.threshold is None else req.threshold
        )
    return {
        **perceptual,
        "format": MANIFEST_FORMAT,
        "name": req.name,
        "version": version,
        "disposition": req.disposition,
        "category": req.category or req.disposition,
        "description": req.description,
        "created": utc_text_seconds(now),
        "importer": f"kiosk {__version__}",
        "sources": sources,
        "algorithms": algorithms,
        "properties": props_entry,
        "per_hash_category": ctx.category_map is not None or PDQ in algorithms,
        "category_map": ctx.category_map,
        "stats": ctx.stats.as_dict(),
    }


def _take(batch: Batch, spills: dict[str, _Spill], props: _Props) -> None:
    for algo, digests in batch.digests.items():
        spills[algo].add(digests)
    props.add(batch.props)
