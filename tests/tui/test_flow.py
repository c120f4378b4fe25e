"""The TUI's plain logic, without a terminal: the case form, evidence, reports."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyewf
import pytest
import pytsk3

from kiosk.engine.scope import Scope
from kiosk.errors import ImageError
from kiosk.model import CaseRecord, LegalBasis, Progress
from kiosk.tui.authority import CategoryChoice, next_exhibit
from kiosk.tui.flow import (
    Settings,
    check_case_form,
    check_report,
    describe_image,
    duration,
    human_bytes,
    list_evidence,
    load_state,
    preflight,
    progress_text,
    report_dirs,
)
from tests.conftest import HASHSETS, RULES, SAMPLES

GOOD = {
    "case_ref": "C1",
    "exhibit_ref": "E1",
    "officer": "PC-1",
    "authorised_by": "DS-2",
    "legal_ref": "W1",
    "device": "",
}


def test_human_numbers() -> None:
    assert human_bytes(999) == "999 B"
    assert human_bytes(2_621_440) == "2.6 MB"
    assert duration(59) == "0:59"
    assert duration(3725) == "1:02:05"


def test_the_numbers_line_gives_no_eta_while_the_walk_is_still_counting() -> None:
    """One walk, streamed: until it ends the totals are what it has found so far, so a
    fraction or an ETA against them would run backwards; then the usual line."""
    counting = progress_text(Progress(120, 40, 9_000_000, 3_000_000, 1, 2.0, counting=True), 2.5)
    assert "Files 40 of 120 found so far (still counting)" in counting
    assert "ETA after the count" in counting
    done = progress_text(Progress(120, 60, 9_000_000, 4_500_000, 1, 3.0), 3.5)
    assert done.startswith("Files 60/120 · 4.5 MB/9.0 MB")
    assert done.endswith("ETA 0:03")
    assert progress_text(None, 1.0).startswith("Preparing")


def test_the_case_form_rules() -> None:
    ok = check_case_form(GOOD, LegalBasis.WARRANT, ["demo_marker"], [], False)
    assert ok == {}
    bad = check_case_form(
        {**GOOD, "case_ref": " ", "authorised_by": "pc-1", "device": "x" * 200},
        None,
        [],
        [],
        False,
    )
    assert set(bad) == {"case_ref", "authorised_by", "legal_basis", "device", "scope"}
    assert "too long" in bad["device"]
    allowed = check_case_form(
        {**GOOD, "authorised_by": "PC-1"}, LegalBasis.CONSENT, [], ["x"], True
    )
    assert allowed == {}  # the kiosk's policy may allow self-authorisation
    ctrl = check_case_form({**GOOD, "exhibit_ref": "E\x1b1"}, LegalBasis.OTHER, ["a"], [], False)
    assert "control character" in ctrl["exhibit_ref"]


def test_state_reports_a_refused_pack_and_blocks_triage(tmp_path: Path, kiosk_home: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES / "demo", rules / "demo")
    (rules / "demo" / "demo.yar").write_text("rule broken {\n condition: nosuch\n}\n")
    settings = Settings(SAMPLES, tmp_path / "r", rules, HASHSETS, kiosk_home, kiosk_id="k1")
    st = load_state(settings)
    assert not st.can_triage
    (pack,) = st.packs
    assert not pack.ok
    assert "demo.yar" in pack.detail
    assert [s.ok for s in st.sets] == [True, True]
    fine = load_state(Settings(SAMPLES, tmp_path / "r", RULES, HASHSETS, kiosk_home))
    assert fine.can_triage
    assert fine.signer is not None
    assert fine.kiosk_id.endswith(fine.signer.keyid[:8])
    assert "demo_marker" in fine.rule_categories
    assert "card_fraud" in fine.rule_categories  # the kiosk-core starter pack
    assert fine.hash_categories == ["demo_known_bad"]


def test_state_without_a_key_blocks_triage(tmp_path: Path) -> None:
    st = load_state(Settings(SAMPLES, tmp_path / "r", RULES, HASHSETS, tmp_path / "nohome"))
    assert st.signer is None
    assert "kiosk keys init" in st.key_problem
    assert not st.can_triage


def test_evidence_lists_first_segments_only_with_format_and_size() -> None:
    items = {i.path.name: i for i in list_evidence(SAMPLES)}
    assert set(items) == {
        "ewf.E01",
        "ext4.dd",
        "fat16.dd",
        "gpt.dd",
        "mbr-fat16-ext4.dd",
        "ntfs.dd",
        "split.001",
        "iphone-ffs.tar",  # the sample phone extraction: logical evidence
    }
    assert items["iphone-ffs.tar"].format == "tar"
    assert (items["ewf.E01"].format, items["ewf.E01"].segments) == ("ewf", 2)
    assert (items["split.001"].format, items["split.001"].segments) == ("split_raw", 3)
    assert items["split.001"].size == 2_621_440
    assert describe_image(SAMPLES / "missing.dd").problem.startswith("no such file")


def test_preflight_says_what_the_image_holds() -> None:
    ewf = preflight(SAMPLES / "ewf.E01")
    assert ewf.format == "ewf"
    assert ewf.segments == ("ewf.E01", "ewf.E02")
    assert "MD5" in ewf.media_check
    gpt = preflight(SAMPLES / "gpt.dd")
    assert gpt.examinable == 1
    assert any("encrypted" in v.reason for v in gpt.volumes if not v.examined)


def test_preflight_parses_nothing_in_the_app_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Partition tables, filesystems and the E01 container are parsed in the walker's child.

    Spies on the parsers in this (the app's) process: a crafted image that crashes one of them
    must cost the walker process, never the app.
    """
    calls: list[str] = []

    def spy(name: str, real: object) -> object:
        def call(*args: object, **kwargs: object) -> object:
            calls.append(name)
            return real(*args, **kwargs)  # type: ignore[operator]

        return call

    for module, name in ((pytsk3, "FS_Info"), (pytsk3, "Volume_Info"), (pyewf, "handle")):
        monkeypatch.setattr(module, name, spy(name, getattr(module, name)))
    gpt = preflight(SAMPLES / "gpt.dd")
    ewf = preflight(SAMPLES / "ewf.E01")
    assert calls == []
    assert (gpt.examinable, len(gpt.volumes)) == (1, 4)
    assert (ewf.format, ewf.examinable) == ("ewf", 1)


def test_reports_are_listed_and_verified(tmp_path: Path, kiosk_home: Path) -> None:
    (tmp_path / ".partial-x").mkdir()
    fake = tmp_path / "forged"
    fake.mkdir()
    (fake / "report.json").write_text('{"case": {"case_ref": "[red]C9"}, "finished": "x"}')
    (entry,) = [check_report(d, None) for d in report_dirs(tmp_path)]
    assert entry.verified is None
    assert entry.case_ref == "[red]C9"
    assert "no trust store" in entry.problem


def test_categories_carry_a_readable_title_and_where_they_come_from(
    tmp_path: Path, kiosk_home: Path
) -> None:
    st = load_state(Settings(SAMPLES, tmp_path / "r", RULES, HASHSETS, kiosk_home))
    by_name = {c.name: c for c in st.categories}
    assert [c.name for c in st.categories] == [*st.rule_categories, *st.hash_categories]
    card = by_name["card_fraud"]
    assert (card.kind, card.title, card.source) == ("rule", "Card fraud", "rules in kiosk-core (3)")
    assert by_name["demo_marker"].source == "rules in demo (2)"
    bad = by_name["demo_known_bad"]
    assert bad.kind == "hash"
    assert bad.title == "Demo known bad"
    assert bad.source == (
        "hash set demo-known-bad: The SHA-256 of kiosk's harmless known-bad sample file"
    )
    assert "demo_known_good" not in by_name  # known-good sets are never scoped


def test_the_next_exhibit_keeps_the_case_and_authority_only() -> None:
    case = CaseRecord("C1", "EX1", "PC-1", "DS-2", LegalBasis.CONSENT, "form 9", "blue phone")
    draft = next_exhibit(case, Scope(frozenset({"demo_marker"}), frozenset()))
    assert draft.values() == {
        "case_ref": "C1",
        "exhibit_ref": "",
        "officer": "PC-1",
        "authorised_by": "DS-2",
        "legal_ref": "form 9",
        "device": "",
    }
    assert draft.legal_basis is LegalBasis.CONSENT
    assert draft.after_exhibit == "EX1"
    assert draft.ticked(CategoryChoice("rule", "demo_marker", ""))
    assert not draft.ticked(CategoryChoice("hash", "demo_known_bad", ""))
    everything = next_exhibit(case, None)  # a request without a scope covered every category
    assert everything.ticked(CategoryChoice("hash", "demo_known_bad", ""))


def test_a_continuation_segment_is_named_and_never_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_walker(*args: object, **kwargs: object) -> None:
        raise AssertionError("a continuation segment was opened")

    monkeypatch.setattr("kiosk.tui.flow.Walker", no_walker)
    with pytest.raises(ImageError, match=r"split\.002 is a continuation segment: choose split\.0"):
        preflight(SAMPLES / "split.002")
    with pytest.raises(ImageError, match=r"ewf\.E02 is a continuation segment: choose ewf\.E01"):
        preflight(SAMPLES / "ewf.E02")
    (tmp_path / "split.003").symlink_to(SAMPLES / "split.003")
    with pytest.raises(ImageError, match=r"first segment split\.001 is not in"):
        preflight(tmp_path / "split.003")
    (tmp_path / "x.000").write_bytes(b"\0" * 512)
    (tmp_path / "x.001").write_bytes(b"\0" * 512)
    listed = {i.path.name: i.problem for i in list_evidence(tmp_path)}
    assert listed["x.000"] == ""
    assert "choose x.000" in listed["x.001"]
