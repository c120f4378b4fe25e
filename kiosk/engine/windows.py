"""Overlapping windows: YARA over byte ranges too big, or too shapeless, to scan as one buffer.

Unallocated space, slack, disk areas outside partitions and the part of a big file beyond the
YARA cap are scanned in windows of ``window`` bytes that overlap by ``overlap`` bytes -- at least
the longest match any window-safe rule can have (``kiosk.packs.windowsafe``) -- so every match
lies wholly inside some window. A match is *owned* by the window in which it starts before the
overlap (``[pos, pos + window)``), and only there is it counted: a match seen twice, by two
windows or two range tasks, has one owner, so it is reported exactly once (deduplicated by its
absolute offset, without a set that grows with the area). A range task reads ``overlap`` bytes
past its end and owns only what starts inside it, so task boundaries work like window edges.

Context at the edges: ``fullword`` strings and ``\b`` in a regular expression look at the byte
before a match, and at a buffer's first byte there is none, so a window that began exactly where
a word's tail does (``xEDGEWORD`` cut before ``E``) saw a whole word that the file does not hold.
So every window but a stream's first carries the byte before it, not owned (a match starting
there is the previous window's); a big file's windows carry the byte before the first of them,
and an area piece the byte before it when its free space runs on from the piece before
(``prime``). A stream's first byte with nothing before it in the same run (a span of free space
after an allocated block, a slack span, the media's first byte) is an edge of the data itself.

Memory: one window plus one chunk per stream, whatever the area's size. Windows that are all
zero bytes are skipped when the window rules provably cannot match zeros -- blank disk space
costs a comparison, not a YARA call. The proof is one match, at start, against a zero run as
long as the overlap: every string of a window-safe rule matches at most ``overlap`` bytes, so a
match anywhere in a zero window of any length is a match inside that run too, and the rules are
monotone in their strings (a 16 MiB zero window, matched instead, cost each worker 0.1 s before
its first file).

Findings keep offsets, never content: per rule, the first ``MAX_OFFSETS`` offsets and a count.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kiosk.errors import RuleScanError, RuleTimeoutError
from kiosk.evidence.image import Evidence
from kiosk.locator import RangeLoc
from kiosk.model import AreaHit, AreaScan, FileResult, FileStatus, FileTask, RuleMatch
from kiosk.packs.engines import engine
from kiosk.packs.load import RuleMeta

WINDOW_BYTES = 16 << 20
AREA_PIECE = 32 << 20  # one area task: two windows, so the last one alone at the end is short
MAX_OFFSETS = 32


@dataclass(slots=True)
class Hits:
    """Offsets per rule, owned and so distinct; bounded (``MAX_OFFSETS`` kept, all counted)."""

    by_rule: dict[tuple[str, str], tuple[list[int], list[int]]] = field(default_factory=dict)

    def add(self, key: tuple[str, str], offsets: list[int]) -> None:
        kept, count = self.by_rule.setdefault(key, ([], [0]))
        room = MAX_OFFSETS - len(kept)
        if room > 0:
            kept.extend(offsets[:room])
        count[0] += len(offsets)

    def area_hits(self, meta: dict[tuple[str, str], RuleMeta]) -> tuple[AreaHit, ...]:
        out = []
        for (ns, rule), (kept, count) in sorted(self.by_rule.items()):
            m = meta[(ns, rule)]
            match = RuleMatch(ns, rule, m.category, m.severity, m.description)
            out.append(AreaHit(match, tuple(sorted(kept)), count[0]))
        return tuple(out)


class WindowMatcher:
    """The window-safe rules of a worker, and the windows they run in."""

    def __init__(
        self,
        engine_name: str,
        blob: bytes,
        meta: dict[tuple[str, str], RuleMeta],
        max_match: int,
        timeout_s: int,
        window: int = WINDOW_BYTES,
        rule_count: int = 0,
    ) -> None:
        eng = engine(engine_name)
        self.rule_count = rule_count  # the window-safe rules (for the report's notes)
        self.scanner = eng.scanner(eng.load_for_scan(blob), timeout_s)
        self.meta = meta
        self.overlap = max(max_match, 1)
        self.window = window
        self.timeout = timeout_s
        self.zeros = bytes(window + self.overlap)  # one full window of blank space
        self.zero_proof = not self.scanner.scan_offsets(bytes(2 * self.overlap))

    def head_windows(self, head: int) -> int:
        """Where a big file's windows may start when every rule has already run on its first
        ``head`` bytes: the start of the first window not wholly inside them.

        A window wholly inside the head adds nothing: every window-safe rule ran on the head,
        which holds the window's bytes in the same order, and a window-safe condition only asks
        for strings to be present (``kiosk.packs.windowsafe``). The windows from here on are the
        very windows a scan from byte 0 makes, so whatever spans the head's end is seen as
        before. With a 64 MiB cap and 16 MiB windows a file's first 48 MiB are not scanned
        twice."""
        if head < self.window + self.overlap:
            return 0
        return ((head - self.window - self.overlap) // self.window + 1) * self.window

    def stream(self, base: int, own_end: int | None, hits: Hits) -> WindowStream:
        """A push-style scan of contiguous bytes starting at absolute offset ``base``."""
        return WindowStream(self, base, own_end, hits)

    def scan(
        self,
        base: int,
        chunks: Iterable[bytes],
        own_end: int | None,
        hits: Hits,
        context: bytes = b"",
    ) -> int:
        """Scan contiguous bytes from ``base``; matches from ``own_end`` on are not owned here.
        ``context``: the byte just before ``base`` in the same run, if any (``prime``). Returns
        the bytes read."""
        s = self.stream(base, own_end, hits)
        s.prime(context)
        for chunk in chunks:
            s.feed(chunk)
        n = s.close()
        if s.error:
            raise RuleScanError(s.error)
        return n

    def _all_zero(self, data: bytes, lead: int = 0) -> bool:
        n = len(data) - lead
        if lead == 0 and n == len(self.zeros):
            return data == self.zeros  # one memcmp
        return data.count(0, lead) == n

    def match_window(
        self, data: bytes, pos: int, own_hi: int | None, hits: Hits, lead: int = 0
    ) -> None:
        """Match one window whose bytes start at absolute offset ``pos``; the first ``lead``
        bytes are context only: a match starting there is not this window's."""
        if self.zero_proof and self._all_zero(data, lead):
            return
        lo = pos + lead
        for ns, rule, at in self.scanner.scan_offsets(data):
            offs = sorted(
                {pos + o for o in at if pos + o >= lo and (own_hi is None or pos + o < own_hi)}
            )
            if offs:
                hits.add((ns, rule), offs)


class WindowStream:
    """Bytes fed in order; every full window (``window + overlap``) is matched, then the window
    moves on by ``window`` bytes, keeping the overlap."""

    def __init__(self, wm: WindowMatcher, base: int, own_end: int | None, hits: Hits) -> None:
        self.wm = self._wm = wm
        self.start = base  # where the stream's first byte lies (a big file: after its head)
        self._pos = base
        self.error = ""  # a big file's window scan that failed stops; the file says where
        self._own_end = own_end
        self._hits = hits
        self._buf = bytearray()
        self._lead = 0  # context bytes at the front of the buffer, before ``_pos``
        self.read = 0

    def prime(self, context: bytes) -> None:
        """The byte just before the stream's start, where the same run of data goes on before it
        (a big file's bytes before its windows, the free space before an area piece): the first
        window sees a word's edge as the whole scan would. Before the first ``feed`` only."""
        if context and not self._buf and not self.read:
            self._buf += context[-1:]
            self._lead = 1

    @property
    def reached(self) -> int:
        """Bytes from the start whose matches were all looked for (to the failure, if any)."""
        return self._pos - self.start if self.error else self.read

    def _match(self, data: bytes, hi: int | None) -> None:
        if self.error:
            return
        try:
            lead = self._lead
            self._wm.match_window(data, self._pos - lead, self._hi(hi), self._hits, lead)
        except RuleTimeoutError:
            self.error = f"YARA scan timed out after {self._wm.timeout} s"
        except RuleScanError as e:
            self.error = f"YARA scan failed: {e}"

    def _hi(self, hi: int | None) -> int | None:
        if self._own_end is None:
            return hi
        return self._own_end if hi is None else min(hi, self._own_end)

    def feed(self, chunk: bytes) -> None:
        wm, buf = self._wm, self._buf
        self.read += len(chunk)
        if self.error:
            return  # the caller still reads on (hashes): nothing more is held
        buf += chunk
        while len(buf) >= self._lead + wm.window + wm.overlap:
            full = self._lead + wm.window + wm.overlap
            # Blank space costs one memcmp and no copy; any other window one copy (the engines
            # take bytes). ``bytes(buf[:full])`` made two, the first into fresh pages: it was
            # ~45 ms per 16 MiB window, most of an unallocated area's cost (bench/README.md).
            if not (wm.zero_proof and buf.startswith(wm.zeros, self._lead)):
                with memoryview(buf) as view, view[:full] as part:
                    data = part.tobytes()
                self._match(data, self._pos + wm.window)
                if self.error:
                    buf.clear()
                    return
            # the next window keeps this one's last byte before it: the context at its edge
            del buf[: self._lead + wm.window - 1]
            self._lead = 1
            self._pos += wm.window

    def close(self) -> int:
        """Match what is left (it owns everything up to ``own_end``); the bytes read."""
        if len(self._buf) > self._lead:
            self._match(bytes(self._buf), None)
        self._buf = bytearray()
        return self.read


def scan_area(ev: Evidence, task: FileTask, loc: RangeLoc, wm: WindowMatcher | None) -> FileResult:
    """One area task (``loc`` is its locator): its spans read from the media and matched in
    windows; one result."""
    if wm is None:
        return FileResult(task, FileStatus.HASHED_ONLY, "no window-safe rule: area not scanned")
    hits = Hits()
    own_end = loc.offset + loc.length
    scanned = 0
    try:
        for off, n in ev.spans(loc, wm.overlap, before=1):
            context = b""
            if off < loc.offset:  # the free space runs on from the piece before: its last byte
                # unreadable, it is the piece before's to report; this one starts at its edge
                with contextlib.suppress(OSError):
                    context = b"".join(ev.read(off, loc.offset - off))
                off, n = loc.offset, n - (loc.offset - off)
            scanned += max(min(off + n, own_end) - off, 0)
            wm.scan(off, ev.read(off, n), own_end, hits, context)
    except RuleTimeoutError:
        return FileResult(task, FileStatus.ERROR, f"YARA scan timed out after {wm.timeout} s")
    except (OSError, RuleScanError) as e:
        return FileResult(task, FileStatus.ERROR, f"area could not be scanned: {e}")
    area = AreaScan(
        loc.kind, loc.volume.index, loc.offset, loc.length, scanned, hits.area_hits(wm.meta)
    )
    return FileResult(task, FileStatus.SCANNED, bytes_read=scanned, areas=(area,))


def scan_slack(ev: Evidence, task: FileTask, wm: WindowMatcher) -> tuple[AreaScan, ...]:
    """The slack of one allocated file stream, each span matched on its own."""
    try:
        spans = ev.slack(task)
    except OSError as e:
        return (AreaScan("slack", task.volume, 0, 0, 0, (), f"{task.path} (unreadable: {e})"),)
    out = []
    for off, n in spans:
        hits = Hits()
        try:
            wm.scan(off, ev.read(off, n), None, hits)
        except (OSError, RuleScanError) as e:
            out.append(AreaScan("slack", task.volume, off, n, 0, (), f"{task.path} ({e})"))
            continue
        out.append(AreaScan("slack", task.volume, off, n, n, hits.area_hits(wm.meta), task.path))
    return tuple(out)


def tail_matches(hits: Hits, meta: dict[tuple[str, str], RuleMeta]) -> tuple[RuleMatch, ...]:
    """A big file's window matches as plain rule matches (the file is the place)."""
    return tuple(h.match for h in hits.area_hits(meta))


def merge_matches(*groups: Iterable[RuleMatch]) -> tuple[RuleMatch, ...]:
    """Rule matches of the head and the windows, each rule once, in the report's order."""
    seen = {(m.pack, m.rule): m for g in groups for m in g}
    return tuple(seen[k] for k in sorted(seen))


def window_note(wm: WindowMatcher, total_rules: int) -> str:
    return (
        f"the {wm.rule_count} window-safe rule(s) of {total_rules} ran in windows of "
        f"{wm.window} bytes overlapping by {wm.overlap}"
    )


def over_cap(
    task: FileTask,
    base: dict[str, Any],
    head: tuple[RuleMatch, ...],
    cap: int,
    tail: WindowStream | None,
    hits: Hits,
    total_rules: int,
) -> FileResult:
    """A file over the YARA cap: every rule ran on its first ``cap`` bytes (``head``), the
    window-safe rules on all of it (``tail``); the result says how far each kind reached."""
    done = int(base["bytes_read"])
    if tail is None:
        why = (
            f"larger than the YARA size cap ({cap} bytes): every rule ran on the first {cap} "
            "bytes only; no rule is window-safe, so the rest was hashed and typed only"
        )
        return FileResult(
            task, FileStatus.HASHED_ONLY, why, rule_matches=head, reach=(cap, 0), **base
        )
    reached = tail.start + tail.close()  # the head, scanned by every rule, is reached too
    matches = merge_matches(head, tail_matches(hits, tail.wm.meta))
    if tail.error:
        why = (
            f"larger than the YARA size cap ({cap} bytes): every rule ran on the first {cap} "
            f"bytes; the window scan stopped at byte {tail.start + tail.reached}: {tail.error}"
        )
        return FileResult(
            task,
            FileStatus.ERROR,
            why,
            rule_matches=matches,
            reach=(cap, tail.start + tail.reached),
            **base,
        )
    why = (
        f"larger than the YARA size cap ({cap} bytes): every rule ran on the first {cap} bytes; "
        f"{window_note(tail.wm, total_rules)} over all {done} bytes"
    )
    # still "hashed_only": the whole-file rules saw the head only (the counts and the
    # hashed-only limit of the recommendation stay as they were); the reach says the rest
    return FileResult(
        task,
        FileStatus.HASHED_ONLY,
        why,
        rule_matches=matches,
        reach=(min(cap, done), reached),
        **base,
    )
