"""Segment sets that cannot be mixed up: split raw numbering with its gaps, EWF sets by header.

A split raw image is a run of numbered files (``.001``, ``.002`` … or ``.aa``, ``.ab`` …); a gap
in the run is named ("disk.002 is missing") instead of the image silently ending early. An EWF
set is checked from each segment's own headers before libewf sees it -- libewf opens segments
of two acquisitions together without a word, and a set with a segment missing at its end:

- each segment's number (file header) is its place in the set;
- every segment that carries the set identifier (the GUID in its ``volume``/``data`` section)
  carries the first one's: EnCase and FTK write a random GUID per acquisition (libewf's own
  ewfacquire 20140813 writes zeros, so its sets are told apart by the checks below);
- every segment describes the same media (chunk count, sectors per chunk, bytes per sector,
  sector count);
- the ``table`` sections of all segments together list exactly the media's chunks;
- only the last segment ends with a ``done`` section; one ending with ``next`` has a successor,
  and when it is absent it is named.

EWF layout (libyal's "Expert Witness Compression Format" notes): a 13-byte file header
(signature, 0x01, segment number u16 LE @9, 0x0000) followed by sections, each with a 76-byte
descriptor (type, 16 bytes NUL-padded; next section's offset u64 LE @16; size u64 LE @24).
The EnCase volume/data section data (1052 bytes): chunk count u32 @4, sectors per chunk u32
@8, bytes per sector u32 @12, sector count u64 @16, set identifier @64 (16 bytes). The SMART
layout (94 bytes) has the same counts but no set identifier. A table section's data starts
with its entry count (u32 LE).
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import SegmentError

MAX_SECTIONS = 1 << 16  # far more than a real segment holds; a loop in the chain stops here
_MEDIA_SECTIONS = (b"volume", b"disk", b"data")
_ENCASE_VOLUME = 1052


@dataclass(frozen=True, slots=True)
class EwfSegmentFacts:
    """What one EWF segment file says about the set it belongs to."""

    number: int
    set_id: bytes | None  # None: this segment carries none (SMART layout, no data section)
    media: tuple[int, int, int, int] | None  # chunks, sectors/chunk, bytes/sector, sectors
    chunks: int  # entries in its table sections
    last: bool  # ends with "done": no segment follows it


def ewf_facts(path: Path) -> EwfSegmentFacts:
    """Read one EWF (E01/S01) segment's header and section chain; SegmentError if damaged."""
    set_id: bytes | None = None
    media: tuple[int, int, int, int] | None = None
    chunks = 0
    end = b""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(13)
        if len(head) < 13:
            raise SegmentError(f"{path.name} is not a whole EWF segment (too short)")
        number = struct.unpack_from("<H", head, 9)[0]
        at = 13
        for _ in range(MAX_SECTIONS):
            f.seek(at)
            desc = f.read(76)
            if len(desc) < 76:
                raise SegmentError(f"{path.name} is damaged or truncated (its sections break off)")
            kind = desc[:16].rstrip(b"\0")
            nxt, length = struct.unpack_from("<QQ", desc, 16)
            if kind in _MEDIA_SECTIONS and media is None:
                data = f.read(min(max(length - 76, 0), _ENCASE_VOLUME))
                if len(data) >= 24:
                    media = struct.unpack_from("<IIIQ", data, 4)
                if len(data) >= _ENCASE_VOLUME:
                    set_id = data[64:80]
            elif kind == b"table":
                entries = f.read(4)
                if len(entries) == 4:
                    chunks += struct.unpack("<I", entries)[0]
            if kind in (b"done", b"next"):
                end = kind
                break
            if nxt <= at or nxt > size:
                raise SegmentError(f"{path.name} is damaged or truncated (its sections break off)")
            at = nxt
    if not end:
        raise SegmentError(f"{path.name} is damaged (no end of its sections)")
    return EwfSegmentFacts(number, set_id, media, chunks, end == b"done")


def check_ewf_set(segs: list[Path]) -> None:
    """Refuse a set that is not one acquisition's segments in order, naming the odd segment."""
    facts = [ewf_facts(s) for s in segs]
    first = facts[0]
    for i, (seg, f) in enumerate(zip(segs, facts, strict=True)):
        if f.number != i + 1:
            raise SegmentError(
                f"{seg.name} is segment {f.number} of its set, but was taken as segment {i + 1}: "
                "a segment is missing, repeated or from another acquisition"
            )
        if f.set_id is not None and first.set_id is not None and f.set_id != first.set_id:
            raise SegmentError(
                f"{seg.name} is from another acquisition than {segs[0].name} "
                "(its set identifier differs)"
            )
        if f.media is not None and first.media is not None and f.media != first.media:
            raise SegmentError(
                f"{seg.name} is from another acquisition than {segs[0].name} "
                "(it describes other media)"
            )
        if f.last and i + 1 < len(segs):
            raise SegmentError(
                f"{seg.name} is the last segment of its set, but {segs[i + 1].name} was given "
                "after it: segments from another acquisition?"
            )
    if not facts[-1].last:
        missing = ewf_next_name(segs[-1].name)
        raise SegmentError(f"{missing} is missing (it follows {segs[-1].name})")
    total = first.media[0] if first.media is not None else None
    if total is not None and sum(f.chunks for f in facts) != total:
        held = 0
        odd = segs[-1]
        for seg, f in zip(segs, facts, strict=True):
            held += f.chunks
            if held > total:
                odd = seg
                break
        raise SegmentError(
            f"{odd.name} does not belong with the other segments (together they hold "
            f"{sum(f.chunks for f in facts)} chunks, the media has {total}): "
            "segments from another acquisition?"
        )


def ewf_next_name(name: str) -> str:
    """The file name libewf gives the segment after ``name``: E01 … E99, EAA … EZZ, FAA …"""
    stem, _, ext = name.rpartition(".")
    if len(ext) != 3 or not stem:
        return f"the segment after {name}"
    lower = ext.islower()
    e = ext.upper()
    if e[1:].isdigit():
        n = int(e[1:])
        nxt = f"{e[0]}{n + 1:02d}" if n < 99 else f"{e[0]}AA"
    else:
        letters = [ord(c) - 65 for c in e]
        value = (letters[0] * 26 + letters[1]) * 26 + letters[2] + 1
        nxt = "".join(chr(65 + (value // d) % 26) for d in (676, 26, 1))
    return f"{stem}.{nxt.lower() if lower else nxt}"


# --------------------------------------------------------------------------- split raw

_NUMERIC = re.compile(r"^(?P<stem>.*\.)(?P<num>\d{2,4})$")
_ALPHA = re.compile(r"^(?P<stem>.*\.)(?P<alpha>[a-z]{2,3})$")


def split_run(first: Path) -> list[Path]:
    """The numbered run that starts at ``first`` (``.000``/``.001``/``.01``, ``.aa``/``.aaa``),
    followed while the next file exists; a later-numbered file past a gap is a SegmentError
    naming the first missing segment."""
    name = first.name
    m = _NUMERIC.match(name)
    a = _ALPHA.match(name)
    if m and int(m["num"]) in (0, 1):
        width, n = len(m["num"]), int(m["num"])
        segs = [first]
        while (nxt := first.with_name(f"{m['stem']}{n + 1:0{width}d}")).is_file():
            segs.append(nxt)
            n += 1
        later = [
            p.name
            for p in _siblings(first, m["stem"])
            if p.name[len(m["stem"]) :].isdigit()
            and len(p.name) - len(m["stem"]) == width
            and int(p.name[len(m["stem"]) :]) > n
        ]
        _gap(first.with_name(f"{m['stem']}{n + 1:0{width}d}"), later)
        return segs
    if a and set(a["alpha"]) == {"a"}:
        segs = [first]
        suffix = a["alpha"]
        while (nxt_suffix := _alpha_next(suffix)) is not None:
            nxt = first.with_name(f"{a['stem']}{nxt_suffix}")
            if not nxt.is_file():
                break
            segs.append(nxt)
            suffix = nxt_suffix
        width = len(suffix)
        later = [
            p.name
            for p in _siblings(first, a["stem"])
            if re.fullmatch(f"[a-z]{{{width}}}", p.name[len(a["stem"]) :])
            and p.name[len(a["stem"]) :] > suffix
        ]
        missing = _alpha_next(suffix)
        if missing is not None:
            _gap(first.with_name(f"{a['stem']}{missing}"), later)
        return segs
    return [first]


def _siblings(first: Path, stem: str) -> list[Path]:
    try:
        with os.scandir(first.parent) as it:
            return [Path(e.path) for e in it if e.name.startswith(stem) and e.is_file()]
    except OSError:
        return []


def _gap(missing: Path, later: list[str]) -> None:
    if later:
        raise SegmentError(f"{missing.name} is missing ({min(later)} is there, after it)")


def _alpha_next(s: str) -> str | None:
    chars = list(s)
    for i in range(len(chars) - 1, -1, -1):
        if chars[i] != "z":
            chars[i] = chr(ord(chars[i]) + 1)
            return "".join(chars)
        chars[i] = "a"
    return None


_EWF_NEXT = re.compile(r"^(?P<stem>.*\.)(?P<e>[Ee])(?P<num>\d{2})$")


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
    if (a := _ALPHA.match(name)) and set(a["alpha"]) != {"a"}:
        first = path.with_name(f"{a['stem']}{'a' * len(a['alpha'])}")
        if first.is_file() or set(a["alpha"][:-1]) == {"a"}:
            return first
    return None
