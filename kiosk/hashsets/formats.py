"""Hash-set sources as labs receive them: tell the format, hand back a stream of batches.

Formats (shared/reference/hashsets-and-rule-packs.md §1): NIST NSRL RDSv3 (SQLite), legacy NSRL
``NSRLFile.txt``, Project VIC / CAID VICS JSON 1.x and 2.0, hashdeep, md5sum/sha1sum/sha256sum
(GNU and BSD ``--tag``), plain one-digest-a-line lists, and LOKI/THOR ``hash;description`` files;
and for perceptual (PDQ) sets, ``pdq_hex,category`` lists and ThreatExchange descriptors
(``kiosk.hashsets.perceptual``).
The readers live in ``hashset_text`` and ``hashset_nsrl_vics``; the store is built from their
batches by ``hashset_build``. Nothing here writes a file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.errors import HashSetError
from kiosk.hashsets.nsrl_vics import read_nsrl_csv, read_nsrl_rds3, read_vics
from kiosk.hashsets.perceptual import read_pdq_csv, read_threatexchange
from kiosk.hashsets.records import BOM, MAX_LINE, Batch, Context
from kiosk.hashsets.text import (
    BSD_SUM_LINE,
    GNU_SUM_LINE,
    LOKI_LINE,
    PLAIN_LINE,
    XWAYS_HEADER,
    read_hashdeep,
    read_loki,
    read_plain,
    read_sums,
)

Reader = Callable[[Path, Context, dict[str, Any]], Iterator[Batch]]
READERS: dict[str, Reader] = {
    "nsrl-rds3": read_nsrl_rds3,
    "nsrl-csv": read_nsrl_csv,
    "vics": read_vics,
    "hashdeep": read_hashdeep,
    "sums": read_sums,
    "plain": read_plain,
    "loki": read_loki,
    "pdq-csv": read_pdq_csv,
    "threatexchange": read_threatexchange,
}
FORMATS = tuple(READERS)


@dataclass(frozen=True, slots=True)
class Source:
    """One source file as read: its format and what it says about itself (e.g. NSRL version)."""

    path: Path
    format: str
    info: dict[str, Any]


def detect_format(path: Path) -> str:
    """The format of ``path`` from its first 64 KiB; a clear error when it is none we know."""
    try:
        with path.open("rb") as f:
            head = f.read(MAX_LINE)
    except OSError as e:
        raise HashSetError(f"{path}: cannot be read: {e.strerror or e}") from e
    if head.startswith(b"SQLite format 3\x00"):
        return "nsrl-rds3"
    head = head.removeprefix(BOM)
    if b"\x00" in head:
        raise HashSetError(f"{path}: binary data of no known hash-set format")
    if head.lstrip()[:1] in (b"{", b"[") and b"hash_pdq" in head.lower():
        return "threatexchange"
    if head.lstrip()[:1] in (b"{", b"["):
        return "vics"
    lines = [ln.strip() for ln in head.splitlines() if ln.strip()]
    if not lines:
        raise HashSetError(f"{path}: empty: no hash-set records")
    if lines[0].startswith(b"%%%% HASHDEEP-"):
        return "hashdeep"
    if lines[0].startswith(b'"SHA-1","MD5"'):
        return "nsrl-csv"
    if lines[0].lower().startswith(b"pdq"):  # the header line of a pdq_hex,category list
        return "pdq-csv"
    data = [ln for ln in lines if not ln.startswith(b"#") and ln.lower() not in XWAYS_HEADER]
    if data:
        first = data[0]
        if LOKI_LINE.fullmatch(first):
            return "loki"
        if GNU_SUM_LINE.fullmatch(first) or BSD_SUM_LINE.fullmatch(first):
            return "sums"
        if PLAIN_LINE.fullmatch(first):
            return "plain"
    raise HashSetError(f"{path}: cannot tell its hash-set format: give --format")


def read_source(path: Path, fmt: str | None, ctx: Context) -> tuple[Source, Iterator[Batch]]:
    """One source: its format (detected unless given) and its stream of batches."""
    fmt = fmt or detect_format(path)
    reader = READERS.get(fmt)
    if reader is None:
        raise HashSetError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    if ctx.category_map is not None and fmt != "vics":
        raise HashSetError(f"{path}: --category-map applies to VICS JSON sources only")
    info: dict[str, Any] = {}
    return Source(path, fmt, info), reader(path, ctx, info)
