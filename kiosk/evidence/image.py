"""``Evidence``: one opened image -- media, volumes, filesystems -- built from an EvidenceRef.

Read-only by construction: the media is opened from the resolved segments with ``"rb"`` (and
refused if a segment changed since it was resolved), and the Sleuth Kit only ever sees our own
``TskImage`` over it. Layers, after dissect.target: media (``media/``) -> volumes
(``volumes.py``) -> filesystems (``filesystems/``) -> the walk, which yields ``FileTask``
metadata only. Content is read later, in worker processes, each with its own ``Evidence``:
``chunks(task)`` opens whatever the task's locator names through the filesystem layer, so a
crash in native parsing costs one worker, and the engine never holds a backend object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from kiosk.errors import ImageError
from kiosk.evidence.filesystems import READ_CHUNK, Filesystem, NoByteAreas, WalkState
from kiosk.evidence.filesystems.tsk import TskImage, open_typed
from kiosk.evidence.layers import PROBE_BYTES, identify
from kiosk.evidence.logical.source import FORMATS as LOGICAL_FORMATS
from kiosk.evidence.logical.source import LogicalEvidence
from kiosk.evidence.media import HASH_CHUNK, hash_media, open_media
from kiosk.evidence.resolve import EvidenceRef
from kiosk.evidence.volumes import OUTSIDE_PARTITIONS, Listing, list_volumes
from kiosk.locator import FsLoc, RangeLoc, StreamLoc, VolumeLoc
from kiosk.model import FileTask, MediaRecord, VolumeRecord, WalkProblem


class Evidence:
    """One opened image. Use as a context manager."""

    def __init__(self, ref: EvidenceRef) -> None:
        self.ref = ref
        self._fs: dict[tuple[int, str], Filesystem] = {}
        self._listing: Listing | None = None  # the regions, once listed in this process
        self._logical: LogicalEvidence | None = None
        if ref.format in LOGICAL_FORMATS:  # an archive, a folder, a phone backup: no media layers
            self._logical = LogicalEvidence(ref)
            self.record = self._logical.record
            return
        self._media = open_media(ref)
        try:
            if self._media.size == 0:
                raise ImageError(f"{ref.name}: the image holds no media bytes")
            self._img = TskImage(self._media)
            stored = self._media.stored_hashes()
        except BaseException:
            self._media.close()
            raise
        self.record = MediaRecord(
            name=ref.name,
            format=ref.format,
            segments=tuple(s.name for s in ref.files),  # parents and extents too
            size=self._media.size,
            ewf_stored_hashes=stored,
        )

    def __enter__(self) -> Evidence:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._fs.clear()
        if self._logical is not None:
            self._logical.close()
            return
        if self._listing is not None:
            self._listing.close()
        self._media.close()

    def hash_media(
        self, hashes: list[Any], stopped: Callable[[], bool], chunk: int = HASH_CHUNK
    ) -> bool:
        """Feed the media bytes in order to ``hashes``; False if ``stopped()`` cut it short."""
        if self._logical is not None:
            return self._logical.hash(hashes, stopped, chunk)
        return hash_media(self._media, hashes, stopped, chunk)

    def volumes(self) -> list[VolumeRecord]:
        """Every region of the image, examined or not (``kiosk.evidence.volumes``)."""
        if self._logical is not None:
            return self._logical.volumes()
        if self._listing is None:
            self._listing = list_volumes(self._media, self._img, self.record.name, self.ref.keys)
        return list(self._listing.records)

    def filesystem(self, at: FsLoc) -> Filesystem:
        """The filesystem a locator names, opened once per Evidence.

        The walk found it before (``volumes()``); a worker's own Evidence opens a plain
        region by its type at its offset. A region behind a layer (an encrypted volume, LVM,
        an APFS container: its signature at the offset says so) is reached the way the walk
        reached it, by listing the regions once in this process, and found by volume index.
        """
        if self._logical is not None:
            if at.fs_type != self._logical.fs_type:
                raise ImageError(f"{self.ref.name} holds no {at.fs_type} filesystem")
            return self._logical.filesystem()
        if self._listing is not None and at.volume.index in self._listing.found:
            found = self._listing.found[at.volume.index]
            if found.fs_type == at.fs_type:
                return found
        key = (at.offset, at.fs_type)
        fs = self._fs.get(key)
        if fs is not None:
            return fs
        if self._listing is None and identify(self._media.pread(at.offset, PROBE_BYTES)):
            self.volumes()
            return self.filesystem(at)
        fs = self._fs[key] = open_typed(self._img, at.offset, at.fs_type)
        return fs

    def walk(
        self,
        volumes: list[VolumeRecord],
        problems: list[WalkProblem] | None = None,
        start_seq: int = 0,
        first: tuple[str, ...] = (),
    ) -> Iterator[FileTask]:
        """Every file stream of every examined volume: allocated, deleted, orphan, NTFS streams.

        What could not be entered (a directory that would not open, a loop) is appended to
        ``problems``. Each filesystem's tasks share one ``FsLoc`` (cheap to pickle in batches).
        ``first``: user areas (``Users``, ``WhatsApp/Media``...); folders named as their first
        folder are entered before their siblings (the Sleuth Kit's filesystems).
        """
        state = WalkState(
            problems=problems if problems is not None else [],
            seq=start_seq,
            first=frozenset(a.strip("/").split("/")[0].casefold() for a in first if a.strip("/")),
        )
        for vol in volumes:
            if vol.examined and vol.fs_type is not None:
                at = FsLoc(VolumeLoc(vol.index, vol.offset), vol.fs_type)
                yield from self.filesystem(at).walk(at, state)

    def chunks(self, task: FileTask, chunk: int = READ_CHUNK) -> Iterator[bytes]:
        """The content of one located stream in order; OSError with the offset on failure.

        In a truncated image (the filesystem ends past the media's end) a failed read says so:
        the file lies, at least in part, beyond the end of the image. A byte range
        (``RangeLoc``) is read span by span: ``spans`` and ``read``.
        """
        loc = task.locator
        if isinstance(loc, RangeLoc):
            for off, n in self.spans(loc):
                yield from self.read(off, n, chunk)
            return
        stream = _stream(task)
        fs = self.filesystem(stream.fs)
        try:
            yield from fs.chunks(stream, task.size, chunk)
        except OSError as e:
            logical = self._logical is not None
            if logical or stream.fs.offset + fs.claimed_size() <= self._media.size:
                raise
            raise OSError(f"{e}: beyond the end of the image (the image is truncated)") from e

    def stored_bytes(self, task: FileTask) -> int | None:
        """Bytes the filesystem really stores for a stream (holes excluded); None if unknown."""
        if isinstance(task.locator, RangeLoc):
            return None
        return self.filesystem(task.locator.fs).stored_bytes(_stream(task))

    # -- byte areas: unallocated space, disk areas outside partitions, slack

    def areas(self, volumes: list[VolumeRecord], piece: int, start_seq: int) -> Iterator[FileTask]:
        """Area tasks, after the files: each filesystem's range cut into ``piece``-byte tasks
        (its unallocated blocks are read), and each disk area outside the partitions."""
        seq = start_seq
        size = self.record.size
        if self._logical is not None:  # an archive, a folder, a backup: no byte areas to search
            return
        for vol in volumes:
            at = VolumeLoc(vol.index, vol.offset)
            if vol.examined and vol.fs_type is not None:
                fs_at = FsLoc(at, vol.fs_type)
                if isinstance(self.filesystem(fs_at), NoByteAreas):
                    continue  # its reader lists no free blocks: not_examined says so
                parent: VolumeLoc | FsLoc = fs_at
                kind = "unallocated"
            elif vol.reason == OUTSIDE_PARTITIONS:
                parent, kind = at, "outside_partitions"
            else:
                continue
            length = max(min(vol.length, size - vol.offset), 0)
            for start in range(0, length, piece):
                seq += 1
                n = min(piece, length - start)
                loc = RangeLoc(parent, start, n, kind)
                where = f"{kind.replace('_', ' ')}: volume {vol.index}, bytes {loc.offset}+{n}"
                yield FileTask(seq, loc, where, False, n)

    def spans(self, loc: RangeLoc, extra: int = 0, before: int = 0) -> list[tuple[int, int]]:
        """The media spans ``(offset, length)`` a range task reads: ``[start, start + length +
        extra)`` of its parent (``extra``: the windows' overlap past the range's end), only the
        unallocated blocks of a filesystem; OSError when they cannot be listed. ``before``: that
        many bytes before the start too, where they belong to the same run (the first span then
        starts before the range: the windows' context at its edge)."""
        vol = loc.volume
        end = min(loc.start + loc.length + extra, self.record.size - vol.offset)
        start = max(loc.start - before, 0)
        if isinstance(loc.parent, FsLoc):
            found = self.filesystem(loc.parent).unallocated(start, end)
            if found is None:
                raise OSError(
                    f"the {loc.parent.fs_type} filesystem's unallocated blocks could not be "
                    "listed (block walk unavailable)"
                )
            return [(vol.offset + off, n) for off, n in found]
        return [(vol.offset + start, end - start)] if end > start else []

    def slack(self, task: FileTask) -> list[tuple[int, int]]:
        """Media spans of a file stream's slack (``kiosk.evidence.filesystems``)."""
        loc = task.locator
        if not isinstance(loc, StreamLoc):
            return []
        found = self.filesystem(loc.fs).slack(loc, task.size)
        return [(loc.fs.offset + off, n) for off, n in found]

    def read(self, offset: int, length: int, chunk: int = READ_CHUNK) -> Iterator[bytes]:
        """Media bytes ``[offset, offset + length)`` in chunks; OSError on a short read."""
        end = offset + length
        while offset < end:
            data = self._media.pread(offset, min(chunk, end - offset))
            if not data:
                raise OSError(f"media read failed at byte {offset}")
            yield data
            offset += len(data)


def _stream(task: FileTask) -> StreamLoc:
    """The filesystem stream a task names; archive members are read with their archive only."""
    if not isinstance(task.locator, StreamLoc):
        raise ImageError(f"{task.path}: an archive member is read only with its archive")
    return task.locator
