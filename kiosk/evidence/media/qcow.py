"""QCOW (version 1) and QCOW2 (versions 2 and 3, compressed clusters) media through libqcow.

libqcow reads the one file ``resolve`` found, through our ``"rb"`` file object; a backing file
(the parent) is opened first and handed over as a handle. Reads go cluster by cluster
(``HandleMedia.piece``): the pinned libqcow misreads a span that runs from a cluster served by
the backing file into one the overlay holds (see pyproject.toml for why this version).
"""

from __future__ import annotations

import struct

import pyqcow

from kiosk.evidence.media.libyal import HandleMedia, open_files, open_handle
from kiosk.evidence.resolve import EvidenceRef


def cluster_size(head: bytes) -> int:
    """QCOW2: cluster_bits u32 BE @20; QCOW version 1: cluster_bits u8 @32 (qemu qcow.c)."""
    if len(head) < 36:
        return 512
    version = struct.unpack_from(">I", head, 4)[0]
    bits = head[32] if version == 1 else struct.unpack_from(">I", head, 20)[0]
    return 1 << bits if 9 <= bits <= 21 else 512  # qemu's bounds; otherwise the smallest


def open_qcow(ref: EvidenceRef, parent: HandleMedia | None) -> HandleMedia:
    files = open_files(ref.segments)
    piece = cluster_size(files[0].read(36))
    files[0].seek(0)

    def opened() -> pyqcow.file:
        handle = pyqcow.file()
        handle.open_file_object(files[0])
        if parent is not None:
            handle.set_parent(parent.handle)
        return handle

    handle = open_handle("QCOW", ref.name, files, parent, opened)
    return HandleMedia("QCOW", ref.name, handle, files, parent, piece)
