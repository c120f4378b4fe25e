"""A folder given as evidence (a logical copy of a device or of a phone's file system).

The folder is walked in name order without following any symbolic link: a link is listed as a
link (with its target, as text) and never entered or read, so nothing outside the folder is
ever reached, whatever the copy contains. Each file is opened ``O_RDONLY | O_NOFOLLOW |
O_NONBLOCK`` and checked with ``fstat`` to still be a regular file: a FIFO or device node in a
copy can neither block nor feed the scan. A member's number (``StreamLoc.inode``) is its
position in that ordered walk; a worker lists the folder's names once to find it again, and
refuses a file whose size is no longer the one the walk saw.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from kiosk.evidence.filesystems import READ_CHUNK, NoByteAreas, WalkState
from kiosk.evidence.logical.common import member_task, read_chunks
from kiosk.locator import FsLoc, StreamLoc
from kiosk.model import FileTask, WalkProblem

MAX_DEPTH = 4096


class FolderFilesystem(NoByteAreas):
    """The files under one folder as a ``Filesystem``."""

    fs_type = "folder"

    def __init__(self, root: Path) -> None:
        self._root = root
        self._paths: list[str] | None = None  # by member number, built on a worker's first read

    def claimed_size(self) -> int:
        return 0

    def entries(
        self, problems: list[WalkProblem] | None = None
    ) -> Iterator[tuple[str, os.stat_result]]:
        """(relative ``/``-path, lstat) of every non-directory under the root, in name order."""
        stack: list[tuple[str, int]] = [("", 0)]
        while stack:
            rel, depth = stack.pop()
            try:
                with os.scandir(self._root / rel.lstrip("/")) as it:
                    names = sorted((e.name, e) for e in it)
            except OSError as e:
                if problems is not None:
                    problems.append(
                        WalkProblem(0, rel or "/", 0, f"folder cannot be listed: {e.strerror}")
                    )
                continue
            subdirs: list[str] = []
            for name, entry in names:
                path = f"{rel}/{name}"
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as e:
                    if problems is not None:
                        problems.append(
                            WalkProblem(0, path, 0, f"cannot be examined: {e.strerror}")
                        )
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if depth + 1 >= MAX_DEPTH:
                        if problems is not None:
                            problems.append(
                                WalkProblem(
                                    0, path, 0, f"nesting deeper than {MAX_DEPTH}: not entered"
                                )
                            )
                        continue
                    subdirs.append(path)
                else:
                    yield path, st
            stack.extend((d, depth + 1) for d in reversed(subdirs))

    def walk(self, at: FsLoc, state: WalkState) -> Iterator[FileTask]:
        """Every file, link and special node under the folder; directories are entered."""
        for index, (path, st) in enumerate(self.entries(state.problems)):
            shown = os.fsencode(path).decode("utf-8", "backslashreplace")  # names are data
            size = st.st_size if stat.S_ISREG(st.st_mode) else 0
            yield member_task(at, state, index, shown, size, _no_content(self._root, path, st))

    def chunks(self, loc: StreamLoc, size: int, chunk: int = READ_CHUNK) -> Iterator[bytes]:
        if self._paths is None:
            self._paths = [p for p, _ in self.entries()]
        if not 0 <= loc.inode < len(self._paths):
            raise OSError(f"file number {loc.inode} is no longer in the folder")
        target = self._root / self._paths[loc.inode].lstrip("/")
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size != size:
                raise OSError(
                    f"the file changed since the walk (now {st.st_size} bytes, not {size})"
                )
            with os.fdopen(os.dup(fd), "rb", buffering=0) as f:
                yield from read_chunks(f.read, size, chunk)
        finally:
            os.close(fd)

    def stored_bytes(self, loc: StreamLoc) -> int | None:
        return None

    def close(self) -> None:
        self._paths = None


def _no_content(root: Path, path: str, st: os.stat_result) -> str:
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISLNK(mode):
        try:
            target = str((root / path.lstrip("/")).readlink())
        except OSError:
            target = "?"
        return f"symbolic link to {target!r}: a link, no content of its own; not followed"
    if stat.S_ISFIFO(mode):
        return "FIFO: a special file, no content to read"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device node: a special file, no content to read"
    if stat.S_ISSOCK(mode):
        return "socket: a special file, no content to read"
    return "special file: no content to read"
