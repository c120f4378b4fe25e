"""A scripted stand-in for ``run_triage``: the screens are driven without touching an image."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.engine.triage import Hooks, TriageRequest, TriageResult
from kiosk.model import (
    CaseRecord,
    FileStatus,
    LegalBasis,
    Outcome,
    Progress,
    Recommendation,
    RuleMatch,
    VolumeRecord,
)
from kiosk.reports.model import (
    SCHEMA_VERSION,
    AreaNotExamined,
    ByteCounts,
    Coverage,
    Engines,
    FileCounts,
    FileRecord,
    ImageRecord,
    NotExamined,
    NotExaminedKind,
    OutcomeRecord,
    RecommendationRecord,
    ScopeRecord,
    SettingsRecord,
    ToolRecord,
    TriageReport,
    UnreachedFiles,
)

REASONS = {
    Recommendation.SUBMIT: ["2 file(s) matched rule-pack rules"],
    Recommendation.NO_MATCHES: [
        "no file matched the rule packs or known-bad hash sets within scope (demo)"
    ],
    Recommendation.INCONCLUSIVE: ["volume 1 (MBR: Linux) was not examined: possibly encrypted"],
}


def finding(path: str, size: int = 1289, category: str = "demo_marker") -> FileRecord:
    """A finding as the report holds it (metadata only)."""
    return FileRecord(
        volume=0,
        fs_offset=0,
        fs_type="fat16",
        path=path,
        inode=4,
        allocated=True,
        size=size,
        md5=None,
        sha1=None,
        sha256=None,
        mime="text/plain",
        status=FileStatus.SCANNED,
        error=None,
        reason=None,
        matches=(RuleMatch("demo", "kiosk_demo_marker", category, "high", "d"),),
    )


def scripted_report(
    recommendation: Recommendation, findings: tuple[FileRecord, ...], cancelled: bool
) -> TriageReport:
    """A complete report record with what the result screen shows; the rest plausible filler."""
    volume = VolumeRecord(0, 0, 2 << 20, "whole image (no partition table)", "fat16", True)
    not_examined: list[NotExamined] = [
        AreaNotExamined(
            NotExaminedKind.FS_UNALLOCATED,
            0,
            0,
            2 << 20,
            "whole image (no partition table)",
            "unallocated space of the fat16 filesystem was not carved",
        )
    ]
    if cancelled:
        not_examined.append(UnreachedFiles(10, "cancelled"))
    examined = 30 if cancelled else 40
    return TriageReport(
        schema=SCHEMA_VERSION,
        report_id="r1",
        tool=ToolRecord("kiosk", "0.1.0", Engines("0.1.0", "4.15.0", "4.5.4", "544")),
        case=CaseRecord("C", "E", "PC-1", "DS-2", LegalBasis.WARRANT, "W"),
        image=ImageRecord("fat16.dd", "raw", ("fat16.dd",), 2 << 20, "00" * 32, None, None),
        rule_packs=(),
        hash_sets=(),
        settings=SettingsRecord(
            max_yara_bytes=1 << 20,
            yara_timeout_s=60,
            workers=0,
            inventory=False,
            allow_self_authorisation=False,
            dev_mode=False,
            scope=ScopeRecord(False, ("demo_marker",), (), ()),
            yara=True,
        ),
        started="2026-11-27T12:00:00.000000Z",
        finished="2026-11-27T12:00:00.000000Z",
        outcome=OutcomeRecord(
            Outcome.CANCELLED if cancelled else Outcome.COMPLETE,
            "cancelled by the operator" if cancelled else None,
        ),
        coverage=Coverage(
            (volume,),
            FileCounts(40, examined, examined, 0, 0, 0, 0, 40 - examined),
            ByteCounts(8_000_000, 8_000_000, 8_000_000, 0),
        ),
        not_examined=tuple(not_examined),
        findings=findings,
        findings_by_category={"demo_marker": len(findings)} if findings else {},
        recommendation=RecommendationRecord(recommendation, tuple(REASONS[recommendation])),
        inventory=None,
        signing_key="ab" * 32,
        audit_checkpoint=None,
    )


@dataclass
class ScriptedTriage:
    """Posts ``steps`` progress snapshots and the findings, then returns a report.

    With ``hold`` it waits after the script until the test releases it or the screen cancels,
    so a test can look at (and snapshot) the running scan; ``reached`` tells it when.
    """

    recommendation: Recommendation = Recommendation.SUBMIT
    findings: list[FileRecord] = field(default_factory=list)
    steps: int = 3
    hold: threading.Event | None = None
    reached: threading.Event = field(default_factory=threading.Event)
    requests: list[TriageRequest] = field(default_factory=list)

    def __call__(self, req: TriageRequest, hooks: Hooks) -> TriageResult:
        self.requests.append(req)
        for i in range(1, self.steps + 1):
            if hooks.on_progress:
                hooks.on_progress(  # the first while the walk is still counting, as in a scan
                    Progress(
                        40,
                        i * 10,
                        8_000_000,
                        i * 2_000_000,
                        len(self.findings),
                        i * 2.0,
                        counting=i == 1,
                    )
                )
        for f in self.findings:
            if hooks.on_finding:
                hooks.on_finding(f)
        self.reached.set()
        while self.hold is not None and not self.hold.is_set() and not hooks.cancel.is_set():
            hooks.cancel.wait(0.01)
        cancelled = hooks.cancel.is_set()
        report = scripted_report(self.recommendation, tuple(self.findings), cancelled)
        if cancelled:
            rec = Recommendation.SUBMIT if self.findings else Recommendation.INCONCLUSIVE
            reasons = ("the scan was cancelled: cancelled by the operator",)
            report = dataclasses.replace(report, recommendation=RecommendationRecord(rec, reasons))
        return TriageResult(Path("reports") / "r1", report)
