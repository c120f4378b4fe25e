"""A scripted stand-in for ``run_triage``: the screens are driven without touching an image."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.engine.triage import Hooks, TriageRequest, TriageResult
from kiosk.model import Progress

REASONS = {
    "submit_for_examination": ["2 file(s) matched rule-pack rules"],
    "no_matches_in_scope": [
        "no file matched the rule packs or known-bad hash sets within scope (demo)"
    ],
    "inconclusive": ["volume 1 (MBR: Linux) was not examined: possibly encrypted"],
}


def finding(path: str, size: int = 1289, category: str = "demo_marker") -> dict[str, Any]:
    """A finding as the report holds it (metadata only)."""
    return {
        "volume": 0,
        "path": path,
        "size": size,
        "matches": [
            {
                "type": "yara",
                "pack": "demo",
                "rule": "kiosk_demo_marker",
                "category": category,
                "severity": "high",
                "description": "d",
            }
        ],
    }


@dataclass
class ScriptedTriage:
    """Posts ``steps`` progress snapshots and the findings, then returns a report.

    With ``hold`` it waits after the script until the test releases it or the screen cancels,
    so a test can look at (and snapshot) the running scan; ``reached`` tells it when.
    """

    recommendation: str = "submit_for_examination"
    findings: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 3
    hold: threading.Event | None = None
    reached: threading.Event = field(default_factory=threading.Event)
    requests: list[TriageRequest] = field(default_factory=list)

    def __call__(self, req: TriageRequest, hooks: Hooks) -> TriageResult:
        self.requests.append(req)
        for i in range(1, self.steps + 1):
            if hooks.on_progress:
                hooks.on_progress(
                    Progress(40, i * 10, 8_000_000, i * 2_000_000, len(self.findings), i * 2.0)
                )
        for f in self.findings:
            if hooks.on_finding:
                hooks.on_finding(f)
        self.reached.set()
        while self.hold is not None and not self.hold.is_set() and not hooks.cancel.is_set():
            hooks.cancel.wait(0.01)
        cancelled = hooks.cancel.is_set()
        rec = self.recommendation
        reasons = list(REASONS[rec])
        if cancelled:
            rec = "submit_for_examination" if self.findings else "inconclusive"
            reasons = ["the scan was cancelled: cancelled by the operator"]
        report: dict[str, Any] = {
            "report_id": "r1",
            "signing_key": "ab" * 32,
            "outcome": {
                "status": "cancelled" if cancelled else "complete",
                "reason": "cancelled by the operator" if cancelled else None,
            },
            "recommendation": {"result": rec, "reasons": reasons},
            "findings": self.findings,
            "findings_by_category": {"demo_marker": len(self.findings)} if self.findings else {},
            "not_examined": [
                {
                    "kind": "fs_unallocated",
                    "description": "whole image (no partition table)",
                    "reason": "unallocated space of the fat16 filesystem was not carved",
                }
            ]
            + ([{"kind": "unreached", "count": 10, "reason": "cancelled"}] if cancelled else []),
            "coverage": {"files": {"found": 40, "examined": 30 if cancelled else 40}},
            "settings": {"scope": {"out_of_scope_matches": []}},
        }
        return TriageResult(Path("reports") / "r1", report)
