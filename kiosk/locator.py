"""Where one stream of content lives in the evidence: a frozen chain of links, outermost first.

::

    VolumeLoc(index, offset)                      a region of the media: a partition, or the whole
     ├── FsLoc(volume, fs_type)                   the filesystem found there, named by its type
     │    ├── StreamLoc(fs, inode, attr_type, attr_id)   one content stream of one entry
     │    │    └── MemberLoc(parent, index)       a member of the archive that stream is
     │    │         └── MemberLoc(parent, index)  ... of an archive inside it, and so on
     │    └── RangeLoc(fs, start, length, "unallocated")  its unallocated blocks in a range
     └── RangeLoc(volume, start, length, "outside_partitions")  a disk area no partition claims

A ``FileTask`` carries its innermost link and each link holds its parent, so a task says
everything needed to find its bytes again, in any process, without a handle to anything.
The engine never looks inside: it hands the locator back to ``kiosk.evidence``, which opens it
through the filesystem layer named by ``FsLoc.fs_type``. ``Locator`` is the union of the links a
task can point at; later ones hang off these (an archive member off a ``StreamLoc``); a reader
other than the Sleuth Kit is another ``fs_type``.

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

    parent: StreamLoc | MemberLoc  # the stream (or member) the archive is
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


@dataclass(frozen=True, slots=True)
class RangeLoc:
    """A byte range scanned as an area, not a file: ``start``/``length`` are relative to the
    parent's offset. ``kind`` says what is read there: ``unallocated`` (the filesystem's
    unallocated blocks within the range, parent an ``FsLoc``) or ``outside_partitions`` (every
    byte of a disk area no partition claims, parent a ``VolumeLoc``)."""

    parent: VolumeLoc | FsLoc
    start: int
    length: int
    kind: str

    @property
    def volume(self) -> VolumeLoc:
        """The volume the range lies in."""
        return self.parent if isinstance(self.parent, VolumeLoc) else self.parent.volume

    @property
    def offset(self) -> int:
        """Absolute byte offset in the media of the range's first byte."""
        return self.volume.offset + self.start

    def __reduce__(self) -> tuple[type[RangeLoc], tuple[Any, ...]]:
        return (RangeLoc, (self.parent, self.start, self.length, self.kind))


# What a FileTask points at: a stream of a file, an archive member, or a byte range (an area).
Locator = StreamLoc | MemberLoc | RangeLoc
