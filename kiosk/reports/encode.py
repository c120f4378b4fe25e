"""The report records as the JSON value that ``canonical()`` writes: the only way there.

``report_json`` turns a whole report into JSON (its bytes are signed, so they must never change
by accident: the golden test and the byte-identity check over every sample image hold them), and
``file_json`` turns one file record into a finding or an inventory line (files.jsonl) — the same
code for both. The part writers are public because the audit log's scan_started and
scan_finished events carry the same parts.

Every key is always present, ``null`` where there is nothing to say; key order does not matter
(RFC 8785 sorts keys). Integers beyond ±(2^53 - 1) are left as integers here: ``canonical()``
writes them as decimal strings, and ``kiosk.reports.decode`` reads them back.
"""

from __future__ import annotations

from typing import Any

from kiosk.model import CaseRecord, RuleMatch, VolumeRecord
from kiosk.reports.model import (
    ArchiveNotExamined,
    AreaNotExamined,
    AreasRecord,
    DirectoryNotExamined,
    FileCounts,
    FileNotExamined,
    FileRecord,
    HashSetRecord,
    ImageRecord,
    Match,
    MatchType,
    MemberCounts,
    NotExamined,
    RulePackRecord,
    ScopeRecord,
    SettingsRecord,
    TriageReport,
)

JSON = dict[str, Any]

# --------------------------------------------------------------------------- records -> JSON


def _yara_engine(label: str | None) -> dict[str, str]:
    """Absent when no pack was applied (and in reports written before engines were a choice)."""
    return {} if label is None else {"yara_engine": label}


def report_json(r: TriageReport) -> JSON:
    """The whole report as the JSON value that is signed and written as report.json."""
    return {
        "schema": r.schema,
        "report_id": r.report_id,
        "tool": {
            "name": r.tool.name,
            "version": r.tool.version,
            "engines": {
                "kiosk": r.tool.engines.kiosk,
                "sleuthkit": r.tool.engines.sleuthkit,
                "libyara": r.tool.engines.libyara,
                "libmagic": r.tool.engines.libmagic,
                **_yara_engine(r.tool.engines.yara_engine),
            },
        },
        "case": case_json(r.case),
        "image": _image_json(r.image),
        "rule_packs": packs_json(r.rule_packs),
        "hash_sets": hashsets_json(r.hash_sets),
        "settings": settings_json(r.settings),
        "started": r.started,
        "finished": r.finished,
        "outcome": {"status": r.outcome.status.value, "reason": r.outcome.reason},
        "coverage": {
            "volumes": [_volume_json(v) for v in r.coverage.volumes],
            "files": file_counts_json(r.coverage.files),
            "bytes": {
                "found": r.coverage.bytes.found,
                "read": r.coverage.bytes.read,
                "yara_scanned": r.coverage.bytes.yara_scanned,
                "hashed_only": r.coverage.bytes.hashed_only,
            },
            **_members_json(r.coverage.archive_members),
        },
        "not_examined": [_not_examined_json(n) for n in r.not_examined],
        "findings": [file_json(f) for f in r.findings],
        "findings_by_category": dict(r.findings_by_category),
        "recommendation": {
            "result": r.recommendation.result.value,
            "reasons": list(r.recommendation.reasons),
        },
        "inventory": None
        if r.inventory is None
        else {
            "file": r.inventory.file,
            "sha256": r.inventory.sha256,
            "records": r.inventory.records,
        },
        "signing_key": r.signing_key,
        "audit_checkpoint": None if r.audit_checkpoint is None else r.audit_checkpoint.as_dict(),
        **({} if r.areas is None else {"areas": areas_json(r.areas)}),
    }


def areas_json(a: AreasRecord) -> JSON:
    """Unallocated space, slack, outside partitions: coverage and findings (offsets only)."""
    return {
        "searched": a.searched,
        "reason": a.reason,
        "window_rules": list(a.window_rules),
        "window_bytes": a.window_bytes,
        "overlap": a.overlap,
        "coverage": [
            {
                "kind": c.kind,
                "volume": c.volume,
                "offset": c.offset,
                "length": c.length,
                "scanned": c.scanned,
            }
            for c in a.coverage
        ],
        "findings": [
            {
                "kind": f.kind,
                "volume": f.volume,
                "offset": f.offset,
                "length": f.length,
                "file": f.file,
                "match": _match_json(f.match),
                "offsets": list(f.offsets),
                "count": f.count,
            }
            for f in a.findings
        ],
    }


def file_json(f: FileRecord) -> JSON:
    """One finding, or one inventory line (files.jsonl): the same record either way."""
    return {
        "volume": f.volume,
        "fs_offset": f.fs_offset,
        "fs_type": f.fs_type,
        "path": f.path,
        "inode": f.inode,
        "allocated": f.allocated,
        "size": f.size,
        "md5": f.md5,
        "sha1": f.sha1,
        "sha256": f.sha256,
        "mime": f.mime,
        "status": f.status.value,
        "error": f.error,
        "reason": f.reason,
        "matches": [_match_json(m) for m in f.matches],
        # absent unless a backup stores the file under another name (older reports read as ever)
        **({"stored_name": f.stored_name} if f.stored_name is not None else {}),
        **(
            {}
            if f.yara_reach is None
            else {
                "yara_reach": {
                    "whole_file_rules": f.yara_reach.whole_file_rules,
                    "window_rules": f.yara_reach.window_rules,
                }
            }
        ),
    }


def case_json(c: CaseRecord) -> JSON:
    """The case part; also the fields of the audit log's scan_started event."""
    return {
        "case_ref": c.case_ref,
        "exhibit_ref": c.exhibit_ref,
        "officer": c.officer,
        "authorised_by": c.authorised_by,
        "legal_basis": {"type": c.legal_basis.value, "reference": c.legal_ref},
        "device_description": c.device_description,
    }


def packs_json(packs: tuple[RulePackRecord, ...]) -> list[JSON]:
    return [
        {
            "name": p.name,
            "version": p.version,
            "digest": p.digest,
            "files": list(p.files),
            "rules": p.rules,
            "signed_by": p.signed_by,
            # only imported packs quarantine: absent for kiosk's own and in older reports
            **({} if p.quarantined is None else {"quarantined": p.quarantined}),
        }
        for p in packs
    ]


def hashsets_json(sets: tuple[HashSetRecord, ...]) -> list[JSON]:
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


def scope_json(s: ScopeRecord) -> JSON:
    return {
        "restricted": s.restricted,
        "rule_categories": list(s.rule_categories),
        "hash_categories": list(s.hash_categories),
        "out_of_scope_matches": [
            {"type": o.type.value, "category": o.category, "matches": o.matches}
            for o in s.out_of_scope_matches
        ],
    }


def file_counts_json(c: FileCounts) -> JSON:
    return {
        "found": c.found,
        "examined": c.examined,
        "scanned": c.scanned,
        "hashed_only": c.hashed_only,
        "known_good": c.known_good,
        "unrecoverable": c.unrecoverable,
        "error": c.error,
        "not_reached": c.not_reached,
    }


def _members_json(m: MemberCounts | None) -> JSON:
    """``archive_members``, only in a report whose evidence held archive members: a report
    without any keeps the shape (and bytes) it had before archives were expanded."""
    if m is None:
        return {}
    return {
        "archive_members": {
            "found": m.found,
            "scanned": m.scanned,
            "hashed_only": m.hashed_only,
            "known_good": m.known_good,
            "error": m.error,
            "bytes": m.bytes,
        }
    }


def _image_json(i: ImageRecord) -> JSON:
    device: JSON = {}  # absent unless the evidence is a phone backup
    if i.device is not None:
        d = i.device
        device["device"] = {
            "kind": d.kind,
            "name": d.name,
            "model": d.model,
            "os_version": d.os_version,
            "serial": d.serial,
            "imei": d.imei,
        }
    return {
        **device,
        "name": i.name,
        "format": i.format,
        "segments": list(i.segments),
        "size": i.size,
        "sha256": i.sha256,
        "hash_error": i.hash_error,
        "ewf": None
        if i.ewf is None
        else {
            "stored": dict(i.ewf.stored),
            "computed": dict(i.ewf.computed),
            "verified": i.ewf.verified,
        },
        **(
            {
                "evidence_files": [
                    {"name": f.name, "size": f.size, "sha256": f.sha256} for f in i.evidence_files
                ]
            }
            if i.evidence_files
            else {}
        ),
    }


def settings_json(s: SettingsRecord) -> JSON:
    limit = s.max_hashed_only_percent  # absent from reports written before the limit existed
    extra: JSON = {} if limit is None else {"max_hashed_only_percent": limit}
    if s.unallocated is not None:  # absent from reports written before the switch existed
        extra["unallocated"] = s.unallocated
    if s.cluster is not None:  # absent for a run on this machine's own pool
        extra["cluster"] = {
            "scheduler": s.cluster.scheduler,
            "transport": s.cluster.transport,
            "workers": s.cluster.workers,
            "run_fields": list(s.cluster.run_fields),
        }
    return {
        "max_yara_bytes": s.max_yara_bytes,
        "yara_timeout_s": s.yara_timeout_s,
        "workers": s.workers,
        "inventory": s.inventory,
        "allow_self_authorisation": s.allow_self_authorisation,
        "dev_mode": s.dev_mode,
        "scope": scope_json(s.scope),
        "yara": s.yara,
        **extra,
    }


def _volume_json(v: VolumeRecord) -> JSON:
    return {
        "index": v.index,
        "offset": v.offset,
        "length": v.length,
        "description": v.description,
        "fs_type": v.fs_type,
        "status": "examined" if v.examined else "not_examined",
        "reason": v.reason or None,
    }


def _not_examined_json(n: NotExamined) -> JSON:
    head: JSON = {"kind": n.kind.value}
    if isinstance(n, AreaNotExamined):
        return head | {
            "volume": n.volume,
            "offset": n.offset,
            "length": n.length,
            "description": n.description,
            "reason": n.reason,
        }
    if isinstance(n, DirectoryNotExamined | ArchiveNotExamined):
        return head | {"volume": n.volume, "path": n.path, "inode": n.inode, "reason": n.reason}
    if isinstance(n, FileNotExamined):
        return head | {
            "volume": n.volume,
            "path": n.path,
            "inode": n.inode,
            "size": n.size,
            "reason": n.reason,
        }
    return head | {"count": n.count, "reason": n.reason}


def _match_json(m: Match) -> JSON:
    if isinstance(m, RuleMatch):
        return {
            "type": MatchType.YARA.value,
            "pack": m.pack,
            "rule": m.rule,
            "category": m.category,
            "severity": m.severity,
            "description": m.description,
        }
    out: JSON = {
        "type": MatchType.HASHSET.value,
        "set": m.hashset,
        "version": m.version,
        "algorithm": m.algorithm,
        "disposition": m.disposition,
        "category": m.category,
    }
    if m.distance is not None:  # perceptual matches only: exact ones keep their old shape
        out |= {"distance": m.distance, "threshold": m.threshold}
    return out
