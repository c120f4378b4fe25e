"""The evidence files themselves: each one's size and SHA-256, as written on the exhibit label.

The media SHA-256 is a hash of what the container *holds*; an officer checks what they were
*given* -- the E01 segments, the split parts, a VMDK descriptor and its extents, a differencing
image's parents -- each against the acquisition notes. So every file the evidence consists of
is hashed as it is on disk, opened ``"rb"`` and checked against the size ``resolve`` saw.

Listed only when the evidence is more than one raw file: for a single raw image the file *is*
the media, and its SHA-256 is the media SHA-256 the report already gives.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from kiosk.evidence.resolve import EvidenceRef

CHUNK = 4 << 20


@dataclass(frozen=True, slots=True)
class EvidenceFile:
    """One file of the evidence: its name, size and SHA-256 (None: not read in full)."""

    name: str
    size: int
    sha256: str | None


def worth_listing(ref: EvidenceRef) -> bool:
    """More than the one raw file whose hash is already the media's."""
    return len(ref.files) > 1 or ref.format != "raw"


def hash_files(ref: EvidenceRef, stopped: Callable[[], bool]) -> tuple[EvidenceFile, ...]:
    """Every file of ``ref`` in order, hashed; a file not read in full has ``sha256`` None."""
    out: list[EvidenceFile] = []
    buf = memoryview(bytearray(CHUNK))
    for seg in ref.files:
        digest: str | None = None
        if not stopped():
            digest = _sha256(seg.path, seg.size, buf, stopped)
        out.append(EvidenceFile(seg.name, seg.size, digest))
    return tuple(out)


def _sha256(path: str, size: int, buf: memoryview, stopped: Callable[[], bool]) -> str | None:
    h = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        if os.fstat(fd).st_size != size:
            return None  # changed since it was resolved: its hash would not be the one scanned
        done = 0
        while done < size:
            if stopped():
                return None
            n = os.readv(fd, [buf])
            if n == 0:
                return None
            h.update(buf[:n])
            done += n
    except OSError:
        return None
    finally:
        os.close(fd)
    return h.hexdigest()
