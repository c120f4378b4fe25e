"""One self-contained, printable HTML page per verified report, for supervisors.

Rendered only from a payload that verified, and every string that came from the image or the
case form goes through ``html.escape`` — a file named ``<script>…`` shows as text. No scripts, no
external resources: the page prints and archives as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from kiosk.model import BUILTIN_PACK, RuleMatch
from kiosk.reports.attestation import VerifiedReport
from kiosk.reports.decode import read_report
from kiosk.reports.model import Match, TriageReport
from kiosk.reports.summary import (
    LEGAL_BASIS_WORDS,
    archive_members_text,
    area_lines,
    banner_notes,
    device_text,
    evidence_file_lines,
    hashed_only_text,
    media_hash_text,
    not_examined_what,
    outside_scope_text,
    scope_text,
)
from kiosk.reports.text import DEV_MODE_NOTE, RECOMMENDATION_TITLES, visible

_CSS = """
@page{size:A4;margin:15mm}
body{font-family:sans-serif;margin:2em;max-width:60em;color:#000;font-size:10.5pt}
h1{font-size:1.4em}h2{font-size:1.1em;border-bottom:1px solid #444;margin-top:1.6em}
.outcome{border:3px solid #000;padding:.8em 1em;margin:1em 0}
.outcome strong{font-size:1.3em;letter-spacing:.04em}
.note{font-weight:bold}
table{border-collapse:collapse;width:100%;font-size:.9em}
th,td{border:1px solid #888;padding:.25em .4em;text-align:left;vertical-align:top}
td{overflow-wrap:anywhere}td.num{white-space:nowrap;overflow-wrap:normal}
table.facts th{width:12em}
code{word-break:break-all;font-size:.95em}
table.signoff td{height:2.6em}table.signoff td:first-child{width:12em}
table.signoff td:last-child{width:8em}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}tr{break-inside:avoid}}
"""
# Hashes and key ids are shown by their first characters in wide tables, so that a page fits
# A4; the full value is in the table of full values at the end, by its footnote number.
_SHORT = 16


@dataclass(frozen=True, slots=True)
class _Html:
    """A table cell that is already HTML (made here from escaped parts), not text to escape."""

    html: str


@dataclass(slots=True)
class _Footnotes:
    """Long values shortened in tables, numbered, to be listed in full at the end (a value
    that recurs, like the one key that signed every pack, keeps its one number)."""

    values: dict[str, list[str]] = field(default_factory=dict)  # full value -> what it is

    def short(self, what: str, value: str | None) -> _Html:
        if not value:
            return _Html("")
        if len(value) <= _SHORT:
            return _Html(f"<code>{_e(value)}</code>")
        self.values.setdefault(value, []).append(what)
        n = list(self.values).index(value) + 1
        return _Html(f"<code>{_e(value[:_SHORT])}…</code><sup>[{n}]</sup>")

    def table(self) -> str:
        return _table(
            ["Note", "What", "Full value"],
            [
                [f"[{i}]", "; ".join(whats), _Html(f"<code>{_e(v)}</code>")]
                for i, (v, whats) in enumerate(self.values.items(), 1)
            ],
        )


def _e(value: object) -> str:
    return escape(visible("" if value is None else str(value)), quote=True)


def _cell(c: object) -> str:
    return c.html if isinstance(c, _Html) else _e(c)


def _td(c: object) -> str:
    num = isinstance(c, int) or (isinstance(c, str) and c.startswith("[") and c.endswith("]"))
    return f"<td class='num'>{_cell(c)}</td>" if num else f"<td>{_cell(c)}</td>"


def _table(headers: list[str], rows: Sequence[Sequence[object]], css: str = "") -> str:
    if not rows:
        return "<p>None.</p>"
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_td(c) for c in row) + "</tr>" for row in rows)
    cls = f" class='{css}'" if css else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _facts(rows: Sequence[tuple[str, object]]) -> str:
    """A two-column table of labelled values: fits a page however long the values are."""
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_cell(v)}</td></tr>" for k, v in rows)
    return f"<table class='facts'><tbody>{body}</tbody></table>"


def _match_text(m: Match) -> str:
    if isinstance(m, RuleMatch):
        why = f": {m.description}" if m.pack == BUILTIN_PACK else ""
        return f"rule {m.pack}:{m.rule} ({m.category}, {m.severity}){why}"
    near = "" if m.distance is None else f", PDQ distance {m.distance} (threshold {m.threshold})"
    return f"hash set {m.hashset} {m.version} ({m.category}, {m.disposition}{near})"


def _signer(signed_by: str | None, notes: _Footnotes, what: str) -> _Html:
    if not signed_by:
        return _Html(_e("UNVERIFIED (dev mode)"))
    return notes.short(what, signed_by)


def _yara_coverage(r: TriageReport) -> str:
    if not r.settings.yara:
        return "YARA was disabled for this run: no file was YARA-scanned."
    return hashed_only_text(r) or "Every content byte was YARA-scanned."


_EWF_CHECK = {True: "verified", False: "MISMATCH", None: "no stored hash"}
_SIGN_OFF = ("Reviewing supervisor", "Officer")


def render_html(v: VerifiedReport) -> str:
    """The whole page for one verified report; ``ReportError`` if it is not this schema."""
    r = read_report(v.report)
    rec = r.recommendation
    case = r.case
    img = r.image
    files = r.coverage.files
    notes = _Footnotes()
    basis = LEGAL_BASIS_WORDS.get(case.legal_basis.value, case.legal_basis.value)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Triage report {_e(r.report_id)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Triage report — case {_e(case.case_ref)}, exhibit {_e(case.exhibit_ref)}</h1>",
        "<h2>Case and authority</h2>",
        _facts(
            [
                ("Case reference", case.case_ref),
                ("Exhibit reference", case.exhibit_ref),
                ("Device", case.device_description or "(not described)"),
                ("Officer", case.officer),
                ("Authorised by", case.authorised_by),
                ("Legal basis", basis),
                ("Legal basis reference", case.legal_ref),
                ("Scope", scope_text(r)),
                ("Outside the scope", outside_scope_text(r)),
            ]
        ),
        "<div class='outcome'><p>Recommendation: "
        f"<strong>{_e(RECOMMENDATION_TITLES[rec.result])}</strong></p>",
        *[f"<p class='note'>{_e(n)}</p>" for n in banner_notes(r)],
        "<ul>",
        *[f"<li>{_e(reason)}</li>" for reason in rec.reasons],
        f"</ul><p>Scan outcome: <strong>{_e(r.outcome.status.value)}</strong>"
        f"{' — ' + _e(r.outcome.reason) if r.outcome.reason else ''}</p>"
        + (f"<p><strong>{_e(DEV_MODE_NOTE)}</strong></p>" if r.settings.dev_mode else "")
        + "</div>",
        "<h2>Findings by category</h2>",
        _table(["Category", "Files"], [[k, n] for k, n in r.findings_by_category.items()]),
        "<h2>Findings</h2>",
        _table(
            ["Vol.", "Path", "Inode", "Deleted", "Size", "SHA-256", "Matched"],
            [
                [
                    f.volume,
                    f.path,
                    f.inode,
                    "no" if f.allocated else "yes",
                    f.size,
                    notes.short(f"SHA-256 of {visible(f.path)}", f.sha256),
                    "; ".join(_match_text(m) for m in f.matches),
                ]
                for f in r.findings
            ],
        ),
        *(
            ["<h2>Unallocated space, slack, outside partitions</h2>"]
            + [f"<p>{_e(line.strip())}</p>" for line in area_lines(r)]
            if r.areas is not None
            else []
        ),
        "<h2>Not examined</h2>",
        _table(
            ["Kind", "Where", "Reason"],
            [[n.kind.value, not_examined_what(n), n.reason] for n in r.not_examined],
        ),
        "<h2>Coverage</h2>",
        _table(
            [
                "Files found",
                "Scanned",
                "Hashed only",
                "Known-good",
                "Unrecoverable",
                "Errors",
                "Not reached",
            ],
            [
                [
                    files.found,
                    files.scanned,
                    files.hashed_only,
                    files.known_good,
                    files.unrecoverable,
                    files.error,
                    files.not_reached,
                ]
            ],
        ),
        f"<p>{_e(_yara_coverage(r))}</p>",
        *[f"<p>{_e(line)}</p>" for line in (archive_members_text(r),) if line],
        _table(
            ["Volume", "Offset", "Description", "Filesystem", "Status", "Reason"],
            [
                [
                    x.index,
                    x.offset,
                    x.description,
                    x.fs_type,
                    "examined" if x.examined else "not_examined",
                    x.reason,
                ]
                for x in r.coverage.volumes
            ],
        ),
        "<h2>Image</h2>",
        _facts(
            [
                ("Name", img.name),
                ("Format", img.format),
                ("Segments", ", ".join(img.segments)),
                ("Size", f"{img.size:,} bytes"),
                ("SHA-256", _Html(f"<code>{_e(img.sha256 or 'not computed')}</code>")),
                (
                    "EWF hash check",
                    "n/a" if img.ewf is None else _EWF_CHECK[img.ewf.verified],
                ),
                ("Stored hash", media_hash_text(r)),
                *([("Phone", device)] if (device := device_text(r)) else []),
                *[("Evidence file", line.removeprefix("File ")) for line in evidence_file_lines(r)],
            ]
        ),
        "<h2>Rule packs and hash sets</h2>",
        _table(
            ["Kind", "Name", "Version", "Digest", "Signed by"],
            [
                [
                    "rule pack",
                    p.name
                    if p.quarantined is None
                    else f"{p.name} (imported collection; {p.quarantined} "
                    f"rule{'' if p.quarantined == 1 else 's'} quarantined)",
                    p.version,
                    notes.short(f"digest of rule pack {p.name}", p.digest),
                    _signer(p.signed_by, notes, f"key that signed rule pack {p.name}"),
                ]
                for p in r.rule_packs
            ]
            + [
                [
                    "hash set",
                    s.name,
                    s.version,
                    notes.short(f"digest of hash set {s.name}", s.digest),
                    _signer(s.signed_by, notes, f"key that signed hash set {s.name}"),
                ]
                for s in r.hash_sets
            ],
        ),
        "<h2>Integrity</h2>",
        _facts(
            [
                ("Signature", "valid (verified when this page was made)"),
                ("Key id", _Html(f"<code>{_e(v.keyid)}</code>")),
                ("Signed at", v.signed_at),
                ("Envelope SHA-256", _Html(f"<code>{_e(v.envelope_sha256)}</code>")),
                ("Report id", r.report_id),
                ("Tool", f"kiosk {r.tool.version}"),
                ("Scan", f"started {r.started}, finished {r.finished}"),
            ]
        ),
        "<h2>Reviews</h2>",
        _table(
            ["Decision", "Reviewer", "Reason", "Time", "Key id"],
            [
                [rv.decision, rv.reviewer, rv.reason, rv.time, notes.short("review key", rv.keyid)]
                for rv in v.reviews
            ],
        ),
        "<h2>Sign-off</h2>",
        _table(
            ["Role", "Name", "Signature", "Date"],
            [[role, "", "", ""] for role in _SIGN_OFF],
            css="signoff",
        ),
    ]
    if notes.values:
        parts += ["<h2>Full values</h2>", notes.table()]
    parts.append("</body></html>")
    return "\n".join(parts)
