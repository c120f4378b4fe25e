"""Media seen through a layer: a region as a file object, a library's volume handle as Media.

Volume systems and encryption layers inside an image (LUKS, LVM, an APFS container) are read
by libyal libraries that take a Python file object. ``RegionFile`` gives them one over a byte
range of the media we already opened read-only, so no library ever opens a path itself, and a
region never reads past its own end. ``VolumeMedia`` turns what they hand back (an unlocked
LUKS volume, an LVM logical volume: each a handle with ``read_buffer_at_offset``) into a
``Media`` again, so the filesystem layer reads it exactly as it reads a disk.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any, Protocol


class _Readable(Protocol):
    size: int

    def pread(self, offset: int, length: int) -> bytes: ...


class RegionFile:
    """A read-only file object over ``length`` bytes of ``media`` from ``offset``."""

    def __init__(self, media: _Readable, offset: int, length: int) -> None:
        self._media, self._base = media, offset
        self._size = max(0, min(length, media.size - offset))
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        end = self._size if size is None or size < 0 else min(self._size, self._pos + size)
        if end <= self._pos:
            return b""
        data = self._media.pread(self._base + self._pos, end - self._pos)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise OSError("seek before the start of the region")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def get_size(self) -> int:
        return self._size

    def close(self) -> None:
        """Nothing to release: the media belongs to its owner."""


class VolumeMedia:
    """A libyal volume handle (``read_buffer_at_offset``, ``get_size``) as ``Media``.

    ``keep``: what must stay open as long as the handle reads (the file object it was opened
    on, the volume group it belongs to). One handle keeps one position: reads are serialised.
    """

    def __init__(self, handle: Any, keep: tuple[Any, ...] = ()) -> None:
        self.handle, self._keep = handle, keep
        self.size = int(handle.get_size())
        self._lock = threading.Lock()

    def stored_hashes(self) -> dict[str, str]:
        return {}

    def pread(self, offset: int, length: int) -> bytes:
        end = min(offset + length, self.size)
        if end <= offset:
            return b""
        with self._lock:
            try:
                data: bytes = self.handle.read_buffer_at_offset(end - offset, offset)
            except OSError as e:
                raise OSError(f"read failed at offset {offset} of the volume") from e
        return data

    def readinto(self, offset: int, view: memoryview) -> int:
        data = self.pread(offset, len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        # some handles (a logical volume) have no close of their own: they go with their group
        with contextlib.suppress(OSError, AttributeError):
            self.handle.close()
        self._keep = ()
