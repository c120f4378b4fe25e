"""Raw and split raw media: segments laid end to end, read with ``os.pread``.

``os.pread`` on the file descriptor means concurrent readers (the media hasher's thread and
the Sleuth Kit's reads) never share a file position.
"""

from __future__ import annotations

import bisect
import errno
import os

from kiosk.errors import SegmentError
from kiosk.evidence.resolve import Segment


class RawMedia:
    """One file, or split raw segments in order; each checked against its resolved size."""

    def __init__(self, segments: tuple[Segment, ...]) -> None:
        self._fds: list[int] = []
        self._starts: list[int] = []
        self._sizes: list[int] = []
        pos = 0
        try:
            for seg in segments:
                fd = os.open(seg.path, os.O_RDONLY)
                self._fds.append(fd)
                size = os.fstat(fd).st_size
                seg.check(size)
                self._starts.append(pos)
                self._sizes.append(size)
                pos += size
        except OSError as e:
            self.close()
            raise SegmentError(f"cannot open segment {e.filename}: {e.strerror}") from e
        except SegmentError:
            self.close()
            raise
        self.size = pos

    def stored_hashes(self) -> dict[str, str]:
        """A raw image stores no hash of itself."""
        return {}

    def pread(self, offset: int, length: int) -> bytes:
        end = min(offset + length, self.size)
        if end <= offset:
            return b""
        if len(self._fds) == 1:  # the common case: one read, no copy (every TSK read lands here)
            return os.pread(self._fds[0], end - offset, offset)
        buf = bytearray(end - offset)
        return bytes(buf[: self.readinto(offset, memoryview(buf))])

    def hole_len(self, offset: int, limit: int) -> int:
        """How many bytes from ``offset`` (at most ``limit``) lie in a hole of a sparse segment:
        bytes the file system stores nowhere and reads as zeros, so the image's hash can take
        them as zeros without reading them. 0 when there is data at ``offset``, the file system
        cannot say, or the segment is no longer the size it was opened at (the read that follows
        then finds it short).

        Why: raw images are often sparse (``qemu-img convert``, ``ewfexport``, a VM disk copied
        with ``cp --sparse``); reading a hole still costs the kernel a page of zeros and a copy
        per page, 0.4 s of CPU for the half-empty 1 GiB bench image (bench/README.md, round 6).
        """
        i = self._segment(offset)
        if i is None:
            return 0
        fd, start, size = self._fds[i], self._starts[i], self._sizes[i]
        rel = offset - start
        try:
            data = os.lseek(fd, rel, os.SEEK_DATA)
        except OSError as e:
            if e.errno != errno.ENXIO:  # SEEK_DATA not supported here: read everything
                return 0
            data = size  # no data from here to the end of the file: a trailing hole
        if data <= rel or os.fstat(fd).st_size < size:
            return 0
        return min(data - rel, size - rel, limit)

    def _segment(self, offset: int) -> int | None:
        """The index of the segment holding ``offset`` (a split image may have thousands: a
        binary search, not a walk over them on every read)."""
        i = bisect.bisect_right(self._starts, offset) - 1
        if i < 0 or offset >= self._starts[i] + self._sizes[i]:
            return None
        return i

    def readinto(self, offset: int, view: memoryview) -> int:
        end = min(offset + len(view), self.size)
        done = 0
        first = self._segment(offset)
        if first is None:
            return 0
        for i in range(first, len(self._fds)):
            fd, start, size = self._fds[i], self._starts[i], self._sizes[i]
            if offset >= end:
                break
            if start + size <= offset:
                continue
            want = min(end, start + size) - offset
            got = os.preadv(fd, [view[done : done + want]], offset - start)
            done += got
            if got < want:
                break  # the segment shrank under us: return what there is
            offset += want
        return done

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
