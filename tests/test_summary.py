"""What a supervisor decides from, in every view: real scans of the sample images, read back
through ``report show`` (``render_text``) and the HTML page, worded alike."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.config import DEFAULT_MAX_YARA_BYTES, MAX_HASHED_ONLY_PERCENT
from kiosk.engine.scope import Scope
from kiosk.engine.triage import TriageResult
from kiosk.model import Recommendation
from kiosk.reports.attestation import verify_report_dir
from kiosk.reports.decode import read_report
from kiosk.reports.html import render_html
from kiosk.reports.text import render_text
from kiosk.trust.signing import TrustStore, kiosk_home
from tests import report_schema

Triage = Callable[..., TriageResult]
GOLDEN = Path(__file__).parent / "golden"
CARD_FRAUD = Scope(categories=frozenset({"card_fraud"}))


def _views(result: TriageResult) -> tuple[str, str]:
    """``report show``'s text and the HTML page's text (tags dropped, entities kept)."""
    v = verify_report_dir(result.report_dir, TrustStore.load(kiosk_home() / "trust.json"))
    page = re.sub(r"<[^>]+>", " ", render_html(v))
    return render_text(result.report), " ".join(page.split())


def test_matches_outside_the_scope_are_counted_in_every_view_never_placed(triage: Triage) -> None:
    """The issue's case: only card_fraud authorised on mbr-fat16-ext4.dd, where the demo
    marker and known-bad sample match: "no matches" must say that something lay outside."""
    result = triage("mbr-fat16-ext4.dd", scope=CARD_FRAUD, max_yara_bytes=DEFAULT_MAX_YARA_BYTES)
    assert result.report.recommendation.result is Recommendation.NO_MATCHES
    text, page = _views(result)
    for view in (text, " ".join(text.split()), page):
        assert "NO MATCHES WITHIN SCOPE" in view
        assert re.search(r"\bIN SCOPE", view.upper()) is None  # one wording: WITHIN SCOPE
    for shown in (
        # 10: the demo markers of the two deleted files are also found in unallocated space
        "10 match(es) outside the authorised scope: not findings, see Scope",
        "rule categories card_fraud; hash-set categories none",
        "demo_known_bad 2, demo_marker 8",
    ):
        assert shown in text, shown
        assert shown in page, shown
    assert (
        text.splitlines()[1]
        == "  ! 10 match(es) outside the authorised scope: not findings, see Scope"
    )
    for where in ("marker.txt", "known_bad_sample", "/Documents", "/Downloads"):
        assert where not in text  # counted per category, never which file
        assert where not in page


def test_report_show_has_the_authority_device_areas_and_stored_hash(triage: Triage) -> None:
    result = triage("ewf.E01", unallocated=False)  # its areas stay listed, each with a reason
    text, page = _views(result)
    case = result.report.case
    for shown in (
        f"Legal basis warrant, reference {case.legal_ref}; authorised by {case.authorised_by}",
        "Scope all categories of the loaded rule packs and hash sets",
        "Outside the authorised scope: none",
        "E01 stored hash MD5, SHA1: verified, matches the content read",
    ):
        assert shown in text, shown
    assert "Device (not described)" in text
    areas = [a for a in result.report.not_examined]
    assert areas
    for a in areas:  # each area with its reason, not "N area(s)" alone
        assert f"  - {a.where}: {a.reason}" in text
    # the HTML begins with the case and its authority, before the recommendation
    assert page.index("Case and authority") < page.index("Recommendation:")
    assert "Legal basis reference" in page
    assert "E01 stored hash MD5, SHA1: verified" in page


def test_deleted_findings_are_marked_deleted(triage: Triage) -> None:
    result = triage("fat16.dd")
    text = render_text(result.report)
    assert "  [0] /Documents/deleted_marker.txt (deleted) (4448 bytes): demo:kiosk_demo_marker" in (
        text.splitlines()
    )
    assert "  [0] /Documents/marker.txt (1289 bytes): demo:kiosk_demo_marker" in text.splitlines()
    # the fourth is /Videos/large.bin: its marker lies past the 1 MiB test cap (windows)
    assert "Findings: 4 ([n] = volume number)" in text


def test_the_html_prints_signers_sign_off_lines_and_full_hashes_once(triage: Triage) -> None:
    result = triage("fat16.dd")
    v = verify_report_dir(result.report_dir, TrustStore.load(kiosk_home() / "trust.json"))
    page = render_html(v)
    for s in result.report.hash_sets:  # the Signed by column is filled for hash sets too
        assert s.signed_by
        assert f"<code>{s.signed_by[:16]}…</code>" in page
    for role in ("Reviewing supervisor", "Officer"):
        assert f"<tr><td>{role}</td><td></td><td></td><td></td></tr>" in page
    assert "<th>Name</th><th>Signature</th><th>Date</th>" in page
    full = page[page.index("<h2>Full values</h2>") :]
    for f in result.report.findings:  # shortened in the table, whole in the notes, once
        assert f.sha256
        assert page.count(f.sha256) == 1
        assert f.sha256 in full
    assert page.count(result.report.hash_sets[0].signed_by or "?") == 1
    assert "@page{size:A4" in page


def test_content_mostly_over_the_cap_is_inconclusive_in_a_real_scan(triage: Triage) -> None:
    """At the 1 MiB test cap the two 1.2 MB files are most of mbr-fat16-ext4.dd's content."""
    report = triage("mbr-fat16-ext4.dd", scope=CARD_FRAUD).report
    b = report.coverage.bytes
    content = b.yara_scanned + b.hashed_only
    assert b.hashed_only * 100 > MAX_HASHED_ONLY_PERCENT * content
    assert report.settings.max_hashed_only_percent == MAX_HASHED_ONLY_PERCENT
    assert report.recommendation.result is Recommendation.INCONCLUSIVE
    share = b.hashed_only * 100 // content
    # past the cap only the window-safe rules ran (issue 17): said, not "not YARA-scanned"
    assert report.areas is not None
    n = len(report.areas.window_rules)
    assert n == 8
    assert report.recommendation.reasons == (
        f"{b.hashed_only:,} of {content:,} content bytes ({share} %) were in files over the "
        f"size cap, where only the {n} window-safe rule(s) ran past the cap: more than the 50 % "
        "limit, so most rules did not see most of the content",
    )
    text = render_text(report)
    assert text.splitlines()[2] == (
        f"  ! {b.hashed_only:,} of {content:,} bytes ({share} %) over the 1 MiB cap: only {n} "
        "window-safe rule(s) ran past it"
    )


def test_content_over_the_cap_below_the_limit_stays_no_matches_and_says_so(
    triage: Triage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("kiosk.engine.triage.MAX_HASHED_ONLY_PERCENT", 99)
    report = triage("mbr-fat16-ext4.dd", scope=CARD_FRAUD).report
    assert report.settings.max_hashed_only_percent == 99
    assert report.recommendation.result is Recommendation.NO_MATCHES
    assert "2 file(s), " in report.recommendation.reasons[-1]
    assert "only the 8 window-safe rule(s) ran past the cap" in report.recommendation.reasons[-1]
    assert "up to 99 % is accepted" in report.recommendation.reasons[-1]
    assert "over the 1 MiB cap: only 8 window-safe rule(s) ran past it" in render_text(report)


def test_under_the_default_cap_every_byte_is_scanned_and_nothing_is_said(triage: Triage) -> None:
    report = triage(
        "mbr-fat16-ext4.dd", scope=CARD_FRAUD, max_yara_bytes=DEFAULT_MAX_YARA_BYTES
    ).report
    assert report.coverage.bytes.hashed_only == 0
    assert "YARA-scanned" not in render_text(report)


def test_a_report_written_before_the_limit_existed_still_reads() -> None:
    data = json.loads((GOLDEN / "ext4.report.json").read_bytes())
    assert data["settings"].pop("max_hashed_only_percent") == MAX_HASHED_ONLY_PERCENT
    assert report_schema.problems(data) == []
    assert read_report(data).settings.max_hashed_only_percent is None


def test_a_hash_only_run_never_reads_as_every_byte_scanned(triage: Triage) -> None:
    result = triage("ext4.dd", yara=False)
    text, page = _views(result)
    assert "YARA was disabled for this run: hash sets only" in text.splitlines()[1]
    assert "YARA was disabled for this run: no file was YARA-scanned." in page
    assert "Every content byte was YARA-scanned" not in page
