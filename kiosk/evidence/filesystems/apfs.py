"""APFS through libfsapfs: the volumes of a container, each walked as a filesystem.

An APFS container (signature ``NXSB``) holds several volumes sharing its space -- on a Mac
at least "Macintosh HD" and its "- Data" volume, plus Preboot, Recovery and VM. The Sleuth
Kit needs a pool layer pytsk3 does not expose, so libfsapfs reads them. Each volume is one
``ApfsFilesystem`` (``fs_type`` ``apfs``); the report lists each volume as a volume of its
own, by its name. A locked (encrypted) volume is listed, not walked.

Streams of one entry (``StreamLoc``): ``attr_type`` 0 is the data fork; ``attr_type`` 1 with
``attr_id`` n is the entry's n-th extended attribute (a resource fork is the extended attribute
``com.apple.ResourceFork``), named ``path:attribute`` like an NTFS stream.

What libfsapfs does not give, and so is not claimed: deleted entries (APFS keeps no
recoverable directory entries for them) and snapshots (not exposed by the Python binding).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyfsapfs

from kiosk.evidence.filesystems import READ_CHUNK, NoByteAreas, WalkState
from kiosk.evidence.media.view import RegionFile
from kiosk.locator import FsLoc, StreamLoc
from kiosk.model import FileTask, WalkProblem

DATA, XATTR = 0, 1
_S_IFMT, _S_IFDIR = 0o170000, 0o040000
MAX_DEPTH = 4096


def open_container(region: RegionFile) -> Any:
    """The APFS container in ``region``; OSError if libfsapfs cannot read it."""
    container = pyfsapfs.container()
    container.open_file_object(region)
    return container


def volume_names(container: Any) -> list[tuple[str, bool]]:
    """Each volume's name and whether it is locked (encrypted, no key given)."""
    out: list[tuple[str, bool]] = []
    for i in range(int(container.number_of_volumes)):
        v = container.get_volume(i)
        out.append((str(v.name or f"volume {i}"), bool(v.is_locked())))
    return out


class ApfsFilesystem(NoByteAreas):
    """One APFS volume of a container, read by libfsapfs."""

    fs_type = "apfs"

    def __init__(self, container: Any, index: int, region: RegionFile) -> None:
        self._container, self._region = container, region  # kept open with the volume
        self._volume = container.get_volume(index)

    def claimed_size(self) -> int:
        """The container's size: its volumes share its space (checked against the region)."""
        return int(self._container.size)

    def walk(self, at: FsLoc, state: WalkState) -> Iterator[FileTask]:
        """Every file's data fork and extended attributes, directories depth first."""
        vol = at.volume.index
        try:
            root = self._volume.get_root_directory()
        except OSError as e:
            state.problems.append(WalkProblem(vol, "/", 0, f"root directory cannot be read: {e}"))
            return
        seen = {int(root.identifier)}
        stack: list[tuple[Any, str, int]] = [(root, "", 0)]
        while stack:
            directory, parent, depth = stack.pop()
            try:
                entries = [
                    directory.get_sub_file_entry(i)
                    for i in range(int(directory.number_of_sub_file_entries))
                ]
            except OSError as e:
                state.problems.append(
                    WalkProblem(
                        vol,
                        parent or "/",
                        int(directory.identifier),
                        f"directory listing cut short: {e}",
                    )
                )
                continue
            subdirs: list[tuple[Any, str, int]] = []
            for entry in entries:
                path = f"{parent}/{entry.name}"
                inode = int(entry.identifier)
                yield from self._streams(at, state, entry, path, inode)
                if int(entry.file_mode or 0) & _S_IFMT != _S_IFDIR:
                    continue
                if inode in seen:
                    state.problems.append(
                        WalkProblem(
                            vol,
                            path,
                            inode,
                            "directory already walked by another path "
                            "(loop or hard link): not entered again",
                            blocking=False,
                        )
                    )
                    continue
                if depth + 1 >= MAX_DEPTH:
                    state.problems.append(
                        WalkProblem(
                            vol, path, inode, f"nesting deeper than {MAX_DEPTH}: not entered"
                        )
                    )
                    continue
                seen.add(inode)
                subdirs.append((entry, path, depth + 1))
            stack.extend(reversed(subdirs))  # depth first, in listing order

    def _streams(
        self, at: FsLoc, state: WalkState, entry: Any, path: str, inode: int
    ) -> Iterator[FileTask]:
        if int(entry.file_mode or 0) & _S_IFMT != _S_IFDIR:
            state.seq += 1
            yield FileTask(state.seq, StreamLoc(at, inode, DATA, -1), path, True, int(entry.size))
        try:
            count = int(entry.number_of_extended_attributes)
            for i in range(count):
                xattr = entry.get_extended_attribute(i)
                state.seq += 1
                yield FileTask(
                    state.seq,
                    StreamLoc(at, inode, XATTR, i),
                    f"{path}:{xattr.name}",
                    True,
                    int(xattr.size),
                )
        except OSError as e:
            state.problems.append(
                WalkProblem(
                    at.volume.index, path, inode, f"extended attributes cannot be listed: {e}"
                )
            )

    def _stream(self, loc: StreamLoc) -> Any:
        entry = self._volume.get_file_entry_by_identifier(loc.inode)
        return entry if loc.attr_type == DATA else entry.get_extended_attribute(loc.attr_id)

    def chunks(self, loc: StreamLoc, size: int, chunk: int = READ_CHUNK) -> Iterator[bytes]:
        """The stream's bytes in order; OSError with the offset on failure."""
        try:
            stream = self._stream(loc)
        except OSError as e:
            raise OSError(f"entry {loc.inode} cannot be opened: {e}") from e
        off = 0
        while off < size:
            want = min(chunk, size - off)
            try:
                data: bytes = stream.read_buffer_at_offset(want, off)
            except OSError as e:
                raise OSError(f"read failed at offset {off} of {size}: {e}") from e
            if not data:
                raise OSError(f"content ends at offset {off} of {size}")
            yield data
            off += len(data)

    def stored_bytes(self, loc: StreamLoc) -> int | None:
        return None
