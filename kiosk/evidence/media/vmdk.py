"""VMDK media through libvmdk: monolithic and split sparse, flat, stream-optimized, snapshots.

The descriptor (a text file, or embedded in a monolithic sparse file) and every extent it
names were found by ``resolve`` and are opened here ``"rb"``; libvmdk gets those file objects
in the descriptor's order and never opens a path itself. A monolithic sparse file is both the
descriptor and its one extent: it is opened twice, so the two never share a file position.
"""

from __future__ import annotations

import pyvmdk

from kiosk.evidence.media.libyal import HandleMedia, open_files, open_handle
from kiosk.evidence.resolve import EvidenceRef


def open_vmdk(ref: EvidenceRef, parent: HandleMedia | None) -> HandleMedia:
    segments = ref.segments if len(ref.segments) > 1 else ref.segments * 2
    files = open_files(segments)

    def opened() -> pyvmdk.handle:
        handle = pyvmdk.handle()
        handle.open_file_object(files[0])
        handle.open_extent_data_files_as_file_objects(files[1:])
        if parent is not None:
            handle.set_parent(parent.handle)
        return handle

    handle = open_handle("VMDK", ref.name, files, parent, opened)
    return HandleMedia("VMDK", ref.name, handle, files, parent)
