"""Archives inside the evidence: every member through the same pipeline as a file, recursively.

A file whose type (libmagic, on its head) is an archive -- zip, 7-Zip, RAR, tar, cpio, ISO 9660,
or a gzip/bzip2/xz/zstd stream -- is scanned as a file first, then expanded in the same worker
(``Expander.expand``): each member is streamed out of the archive (``kiosk.evidence.archive``,
libarchive) through MD5, SHA-1 and SHA-256, typed by libmagic on its head, looked up in the hash
sets and YARA-scanned up to the size cap, and becomes a ``FileResult`` of its own with a
``MemberLoc`` and a path like ``/Users/a/x.zip!/inner/y.7z!/z.txt``. The members travel inside
the archive's result, so one task still gets one answer over the worker pipe: a crash while
expanding costs the archive, as a crash on any file costs that file, and the pool's per-file
time limit still holds. ``with_members`` flattens them, after their archive and depth first.

Why a pipeline of its own next to ``Scanner._scan``: a member is a stream that can be read
once, whose size is only a claim until it has been read; the file path re-reads, checks holes
and trusts the filesystem's size. The statuses and their wording are the same.

Bounded, whatever the archive claims (``kiosk.config.ArchiveLimits``): members are streamed,
content is kept only up to the YARA cap (a nested archive is expanded from that copy, so one
larger than the cap, or one that would hold more than twice the cap in memory with the archives
around it, is listed as not expanded: a worker holds at most three caps), and for each archive
found as a file, with all it holds, the number of members, the expanded bytes (absolute, and as
a ratio to the archive's size: bombs stop there), the depth of nesting and the time are limited.
A limit hit, a damaged or unreadable archive is the archive's ``not_expanded`` reason; an
encrypted or unreadable member is an error result with its reason. Nothing is dropped without a
line saying so.

May import: ``kiosk.evidence``, ``kiosk.hashsets``, ``kiosk.packs``, ``kiosk.config``,
``kiosk.model``, ``kiosk.locator``, ``kiosk.errors``; not ``kiosk.engine.scan`` (which uses it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import yara

from kiosk.config import RATIO_FLOOR, ArchiveLimits
from kiosk.errors import (
    ArchiveReadError,
    KioskError,
    PageMismatch,
    RuleScanError,
    RuleTimeoutError,
)
from kiosk.evidence.archive import STREAM_MIMES, ArchiveReader, Entry, is_archive
from kiosk.hashsets.index import SET_INTEGRITY, HashIndex
from kiosk.locator import MemberLoc, RangeLoc
from kiosk.model import FileResult, FileStatus, FileTask
from kiosk.packs.load import Matcher

HEAD_BYTES = 8192  # as kiosk.engine.scan: libmagic sees the head only
YARA_DISABLED = "YARA disabled for this run"  # the same words as kiosk.engine.scan's

_EXPANDED = (FileStatus.SCANNED, FileStatus.HASHED_ONLY)  # known-good archives are not opened


@dataclass(slots=True)
class _Budget:
    """The limits left for one archive found as a file and everything nested in it."""

    limits: ArchiveLimits
    size: int  # the outermost archive's own size, for the ratio
    deadline: float
    members: int = 0
    expanded: int = 0
    reason: str = ""  # set once, when a limit is hit: every enclosing archive stops too
    where: str = ""
    held: int = 0  # bytes of the enclosing archives held in memory now

    @property
    def max_bytes(self) -> int:
        by_ratio = max(self.limits.max_ratio * self.size, RATIO_FLOOR)
        return min(self.limits.max_bytes, by_ratio)

    def stop(self, reason: str, where: str) -> bool:
        """Record the first limit hit (True: stop now); every enclosing archive stops too."""
        if not self.reason:
            self.reason, self.where = reason, where
        return True

    def take_member(self, where: str) -> bool:
        self.members += 1
        if self.members > self.limits.max_members:
            return self.stop(
                f"more than {self.limits.max_members:,} members (those of archives inside "
                "included), the limit: the rest were not examined",
                where,
            )
        return self.check_time(where)

    def spend(self, n: int, where: str) -> bool:
        self.expanded += n
        if self.expanded > self.max_bytes:
            if self.max_bytes < self.limits.max_bytes:
                return self.stop(
                    f"{self.max_bytes:,} bytes expanded, more than {self.limits.max_ratio} "
                    f"times the archive's own {self.size:,} bytes (a likely archive bomb), the "
                    "limit: the rest was not examined",
                    where,
                )
            return self.stop(
                f"{self.max_bytes:,} bytes expanded, the limit: the rest was not examined", where
            )
        return self.check_time(where)

    def check_time(self, where: str) -> bool:
        if time.monotonic() > self.deadline:
            return self.stop(
                f"expanding took longer than {self.limits.max_seconds:g} s, the limit: the rest "
                "was not examined",
                where,
            )
        return False


@dataclass(slots=True)
class _Content:
    """One member as streamed: its digests and head, and its bytes when within the cap."""

    md5: Any
    sha1: Any
    sha256: Any
    head: bytes = b""
    kept: bytearray | None = None  # None once the member grew past the cap
    done: int = 0


class Expander:
    """Expands archives for one worker's ``Scanner``, with the scanner's own rules, sets and
    libmagic handle, so a member is judged exactly as a file is."""

    def __init__(
        self,
        limits: ArchiveLimits,
        cap: int,
        yara_enabled: bool,
        yara_timeout_s: int,
        content: Callable[[FileTask], Iterator[bytes]],
        matcher: Matcher | None,
        index: HashIndex,
        mime: Callable[[bytes], str],
    ) -> None:
        self._limits = limits
        self._cap = cap
        self._yara = yara_enabled
        self._yara_timeout_s = yara_timeout_s
        self._content = content
        self._matcher = matcher
        self._index = index
        self._mime = mime

    def expand(self, task: FileTask, result: FileResult) -> FileResult:
        """The file's result with its members (and why not all, if so); unchanged if it is not
        an archive, is known-good, failed, or archives are not expanded in this run."""
        if result.status not in _EXPANDED or not is_archive(result.mime, task.path):
            return result
        if self._limits.max_depth < 1:
            return dataclasses.replace(
                result,
                not_expanded="archives were not expanded in this run (archive depth 0): its "
                "members were not examined",
            )
        budget = _Budget(self._limits, task.size, time.monotonic() + self._limits.max_seconds)
        # Random access when the archive fits the cap (7-Zip needs it; zip reads its central
        # directory), else read forward only: memory stays within one YARA buffer either way.
        try:
            source: bytes | Iterator[bytes] = (
                b"".join(self._content(task)) if task.size <= self._cap else self._content(task)
            )
        except (OSError, KioskError) as e:
            return dataclasses.replace(result, not_expanded=f"could not be read again: {e}")
        try:
            members, why = self._expand(source, result.mime, task, 1, budget)
        except Exception as e:  # the archive's own result stands; its members are not claimed
            return dataclasses.replace(
                result, not_expanded=f"internal error while expanding: {type(e).__name__}: {e}"
            )
        return dataclasses.replace(result, members=tuple(members), not_expanded=why)

    def _expand(
        self,
        source: bytes | bytearray | Iterator[bytes],
        mime: str | None,
        task: FileTask,
        depth: int,
        budget: _Budget,
    ) -> tuple[list[FileResult], str]:
        try:
            reader = ArchiveReader(source, raw=mime in STREAM_MIMES)
        except ArchiveReadError as e:
            return [], f"{self._explain(e, source)}: its members were not examined"
        held = len(source) if isinstance(source, bytes | bytearray) else 0
        budget.held += held
        try:
            return self._entries(reader, source, task, depth, budget)
        finally:
            budget.held -= held
            reader.close()

    def _entries(
        self,
        reader: ArchiveReader,
        source: object,
        task: FileTask,
        depth: int,
        budget: _Budget,
    ) -> tuple[list[FileResult], str]:
        members: list[FileResult] = []
        entries = reader.entries()
        count = 0
        while True:
            try:
                entry = next(entries, None)
            except ArchiveReadError as e:
                if count == 0:
                    why = self._explain(e, source)
                    return members, f"could not be read: {why}: its members were not examined"
                return members, (
                    f"the archive is damaged after {count} entries ({e}): the rest was not examined"
                )
            if entry is None:
                return members, ""
            count += 1
            if budget.take_member(task.path):
                return members, budget.reason
            if entry.kind == "directory":
                continue
            members.append(self._member(reader, entry, task, depth, budget))
            if budget.reason:  # hit here or inside a member: every enclosing archive stops
                inner = "" if budget.where == task.path else f" (in {budget.where})"
                return members, budget.reason + inner

    def _explain(self, e: ArchiveReadError, source: object) -> str:
        """libarchive's reason, and ours when it is that a read forward only cannot seek."""
        text = str(e)
        if not isinstance(source, bytes | bytearray) and "seek" in text.lower():
            text += (
                f" (this format needs random access, given only to an archive within the "
                f"{self._cap:,}-byte in-memory limit, the YARA cap)"
            )
        return text

    def _member(
        self, reader: ArchiveReader, entry: Entry, parent: FileTask, depth: int, budget: _Budget
    ) -> FileResult:
        outer = parent.locator
        if isinstance(outer, RangeLoc):  # areas are scanned in windows, never expanded
            raise ArchiveReadError(f"{parent.path}: a byte area is not an archive")

        def task(size: int) -> FileTask:
            return FileTask(
                parent.seq,
                MemberLoc(outer, entry.index),
                f"{parent.path}!/{entry.name}",
                parent.allocated,
                size,
            )

        if entry.encrypted:
            return FileResult(
                task(entry.size or 0),
                FileStatus.ERROR,
                "encrypted member: no password was given, its content was not examined",
            )
        c = _Content(hashlib.md5(), hashlib.sha1(), hashlib.sha256(), kept=bytearray())  # noqa: S324
        try:
            for block in reader.blocks():
                if budget.spend(len(block), parent.path):
                    return FileResult(
                        task(max(entry.size or 0, c.done)),
                        FileStatus.ERROR,
                        f"not examined: {budget.reason}",
                        bytes_read=c.done,
                    )
                c.md5.update(block)
                c.sha1.update(block)
                c.sha256.update(block)
                if len(c.head) < HEAD_BYTES:
                    c.head += block[: HEAD_BYTES - len(c.head)]
                c.done += len(block)
                if c.kept is not None and c.done <= self._cap:
                    c.kept += block
                else:
                    c.kept = None
        except ArchiveReadError as e:
            why = str(e)
            if "passphrase" in why.lower() or "encrypt" in why.lower():
                why = f"encrypted member: its content was not examined ({why})"
            else:
                why = f"content could not be read from the archive: {why}"
            return FileResult(
                task(max(entry.size or 0, c.done)), FileStatus.ERROR, why, bytes_read=c.done
            )
        result = self._judge(task(c.done), c)
        if entry.kind != "file":
            link = f" to {entry.link!r}" if entry.link else ""
            note = f"{entry.kind}{link}: no content of its own in the archive"
            result = dataclasses.replace(
                result, reason=f"{result.reason}; {note}" if result.reason else note
            )
        if result.status not in _EXPANDED or not is_archive(result.mime, result.task.path, c.kept):
            return result
        if depth >= self._limits.max_depth:
            why = (
                f"an archive {depth + 1} layers deep, beyond the depth limit "
                f"({self._limits.max_depth}): its members were not examined"
            )
            return dataclasses.replace(result, not_expanded=why)
        if c.kept is None or budget.held + len(c.kept) > 2 * self._cap:
            why = (
                f"an archive inside an archive, over the in-memory limit ({self._cap:,} bytes, "
                "the YARA cap, for one; twice that for it and the archives around it): its "
                "members were not examined"
            )
            return dataclasses.replace(result, not_expanded=why)
        inner, why = self._expand(c.kept, result.mime, result.task, depth + 1, budget)
        return dataclasses.replace(result, members=tuple(inner), not_expanded=why)

    def _judge(self, t: FileTask, c: _Content) -> FileResult:
        """Type, hash-set lookups and YARA for a member read in full: as ``Scanner._scan``."""
        digests = {"md5": c.md5.digest(), "sha1": c.sha1.digest(), "sha256": c.sha256.digest()}
        try:
            hits = self._index.lookup(digests)
        except PageMismatch as e:  # the set is not what was signed: the run fails on this
            return FileResult(t, FileStatus.ERROR, f"{SET_INTEGRITY}{e}", bytes_read=c.done)
        base: dict[str, Any] = {
            "md5": c.md5.hexdigest(),
            "sha1": c.sha1.hexdigest(),
            "sha256": c.sha256.hexdigest(),
            "mime": self._mime(c.head),
            "bytes_read": c.done,
            "hash_matches": hits,
        }
        good = [h.hashset for h in hits if h.disposition == "known_good"]
        if good and not any(h.disposition == "known_bad" for h in hits):
            return FileResult(
                t,
                FileStatus.KNOWN_GOOD,
                f"listed in known-good set {', '.join(good)}: not YARA-scanned",
                **base,
            )
        if not self._yara:
            return FileResult(t, FileStatus.HASHED_ONLY, YARA_DISABLED, **base)
        if c.kept is None:
            return FileResult(
                t,
                FileStatus.HASHED_ONLY,
                f"larger than the YARA size cap ({self._cap} bytes): hashed and typed only",
                **base,
            )
        if self._matcher is None:
            return FileResult(
                t, FileStatus.HASHED_ONLY, "no rule packs loaded: hashed and typed only", **base
            )
        try:
            matches = self._matcher.match(c.kept, t.filename, t.path, base["md5"])
        except (yara.TimeoutError, RuleTimeoutError):  # either engine (kiosk.packs.engines)
            return FileResult(
                t, FileStatus.ERROR, f"YARA scan timed out after {self._yara_timeout_s} s", **base
            )
        except (yara.Error, RuleScanError) as e:
            return FileResult(t, FileStatus.ERROR, f"YARA scan failed: {e}", **base)
        return FileResult(t, FileStatus.SCANNED, "", rule_matches=matches, **base)


def with_members(results: Iterable[FileResult]) -> Iterator[FileResult]:
    """Each result, then its archive's members, depth first in the archive's order: the order
    of the inventory. Each comes out without its members, so none is counted twice."""
    for r in results:
        yield from _flat(r)


def _flat(r: FileResult) -> Iterator[FileResult]:
    if not r.members:
        yield r
        return
    yield dataclasses.replace(r, members=())
    for m in r.members:
        yield from _flat(m)
