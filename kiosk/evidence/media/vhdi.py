"""VHD and VHDX media through libvhdi: fixed, dynamic and differencing disks.

libvhdi reads the one file ``resolve`` found, through our ``"rb"`` file object. A differencing
disk reads the blocks it does not hold from its parent, opened first (``open_media``) and
handed over as a handle; libvhdi itself refuses a parent whose identifier is not the one the
child records -- ``resolve`` has already checked the same from the headers, naming the file.
"""

from __future__ import annotations

import pyvhdi

from kiosk.evidence.media.libyal import HandleMedia, open_files, open_handle
from kiosk.evidence.resolve import EvidenceRef


def open_vhdi(ref: EvidenceRef, parent: HandleMedia | None) -> HandleMedia:
    kind = ref.format.upper()
    files = open_files(ref.segments)

    def opened() -> pyvhdi.file:
        handle = pyvhdi.file()
        handle.open_file_object(files[0])
        if parent is not None:
            handle.set_parent(parent.handle)
        return handle

    handle = open_handle(kind, ref.name, files, parent, opened)
    return HandleMedia(kind, ref.name, handle, files, parent)
