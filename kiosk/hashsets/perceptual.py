"""Perceptual hash sets: PDQ hashes of known pictures, matched by Hamming distance.

A perceptual set is a hash set like the others — imported by ``kiosk hashsets import``, stored
as a signed, versioned directory of the same store, verified the same way — whose one
"algorithm" is ``pdq``: its 256-bit hashes sit sorted in ``pdq.hpk`` (32-byte records, the
layout of every ``.hpk``), and its manifest records ``pdq_threshold``, the largest Hamming
distance that still counts as a match (default 31, the threshold Meta publishes for PDQ).

Why a linear search: a look-alike is not an equal key, so the sorted order does not help; XOR
and a population count over the mapped records cost about 1 ms per 100 000 hashes
(numpy ``bitwise_count``), once per picture, with nothing copied into process memory.

Source formats:

- ``pdq-csv``: ``pdq_hex,category`` per line (the category may be left out; a header line
  starting with ``pdq`` and ``#`` comments are skipped);
- ``threatexchange``: ThreatExchange descriptors as JSON — an array, an object with ``data``,
  or one object a line — each with ``type``/``indicator_type``/``signal_type`` ``HASH_PDQ``
  (or ``pdq``) and the hex in ``raw_indicator``, ``indicator`` or ``signal_value``; other types
  are skipped and counted; ``tags`` are kept as the hash's properties.
"""

from __future__ import annotations

import binascii
import json
import mmap
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kiosk.errors import HashSetError
from kiosk.hashsets.records import Batch, Collector, Context, lines, open_source, text

ALGORITHM = "pdq"
WIDTH = 32
DEFAULT_THRESHOLD = 31
MAX_THRESHOLD = 128  # past half the bits, two unrelated pictures match as often as not
HEX = re.compile(rb"[0-9a-fA-F]{64}")
TE_TYPES = {"hash_pdq", "pdq"}


def check_threshold(value: int) -> int:
    if not 0 <= value <= MAX_THRESHOLD:
        raise HashSetError(f"PDQ threshold {value}: must be 0 to {MAX_THRESHOLD}")
    return value


def parse_pdq(raw: bytes | str) -> bytes | None:
    """32 raw bytes from 64 hex digits (either case); None for anything else."""
    b = raw.encode("ascii", "replace") if isinstance(raw, str) else raw
    if not HEX.fullmatch(b):
        return None
    return binascii.unhexlify(b)


def read_pdq_csv(path: Path, ctx: Context, info: dict[str, Any]) -> Iterator[Batch]:
    c = Collector(ctx)
    with open_source(path) as f:
        for lineno, line in lines(f, str(path)):
            if not line or line.startswith(b"#") or line.lower().startswith(b"pdq"):
                continue
            hexpart, _, cat = line.partition(b",")
            digest = parse_pdq(hexpart.strip())
            if digest is None:
                ctx.invalid(f"{path} line {lineno}", "not a PDQ hash (64 hex digits)")
                continue
            category = text(cat.strip()) or None
            if c.add([(ALGORITHM, digest)], category):
                yield c.take()
    yield c.take()


def _te_objects(path: Path) -> Iterator[tuple[str, Any]]:
    with open_source(path) as f:
        raw = f.read()
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        doc = None
    if doc is not None:
        items = doc.get("data") if isinstance(doc, dict) and "data" in doc else doc
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list):
            raise HashSetError(f"{path}: not ThreatExchange descriptors (no list of objects)")
        for i, item in enumerate(items, 1):
            yield f"{path} item {i}", item
        return
    for i, line in enumerate(raw.splitlines(), 1):  # one JSON object a line
        if line.strip():
            try:
                yield f"{path} line {i}", json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError):
                yield f"{path} line {i}", None


def read_threatexchange(path: Path, ctx: Context, info: dict[str, Any]) -> Iterator[Batch]:
    c = Collector(ctx)
    other = 0
    for where, item in _te_objects(path):
        if not isinstance(item, dict):
            ctx.invalid(where, "not a JSON object")
            continue
        kind = item.get("type") or item.get("indicator_type") or item.get("signal_type") or ""
        if str(kind).lower() not in TE_TYPES:
            other += 1
            continue
        value = item.get("raw_indicator") or item.get("indicator") or item.get("signal_value")
        digest = parse_pdq(value) if isinstance(value, str) else None
        if digest is None:
            ctx.invalid(where, "not a PDQ hash (64 hex digits)")
            continue
        tags = item.get("tags")
        props = {"id": item.get("id")}
        if isinstance(tags, list):
            props["tags"] = ",".join(
                str(t.get("text", t) if isinstance(t, dict) else t) for t in tags
            )
        if c.add([(ALGORITHM, digest)], None, props):
            yield c.take()
    info["skipped_other_types"] = other
    yield c.take()


def nearest(
    mm: mmap.mmap, base: int, count: int, query: bytes, threshold: int
) -> tuple[int, bytes] | None:
    """The nearest of the ``count`` records at ``base`` to ``query`` — its Hamming distance and
    the record — if it is within ``threshold``; None otherwise (ties: the first in sort order)."""
    import numpy as np  # imported here: ~0.1 s and BLAS threads in every process

    if count == 0 or len(query) != WIDTH:
        return None
    view = memoryview(mm)[base : base + count * WIDTH]
    try:
        rows = np.frombuffer(view, dtype=np.uint64).reshape(count, WIDTH // 8)
        q = np.frombuffer(query, dtype=np.uint64)
        distances = np.bitwise_count(rows ^ q).sum(axis=1, dtype=np.int64)
        i = int(distances.argmin())
        best = int(distances[i])
        record = rows[i].tobytes()
        del rows
    finally:
        view.release()
    return (best, record) if best <= threshold else None
