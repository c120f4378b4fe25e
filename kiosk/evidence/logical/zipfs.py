"""ZIP evidence (zip64 and split ``.z01 … .zip`` sets included), read with the standard zipfile.

A phone's full-file-system extraction often arrives as one zip of the whole tree. zipfile reads
the central directory (zip64 too) from our ``MediaFile``: nothing is extracted, each member is
streamed from the evidence when a worker asks for it. A member is named by its position in the
central directory (``StreamLoc.inode``), so two members with one name stay two files.

Split sets (``zip -s``): the parts laid end to end are one ``Media``; a member's recorded offset
counts from the start of its own part (its "disk"), so it is moved by where that part starts.
zipfile refuses a zip64 set that spans parts; that is said in one line.

Members that cannot be read are listed with the reason, never dropped: encrypted members
(password unknown), compression methods zipfile has no decoder for. A member whose content does
not match its CRC ends as an error of that one file.
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Iterator

from kiosk.errors import ImageError
from kiosk.evidence.filesystems import READ_CHUNK, NoByteAreas, WalkState
from kiosk.evidence.logical.common import member_path, member_task, read_chunks
from kiosk.evidence.logical.stream import MediaFile
from kiosk.evidence.media.raw import RawMedia
from kiosk.locator import FsLoc, StreamLoc
from kiosk.model import FileTask

_EOCD = b"PK\x05\x06"  # APPNOTE 4.3.16: end of central directory record
_METHODS = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}


class ZipFilesystem(NoByteAreas):
    """The members of one zip (or split zip set) as a ``Filesystem``."""

    fs_type = "zip"

    def __init__(self, media: RawMedia, part_sizes: tuple[int, ...], name: str) -> None:
        self._media = media
        self._parts = part_sizes
        self._name = name
        try:
            self._zip = zipfile.ZipFile(MediaFile(media))
            self._infos = self._zip.infolist()
            if len(part_sizes) > 1:
                self._move_to_parts()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
            raise ImageError(f"{name}: not a readable zip archive ({e})") from e

    def _move_to_parts(self) -> None:
        """Offsets of a split set count from each part's start: make them absolute."""
        starts, last = [], 0
        for size in self._parts:
            starts.append(last)
            last += size
        tail_at = max(0, self._media.size - (1 << 16) - 22)
        tail = self._media.pread(tail_at, self._media.size - tail_at)
        at = tail.rfind(_EOCD)
        if at < 0 or at + 22 > len(tail):
            raise zipfile.BadZipFile("end of central directory not found")
        offset_cd = struct.unpack_from("<I", tail, at + 16)[0]
        concat = self._zip.start_dir - offset_cd  # what zipfile added to every offset
        for info in self._infos:
            if info.volume >= len(starts):
                raise zipfile.BadZipFile(f"a member lies on part {info.volume + 1}, not given")
            info.header_offset = info.header_offset - concat + starts[info.volume]

    def claimed_size(self) -> int:
        return self._media.size

    def walk(self, at: FsLoc, state: WalkState) -> Iterator[FileTask]:
        """Every member that is not a directory, in central-directory order."""
        for index, info in enumerate(self._infos):
            if info.is_dir():
                continue
            reason = ""
            if info.flag_bits & 0x1:
                reason = "encrypted zip member: its password is not known, content not examined"
            elif info.compress_type not in _METHODS:
                reason = (
                    f"zip compression method {info.compress_type} has no decoder here: "
                    "content not examined"
                )
            path = member_path(info.orig_filename)
            yield member_task(at, state, index, path, info.file_size, reason)

    def chunks(self, loc: StreamLoc, size: int, chunk: int = READ_CHUNK) -> Iterator[bytes]:
        if not 0 <= loc.inode < len(self._infos):
            raise OSError(f"no member number {loc.inode} in {self._name}")
        try:
            with self._zip.open(self._infos[loc.inode]) as f:
                yield from read_chunks(f.read, size, chunk)
                f.read(1)  # at the end: zipfile checks the CRC-32 here
        except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError, RuntimeError) as e:
            raise OSError(f"member cannot be read: {e}") from e

    def stored_bytes(self, loc: StreamLoc) -> int | None:
        return None

    def close(self) -> None:
        self._zip.close()
