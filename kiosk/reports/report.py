"""Build the triage report from results: totals, findings, not-examined list, recommendation.

The report is canonical JSON (RFC 8785) so the same scan always gives the same bytes and a
signature covers exactly what a reader sees. It holds metadata only — never file content.
Wording rule: nothing here ever says "clear" or "no evidence"; the best a scan can say is that
nothing matched *within the scope it examined*, and a cancelled, failed or incomplete scan can
never say even that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kiosk.hashsets.index import HashSet
from kiosk.model import (
    CaseRecord,
    FileResult,
    FileStatus,
    MediaRecord,
    Outcome,
    Recommendation,
    VolumeRecord,
    WalkProblem,
)
from kiosk.packs.load import RulePack

SCHEMA_VERSION = "kiosk.triage-report/1"
DEV_MODE_NOTE = (
    "DEV MODE: rule packs that failed signature, expiry or version checks were allowed "
    "(forensic staff testing; see rule_packs[].signed_by)"
)


def visible(text: str) -> str:
    """Text with control and other non-printing characters shown as escapes, the rest as is.

    File names come from the evidence: an escape sequence or a bell must show as text in a
    terminal or on a page, never act. Non-ASCII letters stay readable.
    """
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
        for c in text
    )


def _matches(r: FileResult) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "type": "yara",
            "pack": m.pack,
            "rule": m.rule,
            "category": m.category,
            "severity": m.severity,
            "description": m.description,
        }
        for m in r.rule_matches
    ]
    out += [
        {
            "type": "hashset",
            "set": m.hashset,
            "version": m.version,
            "algorithm": m.algorithm,
            "disposition": m.disposition,
            "category": m.category,
        }
        for m in r.hash_matches
    ]
    return out


def file_record(r: FileResult) -> dict[str, Any]:
    """One inventory line (files.jsonl) and the body of a finding."""
    t = r.task
    return {
        "volume": t.volume,
        "fs_offset": t.fs_offset,
        "fs_type": t.fs_type,
        "path": t.path,
        "inode": t.inode,
        "allocated": t.allocated,
        "size": t.size,
        "md5": r.md5,
        "sha1": r.sha1,
        "sha256": r.sha256,
        "mime": r.mime,
        "status": r.status.value,
        "error": r.reason if r.status in (FileStatus.ERROR, FileStatus.UNRECOVERABLE) else None,
        "reason": r.reason or None,
        "matches": _matches(r),
    }


@dataclass(slots=True)
class Tally:
    """Running totals over the results; keeps findings and problems, never every file."""

    files: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in FileStatus})
    bytes_found: int = 0
    bytes_read: int = 0
    bytes_yara: int = 0
    bytes_hashed_only: int = 0
    findings: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    categories: dict[str, int] = field(default_factory=dict)

    @property
    def files_done(self) -> int:
        return sum(self.files.values())

    def add(self, r: FileResult) -> None:
        self.files[r.status.value] += 1
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
                {
                    "kind": "file" if r.status is FileStatus.ERROR else "deleted_file",
                    "volume": r.task.volume,
                    "path": r.task.path,
                    "inode": r.task.inode,
                    "size": r.task.size,
                    "reason": r.reason,
                }
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
) -> tuple[Recommendation, list[str]]:
    """The officer's answer and every reason for it.

    A finding always means submit. Otherwise anything short of full coverage — a cancelled or
    failed run, a volume we could not read, a file or directory that failed, a media hash that
    does not verify — makes the result inconclusive.
    """
    reasons: list[str] = []
    if tally.findings:
        by_kind_yara = sum(
            1 for f in tally.findings if any(m["type"] == "yara" for m in f["matches"])
        )
        by_kind_hash = sum(
            1
            for f in tally.findings
            if any(m["type"] == "hashset" and m["disposition"] == "known_bad" for m in f["matches"])
        )
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
    errors = tally.files[FileStatus.ERROR.value]
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
    skipped = tally.files[FileStatus.UNRECOVERABLE.value]
    if skipped:
        reasons.append(
            f"{skipped} deleted entries had no recoverable content and are listed as not examined"
        )
    if yara and tally.files[FileStatus.HASHED_ONLY.value]:
        reasons.append(
            f"{tally.files[FileStatus.HASHED_ONLY.value]} file(s) were hashed but not YARA-scanned "
            "(larger than the size cap)"
        )
    return Recommendation.NO_MATCHES, reasons


def not_examined(
    volumes: list[VolumeRecord],
    walk_problems: list[WalkProblem],
    tally: Tally,
    outcome: Outcome,
    files_total: int,
) -> list[dict[str, Any]]:
    """Every area the scan did not examine, with the reason — always present, possibly empty."""
    out: list[dict[str, Any]] = []
    for v in volumes:
        if not v.examined:
            out.append(
                {
                    "kind": "volume" if "unallocated" not in v.reason else "disk_area",
                    "volume": v.index,
                    "offset": v.offset,
                    "length": v.length,
                    "description": v.description,
                    "reason": v.reason,
                }
            )
        else:
            out.append(
                {
                    "kind": "fs_unallocated",
                    "volume": v.index,
                    "offset": v.offset,
                    "length": v.length,
                    "description": v.description,
                    "reason": f"unallocated space of the {v.fs_type} filesystem was not carved; "
                    "deleted files are examined only where the filesystem still records them",
                }
            )
    out += [
        {
            "kind": "directory",
            "volume": p.volume,
            "path": p.path,
            "inode": p.inode,
            "reason": p.reason,
        }
        for p in walk_problems
    ]
    out += tally.problems
    if outcome is not Outcome.COMPLETE and files_total > tally.files_done:
        out.append(
            {
                "kind": "unreached",
                "count": files_total - tally.files_done,
                "reason": f"the scan was {outcome.value} before these files were examined",
            }
        )
    return out


def pack_records(packs: tuple[RulePack, ...]) -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "version": p.version,
            "digest": p.digest,
            "files": list(p.files),
            "rules": p.rule_count,
            "signed_by": p.signed_by,
        }
        for p in packs
    ]


def hashset_records(sets: tuple[HashSet, ...]) -> list[dict[str, Any]]:
    return [
        {
            "name": s.name,
            "version": s.version,
            "algorithm": s.algorithm,
            "disposition": s.disposition,
            "category": s.category,
            "count": s.count,
            "digest": s.digest,
            "signed_by": s.signed_by,
            "dev_override": list(s.dev_override),
        }
        for s in sets
    ]


def case_record(case: CaseRecord) -> dict[str, Any]:
    return {
        "case_ref": case.case_ref,
        "exhibit_ref": case.exhibit_ref,
        "officer": case.officer,
        "authorised_by": case.authorised_by,
        "legal_basis": {"type": case.legal_basis.value, "reference": case.legal_ref},
        "device_description": case.device_description,
    }


def image_record(media: MediaRecord, hashes: MediaHashes) -> dict[str, Any]:
    ewf: dict[str, Any] | None = None
    if media.format == "ewf":
        ewf = {
            "stored": dict(hashes.stored),
            "computed": {a: hashes.computed[a] for a in hashes.stored if a in hashes.computed},
            "verified": hashes.ewf_verified,
        }
    return {
        "name": media.name,
        "format": media.format,
        "segments": list(media.segments),
        "size": media.size,
        "sha256": hashes.computed.get("sha256"),
        "hash_error": hashes.error or None,
        "ewf": ewf,
    }


def volume_records(volumes: list[VolumeRecord]) -> list[dict[str, Any]]:
    return [
        {
            "index": v.index,
            "offset": v.offset,
            "length": v.length,
            "description": v.description,
            "fs_type": v.fs_type,
            "status": "examined" if v.examined else "not_examined",
            "reason": v.reason or None,
        }
        for v in volumes
    ]


def coverage(
    volumes: list[VolumeRecord], tally: Tally, files_total: int, bytes_total: int
) -> dict[str, Any]:
    return {
        "volumes": volume_records(volumes),
        "files": {
            "found": files_total,
            "examined": tally.files_done,
            **tally.files,
            "not_reached": files_total - tally.files_done,
        },
        "bytes": {
            "found": bytes_total,
            "read": tally.bytes_read,
            "yara_scanned": tally.bytes_yara,
            "hashed_only": tally.bytes_hashed_only,
        },
    }


def render_text(report: dict[str, Any]) -> str:
    """A short terminal summary of a report; file names are printed with escapes made visible."""
    rec = report["recommendation"]
    cov = report["coverage"]["files"]
    img = report["image"]
    lines = [
        f"Recommendation: {rec['result'].upper().replace('_', ' ')}",
        *[f"  - {r}" for r in rec["reasons"]],
        f"Case {report['case']['case_ref']}  exhibit {report['case']['exhibit_ref']}  "
        f"officer {report['case']['officer']}",
        f"Image {img['name']} ({img['format']}, {img['size']} bytes)  "
        f"sha256 {img['sha256'] or 'not computed'}",
        f"Outcome {report['outcome']['status']}  files {cov['found']} found, "
        f"{cov['scanned']} scanned, "
        f"{cov['hashed_only']} hashed only, {cov['known_good']} known-good, "
        f"{cov['unrecoverable']} unrecoverable, {cov['error']} errors",
        f"Findings: {len(report['findings'])}",
    ]
    for f in report["findings"]:
        what = ", ".join(
            f"{m['pack']}:{m['rule']}" if m["type"] == "yara" else f"hashset {m['set']}"
            for m in f["matches"]
            if m["type"] == "yara" or m["disposition"] == "known_bad"
        )
        path = visible(f["path"])
        lines.append(f"  [{f['volume']}] {path} ({f['size']} bytes): {what}")
    lines.append(f"Not examined: {len(report['not_examined'])} area(s)")
    if report.get("settings", {}).get("dev_mode"):
        lines.append(DEV_MODE_NOTE)
    return "\n".join(lines)
