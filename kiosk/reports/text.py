"""Text for people: ``visible()`` for anything that came from evidence, and the report summary.

There is one ``visible()`` for every place kiosk shows untrusted text — the terminal summary,
the HTML page, the CLI and the TUI — so that two different names never print alike anywhere.
"""

from __future__ import annotations

from kiosk.reports.model import TriageReport
from kiosk.reports.summary import (
    RECOMMENDATION_TITLES,
    archive_members_text,
    area_lines,
    authority_lines,
    banner_notes,
    device_text,
    evidence_file_lines,
    finding_label,
    match_label,
    media_hash_text,
    not_examined_lines,
)
from kiosk.visible import visible

__all__ = ["DEV_MODE_NOTE", "RECOMMENDATION_TITLES", "render_text", "visible"]

DEV_MODE_NOTE = (
    "DEV MODE: rule packs that failed signature, expiry or version checks were allowed "
    "(forensic staff testing; see rule_packs[].signed_by)"
)


def render_text(report: TriageReport) -> str:
    """The terminal summary of a report (``kiosk report show``, the review screen): everything a
    supervisor decides from, worded as in every other view; evidence text made visible."""
    rec = report.recommendation
    cov = report.coverage.files
    img = report.image
    lines = [
        f"Recommendation: {RECOMMENDATION_TITLES[rec.result]}",
        *[f"  ! {n}" for n in banner_notes(report)],
        *[f"  - {r}" for r in rec.reasons],
        *authority_lines(report),
        f"Image {img.name} ({img.format}, {img.size} bytes)  sha256 {img.sha256 or 'not computed'}",
        media_hash_text(report),
        *([device] if (device := device_text(report)) else []),
        *[f"  {line}" for line in evidence_file_lines(report)],
        f"Outcome {report.outcome.status.value}  files {cov.found} found, "
        f"{cov.scanned} scanned, "
        f"{cov.hashed_only} hashed only, {cov.known_good} known-good, "
        f"{cov.unrecoverable} unrecoverable, {cov.error} errors",
        *[line for line in (archive_members_text(report),) if line],
        f"Findings: {len(report.findings)}" + (" ([n] = volume number)" if report.findings else ""),
    ]
    for f in report.findings:
        what = ", ".join(match_label(m) for m in f.finding_matches)
        lines.append(f"  {finding_label(f)} ({f.size} bytes): {what}")
    lines += area_lines(report)
    lines.append(f"Not examined: {len(report.not_examined)} area(s)")
    lines += not_examined_lines(report)
    if report.settings.dev_mode:
        lines.append(DEV_MODE_NOTE)
    return "\n".join(visible(line) for line in lines)  # names, labels, reasons: all made visible
