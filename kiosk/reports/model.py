"""The triage report as frozen records: every part of ``report.json``, typed.

The report used to be a dictionary literal read back by string keys in five places, with its
shape written down nowhere; a renamed key failed at run time in the one renderer that read it.
These records are that shape. ``kiosk.reports.codec`` is the only code that turns them into the
JSON value ``canonical()`` writes (and reads a verified report back into them), and
``docs/report.schema.json`` describes the same shape for other tools.

Values that come from the case form, the evidence or the loaded knowledge reuse the records of
``kiosk.model`` (``CaseRecord``, ``VolumeRecord``, ``RuleMatch``, ``HashMatch``) and of the audit
log (``Checkpoint``). Closed sets of values are enums; free text from rule meta or hash-set
manifests (severity, disposition, algorithm) stays text, exactly as it was loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kiosk.model import (
    CaseRecord,
    DeviceInfo,
    FileStatus,
    HashMatch,
    Outcome,
    Recommendation,
    RuleMatch,
    VolumeRecord,
)
from kiosk.trust.audit import Checkpoint

SCHEMA_VERSION = "kiosk.triage-report/1"


class MatchType(StrEnum):
    """What kind of knowledge matched: a YARA rule or a hash-set entry."""

    YARA = "yara"
    HASHSET = "hashset"


class NotExaminedKind(StrEnum):
    """Every kind of area the report lists as not examined."""

    VOLUME = "volume"  # a partition we could not read (no filesystem found, possibly encrypted)
    DISK_AREA = "disk_area"  # unallocated disk space outside any partition
    FS_UNALLOCATED = "fs_unallocated"  # a walked filesystem's unallocated space (never carved)
    DIRECTORY = "directory"  # a directory the walk could not enter (error, loop, depth)
    FILE = "file"  # a file that could not be read or scanned
    DELETED_FILE = "deleted_file"  # a deleted name whose metadata or content is gone
    UNREACHED = "unreached"  # files a cancelled or failed run never came to
    ARCHIVE = "archive"  # an archive whose members were not all examined (a limit, damage)
    ARCHIVE_MEMBER = "archive_member"  # a member that could not be read (encrypted, a method)


# --------------------------------------------------------------------------- what ran


@dataclass(frozen=True, slots=True)
class Engines:
    """The versions of the engines that did the work, as they report themselves."""

    kiosk: str
    sleuthkit: str
    libyara: str
    libmagic: str
    # the YARA engine that matched, with its version ("yara-x 1.23.0", "libyara 4.5.4"); None
    # (absent) when no rule pack was applied, and in reports written before the choice existed
    yara_engine: str | None = None


@dataclass(frozen=True, slots=True)
class ToolRecord:
    name: str  # always "kiosk"
    version: str
    engines: Engines


@dataclass(frozen=True, slots=True)
class EwfCheck:
    """An EWF container's own media hashes against the ones computed while scanning."""

    stored: dict[str, str]  # algorithm -> hex, as the container recorded them at acquisition
    computed: dict[str, str]  # the same algorithms over the media as read; empty if unfinished
    verified: bool | None  # None when no stored algorithm could be compared


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """The evidence as opened: its segments, size and the SHA-256 of the media content."""

    name: str
    # raw, split_raw, ewf, vmdk, vhd, vhdx, qcow, qcow2 (kiosk.evidence.resolve); logical evidence:
    # zip, tar, tar.gz, tar.bz2, tar.xz, folder, itunes, adb (kiosk.evidence.logical)
    format: str
    segments: tuple[str, ...]
    size: int
    sha256: str | None  # None when the media could not be read in full
    hash_error: str | None  # why it could not
    ewf: EwfCheck | None  # only for EWF images
    device: DeviceInfo | None = None  # a phone backup's device details; absent otherwise
    # every file of the evidence, when it is more than one raw file (absent in older reports)
    evidence_files: tuple[EvidenceFileRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class EvidenceFileRecord:
    """One file the officer was given (a segment, an extent, a parent): as on the exhibit label."""

    name: str
    size: int
    sha256: str | None  # None when it could not be read in full


@dataclass(frozen=True, slots=True)
class RulePackRecord:
    name: str
    version: str
    digest: str
    files: tuple[str, ...]
    rules: int
    signed_by: str | None  # key id; None only when dev mode let an unverified pack in
    quarantined: int | None = None  # imported packs only: rules left out (absent otherwise)


@dataclass(frozen=True, slots=True)
class HashSetRecord:
    name: str
    version: str
    algorithm: str  # the algorithms it holds, strongest first, joined by "+"
    disposition: str  # "known_bad" or "known_good"
    category: str
    count: int
    digest: str
    signed_by: str | None  # key id; None only when dev mode let an unverified set in
    dev_override: tuple[str, ...]  # the verification problems --dev accepted


@dataclass(frozen=True, slots=True)
class OutOfScope:
    """How many matches of one category fell outside the authorised scope (never where)."""

    type: MatchType
    category: str
    matches: int


@dataclass(frozen=True, slots=True)
class ScopeRecord:
    """The authorised categories, and how much fell outside them."""

    restricted: bool  # False: every category of the loaded packs and sets
    rule_categories: tuple[str, ...]
    hash_categories: tuple[str, ...]
    out_of_scope_matches: tuple[OutOfScope, ...]


@dataclass(frozen=True, slots=True)
class SettingsRecord:
    max_yara_bytes: int
    yara_timeout_s: int
    workers: int
    inventory: bool
    allow_self_authorisation: bool
    dev_mode: bool
    scope: ScopeRecord
    yara: bool  # False: a hash-only run, no rule pack loaded
    # above this percent of content bytes hashed only, no result is "no matches" (None: a report
    # written before the limit existed)
    max_hashed_only_percent: int | None = None
    # unallocated space, slack and disk areas outside partitions searched (None: a report
    # written before the switch existed)
    unallocated: bool | None = None
    cluster: ClusterRecord | None = None  # None (absent): the scan ran on this machine's own pool


@dataclass(frozen=True, slots=True)
class ClusterRecord:
    """Where a run's files were scanned when it was not this machine's own worker pool.

    ``run_fields`` names the report fields that describe the run rather than the evidence: the
    only fields in which this report may differ from the same scan on one machine.
    """

    scheduler: str  # the scheduler's address, or "local" for an in-process LocalCluster
    transport: str  # "tls", "insecure" (plain tcp, asked for with --insecure) or "local"
    workers: int  # Dask workers connected when the scan started
    run_fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    status: Outcome
    reason: str | None  # why a run was cancelled or failed; None when complete


# --------------------------------------------------------------------------- what was covered


@dataclass(frozen=True, slots=True)
class FileCounts:
    """Files found by the walk, and how each one ended."""

    found: int
    examined: int  # the sum of the five statuses
    scanned: int
    hashed_only: int
    known_good: int
    unrecoverable: int
    error: int
    not_reached: int  # found - examined: what a cancelled or failed run never came to


@dataclass(frozen=True, slots=True)
class ByteCounts:
    found: int  # the sizes of every file found
    read: int  # bytes actually read from the image
    yara_scanned: int  # the sizes of the files YARA scanned in full
    hashed_only: int  # the sizes of the files over the YARA cap


@dataclass(frozen=True, slots=True)
class MemberCounts:
    """Members of archives found inside the evidence, counted apart from the files the walk
    found (``kiosk.engine.archives``): each is examined as a file is, and ends with a status."""

    found: int  # every member listed (directories excepted), nested archives' included
    scanned: int
    hashed_only: int
    known_good: int
    error: int  # encrypted, unreadable or stopped by a limit: each in not_examined
    bytes: int  # the sizes of the members


@dataclass(frozen=True, slots=True)
class Coverage:
    volumes: tuple[VolumeRecord, ...]
    files: FileCounts
    bytes: ByteCounts
    archive_members: MemberCounts | None = None  # None: no archive member was found


# --------------------------------------------------------------------------- not examined


@dataclass(frozen=True, slots=True)
class AreaNotExamined:
    """A region of the image: a volume, a gap between partitions, or a filesystem's free space."""

    kind: NotExaminedKind  # VOLUME, DISK_AREA or FS_UNALLOCATED
    volume: int
    offset: int
    length: int
    description: str
    reason: str

    @property
    def where(self) -> str:
        return self.description


@dataclass(frozen=True, slots=True)
class DirectoryNotExamined:
    volume: int
    path: str
    inode: int
    reason: str

    @property
    def kind(self) -> NotExaminedKind:
        return NotExaminedKind.DIRECTORY

    @property
    def where(self) -> str:
        return self.path


@dataclass(frozen=True, slots=True)
class FileNotExamined:
    kind: NotExaminedKind  # FILE or DELETED_FILE
    volume: int
    path: str
    inode: int
    size: int
    reason: str

    @property
    def where(self) -> str:
        return self.path


@dataclass(frozen=True, slots=True)
class UnreachedFiles:
    count: int
    reason: str

    @property
    def kind(self) -> NotExaminedKind:
        return NotExaminedKind.UNREACHED

    @property
    def where(self) -> str:
        return str(self.count)


@dataclass(frozen=True, slots=True)
class ArchiveNotExamined:
    """An archive (a file, or a member) whose members were not all examined, and why."""

    volume: int
    path: str
    inode: int
    reason: str

    @property
    def kind(self) -> NotExaminedKind:
        return NotExaminedKind.ARCHIVE

    @property
    def where(self) -> str:
        return self.path


NotExamined = (
    AreaNotExamined | DirectoryNotExamined | FileNotExamined | UnreachedFiles | ArchiveNotExamined
)


# --------------------------------------------------------------------------- findings

Match = RuleMatch | HashMatch


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One file as the report and the inventory (files.jsonl) hold it: metadata, never content.

    ``error`` and ``reason`` are kept as written: ``error`` carries the reason of a file that
    failed (status error or unrecoverable), ``reason`` the reason of any file that has one.
    """

    volume: int
    fs_offset: int
    fs_type: str
    path: str
    inode: int
    allocated: bool
    size: int
    md5: str | None
    sha1: str | None
    sha256: str | None
    mime: str | None
    status: FileStatus
    error: str | None
    reason: str | None
    matches: tuple[Match, ...]  # rule matches first, then hash-set matches, in the scan's order
    stored_name: str | None = None  # a backup's hashed name for the file; absent otherwise
    yara_reach: YaraReach | None = None  # only for a file over the YARA cap

    @property
    def rule_matches(self) -> tuple[RuleMatch, ...]:
        return tuple(m for m in self.matches if isinstance(m, RuleMatch))

    @property
    def known_bad(self) -> tuple[HashMatch, ...]:
        """The hash-set matches that make the file a finding (known-good ones never do)."""
        return tuple(
            m for m in self.matches if isinstance(m, HashMatch) and m.disposition == "known_bad"
        )

    @property
    def finding_matches(self) -> tuple[Match, ...]:
        """What makes the file a finding: rule matches and known-bad hash-set matches."""
        return tuple(
            m for m in self.matches if isinstance(m, RuleMatch) or m.disposition == "known_bad"
        )


@dataclass(frozen=True, slots=True)
class YaraReach:
    """How far each kind of rule reached in a file over the YARA cap (bytes from its start)."""

    whole_file_rules: int  # every rule: the first ``max_yara_bytes``
    window_rules: int  # the window-safe rules, in overlapping windows


# --------------------------------------------------------------------------- byte areas


@dataclass(frozen=True, slots=True)
class AreaCoverage:
    """One area kind of one volume: its bytes, and how many were read and scanned."""

    kind: str  # "unallocated", "slack" or "outside_partitions"
    volume: int
    offset: int
    length: int  # the area: the volume (unallocated, outside partitions) or the slack spans
    scanned: int  # bytes read and scanned (unallocated: the unallocated blocks only)


@dataclass(frozen=True, slots=True)
class AreaFinding:
    """A rule that matched in a byte area: the area, the rule, where -- never content."""

    kind: str
    volume: int
    offset: int  # the area's absolute byte offset in the media
    length: int
    file: str | None  # slack: the file whose slack it is
    match: RuleMatch
    offsets: tuple[int, ...]  # absolute match offsets, the first ones, ascending
    count: int  # every distinct match offset


@dataclass(frozen=True, slots=True)
class AreasRecord:
    """The byte areas searched beyond files: unallocated space, slack, outside partitions."""

    searched: bool
    reason: str  # how they were searched, or why not
    window_rules: tuple[str, ...]  # "pack:rule" of every window-safe rule that ran there
    window_bytes: int
    overlap: int
    coverage: tuple[AreaCoverage, ...]
    findings: tuple[AreaFinding, ...]


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class RecommendationRecord:
    result: Recommendation
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InventoryRecord:
    """Where the one-line-per-file inventory is, and the digest that binds it to the report."""

    file: str  # always "files.jsonl", beside report.json
    sha256: str
    records: int


@dataclass(frozen=True, slots=True)
class TriageReport:
    """One signed triage report: ``report.json``, part by part."""

    schema: str  # SCHEMA_VERSION
    report_id: str
    tool: ToolRecord
    case: CaseRecord
    image: ImageRecord
    rule_packs: tuple[RulePackRecord, ...]
    hash_sets: tuple[HashSetRecord, ...]
    settings: SettingsRecord
    started: str  # RFC 3339 UTC with microseconds and a Z (kiosk.canonical.utc_text)
    finished: str  # the signing time
    outcome: OutcomeRecord
    coverage: Coverage
    not_examined: tuple[NotExamined, ...]
    findings: tuple[FileRecord, ...]
    findings_by_category: dict[str, int]  # category -> files with at least one such match
    recommendation: RecommendationRecord
    inventory: InventoryRecord | None  # None when no inventory was asked for
    signing_key: str  # the key id that signed the report
    audit_checkpoint: Checkpoint | None  # the audit log just after scan_finished; None: no log
    areas: AreasRecord | None = None  # None: a report written before areas were searched
