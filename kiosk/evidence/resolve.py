"""Paths the officer gave -> an ``EvidenceRef``: the format and every file, found once.

Segment discovery reads the first bytes and lists the folder; done again in every process it
could find a different set if the folder changed in between. So it is done once per scan (in
``run_triage``) and once in the app, and the resulting record -- frozen, picklable, no handle --
is handed to every consumer: the walker, the workers, the media hasher, the app's preflight.
Each of them opens the media from the record, and opening checks every file still has the
size seen here (``Segment.check``): evidence that changed under us is refused, not read.

The format is told by signature (``headers.sniff``), never by file name. Besides the file the
officer chose, the record lists every file the evidence consists of, each with its size: split
raw and EWF segments (``segments.py`` checks they form one set), the extents a VMDK descriptor
names, and a differencing image's parent chain (each parent an ``EvidenceRef`` of its own).
Those files are looked for only in the chosen file's folder, or taken from a path given
explicitly (``--parent``); a name recorded inside the evidence never leads anywhere else.

Only headers are read here (``headers.py``, ``segments.py``: small structures, parsed in
Python); no image structure is handed to a native parser in this process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyewf

from kiosk.errors import ImageError, SegmentError
from kiosk.evidence import headers
from kiosk.evidence.keys import VolumeKeys
from kiosk.evidence.logical import sniff as logical
from kiosk.evidence.segments import check_ewf_set, split_run

MAX_CHAIN = 32  # differencing images stacked deeper than this are refused (or a loop)


@dataclass(frozen=True, slots=True)
class Segment:
    """One file of the evidence: its host path and its size in bytes when it was found."""

    path: str
    size: int

    @property
    def name(self) -> str:
        return Path(self.path).name

    def check(self, size: int) -> None:
        """Refuse a segment whose size is no longer the one ``resolve`` saw."""
        if size != self.size:
            raise SegmentError(
                f"segment {self.name} changed after it was found ({self.size} bytes then, "
                f"{size} now): the evidence changed under us"
            )


@dataclass(frozen=True, slots=True)
class EvidenceRef:
    """The evidence as resolved: its format, its files, and the parent it is stacked on.

    ``format``: ``raw``, ``split_raw``, ``ewf``, ``vmdk``, ``vhd``, ``vhdx``, ``qcow``,
    ``qcow2``. ``segments``: this layer's files in the order its reader takes them (VMDK: the
    descriptor, then each extent it names; a monolithic sparse VMDK is one file). ``parent``:
    the image a differencing image (VHD, QCOW, VMDK snapshot) reads unchanged blocks from.
    """

    format: str
    segments: tuple[Segment, ...]
    name: str  # shown to people: the first segment's file name
    parent: EvidenceRef | None = None
    # an encrypted backup's password: reaches the walker and workers through the spawn pipe with
    # the rest of the record (never argv, never disk); never shown, compared or written
    secret: bytes | None = field(default=None, repr=False, compare=False)
    # secrets for encrypted volumes inside (never shown: VolumeKeys withholds them in repr)
    keys: VolumeKeys = field(default_factory=VolumeKeys, compare=False)

    @property
    def files(self) -> tuple[Segment, ...]:
        """Every file the evidence consists of, this layer's first, then its parents'."""
        return self.segments + (self.parent.files if self.parent else ())

    @property
    def size(self) -> int:
        """Bytes on disk over all files (the containers', not the media's, size)."""
        return sum(s.size for s in self.files)

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(Path(s.path) for s in self.files)


def resolve(
    paths: Sequence[Path], parents: Sequence[Path] = (), secret: bytes | None = None
) -> EvidenceRef:
    """The format and every file, from the first segment (+ explicit extra segments).

    ``parents``: for a differencing image, its parent (then the parent's parent …) given
    explicitly; a parent not given is looked for beside its child, by the name it records.
    Raises ``ImageError``/``SegmentError`` with a one-line reason.
    """
    _refuse_repeats([*paths, *parents])
    first, extra = Path(paths[0]), [Path(p) for p in paths[1:]]
    logical = resolve_logical(first, extra, secret)  # an archive, a folder, a phone backup
    if logical is not None:
        if parents:
            raise ImageError(f"--parent was given, but {first.name} is not a differencing image")
        return logical
    return _resolve(first, extra, list(parents), [])


def resolve_logical(first: Path, extra: list[Path], secret: bytes | None) -> EvidenceRef | None:
    """A logical evidence item (``kiosk.evidence.logical``) as a ref; None for a disk image."""
    if not first.exists():
        raise ImageError(f"no such file: {first}")
    fmt = logical.sniff(first)
    if fmt is None:
        return None
    if fmt in ("folder", "itunes"):
        if extra:
            raise ImageError(f"{first.name} is a folder: give only the folder")
        if not logical.holds_files(first):  # a wrong folder must not scan as "no matches"
            raise ImageError(f"{first} is a directory holding no files: nothing to examine")
        seg = Segment(str(first), logical.folder_size(first))
        return EvidenceRef(fmt, (seg,), first.name, secret=secret)
    parts = logical.zip_parts(first, extra) if fmt == "zip" else [first, *extra]
    if fmt != "zip" and extra:
        raise ImageError(f"{first.name} is a {fmt} archive: give only that file")
    for p in parts:
        _check_file(p)
    _refuse_repeats(parts)
    return EvidenceRef(fmt, tuple(_segment(p) for p in parts), first.name, secret=secret)


def _resolve(first: Path, extra: list[Path], parents: list[Path], chain: list[Path]) -> EvidenceRef:
    fmt, segs = find_segments(first, extra or None)
    files = [_segment(s) for s in segs]
    parent_link: headers.ParentLink | None = None
    if fmt == "vmdk":
        layout = headers.vmdk_layout(first)
        for name in layout.extents:
            extent = _beside(first, name, "extent")
            _check_file(extent)
            files.append(_segment(extent))
        parent_link = layout.parent
    elif fmt == "vhd":
        parent_link = headers.vhd_parent(first)
    elif fmt == "vhdx" and headers.vhdx_differencing(first):
        raise ImageError(
            f"{first.name}: differencing VHDX: not supported yet; merge it with its parent "
            "or convert to raw"
        )
    elif fmt in ("qcow", "qcow2"):
        if headers.qcow_encrypted(first):
            raise ImageError(f"{first.name}: encrypted QCOW image: not supported; convert to raw")
        parent_link = headers.qcow_parent(first)
    if parent_link is None:
        if parents:
            raise ImageError(f"--parent was given, but {first.name} is not a differencing image")
        return EvidenceRef(fmt, tuple(files), first.name)
    chain = [*chain, first]
    if len(chain) >= MAX_CHAIN:
        raise ImageError(f"{first.name}: more than {MAX_CHAIN} stacked differencing images")
    parent_path = parents[0] if parents else _beside(first, parent_link.name, "parent image")
    if not parent_path.exists():
        raise ImageError(
            f"the parent image {parent_path.name} of {first.name} is missing: put it beside "
            f"{first.name} or give --parent PATH"
        )
    if any(_same(parent_path, c) for c in chain):
        raise ImageError(f"{first.name}: its chain of parent images loops back on itself")
    parent = _resolve(parent_path, [], parents[1:], chain)
    _check_parent(first, parent_link, parent, parent_path)
    return EvidenceRef(fmt, tuple(files), first.name, parent)


def _check_parent(child: Path, link: headers.ParentLink, parent: EvidenceRef, path: Path) -> None:
    """The parent must be a container the child can be stacked on, and the very disk it was
    made from where the child records an identifier (VHD: the parent's unique id; VMDK: its
    CID)."""
    if parent.format not in link.formats:
        raise ImageError(
            f"the parent image {path.name} of {child.name} is {parent.format}; the "
            f"{' or '.join(link.formats)} parent it needs cannot be stacked on that "
            "(not supported; convert to raw)"
        )
    if link.identity is None:
        return
    found = headers.vhd_identity(path) if parent.format == "vhd" else headers.vmdk_layout(path).cid
    if found != link.identity:
        raise ImageError(
            f"{path.name} is not the parent image {child.name} was made from (the child expects "
            f"identifier {link.identity}, {path.name} has {found}); give the right one with "
            "--parent PATH"
        )


def _beside(child: Path, recorded: str, what: str) -> Path:
    """The file a container names (an extent, a parent), looked for in the child's folder only.

    Of a recorded path (``C:\\VMs\\base.vhd``, ``../base.qcow2``) only the file name counts:
    evidence names nothing outside its own folder. An exact name first; else the one file
    whose name matches ignoring case (names recorded on Windows).
    """
    name = recorded.replace("\\", "/").rsplit("/", 1)[-1]
    if what == "extent" and name != recorded:
        raise ImageError(
            f"{child.name} names the extent {recorded!r} outside its own folder: not followed"
        )
    if not name or name in (".", ".."):
        raise ImageError(f"{child.name} names its {what} as {recorded!r}: not a file name")
    exact = child.with_name(name)
    if exact.exists():
        return exact
    try:
        with os.scandir(child.parent) as it:
            near = [Path(e.path) for e in it if e.name.lower() == name.lower()]
    except OSError:
        near = []
    if len(near) == 1:
        return near[0]
    if what == "extent":
        raise SegmentError(f"{name} is missing (an extent {child.name} names)")
    return exact


def find_segments(first: Path, extra: list[Path] | None = None) -> tuple[str, list[Path]]:
    """Work out the format and the segments from the first file the officer chose.

    EWF: libewf's own naming rules (E01, E02 … EAA …), checked to be one set. Split raw:
    ``.000``/``.001``/``.01`` numbering or ``.aa``/``.aaa`` lettering, followed while the next
    segment exists (a gap is named). Explicit extra segments are taken as given, in order. Any
    other container is one file here; its extents and parent come from its header (``resolve``).
    """
    _check_file(first)
    fmt = headers.sniff(first)
    if fmt == "ewf":
        if extra:
            segs = [first, *extra]
        else:
            try:
                segs = [Path(p) for p in pyewf.glob(str(first))]
            except OSError as e:
                raise SegmentError(f"cannot find the segments of {first.name}") from e
        for s in segs:
            _check_file(s)
        _refuse_repeats(segs)
        check_ewf_set(segs)
        return "ewf", segs
    if fmt != "raw":
        if extra:
            raise ImageError(
                f"{first.name} is a {fmt} image: give only that file (its other files are "
                "found from it)"
            )
        return fmt, [first]
    if extra:
        for s in extra:
            _check_file(s)
        return "split_raw", [first, *extra]
    segs = split_run(first)
    return ("split_raw" if len(segs) > 1 else "raw"), segs


def _segment(p: Path) -> Segment:
    try:
        return Segment(str(p), p.stat().st_size)
    except OSError as e:
        raise SegmentError(f"cannot open segment {p}: {e.strerror}") from e


def _same(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _refuse_repeats(paths: Sequence[Path]) -> None:
    """The same file given twice (under one name or two: a link) is refused, naming it."""
    seen: dict[tuple[int, int], Path] = {}
    for p in paths:
        try:
            st = Path(p).stat()
        except OSError:
            continue  # reported as missing where it is opened
        key = (st.st_dev, st.st_ino)
        if key in seen:
            same = "" if seen[key].name == Path(p).name else f" (as {seen[key].name} and as it)"
            raise SegmentError(f"{Path(p).name} is given twice{same}")
        seen[key] = Path(p)


def _check_file(p: Path) -> None:
    if not p.exists():
        raise ImageError(f"no such file: {p}")
    if p.is_dir():
        raise ImageError(f"{p} is a directory, not an image file")
    if not p.is_file():
        raise ImageError(f"{p} is not a regular file")
    if p.stat().st_size == 0:
        raise ImageError(f"{p} is empty (0 bytes)")
    if not os.access(p, os.R_OK):
        raise ImageError(f"{p} cannot be read (permission denied)")
