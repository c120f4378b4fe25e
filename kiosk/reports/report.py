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
from kiosk.hashsets.index import HashSet
from kiosk.model import (
    FileResult,
    FileStatus,
    MediaRecord,
    Outcome,
    Recommendation,
    VolumeRecord,
    WalkProblem,
)
from kiosk.packs.load import RulePack
from kiosk.reports.model import (
    AreaNotExamined,
    ByteCounts,
    Coverage,
    DirectoryNotExamined,
    EwfCheck,
    FileCounts,
    FileNotExamined,
    FileRecord,
    HashSetRecord,
    ImageRecord,
    NotExamined,
    NotExaminedKind,
    RulePackRecord,
    UnreachedFiles,
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

    @property
    def files_done(self) -> int:
        return sum(self.files.values())

    def add(self, r: FileResult) -> None:
        self.files[r.status] += 1
        self.bytes_found += r.task.size
        self.bytes_read += r.bytes_read
        if r.status is FileStatus.SCANNED:
            self.bytes_yara += r.task.size
        elif r.status is FileStatus.HASHED_ONLY:
            self.bytes_hashed_only += r.task.size
        if r.is_finding:
            self.findings.append(file_record(r))
            cats = {m.category for m in r.rule_matches}
            cats |= {m.category for m in r.hash_matches if m.disposition == "known_bad"}
            for c in cats:
                self.categories[c] = self.categories.get(c, 0) + 1
        if r.status in (FileStatus.ERROR, FileStatus.UNRECOVERABLE):
            self.problems.append(
                FileNotExamined(
                    kind=NotExaminedKind.FILE
                    if r.status is FileStatus.ERROR
                    else NotExaminedKind.DELETED_FILE,
                    volume=r.task.volume,
                    path=r.task.path,
                    inode=r.task.inode,
                    size=r.task.size,
                    reason=r.reason,
                )
            )


@dataclass(frozen=True, slots=True)
class MediaHashes:
    """What we computed over the media, and what the EWF container said it should be."""

    computed: dict[str, str]  # algorithm -> hex; empty when the read did not finish
    stored: dict[str, str]
    error: str = ""

    @property
    def ewf_verified(self) -> bool | None:
        """True/False when the container stored a hash we could compare; None otherwise."""
        common = [a for a in self.stored if a in self.computed]
        if not common:
            return None
        return all(self.stored[a] == self.computed[a] for a in common)


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
) -> tuple[Recommendation, list[str]]:
    """The officer's answer and every reason for it.

    A finding always means submit. Otherwise anything short of full coverage — a cancelled or
    failed run, a volume we could not read, a file or directory that failed, a media hash that
    does not verify, more than ``max_hashed_only_percent`` of the content bytes over the YARA
    cap (so the rules never saw most of it) — makes the result inconclusive.
    """
    reasons: list[str] = []
    if tally.findings:
        by_kind_yara = sum(1 for f in tally.findings if f.rule_matches)
        by_kind_hash = sum(1 for f in tally.findings if f.known_bad)
        if by_kind_yara:
            reasons.append(f"{by_kind_yara} file(s) matched rule-pack rules")
        if by_kind_hash:
            reasons.append(f"{by_kind_hash} file(s) are listed in known-bad hash sets")
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
    blocking = [p for p in walk_problems if p.blocking]
    if blocking:
        reasons.append(f"{len(blocking)} directory area(s) could not be walked")
    if hashes.ewf_verified is False:
        reasons.append(
            "the image's stored EWF hash does not match its content: integrity not verified"
        )
    if hashes.error:
        reasons.append(f"the image could not be read in full: {hashes.error}")
    content = tally.bytes_yara + tally.bytes_hashed_only
    hashed_share = tally.bytes_hashed_only * 100 / content if content else 0.0
    if yara and hashed_share > max_hashed_only_percent:
        reasons.append(
            f"{tally.bytes_hashed_only:,} of {content:,} content bytes ({int(hashed_share)} %) "
            "were hashed but not YARA-scanned (files over the size cap): more than the "
            f"{max_hashed_only_percent} % limit, so the rule packs did not see most of the content"
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
    skipped = tally.files[FileStatus.UNRECOVERABLE]
    if skipped:
        reasons.append(
            f"{skipped} deleted entries had no recoverable content and are listed as not examined"
        )
    if yara and tally.files[FileStatus.HASHED_ONLY]:
        reasons.append(
            f"{tally.files[FileStatus.HASHED_ONLY]} file(s), {tally.bytes_hashed_only:,} of "
            f"{content:,} content bytes ({int(hashed_share)} %), were hashed but not YARA-scanned "
            f"(larger than the size cap; up to {max_hashed_only_percent} % is accepted)"
        )
    return Recommendation.NO_MATCHES, reasons


def not_examined(
    volumes: list[VolumeRecord],
    walk_problems: list[WalkProblem],
    tally: Tally,
    outcome: Outcome,
    files_total: int,
) -> list[NotExamined]:
    """Every area the scan did not examine, with the reason — always present, possibly empty."""
    out: list[NotExamined] = []
    for v in volumes:
        if not v.examined:
            kind = NotExaminedKind.VOLUME
            if "unallocated" in v.reason:
                kind = NotExaminedKind.DISK_AREA
            out.append(AreaNotExamined(kind, v.index, v.offset, v.length, v.description, v.reason))
        else:
            out.append(
                AreaNotExamined(
                    NotExaminedKind.FS_UNALLOCATED,
                    v.index,
                    v.offset,
                    v.length,
                    v.description,
                    f"unallocated space of the {v.fs_type} filesystem was not carved; "
                    "deleted files are examined only where the filesystem still records them",
                )
            )
    out += [DirectoryNotExamined(p.volume, p.path, p.inode, p.reason) for p in walk_problems]
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
    )
