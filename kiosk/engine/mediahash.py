"""The image's own hash, taken alongside the scan and at the scan's pace.

Why a pace: the media hash reads and hashes every byte of the image (1 GiB: about a second of
one core), and the scan's workers want both cores. Started at full speed with the scan, it took
most of a core for the scan's first second -- exactly when the officer waits for the first
finding from the user areas (issue 19: a fifth of the time to the first finding). So while the
scan is on the user-area files (``kiosk.engine.priority``) the hash may run at most ``LEAD`` of
the media ahead of the scan's progress, the lesser of its file and byte fractions (of what the
walk has found so far: one large video done early is not a third of the scan's work). From the
first file outside the user areas, or once the scan's results are all in, it runs freely.

Why not to the end: held to the scan's progress all the way, the hash fell behind whenever one
of the two fractions lagged (on the realistic bench image, its videos came late) and finished
alone after the last result with one core idle: up to 0.3 s of a 4.5 s scan. Held to the
greater fraction instead it took twice the CPU during the first finding's wait (perf per
thread: 0.14 against 0.08 CPU-s) and the first finding came 0.08 s later. Released after the
user areas it has the rest of the scan to finish in (bench/README.md, round 4).

All this is for someone watching for the first finding (the app), and until it is shown: then the
hash runs at full speed. Unwatched (the command line, a hub's batch) it runs at full speed from
the start (``pace_for``): the user-area phase lasts until the walk is complete (the files outside
the areas are held until then), and on the realistic bench image that was two thirds of the scan,
after which the hash caught up competing with the last files (bench/README.md, round 6).

Evidence hashed by its files (a folder) feeds a manifest, not the media's bytes, and is not
paced.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

from kiosk.errors import KioskError
from kiosk.evidence.exhibit import hash_files, worth_listing
from kiosk.evidence.image import Evidence
from kiosk.evidence.resolve import EvidenceRef
from kiosk.reports.model import EvidenceFileRecord
from kiosk.reports.report import MediaHashes

LEAD = 0.05  # how far (a fraction of the media) the hash may run ahead of the scan
POLL_S = 0.02  # how often a hash that is ahead looks at the scan's progress again
# While an officer watches for the first finding, the hash waits for it this long at most.
FIRST_FINDING_HOLD_S = 2.0


class Pace:
    """How far the media hash may read: ``LEAD`` of the media ahead of the scan, until released.

    ``progress`` gives the scan's fraction done (0 to 1); it is read from the hashing thread,
    so it must only read numbers the scan's thread writes.

    ``hold_s``: while someone watches for findings (the app), the hash does not start until the
    first finding (``found``) or for this long at most, whichever comes first. Why: even paced,
    it took 10-20 % of the CPU in the first finding's wait; held for it, the first finding came
    0.12 s sooner (0.50 -> 0.38 s of a 5 s scan, 8 pairs) and the scan's total was unchanged
    (bench/README.md, round 5). The bound keeps what is deferred small: at most ``hold_s`` of
    hashing, caught up on at the scan's pace after it.
    """

    def __init__(
        self,
        media_bytes: int,
        progress: Callable[[], float],
        cancel: threading.Event,
        lead: float = LEAD,
        hold_s: float = 0.0,
    ) -> None:
        self._total = media_bytes
        self._progress = progress
        self._cancel = cancel
        self._lead = lead
        self._free = threading.Event()
        self._hold_until = time.monotonic() + hold_s if hold_s > 0 else 0.0
        self.waits = 0  # how often the hash had to wait (tests, and the curious)

    def found(self) -> None:
        """The first finding is on screen: the hash is held and paced for it alone, so from now
        on it runs at full speed. Paced on, it waited until the walk was complete (the files
        outside the user areas are held until then) and caught up at the end, competing with
        the last files or alone (bench/README.md, round 6)."""
        self.release()

    def release(self) -> None:
        """The user-area files are done, the results are in, or the scan stopped: the hash may
        run at full speed."""
        self._free.set()

    def allowed(self) -> int:
        """Bytes the hash may have read by now."""
        if self._free.is_set() or self._total <= 0:
            return self._total
        if self._hold_until and time.monotonic() < self._hold_until:
            return 0  # waiting for the first finding
        return int(self._total * min(1.0, max(0.0, self._progress()) + self._lead))

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def go(self, done: int) -> bool:
        """Called before each read, with the bytes hashed so far: waits while the hash is ahead;
        True to stop (the scan was cancelled)."""
        while done >= self.allowed() and done < self._total and not self._cancel.is_set():
            self.waits += 1
            if self._free.wait(POLL_S):
                break
        return self._cancel.is_set()


def pace_for(
    media_bytes: int, progress: Callable[[], float], cancel: threading.Event, watched: bool
) -> Pace:
    """The pace of a scan's image hash: ``watched`` when someone waits for the first finding
    (the app), and the hash then waits for it (or yields to the user areas until it comes);
    otherwise (the command line, a hub's batch) the hash runs at full speed from the start.

    Why not pace the command line too: nobody sees its first finding early, and the pace held the
    hash to the scan's progress until the walk was complete (the user-area phase ends only then),
    so it caught up at the end, competing with the last files. Released from the start, the
    realistic bench scan took 0.89-0.91 of the time (two runs of 10 alternating pairs), the
    independent one the same (bench/README.md, round 6).
    """
    pace = Pace(media_bytes, progress, cancel, hold_s=FIRST_FINDING_HOLD_S if watched else 0.0)
    if not watched:
        pace.release()
    return pace


class _Fed:
    """Counts the bytes fed to the hashes (a sink beside them in ``hash_media``)."""

    def __init__(self) -> None:
        self.n = 0

    def update(self, data: memoryview | bytes) -> None:
        self.n += len(data)


class MediaHasher(threading.Thread):
    """Hashes the whole media alongside the scan (own read-only handle; hashlib drops the GIL)."""

    def __init__(self, ref: EvidenceRef, stored: dict[str, str], pace: Pace) -> None:
        super().__init__(name="media-hash", daemon=True)
        self._ref = ref
        self._algos = ["sha256", *[a for a in ("md5", "sha1") if a in stored]]
        self._stored = stored
        self._pace = pace
        self.result = MediaHashes({}, stored, "not finished")

    def run(self) -> None:
        hs = {a: hashlib.new(a) for a in self._algos}
        fed = _Fed()
        try:
            with Evidence(self._ref) as ev:
                if not ev.hash_media([*hs.values(), fed], lambda: self._pace.go(fed.n)):
                    self.result = MediaHashes(
                        {}, self._stored, "the scan was stopped before the image was fully read"
                    )
                    return
        except KioskError as e:
            self.result = MediaHashes({}, self._stored, str(e))
            return
        # the files of a multi-file exhibit (segments, a backup's folder): not paced
        files = hash_files(self._ref, self._pace.cancelled) if worth_listing(self._ref) else ()
        self.result = MediaHashes(
            {a: h.hexdigest() for a, h in hs.items()},
            self._stored,
            files=tuple(EvidenceFileRecord(f.name, f.size, f.sha256) for f in files),
        )
