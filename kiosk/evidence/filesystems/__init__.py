"""Filesystems: the walk that lists every content stream, and reading a stream it located.

Lives here: the ``Filesystem`` interface and one module per reader -- ``tsk.py``, the Sleuth
Kit through pytsk3 (detection with explicit-type retries, the walk with its loop and depth
guards, NTFS streams, sparse streams, reads). A reader that is not TSK (APFS through
libfsapfs, archive members, logical folders) is one more module behind the same interface;
``kiosk.evidence.image`` picks the reader by ``FsLoc.fs_type``.

May import: ``kiosk.evidence.media``, ``kiosk.model``, ``kiosk.locator``, ``kiosk.errors`` and
the filesystem libraries. Their objects never leave this package: the walk yields
``FileTask`` values and the reads yield bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from kiosk.locator import FsLoc, StreamLoc
from kiosk.model import FileTask, WalkProblem

READ_CHUNK = 1 << 20


@dataclass(slots=True)
class WalkState:
    """What one walk carries across filesystems: its problems and the last sequence number."""

    problems: list[WalkProblem] = field(default_factory=list)
    seq: int = 0
    # folder names (case-folded) entered before their siblings: the first folder of each user
    # area (kiosk.engine.priority), so the walk reaches those files first (what is walked is
    # the same; only its order changes)
    first: frozenset[str] = frozenset()


class Filesystem(Protocol):
    """One opened filesystem of the evidence, whatever reads it."""

    fs_type: str  # as reported: ``ext4``, ``ntfs``, ``fat32`` ...

    def claimed_size(self) -> int:
        """Bytes the filesystem says it spans (blocks x block size): the truncation check."""
        ...

    def walk(self, at: FsLoc, state: WalkState) -> Iterator[FileTask]:
        """Every content stream, in a stable order; what cannot be entered goes to ``state``."""
        ...

    def chunks(self, loc: StreamLoc, size: int, chunk: int = READ_CHUNK) -> Iterator[bytes]:
        """The ``size`` bytes of one stream in order; OSError with the offset on failure."""
        ...

    def stored_bytes(self, loc: StreamLoc) -> int | None:
        """Bytes the filesystem really stores for a stream (holes excluded); None if unknown."""
        ...

    def unallocated(self, start: int, end: int) -> list[tuple[int, int]] | None:
        """Spans ``(offset, length)`` from the filesystem's start of its unallocated blocks
        within ``[start, end)``; None when this reader cannot tell."""
        ...

    def slack(self, loc: StreamLoc, size: int) -> list[tuple[int, int]]:
        """Spans from the filesystem's start between a stream's end and its last cluster's end."""
        ...


class NoByteAreas:
    """For a reader that lists no unallocated blocks and no slack: a logical source (an archive,
    a folder, a backup holds only the files copied into it) or a filesystem whose library does
    not expose them (APFS through libfsapfs). Their areas stay in ``not_examined``, with why."""

    def unallocated(self, start: int, end: int) -> list[tuple[int, int]] | None:
        return None

    def slack(self, loc: StreamLoc, size: int) -> list[tuple[int, int]]:
        return []
