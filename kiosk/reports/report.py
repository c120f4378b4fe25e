"""Build the triage report's records from results: totals, findings, not-examined list,
recommendation.

The records (``kiosk.reports.model``) are written as canonical JSON (RFC 8785,
``kiosk.reports.encode``) so the same scan always gives the same bytes and a signature covers
exactly what a reader sees. They hold metadata only — never file content.
Wording rule: nothing here ever says "clear" or "no evidence"; the best a scan can say is that
nothing matched *within the scope it examined*, and a cancelled, failed or incomplete scan can
never say even that.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kiosk.config import MAX_HASHED_ONLY_PERCENT
from kiosk.evidence.logical import LOGICAL_FS_TYPES
from kiosk.hashsets.index import HashSet
from kiosk.locator import MemberLoc
from kiosk.model import (
    BUILTIN_PACK,
    DISGUISED_FILE,
    ENCRYPTED_DATA,
    FileResult,
    FileStatus,
    MediaRecord,
    Outcome,
    Recommendation,
    RuleMatch,
    VolumeRecord,
    WalkProblem,
)
from kiosk.packs.load import RulePack
from kiosk.reports.areas import AreaTally
from kiosk.reports.model import (
    ArchiveNotExamined,
    AreaNotExamined,
    ByteCounts,
    Coverage,
    DirectoryNotExamined,
    EvidenceFileRecord,
    EwfCheck,
    FileCounts,
    FileNotExamined,
    FileRecord,
    HashSetRecord,
    ImageRecord,
    MemberCounts,
    NotExamined,
    NotExaminedKind,
    RulePackRecord,
    UnreachedFiles,
    YaraReach,
)


def file_record(r: FileResult) -> FileRecord:
    """One file's result as the report and the inventory (files.jsonl) hold it."""
    t = r.task
    return FileRecord(
        volume=t.volume,
        fs_offset=t.fs_offset,
        fs_type=t.fs_type,
        path=t.path,
        inode=t.inode,
        allocated=t.allocated,
        size=t.size,
        md5=r.md5,
        sha1=r.sha1,
        sha256=r.sha256,
        mime=r.mime,
        status=r.status,
        error=r.reason if r.status in (FileStatus.ERROR, FileStatus.UNRECOVERABLE) else None,
        reason=r.reason or None,
        matches=(*r.rule_matches, *r.hash_matches),
        stored_name=t.stored_name or None,
        yara_reach=YaraReach(*r.reach) if r.reach else None,
    )


@dataclass(slots=True)
class Tally:
    """Running totals over the results; keeps findings and problems, never every file."""

    files: dict[FileStatus, int] = field(default_factory=lambda: dict.fromkeys(FileStatus, 0))
    bytes_found: int = 0
    bytes_read: int = 0
    bytes_yara: int = 0
    bytes_hashed_only: int = 0
    findings: list[FileRecord] = field(default_factory=list)
    problems: list[FileNotExamined] = field(default_factory=list)
    categories: dict[str, int] = field(default_factory=dict)
    # archive members (kiosk.engine.archives), counted apart from the files the walk found
    members: dict[FileStatus, int] = field(default_factory=lambda: dict.fromkeys(FileStatus, 0))
    member_bytes: int = 0
    archives: list[ArchiveNotExamined] = field(default_factory=list)  # not fully expanded
    no_content: int = 0  # links and special members of logical evidence (not deleted names)
    areas: AreaTally = field(default_factory=AreaTally)  # byte areas: never counted as files

    @property
    def files_done(self) -> int:
        return sum(self.files.values())

    @property
    def records(self) -> int:
        """Results seen, archive members included: the inventory's lines."""
        return self.files_done + sum(self.members.values())

    def add(self, r: FileResult) -> None:
        if r.task.area is not None or r.areas:
            self.areas.add(r)
            if r.task.area is not None:
                return  # an area is not a file: its findings are the report's areas section
        if r.not_expanded:
            self.archives.append(
                ArchiveNotExamined(r.task.volume, r.task.path, r.task.inode, r.not_expanded)
            )
        if isinstance(r.task.locator, MemberLoc):
            self._add_member(r)
            return
        self.files[r.status] += 1
        if r.status is FileStatus.UNRECOVERABLE and r.task.fs_type in LOGICAL_FS_TYPES:
            self.no_content += 1
        self.bytes_found += r.task.size
        self.bytes_read += r.bytes_read
        if r.status is FileStatus.SCANNED:
            self.bytes_yara += r.task.size
        elif r.status is FileStatus.HASHED_ONLY:
            self.bytes_hashed_only += r.task.size
        self._add_finding(r)
        if r.status in (FileStatus.ERROR, FileStatus.UNRECOVERABLE):
            self.problems.append(
                FileNotExamined(
                    kind=NotExaminedKind.FILE
                    if r.status is FileStatus.ERROR or r.task.fs_type in LOGICAL_FS_TYPES  # a link
                    else NotExaminedKind.DELETED_FILE,
                    volume=r.task.volume,
                    path=r.task.path,
                    inode=r.task.inode,
                    size=r.task.size,
                    reason=r.reason,
                )
            )

    def _add_finding(self, r: FileResult) -> None:
        if r.is_finding:
            self.findings.append(file_record(r))
            cats = {m.category for m in r.rule_matches}
            cats |= {m.category for m in r.hash_matches if m.disposition == "known_bad"}
            for c in cats:
                self.categories[c] = self.categories.get(c, 0) + 1

    def _add_member(self, r: FileResult) -> None:
        self.members[r.status] += 1
        self.member_bytes += r.task.size
        self._add_finding(r)
        if r.status is FileStatus.ERROR:
            self.problems.append(
                FileNotExamined(
                    NotExaminedKind.ARCHIVE_MEMBER,
                    r.task.volume,
                    r.task.path,
                    r.task.inode,
                    r.task.size,
                    r.reason,
                )
            )

    def member_counts(self) -> MemberCounts | None:
        """The report's ``coverage.archive_members``; None when no member was found."""
        m = self.members
        if not sum(m.values()):
            return None
        return MemberCounts(
            found=sum(m.values()),
            scanned=m[FileStatus.SCANNED],
            hashed_only=m[FileStatus.HASHED_ONLY],
            known_good=m[FileStatus.KNOWN_GOOD],
            error=m[FileStatus.ERROR] + m[FileStatus.UNRECOVERABLE],
            bytes=self.member_bytes,
        )


@dataclass(frozen=True, slots=True)
class MediaHashes:
    """What we computed over the media, and what the EWF container said it should be."""

    computed: dict[str, str]  # algorithm -> hex; empty when the read did not finish
    stored: dict[str, str]
    error: str = ""
    files: tuple[EvidenceFileRecord, ...] = ()  # each evidence file, if more than one raw file

    @property
    def ewf_verified(self) -> bool | None:
        """True/False when the container stored a hash we could compare; None otherwise."""
        common = [a for a in self.stored if a in self.computed]
        if not common:
            return None
        return all(self.stored[a] == self.computed[a] for a in common)


ENCRYPTED_REASON = (
    "{n} file(s) hold encrypted data (encrypted archives or documents, password databases, "
    "wallets, possible containers): password needed, their content was not examined"
)


def only_encrypted(f: FileRecord) -> bool:
    """A finding whose every match is the kiosk's own encrypted-data check."""
    return all(
        isinstance(m, RuleMatch) and m.pack == BUILTIN_PACK and m.category == ENCRYPTED_DATA
        for m in f.finding_matches
    )


def finding_reasons(findings: list[FileRecord]) -> list[str]:
    """One reason per kind of finding, with how many files have it."""
    rules = disguised = exact = alike = locked = 0
    for f in findings:
        own = [m for m in f.rule_matches if m.pack == BUILTIN_PACK]
        rules += any(m.pack != BUILTIN_PACK for m in f.rule_matches)
        disguised += any(m.category == DISGUISED_FILE for m in own)
        locked += any(m.category == ENCRYPTED_DATA for m in own)
        exact += any(m.distance is None for m in f.known_bad)
        alike += any(m.distance is not None for m in f.known_bad)
    counted = (
        (rules, "{} file(s) matched rule-pack rules"),
        (exact, "{} file(s) are listed in known-bad hash sets"),
        (alike, "{} picture(s) look like pictures in perceptual hash sets (PDQ)"),
        (disguised, "{} file(s) are disguised: the content is of another kind than the name says"),
        (locked, ENCRYPTED_REASON.replace("{n}", "{}")),
    )
    return [text.format(n) for n, text in counted if n]


def recommend(
    outcome: Outcome,
    outcome_reason: str,
    tally: Tally,
    volumes: list[VolumeRecord],
    walk_problems: list[WalkProblem],
    hashes: MediaHashes,
    files_total: int,
    scope: str,
    yara: bool = True,
    max_hashed_only_percent: int = MAX_HASHED_ONLY_PERCENT,
    window_rules: int = 0,
) -> tuple[Recommendation, list[str]]:
    """The officer's answer and every reason for it.

    A finding always means submit, except a file whose only finding is encrypted data: the kiosk
    could not look inside, so it makes the result inconclusive ("password needed") rather than
    a reason to submit on its own. Otherwise anything short of full coverage — a cancelled or
    failed run, a volume we could not read, a file or directory that failed, a media hash that
    does not verify, more than ``max_hashed_only_percent`` of the content bytes over the YARA
    cap (so the rules never saw most of it) — makes the result inconclusive.
    """
    reasons: list[str] = []
    in_areas = len(tally.areas.findings)
    locked = [f for f in tally.findings if only_encrypted(f)]
    if len(locked) < len(tally.findings) or in_areas:
        reasons += finding_reasons(tally.findings)
        if in_areas:
            reasons.append(
                f"{in_areas} rule match(es) in unallocated space, file slack or disk areas "
                "outside partitions"
            )
        if outcome is not Outcome.COMPLETE:
            reasons.append(
                f"the scan did not complete ({outcome.value}): other files were not examined"
            )
        return Recommendation.SUBMIT, reasons
    if outcome is not Outcome.COMPLETE:
        reasons.append(
            f"the scan was {outcome.value}: {outcome_reason}"
            if outcome_reason
            else f"the scan was {outcome.value}"
        )
        reasons.append(f"{files_total - tally.files_done} of {files_total} files were not examined")
    unread = [
        v for v in volumes if not v.examined and v.fs_type is None and "unallocated" not in v.reason
    ]
    for v in unread:
        reasons.append(f"volume {v.index} ({v.description}) was not examined: {v.reason}")
    errors = tally.files[FileStatus.ERROR]
    if errors:
        reasons.append(f"{errors} file(s) could not be read or scanned")
    member_errors = tally.members[FileStatus.ERROR]
    if member_errors:
        reasons.append(
            f"{member_errors} archive member(s) could not be examined (encrypted, unreadable or "
            "past an archive limit)"
        )
    if tally.archives:
        reasons.append(
            f"{len(tally.archives)} archive(s) were not fully expanded (a limit, damage or an "
            "unsupported format): see not examined"
        )
    blocking = [p for p in walk_problems if p.blocking]
    if blocking:
        reasons.append(f"{len(blocking)} directory area(s) could not be walked")
    if hashes.ewf_verified is False:
        reasons.append(
            "the image's stored EWF hash does not match its content: integrity not verified"
        )
    if hashes.error:
        reasons.append(f"the image could not be read in full: {hashes.error}")
    if locked:
        reasons.append(ENCRYPTED_REASON.format(n=len(locked)))
    content = tally.bytes_yara + tally.bytes_hashed_only
    hashed_share = tally.bytes_hashed_only * 100 / content if content else 0.0
    if yara and hashed_share > max_hashed_only_percent:
        reasons.append(
            f"{tally.bytes_hashed_only:,} of {content:,} content bytes ({int(hashed_share)} %) "
            + (
                f"were in files over the size cap, where only the {window_rules} window-safe "
                "rule(s) ran past the cap: more than the "
                f"{max_hashed_only_percent} % limit, so most rules did not see most of the content"
                if window_rules
                else "were hashed but not YARA-scanned (files over the size cap): more than the "
                f"{max_hashed_only_percent} % limit, so the rule packs did not see most of the "
                "content"
            )
        )
    if reasons:
        return Recommendation.INCONCLUSIVE, reasons
    if not yara:  # a hash-only run must never read as "no rule matched"
        reasons.append(
            f"no file is listed in a known-bad hash set within scope ({scope}); YARA was disabled "
            "for this run, so no file was checked against rule packs"
        )
    else:
        reasons.append(
            f"no file matched the rule packs or known-bad hash sets within scope ({scope})"
        )
    skipped = tally.files[FileStatus.UNRECOVERABLE] - tally.no_content
    if skipped:
        reasons.append(
            f"{skipped} deleted entries had no recoverable content and are listed as not examined"
        )
    if tally.no_content:
        reasons.append(
            f"{tally.no_content} member(s) had no content to read (links, special files, "
            "encrypted or missing members) and are listed as not examined, each with its reason"
        )
    if yara and tally.files[FileStatus.HASHED_ONLY]:
        reasons.append(
            f"{tally.files[FileStatus.HASHED_ONLY]} file(s), {tally.bytes_hashed_only:,} of "
            f"{content:,} content bytes ({int(hashed_share)} %), "
            + (
                f"were over the size cap, where only the {window_rules} window-safe rule(s) ran "
                f"past the cap (up to {max_hashed_only_percent} % is accepted)"
                if window_rules
                else "were hashed but not YARA-scanned "
                f"(larger than the size cap; up to {max_hashed_only_percent} % is accepted)"
            )
        )
    return Recommendation.NO_MATCHES, reasons


def not_examined(
    volumes: list[VolumeRecord],
    walk_problems: list[WalkProblem],
    tally: Tally,
    outcome: Outcome,
    files_total: int,
    media_size: int | None = None,
    areas_off: str = "",
) -> list[NotExamined]:
    """Every area the scan did not examine, with the reason — always present, possibly empty.

    Unallocated space and disk areas outside partitions leave the list when every range of
    them was scanned (``media_size`` given: the areas were searched); ``areas_off`` says why
    they were not searched, when they were not."""
    out: list[NotExamined] = []
    note = f" ({areas_off})" if areas_off else ""
    for v in volumes:
        scanned = media_size is not None and tally.areas.complete(v, media_size)
        if scanned and (v.examined or "unallocated" in v.reason):
            continue  # scanned: the report's areas section says how
        if not v.examined:
            kind = NotExaminedKind.VOLUME
            if "unallocated" in v.reason:
                kind = NotExaminedKind.DISK_AREA
            reason = v.reason + (note if kind is NotExaminedKind.DISK_AREA else "")
            out.append(AreaNotExamined(kind, v.index, v.offset, v.length, v.description, reason))
        elif v.fs_type in LOGICAL_FS_TYPES:
            out.append(
                AreaNotExamined(
                    NotExaminedKind.FS_UNALLOCATED,
                    v.index,
                    v.offset,
                    v.length,
                    v.description,
                    "a logical extraction holds only the files copied into it: the device's "
                    "unallocated space and deleted files are not in it, and were not examined",
                )
            )
        else:
            out.append(
                AreaNotExamined(
                    NotExaminedKind.FS_UNALLOCATED,
                    v.index,
                    v.offset,
                    v.length,
                    v.description,
                    f"unallocated space of the {v.fs_type} filesystem was not carved; "
                    "deleted files are examined only where the filesystem still records them"
                    + note,
                )
            )
    out += tally.areas.failed
    out += [DirectoryNotExamined(p.volume, p.path, p.inode, p.reason) for p in walk_problems]
    out += tally.archives
    out += tally.problems
    if outcome is not Outcome.COMPLETE and files_total > tally.files_done:
        out.append(
            UnreachedFiles(
                files_total - tally.files_done,
                f"the scan was {outcome.value} before these files were examined",
            )
        )
    return out


def pack_records(packs: tuple[RulePack, ...]) -> tuple[RulePackRecord, ...]:
    return tuple(
        RulePackRecord(
            p.name,
            p.version,
            p.digest,
            p.files,
            p.rule_count,
            p.signed_by,
            len(p.quarantined) if p.imported else None,
        )
        for p in packs
    )


def hashset_records(sets: tuple[HashSet, ...]) -> tuple[HashSetRecord, ...]:
    return tuple(
        HashSetRecord(
            name=s.name,
            version=s.version,
            algorithm=s.algorithm,
            disposition=s.disposition,
            category=s.category,
            count=s.count,
            digest=s.digest,
            signed_by=s.signed_by,
            dev_override=s.dev_override,
        )
        for s in sets
    )


def image_record(media: MediaRecord, hashes: MediaHashes) -> ImageRecord:
    ewf: EwfCheck | None = None
    if media.format == "ewf":
        ewf = EwfCheck(
            stored=dict(hashes.stored),
            computed={a: hashes.computed[a] for a in hashes.stored if a in hashes.computed},
            verified=hashes.ewf_verified,
        )
    return ImageRecord(
        name=media.name,
        format=media.format,
        segments=tuple(media.segments),
        size=media.size,
        sha256=hashes.computed.get("sha256"),
        hash_error=hashes.error or None,
        ewf=ewf,
        device=media.device,
        evidence_files=hashes.files,
    )


def coverage(
    volumes: list[VolumeRecord], tally: Tally, files_total: int, bytes_total: int
) -> Coverage:
    return Coverage(
        volumes=tuple(volumes),
        files=FileCounts(
            found=files_total,
            examined=tally.files_done,
            scanned=tally.files[FileStatus.SCANNED],
            hashed_only=tally.files[FileStatus.HASHED_ONLY],
            known_good=tally.files[FileStatus.KNOWN_GOOD],
            unrecoverable=tally.files[FileStatus.UNRECOVERABLE],
            error=tally.files[FileStatus.ERROR],
            not_reached=files_total - tally.files_done,
        ),
        bytes=ByteCounts(
            found=bytes_total,
            read=tally.bytes_read,
            yara_scanned=tally.bytes_yara,
            hashed_only=tally.bytes_hashed_only,
        ),
        archive_members=tally.member_counts(),
    )
