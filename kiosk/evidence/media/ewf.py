"""EWF (E01) media: libewf over our own read-only file objects, never a path of its own.

pytsk3 is built without libewf, so E01 is decoded here and handed to the Sleuth Kit as plain
media bytes. libewf keeps one file position per handle: reads are serialised by a lock.
libewf's own error text (``libewf_handle_open_read_segment_files: unable to…``) is never part
of a message: it goes to ``detail`` (the audit log) and stays the exception's cause.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import BinaryIO

import pyewf

from kiosk.errors import SegmentError
from kiosk.evidence.resolve import Segment


class EwfMedia:
    """An EWF segment set opened through libewf; each segment checked against its size."""

    def __init__(self, segments: tuple[Segment, ...]) -> None:
        self._files: list[BinaryIO] = []
        try:
            for seg in segments:
                f = Path(seg.path).open("rb")  # noqa: SIM115 - libewf reads it until close()
                self._files.append(f)
                seg.check(os.fstat(f.fileno()).st_size)
            self._handle = pyewf.handle()
            self._handle.open_file_objects(self._files)
        except OSError as e:
            self._close_files()
            raise SegmentError(
                "EWF image cannot be opened (a segment is missing or damaged)",
                detail=_libewf_said(e),
            ) from e
        except SegmentError:
            self._close_files()
            raise
        self.size = int(self._handle.get_media_size())
        self._lock = threading.Lock()
        if self.size:
            # libewf opens a set whose later segments are missing; its last chunk then fails
            try:
                self._handle.read_buffer_at_offset(1, self.size - 1)
            except OSError as e:
                self.close()
                names = ", ".join(s.name for s in segments)
                raise SegmentError(
                    f"EWF image is incomplete: the end of the media cannot be read from the "
                    f"segments found ({names}); a segment is missing or damaged",
                    detail=_libewf_said(e),
                ) from e

    def stored_hashes(self) -> dict[str, str]:
        """The MD5/SHA-1 the acquiring tool stored in the EWF, lower-case hex."""
        out: dict[str, str] = {}
        for name in ("MD5", "SHA1"):
            try:
                value = self._handle.get_hash_value(name)
            except OSError:
                value = None
            if value:
                out[name.lower()] = str(value).strip().lower()
        return out

    def pread(self, offset: int, length: int) -> bytes:
        if offset >= self.size:
            return b""
        with self._lock:
            try:
                data: bytes = self._handle.read_buffer_at_offset(
                    min(length, self.size - offset), offset
                )
            except OSError as e:  # libewf's own words stay in the cause, not the reason
                raise OSError(f"EWF read failed at offset {offset}") from e
        return data

    def readinto(self, offset: int, view: memoryview) -> int:
        data = self.pread(offset, len(view))  # libewf hands out bytes; one copy into the view
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._handle.close()
        self._close_files()

    def _close_files(self) -> None:
        for f in self._files:
            f.close()


def _libewf_said(e: OSError) -> str:
    """libewf's error text on one line, for the audit log (never the officer's message)."""
    return " ".join(str(e).split())[:1000]
