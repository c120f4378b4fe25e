"""Tar evidence (plain, gzip, bzip2, xz; and the tar inside an ADB backup), read with tarfile.

Full-file-system extractions of phones are mostly tars of the whole tree (``private/var/…`` on
iOS, ``data/…`` on Android). The walk reads the headers one after another, as a stream: the
member list is never held whole (a phone tar has hundreds of thousands of members), and nothing
is extracted. A member is named by the offset of its first header in the (decompressed) tar
stream (``StreamLoc.inode``): unique and stable like a member number, and it lets a worker go
straight to the member instead of listing the archive again; compressed streams are decoded
forward, so a worker taking its files in walk order decodes the archive about once.

Members without content of their own are listed with what they are (symbolic and hard links,
FIFOs, devices), never dropped and never opened. A damaged or truncated archive ends the walk
with a problem that says where; a member whose data is cut short is an error of that file.
"""

from __future__ import annotations

import lzma
import tarfile
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from kiosk.errors import ImageError
from kiosk.evidence.filesystems import READ_CHUNK, NoByteAreas, WalkState
from kiosk.evidence.logical.common import member_path, member_task, read_chunks
from kiosk.locator import FsLoc, StreamLoc
from kiosk.model import FileTask, WalkProblem

# what a damaged compressed stream raises from the decompressors tarfile reads through
DECODE_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError, ValueError)


class TarFilesystem(NoByteAreas):
    """The members of one tar stream as a ``Filesystem``; ``open_stream`` gives it from byte 0."""

    def __init__(self, open_stream: Callable[[], Any], name: str, fs_type: str = "tar"):
        self.fs_type = fs_type
        self._name = name
        self._stream = open_stream()
        try:
            self._tar = tarfile.open(fileobj=self._stream, mode="r:")  # noqa: SIM115 (kept open)
        except DECODE_ERRORS as e:
            raise ImageError(f"{name}: not a readable tar archive ({e})") from e

    def claimed_size(self) -> int:
        return 0

    def walk(self, at: FsLoc, state: WalkState) -> Iterator[FileTask]:
        """Every member that is not a directory, in archive order (links and specials too)."""
        vol = at.volume.index
        try:
            self._stream.seek(0)  # a second walk (the walker replays big archives) starts over
            tar = tarfile.open(fileobj=self._stream, mode="r:")  # noqa: SIM115 (walked below)
        except DECODE_ERRORS as e:
            state.problems.append(WalkProblem(vol, "/", 0, f"the archive cannot be listed: {e}"))
            return
        last = "/"
        while True:
            try:
                info = tar.next()
            except DECODE_ERRORS as e:
                state.problems.append(
                    WalkProblem(
                        vol,
                        last,
                        0,
                        f"the archive ends or is damaged after {last}: "
                        f"nothing after it could be listed ({e})",
                    )
                )
                return
            if info is None:
                break
            tar.members.clear()  # type: ignore[attr-defined]  # listed as a stream: memory stays flat
            path = member_path(info.name)
            last = path
            if info.isdir():
                continue
            yield member_task(at, state, info.offset, path, info.size, _no_content(info))
        tail = self._tail_problem(tar.offset)
        if tail:
            state.problems.append(WalkProblem(vol, last, 0, tail))

    def _tail_problem(self, offset: int) -> str:
        """Why the listing stopped early, if what follows the last member is not the end."""
        try:
            self._stream.seek(offset)
            rest = self._stream.read(1024) or b""
        except DECODE_ERRORS as e:
            return f"the archive is damaged after offset {offset}: not listed further ({e})"
        if rest.count(0) == len(rest):
            return ""
        return (
            f"the archive's listing stops at offset {offset}: what follows is not a valid tar "
            "header (truncated or damaged); anything after it was not listed"
        )

    def chunks(self, loc: StreamLoc, size: int, chunk: int = READ_CHUNK) -> Iterator[bytes]:
        try:
            self._stream.seek(loc.inode)
            info = tarfile.TarInfo.fromtarfile(self._tar)
            f = self._tar.extractfile(info)
            if f is None or info.size != size:
                raise OSError(f"no member with {size} bytes of content at offset {loc.inode}")
            yield from read_chunks(f.read, size, chunk)
        except DECODE_ERRORS as e:
            if isinstance(e, OSError) and not isinstance(e, tarfile.TarError):
                raise
            raise OSError(f"member cannot be read: {e}") from e

    def stored_bytes(self, loc: StreamLoc) -> int | None:
        return None

    def close(self) -> None:
        self._tar.close()
        self._stream.close()


def _no_content(info: tarfile.TarInfo) -> str:
    """Why a member has no content to read; "" when it has."""
    if info.issym():
        return f"symbolic link to {info.linkname!r}: a link, no content of its own; not followed"
    if info.islnk():
        return f"hard link to {member_path(info.linkname)}: its content is examined as that member"
    if info.ischr() or info.isblk():
        kind = "character" if info.ischr() else "block"
        return (
            f"{kind} device member ({info.devmajor}, {info.devminor}): a special file, "
            "no content to read"
        )
    if info.isfifo():
        return "FIFO member: a special file, no content to read"
    return ""
