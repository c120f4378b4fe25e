"""Paths the officer gave -> an ``EvidenceRef``: the format and every segment, found once.

Segment discovery reads the first bytes and lists the folder; done again in every process it
could find a different set if the folder changed in between. So it is done once per scan (in
``run_triage``) and once in the app, and the resulting record -- frozen, picklable, no handle --
is handed to every consumer: the walker, the workers, the media hasher, the app's preflight.
Each of them opens the media from the record, and opening checks every segment still has the
size seen here (``Segment.check``): evidence that changed under us is refused, not read.

Only the first bytes of the first segment are read here; no image structure is parsed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyewf

from kiosk.errors import ImageError, SegmentError

EWF_SIGNATURES = (b"EVF\x09\x0d\x0a\xff\x00", b"EVF2\x0d\x0a\x81\x00")


@dataclass(frozen=True, slots=True)
class Segment:
    """One file of the evidence: its host path and its size in bytes when it was found."""

    path: str
    size: int

    @property
    def name(self) -> str:
        return Path(self.path).name

    def check(self, size: int) -> None:
        """Refuse a segment whose size is no longer the one ``resolve`` saw."""
        if size != self.size:
            raise SegmentError(
                f"segment {self.name} changed after it was found ({self.size} bytes then, "
                f"{size} now): the evidence changed under us"
            )


@dataclass(frozen=True, slots=True)
class EvidenceRef:
    """The evidence as resolved: format (``raw``, ``split_raw``, ``ewf``) and its segments."""

    format: str
    segments: tuple[Segment, ...]
    name: str  # shown to people: the first segment's file name

    @property
    def size(self) -> int:
        """Bytes on disk over all segments (the container's, not the media's, size)."""
        return sum(s.size for s in self.segments)

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(Path(s.path) for s in self.segments)


def resolve(paths: Sequence[Path]) -> EvidenceRef:
    """The format and every segment, from the first segment (+ explicit extra segments).

    Raises ``ImageError``/``SegmentError`` with a one-line reason.
    """
    first, extra = paths[0], list(paths[1:])
    fmt, segs = find_segments(first, extra or None)
    found: list[Segment] = []
    for s in segs:
        try:
            found.append(Segment(str(s), s.stat().st_size))
        except OSError as e:
            raise SegmentError(f"cannot open segment {s}: {e.strerror}") from e
    return EvidenceRef(fmt, tuple(found), first.name)


_NUMERIC = re.compile(r"^(?P<stem>.*\.)(?P<num>\d{2,4})$")
_ALPHA = re.compile(r"^(?P<stem>.*\.)(?P<alpha>a{2,3})$")


def _alpha_next(s: str) -> str | None:
    chars = list(s)
    for i in range(len(chars) - 1, -1, -1):
        if chars[i] != "z":
            chars[i] = chr(ord(chars[i]) + 1)
            return "".join(chars)
        chars[i] = "a"
    return None


def find_segments(first: Path, extra: list[Path] | None = None) -> tuple[str, list[Path]]:
    """Work out the format and every segment from the first one the officer chose.

    EWF: libewf's own naming rules (E01, E02 … EAA …). Split raw: ``.000``/``.001``/``.01``
    numbering or ``.aa``/``.aaa`` lettering, followed while the next segment exists. Explicit
    extra segments are taken as given, in order.
    """
    _check_file(first)
    with first.open("rb") as f:
        head = f.read(8)
    if head in EWF_SIGNATURES:
        if extra:
            segs = [first, *extra]
        else:
            try:
                segs = [Path(p) for p in pyewf.glob(str(first))]
            except OSError as e:
                raise SegmentError(f"cannot find the segments of {first.name}: {e}") from e
        for s in segs:
            _check_file(s)
        return "ewf", segs
    if extra:
        for s in extra:
            _check_file(s)
        return "split_raw", [first, *extra]
    name = first.name
    segs = [first]
    m = _NUMERIC.match(name)
    a = _ALPHA.match(name)
    if m and int(m["num"]) in (0, 1):
        width, n = len(m["num"]), int(m["num"])
        while True:
            n += 1
            nxt = first.with_name(f"{m['stem']}{n:0{width}d}")
            if not nxt.is_file():
                break
            segs.append(nxt)
    elif a:
        suffix: str | None = a["alpha"]
        while suffix is not None:
            suffix = _alpha_next(suffix)
            if suffix is None:
                break
            nxt = first.with_name(f"{a['stem']}{suffix}")
            if not nxt.is_file():
                break
            segs.append(nxt)
    return ("split_raw" if len(segs) > 1 else "raw"), segs


_EWF_NEXT = re.compile(r"^(?P<stem>.*\.)(?P<e>[Ee])(?P<num>\d{2})$")
_LETTERS = re.compile(r"^(?P<stem>.*\.)(?P<alpha>[a-z]{2,3})$")


def continuation_of(path: Path) -> Path | None:
    """The first segment of the image that ``path`` continues, or None if it looks like a first.

    Chosen alone, a continuation segment is only the middle of an image: ``split.002`` alone
    reads as random bytes, ``disk.E02`` as nothing. These are the same naming rules
    ``find_segments`` follows forwards: ``.002`` and on (``.001`` when a ``.000`` is present)
    continue ``.001`` (or ``.000``); ``.E02`` and on continue ``.E01``. Letters are also
    ordinary file extensions (``.dd``, ``.img``), so ``.ab`` counts as a continuation of ``.aa``
    only when that first segment is present or the letters can only be early segments
    (``.ab``…``.az``, ``.aab``…``.aaz``). Only names are looked at; nothing is opened.
    """
    name = path.name
    if m := _NUMERIC.match(name):
        width, n = len(m["num"]), int(m["num"])
        zero = path.with_name(f"{m['stem']}{0:0{width}d}")
        if n >= 2:
            return zero if zero.is_file() else path.with_name(f"{m['stem']}{1:0{width}d}")
        return zero if n == 1 and zero.is_file() else None
    if (e := _EWF_NEXT.match(name)) and int(e["num"]) >= 2:
        return path.with_name(f"{e['stem']}{e['e']}01")
    if (a := _LETTERS.match(name)) and set(a["alpha"]) != {"a"}:
        first = path.with_name(f"{a['stem']}{'a' * len(a['alpha'])}")
        if first.is_file() or set(a["alpha"][:-1]) == {"a"}:
            return first
    return None


def _check_file(p: Path) -> None:
    if not p.exists():
        raise ImageError(f"no such file: {p}")
    if p.is_dir():
        raise ImageError(f"{p} is a directory, not an image file")
    if not p.is_file():
        raise ImageError(f"{p} is not a regular file")
    if p.stat().st_size == 0:
        raise ImageError(f"{p} is empty (0 bytes)")
    if not os.access(p, os.R_OK):
        raise ImageError(f"{p} cannot be read (permission denied)")
