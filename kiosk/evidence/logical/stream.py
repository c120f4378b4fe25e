"""File objects over evidence bytes, for the readers that want one (zipfile, tarfile, gzip).

``MediaFile`` puts a read-only, seekable file face on a ``Media`` (one file, or split parts laid
end to end): zipfile and tarfile then read the evidence through ``os.pread`` on descriptors
opened ``"rb"`` and checked against the sizes ``resolve`` saw, like every other image.

``DecodedStream`` is the decoded bytes of a stream that can only be decoded from its start (an
ADB backup's AES-CBC and zlib layers): reading forward decodes as it goes, a seek forward
decodes and drops, a seek backward starts again from the beginning. Workers take their files
in walk order, so in practice each worker decodes the stream about once; nothing decoded is
ever written anywhere.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Protocol


class _Readable(Protocol):
    size: int

    def readinto(self, offset: int, view: memoryview) -> int: ...


class MediaFile(io.RawIOBase):
    """A seekable, read-only file over media bytes (no handle of its own)."""

    def __init__(self, media: _Readable) -> None:
        super().__init__()
        self._media = media
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._media.size}[whence]
        pos = base + offset
        if pos < 0:
            raise OSError(f"seek to a negative offset ({pos})")
        self._pos = pos
        return pos

    def readinto(self, buffer: object) -> int:
        view = memoryview(buffer)  # type: ignore[arg-type]
        n = self._media.readinto(self._pos, view.cast("B"))
        self._pos += n
        return n


class DecodedStream(io.RawIOBase):
    """The decoded bytes of a stream decodable only from its start; see the module docstring.

    ``open_pieces`` starts the decoding again and yields the decoded bytes in pieces.
    """

    def __init__(self, open_pieces: Callable[[], Iterator[bytes]]) -> None:
        super().__init__()
        self._open = open_pieces
        self._pieces: Iterator[bytes] = open_pieces()
        self._buf = b""  # decoded, not yet read; starts at self._pos
        self._pos = 0
        self._want = 0  # where the reader asked to be (a seek is lazy)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._want

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._want
        elif whence != io.SEEK_SET:
            raise OSError("a decoded stream can only seek from its start or its position")
        if offset < 0:
            raise OSError(f"seek to a negative offset ({offset})")
        self._want = offset
        return offset

    def _refill(self) -> bool:
        try:
            piece = next(self._pieces)
        except StopIteration:
            return False
        self._buf += piece
        return True

    def readinto(self, buffer: object) -> int:
        view = memoryview(buffer).cast("B")  # type: ignore[arg-type]
        if self._want < self._pos:  # backward: decode again from the start
            self._pieces, self._buf, self._pos = self._open(), b"", 0
        while self._pos + len(self._buf) <= self._want:  # forward: decode and drop
            self._pos += len(self._buf)
            self._buf = b""
            if not self._refill():
                return 0
        skip = self._want - self._pos
        self._buf, self._pos = self._buf[skip:], self._want
        while not self._buf:
            if not self._refill():
                return 0
        n = min(len(view), len(self._buf))
        view[:n] = self._buf[:n]
        self._buf, self._pos = self._buf[n:], self._pos + n
        self._want = self._pos
        return n
