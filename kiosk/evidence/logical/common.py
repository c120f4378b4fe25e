"""What every logical reader shares: a member's path as data, and the task for one member.

A member's name is text recorded in the evidence, never a path on the kiosk: ``../../etc``,
``/etc/passwd``, a name with a NUL or the same name twice are shown as they are (under one
leading ``/``) and never touch the host, because nothing is ever extracted. Two members with
the same name stay two tasks: the locator tells them apart by their stable member number.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from kiosk.evidence.filesystems import WalkState
from kiosk.locator import FsLoc, StreamLoc
from kiosk.model import FileTask

PASSWORD_NEEDED = "encrypted backup: password needed"  # noqa: S105 (a reason, not a secret)
ATTR_DEFAULT = 0  # logical members have one stream: attr_type 0, attr_id -1


def member_path(name: str) -> str:
    """The name as recorded, under one leading ``/``; NUL and control bytes made visible."""
    shown = name.replace("\x00", "\\x00")
    return shown if shown.startswith("/") else "/" + shown


def member_task(
    at: FsLoc,
    state: WalkState,
    inode: int,
    path: str,
    size: int,
    reason: str = "",
    stored_name: str = "",
) -> FileTask:
    """One member as a task; ``reason`` (not readable) says why it has no content to read."""
    state.seq += 1
    return FileTask(
        seq=state.seq,
        locator=StreamLoc(at, inode, ATTR_DEFAULT, -1),
        path=path,
        allocated=True,
        size=size,
        readable=not reason,
        unreadable_reason=reason,
        stored_name=stored_name,
    )


def read_chunks(read: Callable[[int], bytes], size: int, chunk: int) -> Iterator[bytes]:
    """``size`` bytes from ``read`` in order; OSError with the offset if it ends early."""
    off = 0
    while off < size:
        data = read(min(chunk, size - off))
        if not data:
            raise OSError(f"content ends at offset {off} of {size} (archive truncated?)")
        yield data
        off += len(data)
