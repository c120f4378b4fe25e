"""What a supervisor decides from, as plain lines: one wording for every view of a report.

The officer's result screen, the supervisor's review screen, ``kiosk report show`` and the HTML
page each used to word the same facts their own way, and each left some out: one showed the
matches outside the authorised scope, the others only "NO MATCHES"; one said "WITHIN SCOPE",
another "IN SCOPE". The sentences are made here once, from the report's records, and every view
shows them (the HTML escapes them, the terminal views pass them through ``visible()``).

Out-of-scope matches are only ever counted per category, never tied to a file: the report keeps
no more than that, so that a supervisor can seek a wider authority without seeing what it would
cover.
"""

from __future__ import annotations

from kiosk.model import BUILTIN_PACK, Outcome, Recommendation, RuleMatch
from kiosk.reports.areas import KIND_WORDS as AREA_WORDS
from kiosk.reports.model import (
    FileRecord,
    Match,
    NotExamined,
    NotExaminedKind,
    TriageReport,
)

SCOPE_WORDS = "WITHIN SCOPE"  # the one wording of the scope qualifier, in every view
RECOMMENDATION_TITLES = {
    Recommendation.SUBMIT: "SUBMIT FOR EXAMINATION",
    Recommendation.NO_MATCHES: f"NO MATCHES {SCOPE_WORDS}",
    Recommendation.INCONCLUSIVE: "INCONCLUSIVE",
}
OUTSIDE_SCOPE = "Outside the authorised scope (counted, not findings, files not listed)"
LEGAL_BASIS_WORDS = {
    "warrant": "warrant",
    "statutory": "statutory power",
    "consent": "consent",
    "other": "other",
}


def outside_scope_total(r: TriageReport) -> int:
    """How many matches fell outside the authorised scope, over every category."""
    return sum(o.matches for o in r.settings.scope.out_of_scope_matches)


def hashed_only_text(r: TriageReport) -> str:
    """ "N of M bytes were not YARA-scanned (over the size cap)", or "" when every byte was;
    when window-safe rules ran past the cap (issue 17), it says that only they did.

    M is the content the rules could have been run on: the files scanned in full plus the files
    hashed only because they are over the cap (known-good and unreadable files are not in it).
    """
    b = r.coverage.bytes
    content = b.yara_scanned + b.hashed_only
    if not r.settings.yara or not b.hashed_only or not content:
        return ""
    share = b.hashed_only * 100 // content
    cap = r.settings.max_yara_bytes
    cap_text = f"{cap >> 20} MiB" if cap % (1 << 20) == 0 else f"{cap:,}-byte"
    if r.areas is not None and r.areas.window_rules:  # past the cap, the window-safe rules ran
        return (
            f"{b.hashed_only:,} of {content:,} bytes ({share} %) over the {cap_text} cap: "
            f"only {len(r.areas.window_rules)} window-safe rule(s) ran past it"
        )
    return (
        f"{b.hashed_only:,} of {content:,} bytes ({share} %) not YARA-scanned "
        f"(over the {cap_text} cap)"
    )


def archive_members_text(r: TriageReport) -> str:
    """How the members of archives inside the evidence ended, counted apart from files; "" when
    the evidence held none."""
    m = r.coverage.archive_members
    if m is None:
        return ""
    return (
        f"Archive members {m.found} found ({m.bytes:,} bytes), {m.scanned} scanned, "
        f"{m.hashed_only} hashed only, {m.known_good} known-good, {m.error} not examined"
    )


INSECURE_CLUSTER = (
    "Files were scanned on a Dask cluster over plain tcp (--insecure): "
    "the connection was neither encrypted nor authenticated"
)


def banner_notes(r: TriageReport) -> list[str]:
    """The lines that qualify the recommendation's title wherever it is shown."""
    notes: list[str] = []
    if r.outcome.status is not Outcome.COMPLETE:
        notes.append(f"Scan {r.outcome.status.value.upper()}: not every file was examined")
    outside = outside_scope_total(r)
    if outside:
        notes.append(f"{outside} match(es) outside the authorised scope: not findings, see Scope")
    if not r.settings.yara:
        notes.append("YARA was disabled for this run: hash sets only")
    if r.settings.cluster is not None and r.settings.cluster.transport == "insecure":
        notes.append(INSECURE_CLUSTER)
    hashed = hashed_only_text(r)
    if hashed:
        notes.append(hashed)
    return notes


def list_result(r: TriageReport) -> str:
    """The short result for a list row: the title, and what qualifies it."""
    text = RECOMMENDATION_TITLES[r.recommendation.result]
    if r.outcome.status is not Outcome.COMPLETE:
        text += f" · {r.outcome.status.value.upper()}"
    outside = outside_scope_total(r)
    if outside:
        text += f" · {outside} outside scope"
    return text


def scope_text(r: TriageReport) -> str:
    """The authorised categories, as the officer recorded them."""
    s = r.settings.scope
    if not s.restricted:
        return "all categories of the loaded rule packs and hash sets"
    rules = ", ".join(s.rule_categories) or "none"
    hashes = ", ".join(s.hash_categories) or "none"
    return f"rule categories {rules}; hash-set categories {hashes}"


def outside_scope_text(r: TriageReport) -> str:
    """Per category, how many matches fell outside the scope (never which files)."""
    outside = r.settings.scope.out_of_scope_matches
    if not outside:
        return "Outside the authorised scope: none"
    return f"{OUTSIDE_SCOPE}: " + ", ".join(f"{o.category} {o.matches}" for o in outside)


def authority_lines(r: TriageReport) -> list[str]:
    """Who asked for the scan, under what authority, on which device, with what scope."""
    c = r.case
    basis = LEGAL_BASIS_WORDS.get(c.legal_basis.value, c.legal_basis.value)
    return [
        f"Case {c.case_ref}  exhibit {c.exhibit_ref}  officer {c.officer}",
        f"Legal basis {basis}, reference {c.legal_ref}; authorised by {c.authorised_by}",
        f"Device {c.device_description or '(not described)'}",
        f"Scope {scope_text(r)}",
        outside_scope_text(r),
    ]


def device_text(r: TriageReport) -> str | None:
    """What a phone backup says about its device, in one line; None for other evidence."""
    d = r.image.device
    if d is None:
        return None
    parts = [d.name, d.model, d.os_version]
    parts += [f"serial {d.serial}" if d.serial else "", f"IMEI {d.imei}" if d.imei else ""]
    return f"Phone {' · '.join(p for p in parts if p) or '(no details recorded)'} ({d.kind})"


def evidence_file_lines(r: TriageReport) -> list[str]:
    """Each evidence file as on the exhibit label (name, size, SHA-256); none for one raw file."""
    return [
        f"File {f.name}  {f.size} bytes  sha256 {f.sha256 or 'not read in full'}"
        for f in r.image.evidence_files
    ]


def media_hash_text(r: TriageReport) -> str:
    """The image's own stored hash (E01) against the content read, or why there is none."""
    img = r.image
    if img.ewf is None and img.format in ("folder", "itunes"):
        return (
            "Stored hash none (a folder): the SHA-256 above is that of its manifest (every "
            "file's SHA-256, size and path), computed by the scan"
        )
    if img.ewf is None:
        return f"Stored hash none ({img.format} image): the SHA-256 above was computed by the scan"
    algs = ", ".join(a.upper() for a in sorted(img.ewf.stored)) or "none"
    if img.ewf.verified is True:
        return f"E01 stored hash {algs}: verified, matches the content read"
    if img.ewf.verified is False:
        return f"E01 stored hash {algs}: MISMATCH with the content read, integrity not verified"
    return f"E01 stored hash {algs}: not compared (none stored, or the image was not read in full)"


def not_examined_what(n: NotExamined) -> str:
    if n.kind is NotExaminedKind.UNREACHED:
        return f"{n.where} file(s) not reached"
    where = n.where or n.kind.value
    if n.kind is NotExaminedKind.DELETED_FILE:
        return f"{where} (deleted)"
    return where


def not_examined_lines(r: TriageReport, limit: int | None = None) -> list[str]:
    """Each area not examined and why, ``limit`` at most (then a line saying how many more)."""
    ne = r.not_examined
    shown = ne if limit is None else ne[:limit]
    out = [f"  - {not_examined_what(n)}: {n.reason}" for n in shown]
    if len(ne) > len(shown):
        out.append(f"  … and {len(ne) - len(shown)} more in the report")
    return out or ["  none"]


def area_lines(r: TriageReport) -> list[str]:
    """Unallocated space, slack and disk areas outside partitions: searched or why not, bytes
    scanned per kind, and each finding with its area and first offsets (never content)."""
    a = r.areas
    if a is None:
        return []
    if not a.searched:
        return [f"Areas beyond files: {a.reason}"]
    scanned: dict[str, int] = {}
    for c in a.coverage:
        scanned[c.kind] = scanned.get(c.kind, 0) + c.scanned
    done = ", ".join(f"{AREA_WORDS[k]} {n:,} bytes" for k, n in sorted(scanned.items()))
    out = [f"Areas beyond files: {done or 'none'} scanned; {len(a.findings)} finding(s)"]
    fs = {v.index: v.fs_type for v in r.coverage.volumes}
    for f in a.findings:
        where = f"[{f.volume}] {AREA_WORDS[f.kind]}"
        if f.file:
            where += f" of {f.file}"
        else:
            where += (f" of the {fs[f.volume]} filesystem" if fs.get(f.volume) else "") + (
                f" (bytes {f.offset}+{f.length})"
            )
        at = ", ".join(str(o) for o in f.offsets[:5])
        more = f" ({f.count} in all)" if f.count > min(len(f.offsets), 5) else ""
        out.append(f"  {where}: {f.match.pack}:{f.match.rule} at byte {at}{more}")
    return out


def finding_label(f: FileRecord) -> str:
    """``[volume] path`` with a deleted file marked as such."""
    return f"[{f.volume}] {f.path}" + ("" if f.allocated else " (deleted)")


def match_label(m: Match) -> str:
    """A finding's match as every view names it: the kiosk's own checks with their reason (what
    the content is), perceptual matches with their distance and the set's threshold."""
    if isinstance(m, RuleMatch):
        return f"{m.pack}:{m.rule}" + (f" ({m.description})" if m.pack == BUILTIN_PACK else "")
    if m.distance is not None:
        return f"hashset {m.hashset} (PDQ distance {m.distance}, threshold {m.threshold})"
    return f"hashset {m.hashset}"
