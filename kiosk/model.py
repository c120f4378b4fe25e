"""Frozen values that cross module, thread and process boundaries.

Everything a worker process receives or sends back is one of these, so they must pickle
cheaply and never hold a handle to the evidence. Image-internal paths are ``/``-joined ``str``.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from kiosk.locator import Locator, RangeLoc, VolumeLoc


class LegalBasis(StrEnum):
    """The kind of authority under which a device may be examined."""

    WARRANT = "warrant"
    STATUTORY = "statutory"
    CONSENT = "consent"
    OTHER = "other"


class FileStatus(StrEnum):
    """What happened to one file; every file found ends with exactly one of these."""

    SCANNED = "scanned"  # hashed, typed and YARA-scanned in full
    # larger than the YARA cap: hashed and typed; every rule on the head only, the window-safe
    # rules on all of it (FileResult.reach says how far each reached)
    HASHED_ONLY = "hashed_only"
    KNOWN_GOOD = "known_good"  # in a known-good set: hashed, neither typed nor YARA-scanned
    UNRECOVERABLE = "unrecoverable"  # a deleted name whose metadata or content is gone
    ERROR = "error"  # reading or scanning failed; the reason says why


class Outcome(StrEnum):
    """How the run ended. Only ``complete`` can ever lead to "no matches within scope"."""

    COMPLETE = "complete"
    CANCELLED = "cancelled"
    FAILED = "failed"


class Recommendation(StrEnum):
    """The triage result shown to the officer. There is deliberately no "clear"."""

    SUBMIT = "submit_for_examination"
    NO_MATCHES = "no_matches_in_scope"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """Who asked for the scan and under what authority; recorded before the image is opened."""

    case_ref: str
    exhibit_ref: str
    officer: str
    authorised_by: str
    legal_basis: LegalBasis
    legal_ref: str
    device_description: str = ""


@dataclass(frozen=True, slots=True)
class FileTask:
    """One stream of one file to read, found by the walk; metadata only, never content.

    ``locator`` says where its bytes are (``kiosk.locator``): only ``kiosk.evidence`` opens it.
    ``readable`` is False when the walk found only a name (deleted entry whose metadata is
    gone): the worker then records it without reading.
    """

    seq: int
    locator: Locator
    path: str
    allocated: bool
    size: int
    readable: bool = True
    unreadable_reason: str = ""
    stored_name: str = ""  # where a backup stores it under another name (iTunes: 3d/3d0d7e5f…)

    @property
    def filename(self) -> str:
        """The last path component (with any ``:stream`` suffix)."""
        return self.path.rsplit("/", 1)[-1]

    # What the report's inventory lines name a file by, read from the locator.

    @property
    def volume(self) -> int:
        """Index of the volume the file lies in."""
        loc = self.locator
        return loc.volume.index if isinstance(loc, RangeLoc) else loc.fs.volume.index

    @property
    def fs_offset(self) -> int:
        """Byte offset in the media of the filesystem holding the file."""
        loc = self.locator
        return loc.volume.offset if isinstance(loc, RangeLoc) else loc.fs.volume.offset

    @property
    def fs_type(self) -> str:
        """Type of that filesystem (``ext4``, ``ntfs``, ``fat16`` ...); "" outside any."""
        loc = self.locator
        if not isinstance(loc, RangeLoc):  # a stream, or an archive member (its file's)
            return loc.fs.fs_type
        return "" if isinstance(loc.parent, VolumeLoc) else loc.parent.fs_type

    @property
    def inode(self) -> int:
        """The entry's metadata address in its filesystem (0 for a byte range)."""
        return 0 if isinstance(self.locator, RangeLoc) else self.locator.inode

    @property
    def area(self) -> RangeLoc | None:
        """The byte range when this task is an area (unallocated space...), not a file."""
        return self.locator if isinstance(self.locator, RangeLoc) else None

    def __reduce__(self) -> tuple[type[FileTask], tuple[Any, ...]]:
        # Every task crosses two pipes (walker -> scan -> worker); a plain tuple pickles about
        # four times faster than a frozen dataclass's generic state. The locator pickles the
        # same way (kiosk.locator).
        return (FileTask, _TASK_FIELDS(self))


_TASK_FIELDS = operator.attrgetter(*(f.name for f in fields(FileTask)))


def _fields_of(obj: Any) -> tuple[Any, ...]:
    """A frozen slotted record's fields in ``__init__`` order (its ``__slots__``), as a tuple."""
    return tuple([getattr(obj, n) for n in obj.__slots__])


@dataclass(frozen=True, slots=True)
class WalkProblem:
    """An area the walk could not enter (a directory that would not open, a loop, depth cut)."""

    volume: int
    path: str
    inode: int
    reason: str
    blocking: bool = True  # False when nothing was missed (a second path to a walked directory)


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """A YARA rule that matched a file, with the rule's own meta."""

    pack: str
    rule: str
    category: str
    severity: str
    description: str

    def __reduce__(self) -> tuple[type[RuleMatch], tuple[Any, ...]]:
        return (RuleMatch, _fields_of(self))  # as FileTask: a plain tuple crosses pipes faster


# Findings kiosk makes itself, without a rule pack (kiosk.engine.disguise, kiosk.engine.encrypted):
# rule matches of the built-in "pack" BUILTIN_PACK, so scope, report, views and recommendation
# treat them like any rule match. ``description`` holds the reason (what the content is).
BUILTIN_PACK = "kiosk"
DISGUISED_FILE = "disguised_file"
ENCRYPTED_DATA = "encrypted_data"
BUILTIN_CATEGORIES = (DISGUISED_FILE, ENCRYPTED_DATA)


@dataclass(frozen=True, slots=True)
class HashMatch:
    """A hash set that lists one of the file's digests.

    A perceptual set (algorithm ``pdq``) matches a picture whose PDQ hash lies within the set's
    Hamming ``threshold`` of a listed one: ``distance`` says how far (0 = identical hash). Both
    are None for the exact digests of cryptographic sets.
    """

    hashset: str
    version: str
    algorithm: str
    disposition: str
    category: str
    distance: int | None = None
    threshold: int | None = None

    def __reduce__(self) -> tuple[type[HashMatch], tuple[Any, ...]]:
        return (HashMatch, _fields_of(self))


@dataclass(frozen=True, slots=True)
class AreaHit:
    """A window-safe rule that matched in a byte area: where (media offsets), never what."""

    match: RuleMatch
    offsets: tuple[int, ...]  # the first distinct match offsets, ascending (at most a few dozen)
    count: int  # every distinct match offset

    def __reduce__(self) -> tuple[type[AreaHit], tuple[Any, ...]]:
        return (AreaHit, _fields_of(self))


@dataclass(frozen=True, slots=True)
class AreaScan:
    """The windowed scan of one byte area: unallocated space, slack, a disk area outside
    partitions. Offsets are absolute in the media; content is never kept."""

    kind: str  # "unallocated", "slack" or "outside_partitions"
    volume: int
    start: int
    length: int  # bytes of the range this scan answers for
    scanned: int  # bytes of it read and scanned (unallocated: only the unallocated blocks)
    hits: tuple[AreaHit, ...] = ()
    where: str = ""  # slack: the file whose slack it is

    def __reduce__(self) -> tuple[type[AreaScan], tuple[Any, ...]]:
        # every allocated file's result carries its slack's scans: one per file and pipe
        return (AreaScan, _fields_of(self))


@dataclass(frozen=True, slots=True)
class FileResult:
    """The outcome for one FileTask: digests, type, matches, status and the reason for it."""

    task: FileTask
    status: FileStatus
    reason: str = ""
    md5: str | None = None
    sha1: str | None = None
    sha256: str | None = None
    mime: str | None = None
    bytes_read: int = 0
    rule_matches: tuple[RuleMatch, ...] = ()
    hash_matches: tuple[HashMatch, ...] = ()
    # An archive's members, in its reader's order, each a result of its own (kiosk.engine.archives)
    members: tuple[FileResult, ...] = ()
    not_expanded: str = ""  # why this archive's members were not all examined (limit, damage)
    areas: tuple[AreaScan, ...] = ()  # an area task's scan, or a file's slack
    reach: tuple[int, int] | None = None  # over the cap: bytes (whole-file, window) rules saw

    @property
    def is_finding(self) -> bool:
        """A file is a finding when a rule matched or a known-bad set lists it."""
        return bool(self.rule_matches) or any(
            m.disposition == "known_bad" for m in self.hash_matches
        )


@dataclass(frozen=True, slots=True)
class VolumeRecord:
    """One region of the image: a filesystem we walk, or an area we say we did not examine."""

    index: int
    offset: int
    length: int
    description: str
    fs_type: str | None
    examined: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What a phone backup says about the device it came from (iTunes ``Info.plist``).

    ``kind`` names the evidence as the preflight does ("iTunes backup, encrypted, iPhone 12,
    iOS 17.4"); the other values are "" when the backup does not record them.
    """

    kind: str
    name: str
    model: str
    os_version: str
    serial: str
    imei: str


@dataclass(frozen=True, slots=True)
class MediaRecord:
    """The evidence as opened: format, segments and what its container says about itself."""

    name: str
    format: str
    segments: tuple[str, ...]
    size: int
    ewf_stored_hashes: dict[str, str] = field(default_factory=dict)
    device: DeviceInfo | None = None  # a phone backup's device details; None otherwise


@dataclass(frozen=True, slots=True)
class Progress:
    """A coalesced progress snapshot for the front ends."""

    files_total: int
    files_done: int
    bytes_total: int
    bytes_done: int
    findings: int
    elapsed_s: float
    # the walk is still finding files: the totals are what it has found so far, and a fraction
    # or an ETA against them would move backwards (evidence.walker: one walk, streamed)
    counting: bool = False

    @property
    def fraction(self) -> float | None:
        """Done, 0 to 1, by bytes (by files when there are none); None while still counting."""
        if self.counting:
            return None
        if self.bytes_total:
            return self.bytes_done / self.bytes_total
        return self.files_done / self.files_total if self.files_total else 1.0
