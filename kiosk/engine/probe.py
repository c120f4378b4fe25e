"""What the scan learns from a file's content beyond its digests and the rules: whether it is
disguised under another type's name, whether it is encrypted, and whether a picture looks like
one in a perceptual hash set.

Why one object fed by the scan's read loop: the content is read once, in 1 MiB chunks, for the
digests; this keeps what the three checks need from that same read — the first and last 64 KiB
(always), and a picture's bytes (only when a perceptual set is loaded, only for pictures up to
``pdq.MAX_BYTES``) — and nothing else. ``Scanner`` calls ``start`` per file, ``feed`` per chunk
and ``finish`` on the result, which gains the built-in matches (``kiosk:disguised_file``,
``kiosk:encrypted_*``) and the perceptual hash-set matches; it never fails the file: a check
that cannot run says why in the result's reason.
"""

from __future__ import annotations

import dataclasses

from kiosk.engine.disguise import disguised
from kiosk.engine.encrypted import encrypted
from kiosk.hashsets.index import HashIndex
from kiosk.model import FileResult, FileStatus, FileTask, HashMatch, RuleMatch

EDGE = 64 << 10  # bytes kept from the start and from the end of every file
_CHECKED = (FileStatus.SCANNED, FileStatus.HASHED_ONLY)


class ContentProbe:
    """Per-worker state for the content checks; one file at a time."""

    def __init__(self, index: HashIndex) -> None:
        self._index = index
        self._perceptual = index.perceptual()
        self._head = b""
        self._tail = b""
        self._picture: list[bytes] | None = None
        self._big_picture = False

    def start(self, task: FileTask) -> None:
        self._task = task
        self._head = self._tail = b""
        self._picture = None
        self._big_picture = False

    def feed(self, chunk: bytes) -> None:
        if not self._head and self._perceptual:
            from kiosk.engine import pdq  # Pillow and numpy only where perceptual sets are used

            if pdq.is_picture(chunk[:64]):
                if self._task.size <= pdq.MAX_BYTES:
                    self._picture = []
                else:
                    self._big_picture = True
        if len(self._head) < EDGE:
            self._head += chunk[: EDGE - len(self._head)]
        self._tail = (self._tail + chunk)[-EDGE:] if len(chunk) < EDGE else chunk[-EDGE:]
        if self._picture is not None:
            self._picture.append(chunk)

    def finish(self, r: FileResult) -> FileResult:
        """The result with what the content checks found; the same result when nothing."""
        picture, self._picture = self._picture, None
        if r.status not in _CHECKED or r.task is not getattr(self, "_task", None):
            return r
        rules: list[RuleMatch] = []
        t = r.task
        found = disguised(t.filename, r.mime)
        if found:
            rules.append(found)
        found = encrypted(self._head, self._tail, t.size, r.mime, t.filename)
        if found:
            rules.append(found)
        near, note = self._look_alike(picture)
        self._head = self._tail = b""
        if not rules and not near and not note:
            return r
        return dataclasses.replace(
            r,
            rule_matches=(*r.rule_matches, *rules),
            hash_matches=(*r.hash_matches, *near),
            reason=f"{r.reason}; {note}" if r.reason and note else (r.reason or note),
        )

    def _look_alike(self, picture: list[bytes] | None) -> tuple[tuple[HashMatch, ...], str]:
        if self._big_picture:
            from kiosk.engine import pdq

            return (), f"picture larger than {pdq.MAX_BYTES} bytes: not PDQ-hashed"
        if picture is None:
            return (), ""
        from kiosk.engine import pdq

        got = pdq.pdq(b"".join(picture))
        if got.hash is None:
            return (), got.reason
        if got.quality < pdq.MIN_QUALITY:
            return (), (
                f"picture too featureless for PDQ (quality {got.quality} < {pdq.MIN_QUALITY}): "
                "not matched"
            )
        return self._index.near(got.hash), ""
