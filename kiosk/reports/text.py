"""Text for people: ``visible()`` for anything that came from evidence, and the report summary.

There is one ``visible()`` for every place kiosk shows untrusted text — the terminal summary,
the HTML page, the CLI and the TUI — so that two different names never print alike anywhere.
"""

from __future__ import annotations

from kiosk.model import HashMatch, Recommendation
from kiosk.reports.model import TriageReport

RECOMMENDATION_TITLES = {
    Recommendation.SUBMIT: "SUBMIT FOR EXAMINATION",
    Recommendation.NO_MATCHES: "NO MATCHES WITHIN SCOPE",
    Recommendation.INCONCLUSIVE: "INCONCLUSIVE",
}
DEV_MODE_NOTE = (
    "DEV MODE: rule packs that failed signature, expiry or version checks were allowed "
    "(forensic staff testing; see rule_packs[].signed_by)"
)


def visible(text: str) -> str:
    """``text`` with every control or invisible character written as an escape.

    File names and volume labels come from the evidence: a name holding terminal escape codes,
    a right-to-left override or a newline must neither drive the terminal nor hide what it is.
    A backslash is doubled so that an escape shown is never confused with a literal one (a
    name holding the four characters ``\\x1b`` prints as ``\\\\x1b``, one holding ESC as
    ``\\x1b``). Printable non-ASCII letters stay as they are, readable.
    """
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def render_text(report: TriageReport) -> str:
    """A short terminal summary of a report.

    Every string in it came from the evidence (file and volume names), from users (case fields)
    or from a report file someone handed us: each goes through ``visible()``, so a partition
    named with escape codes and a newline can neither drive the terminal nor fake a line.
    """
    v = visible
    rec = report.recommendation
    cov = report.coverage.files
    img = report.image
    case = report.case
    lines = [
        f"Recommendation: {v(rec.result.value.upper().replace('_', ' '))}",
        *[f"  - {v(r)}" for r in rec.reasons],
        f"Case {v(case.case_ref)}  exhibit {v(case.exhibit_ref)}  officer {v(case.officer)}",
        f"Image {v(img.name)} ({v(img.format)}, {img.size} bytes)  "
        f"sha256 {v(img.sha256 or 'not computed')}",
        f"Outcome {v(report.outcome.status.value)}  files {cov.found} found, "
        f"{cov.scanned} scanned, "
        f"{cov.hashed_only} hashed only, {cov.known_good} known-good, "
        f"{cov.unrecoverable} unrecoverable, {cov.error} errors",
        f"Findings: {len(report.findings)}",
    ]
    for f in report.findings:
        what = ", ".join(
            f"hashset {m.hashset}" if isinstance(m, HashMatch) else f"{m.pack}:{m.rule}"
            for m in f.finding_matches
        )
        lines.append(f"  [{f.volume}] {v(f.path)} ({f.size} bytes): {v(what)}")
    lines.append(f"Not examined: {len(report.not_examined)} area(s)")
    if report.settings.dev_mode:
        lines.append(DEV_MODE_NOTE)
    return "\n".join(lines)
