"""Frozen values that cross module, thread and process boundaries.

Everything a worker process receives or sends back is one of these, so they must pickle
cheaply and never hold a handle to the evidence. Image-internal paths are ``/``-joined ``str``.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from kiosk.locator import Locator


class LegalBasis(StrEnum):
    """The kind of authority under which a device may be examined."""

    WARRANT = "warrant"
    STATUTORY = "statutory"
    CONSENT = "consent"
    OTHER = "other"


class FileStatus(StrEnum):
    """What happened to one file; every file found ends with exactly one of these."""

    SCANNED = "scanned"  # hashed, typed and YARA-scanned in full
    HASHED_ONLY = "hashed_only"  # larger than the YARA cap: hashed and typed, not YARA-scanned
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

    @property
    def filename(self) -> str:
        """The last path component (with any ``:stream`` suffix)."""
        return self.path.rsplit("/", 1)[-1]

    # What the report's inventory lines name a file by, read from the locator.

    @property
    def volume(self) -> int:
        """Index of the volume the file lies in."""
        return self.locator.fs.volume.index

    @property
    def fs_offset(self) -> int:
        """Byte offset in the media of the filesystem holding the file."""
        return self.locator.fs.volume.offset

    @property
    def fs_type(self) -> str:
        """Type of that filesystem (``ext4``, ``ntfs``, ``fat16`` ...)."""
        return self.locator.fs.fs_type

    @property
    def inode(self) -> int:
        """The entry's metadata address in its filesystem."""
        return self.locator.inode

    def __reduce__(self) -> tuple[type[FileTask], tuple[Any, ...]]:
        # Every task crosses two pipes (walker -> scan -> worker); a plain tuple pickles about
        # four times faster than a frozen dataclass's generic state. The locator pickles the
        # same way (kiosk.locator).
        return (FileTask, _TASK_FIELDS(self))


_TASK_FIELDS = operator.attrgetter(*(f.name for f in fields(FileTask)))


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


@dataclass(frozen=True, slots=True)
class HashMatch:
    """A hash set that lists one of the file's digests."""

    hashset: str
    version: str
    algorithm: str
    disposition: str
    category: str


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
class MediaRecord:
    """The evidence as opened: format, segments and what its container says about itself."""

    name: str
    format: str
    segments: tuple[str, ...]
    size: int
    ewf_stored_hashes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Progress:
    """A coalesced progress snapshot for the front ends."""

    files_total: int
    files_done: int
    bytes_total: int
    bytes_done: int
    findings: int
    elapsed_s: float
