"""One self-contained, printable HTML page per verified report, for supervisors.

Rendered only from a payload that verified, and every string that came from the image or the
case form goes through ``html.escape`` — a file named ``<script>…`` shows as text. No scripts, no
external resources: the page prints and archives as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from kiosk.model import RuleMatch
from kiosk.reports.attestation import VerifiedReport
from kiosk.reports.decode import read_report
from kiosk.reports.model import Match, RulePackRecord
from kiosk.reports.text import DEV_MODE_NOTE, RECOMMENDATION_TITLES, visible

_CSS = """
body{font-family:sans-serif;margin:2em;max-width:60em;color:#000}
h1{font-size:1.4em}h2{font-size:1.1em;border-bottom:1px solid #444;margin-top:1.6em}
.outcome{border:3px solid #000;padding:.8em 1em;margin:1em 0}
.outcome strong{font-size:1.3em;letter-spacing:.04em}
table{border-collapse:collapse;width:100%;font-size:.9em}
th,td{border:1px solid #888;padding:.25em .4em;text-align:left;vertical-align:top}
code{word-break:break-all}
@media print{body{margin:0}}
"""


def _e(value: object) -> str:
    return escape(visible("" if value is None else str(value)), quote=True)


def _table(headers: list[str], rows: Sequence[Sequence[object]]) -> str:
    if not rows:
        return "<p>None.</p>"
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _match_text(m: Match) -> str:
    if isinstance(m, RuleMatch):
        return f"rule {m.pack}:{m.rule} ({m.category}, {m.severity})"
    return f"hash set {m.hashset} {m.version} ({m.category}, {m.disposition})"


def _signer_text(pack: RulePackRecord) -> str:
    return pack.signed_by if pack.signed_by else "UNVERIFIED (dev mode)"


_EWF_CHECK = {True: "verified", False: "MISMATCH", None: "no stored hash"}


def render_html(v: VerifiedReport) -> str:
    """The whole page for one verified report; ``ReportError`` if it is not this schema."""
    r = read_report(v.report)
    rec = r.recommendation
    case = r.case
    img = r.image
    files = r.coverage.files
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Triage report {_e(r.report_id)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Triage report — case {_e(case.case_ref)}, exhibit {_e(case.exhibit_ref)}</h1>",
        "<div class='outcome'><p>Recommendation: "
        f"<strong>{_e(RECOMMENDATION_TITLES[rec.result])}</strong></p><ul>",
        *[f"<li>{_e(reason)}</li>" for reason in rec.reasons],
        f"</ul><p>Scan outcome: <strong>{_e(r.outcome.status.value)}</strong>"
        f"{' — ' + _e(r.outcome.reason) if r.outcome.reason else ''}</p>"
        + (f"<p><strong>{_e(DEV_MODE_NOTE)}</strong></p>" if r.settings.dev_mode else "")
        + "</div>",
        "<h2>Findings by category</h2>",
        _table(["Category", "Files"], [[k, n] for k, n in r.findings_by_category.items()]),
        "<h2>Findings</h2>",
        _table(
            ["Volume", "Path", "Inode", "Allocated", "Size", "SHA-256", "Matched"],
            [
                [
                    f.volume,
                    f.path,
                    f.inode,
                    "yes" if f.allocated else "no (deleted)",
                    f.size,
                    f.sha256,
                    "; ".join(_match_text(m) for m in f.matches),
                ]
                for f in r.findings
            ],
        ),
        "<h2>Not examined</h2>",
        _table(
            ["Kind", "Where", "Reason"],
            [[n.kind.value, n.where, n.reason] for n in r.not_examined],
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
        "<h2>Case and authority</h2>",
        _table(
            ["Case", "Exhibit", "Officer", "Authorised by", "Legal basis", "Reference", "Device"],
            [
                [
                    case.case_ref,
                    case.exhibit_ref,
                    case.officer,
                    case.authorised_by,
                    case.legal_basis.value,
                    case.legal_ref,
                    case.device_description,
                ]
            ],
        ),
        "<h2>Image</h2>",
        _table(
            ["Name", "Format", "Segments", "Size", "SHA-256", "EWF hash check"],
            [
                [
                    img.name,
                    img.format,
                    ", ".join(img.segments),
                    img.size,
                    img.sha256,
                    "n/a" if img.ewf is None else _EWF_CHECK[img.ewf.verified],
                ]
            ],
        ),
        "<h2>Rule packs and hash sets</h2>",
        _table(
            ["Kind", "Name", "Version", "Digest", "Signed by"],
            [["rule pack", p.name, p.version, p.digest, _signer_text(p)] for p in r.rule_packs]
            + [["hash set", s.name, s.version, s.digest, ""] for s in r.hash_sets],
        ),
        "<h2>Integrity</h2>",
        _table(
            ["Signature", "Key id", "Signed at", "Envelope SHA-256", "Report id", "Tool"],
            [
                [
                    "valid (verified when this page was made)",
                    v.keyid,
                    v.signed_at,
                    v.envelope_sha256,
                    r.report_id,
                    f"kiosk {r.tool.version}",
                ]
            ],
        ),
        "<h2>Reviews</h2>",
        _table(
            ["Decision", "Reviewer", "Reason", "Time", "Key id"],
            [[rv.decision, rv.reviewer, rv.reason, rv.time, rv.keyid] for rv in v.reviews],
        ),
        f"<p>Scan started {_e(r.started)}, finished {_e(r.finished)}.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)
