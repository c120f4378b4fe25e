"""Where one stream of content lives in the evidence: a frozen chain of links, outermost first.

::

    VolumeLoc(index, offset)                      a region of the media: a partition, or the whole
     └── FsLoc(volume, fs_type)                   the filesystem found there, named by its type
          └── StreamLoc(fs, inode, attr_type, attr_id)   one content stream of one entry
               └── MemberLoc(parent, index)       a member of the archive that stream is
                    └── MemberLoc(parent, index)  ... of an archive inside it, and so on

A ``FileTask`` carries its innermost link and each link holds its parent, so a task says
everything needed to find its bytes again, in any process, without a handle to anything.
The engine never looks inside: it hands the locator back to ``kiosk.evidence``, which opens it
through the filesystem layer named by ``FsLoc.fs_type``. Later links hang off these ones -- an
archive member off a ``StreamLoc``, an unallocated byte range off a ``VolumeLoc`` -- and
``Locator`` becomes their union; a reader other than the Sleuth Kit is another ``fs_type``.

Why a leaf module and not ``kiosk/evidence/locator.py``: ``kiosk.model.FileTask`` holds a
locator, and the model sits below the evidence layer (the import-linter layers contract). A
locator is a plain value; what opens it lives in ``kiosk.evidence``.

Pickling: every task crosses two pipes (walker -> scan -> worker). Each link pickles as a plain
tuple (``__reduce__``: a frozen dataclass's generic state costs about four times as much), and
the walk shares one ``FsLoc`` per filesystem, so within a batch the pickler writes the outer
links once and each task adds only its own ``StreamLoc``.

May import: nothing from kiosk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class VolumeLoc:
    """A region of the media: its index in the report's volume list and its byte offset."""

    index: int
    offset: int

    def __reduce__(self) -> tuple[type[VolumeLoc], tuple[Any, ...]]:
        return (VolumeLoc, (self.index, self.offset))


@dataclass(frozen=True, slots=True)
class FsLoc:
    """The filesystem of a volume, starting at the volume's offset; ``fs_type`` as reported."""

    volume: VolumeLoc
    fs_type: str

    @property
    def offset(self) -> int:
        """Byte offset of the filesystem in the media."""
        return self.volume.offset

    def __reduce__(self) -> tuple[type[FsLoc], tuple[Any, ...]]:
        return (FsLoc, (self.volume, self.fs_type))


@dataclass(frozen=True, slots=True)
class StreamLoc:
    """One content stream of one filesystem entry.

    ``inode`` is the entry's metadata address. ``attr_type``/``attr_id`` name the stream as the
    Sleuth Kit does (NTFS ``$DATA`` streams and index roots); an ``attr_id`` of ``-1`` means the
    entry's default stream.
    """

    fs: FsLoc
    inode: int
    attr_type: int
    attr_id: int

    def __reduce__(self) -> tuple[type[StreamLoc], tuple[Any, ...]]:
        return (StreamLoc, (self.fs, self.inode, self.attr_type, self.attr_id))


@dataclass(frozen=True, slots=True)
class MemberLoc:
    """One member of an archive found in another located stream (a file, or a member itself).

    ``index`` counts the archive's entries in the order its reader lists them (directories
    included), from 0. Members are never opened by locator: they are read while their archive
    is scanned, in the same worker (``kiosk.engine.archives``). ``fs`` and ``inode`` are the
    outermost file's, so a member is reported in the volume and filesystem that hold it.
    """

    parent: Locator  # the stream (or member) the archive is
    index: int

    @property
    def fs(self) -> FsLoc:
        """The filesystem of the file the outermost archive is."""
        return self.parent.fs

    @property
    def inode(self) -> int:
        """The metadata address of that file."""
        return self.parent.inode

    def __reduce__(self) -> tuple[type[MemberLoc], tuple[Any, ...]]:
        return (MemberLoc, (self.parent, self.index))


# What a FileTask points at: a union of the links a task can end in (a byte range to come).
Locator = StreamLoc | MemberLoc
