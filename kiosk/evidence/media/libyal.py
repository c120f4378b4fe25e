"""A libyal reader's handle as ``Media``: what VMDK, VHD/VHDX and QCOW share.

libvmdk, libvhdi and libqcow each hand out a handle with ``read_buffer_at_offset`` and
``media_size``, read through file objects we opened ``"rb"`` ourselves (never a path of the
library's own), each checked against the size ``resolve`` saw. One handle keeps one file
position, so reads are serialised by a lock. A differencing image's handle reads unchanged
blocks through its parent's handle; the parent's ``HandleMedia`` is kept here and closed with
the child.

libyal's error text (``libvhdi_file_open_file_io_handle: unable to read…``) never reaches the
officer: each failure becomes one plain line, the library's words kept only as the cause.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from kiosk.errors import ImageError, SegmentError
from kiosk.evidence.resolve import Segment


def open_files(segments: tuple[Segment, ...]) -> list[BinaryIO]:
    """Every segment opened ``"rb"`` and checked against its resolved size."""
    files: list[BinaryIO] = []
    try:
        for seg in segments:
            f = Path(seg.path).open("rb")  # noqa: SIM115 - the library reads it until close()
            files.append(f)
            seg.check(os.fstat(f.fileno()).st_size)
    except OSError as e:
        close_all(files)
        raise SegmentError(f"cannot open segment {e.filename}: {e.strerror}") from e
    except SegmentError:
        close_all(files)
        raise
    return files


def close_all(files: list[BinaryIO]) -> None:
    for f in files:
        f.close()


class HandleMedia:
    """Random access to one libyal handle's media, with its files and parent kept open.

    ``piece``: if set, no single library read crosses a multiple of it (libqcow 20240308 reads
    a cluster served by the parent and the next one served by the child wrongly in one call;
    cluster by cluster it is right -- tested against qemu-img's raw conversion).
    """

    def __init__(
        self,
        kind: str,
        name: str,
        handle: Any,
        files: list[BinaryIO],
        parent: HandleMedia | None = None,
        piece: int = 0,
    ) -> None:
        self.kind, self.name, self.handle = kind, name, handle
        self._files, self._parent, self._piece = files, parent, piece
        self._lock = threading.Lock()
        try:
            self.size = int(handle.get_media_size())
            # the first and the last sector: a container cut short where its tables or its
            # footer are (VHDX, VHD, VMDK) is refused here, in one line, before any parsing
            for at in sorted({0, max(0, self.size - 512)}):
                if self.size:
                    handle.read_buffer_at_offset(min(512, self.size - at), at)
        except OSError as e:
            self.close()
            raise ImageError(
                f"{name}: the {kind} image cannot be read (truncated or damaged?)",
                detail=" ".join(str(e).split())[:1000],
            ) from e

    def stored_hashes(self) -> dict[str, str]:
        """VMDK, VHD/VHDX and QCOW store no hash of the media."""
        return {}

    def pread(self, offset: int, length: int) -> bytes:
        end = min(offset + length, self.size)
        if end <= offset:
            return b""
        parts: list[bytes] = []
        with self._lock:
            at = offset
            while at < end:
                stop = end if not self._piece else min(end, (at // self._piece + 1) * self._piece)
                try:
                    data: bytes = self.handle.read_buffer_at_offset(stop - at, at)
                except OSError as e:
                    raise OSError(f"{self.kind} read failed at offset {at}") from e
                if not data:
                    break
                parts.append(data)
                at += len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readinto(self, offset: int, view: memoryview) -> int:
        data = self.pread(offset, len(view))  # libyal hands out bytes; one copy into the view
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a handle that never opened has nothing to close
            self.handle.close()
        close_all(self._files)
        if self._parent is not None:
            self._parent.close()


def open_handle(
    kind: str,
    name: str,
    files: list[BinaryIO],
    parent: HandleMedia | None,
    open_fn: Callable[[], Any],
) -> Any:
    """``open_fn()`` -> an opened handle; a libyal failure becomes one plain ImageError line.

    On any failure the files and the parent opened for this handle are closed here, once for
    every container kind.
    """
    try:
        return open_fn()
    except BaseException as e:
        close_all(files)
        if parent is not None:
            parent.close()
        if not isinstance(e, OSError):
            raise
        said = " ".join(str(e).split())[:1000]
        if "mismatch in identifier" in said or "mismatch in content identifier" in said:
            raise ImageError(
                f"{name}: its parent image is not the one it was made from", detail=said
            ) from e
        raise ImageError(
            f"{name}: the {kind} image cannot be opened (damaged or truncated?)", detail=said
        ) from e
