"""The officer's way into a scan, driven with keys: fast input, leaving a form, the next exhibit
of the same case, the category picker, what the footer offers, and continuation segments."""

from __future__ import annotations

import json
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, Select

from kiosk.model import LegalBasis
from kiosk.tui.flow import Settings
from kiosk.tui.intake import CaseScreen, EvidenceScreen, PreflightScreen
from kiosk.tui.screens import HomeScreen, ResultScreen
from kiosk.tui.widgets import ALL, CategoryList, ConfirmScreen
from tests.conftest import RULES, SAMPLES
from tests.tui.conftest import burst, screen_text, settle
from tests.tui.fakes import ScriptedTriage
from tests.tui.test_officer import errors, fill_case, run, to_preflight, type_into

BUILTIN = [("rule", "disguised_file"), ("rule", "encrypted_data")]  # the kiosk's own checks

TEXT_FIELDS = ("case_ref", "exhibit_ref", "officer", "authorised_by", "legal_ref", "device")


def fields(pilot: Pilot[None]) -> dict[str, str]:
    return {n: pilot.app.screen.query_one(f"#{n}", Input).value for n in TEXT_FIELDS}


def audit_events() -> list[dict[str, object]]:
    lines = Path("home/audit.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["event"] for line in lines]


def footer(pilot: Pilot[None]) -> str:
    return screen_text(pilot.app).splitlines()[-1]


# --------------------------------------------------------------------------- 5: fast input


def test_a_burst_of_keys_lands_each_code_in_its_own_field(desk: Settings) -> None:
    """A barcode scanner types each code and a Tab or Enter faster than the app handles keys:
    every code must land in its own field, not all of them in the first."""

    async def drive(pilot: Pilot[None]) -> None:
        await pilot.press("n")
        await settle(pilot)
        await burst(pilot, *"CASE-1", "tab", *"EX-1", "enter", *"PC-1", "tab", *"DS-2", "enter")
        assert pilot.app.focused is pilot.app.screen.query_one("#legal_basis", Select)
        pilot.app.screen.query_one("#legal_ref", Input).focus()
        await settle(pilot)
        await burst(pilot, *"W-117", "enter", *"grey phone", "shift+tab", "tab", "tab")
        assert fields(pilot) == {
            "case_ref": "CASE-1",
            "exhibit_ref": "EX-1",
            "officer": "PC-1",
            "authorised_by": "DS-2",
            "legal_ref": "W-117",
            "device": "grey phone",
        }
        scope = pilot.app.screen.query_one("#scope", CategoryList)
        assert pilot.app.focused is scope
        # the picker too: tick all, then untick the rule category (the line below "all")
        await burst(pilot, "space", "down", "space")
        assert scope.categories == [*BUILTIN, ("hash", "demo_known_bad")]
        assert ALL not in scope.selected

    run(desk, drive)


# --------------------------------------------------------------------------- 6: leaving a form


def test_escape_asks_before_a_filled_form_is_discarded(desk: Settings) -> None:
    async def drive(pilot: Pilot[None]) -> None:
        await pilot.press("n")
        await settle(pilot)
        await pilot.press("escape")  # nothing entered: straight back
        await settle(pilot)
        assert isinstance(pilot.app.screen, HomeScreen)
        await pilot.press("n")
        await settle(pilot)
        await pilot.press(*"C42")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ConfirmScreen)
        await pilot.press("n")  # keep editing
        await settle(pilot)
        assert isinstance(pilot.app.screen, CaseScreen)
        assert fields(pilot)["case_ref"] == "C42"
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(pilot.app.screen, HomeScreen)
        await pilot.press("n")  # a discarded form is gone
        await settle(pilot)
        assert fields(pilot)["case_ref"] == ""

    run(desk, drive)


def test_a_ticked_category_alone_counts_as_entered(desk: Settings) -> None:
    async def drive(pilot: Pilot[None]) -> None:
        await pilot.press("n")
        await settle(pilot)
        pilot.app.screen.query_one("#scope", CategoryList).focus()
        await pilot.press("down", "space", "escape")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ConfirmScreen)

    run(desk, drive)


def test_next_exhibit_keeps_the_case_and_authority_and_clears_the_exhibit(desk: Settings) -> None:
    triage = ScriptedTriage()

    async def drive(pilot: Pilot[None]) -> None:
        await fill_case(pilot, keys=False)
        pilot.app.screen.query_one("#scope", CategoryList).deselect(("hash", "demo_known_bad"))
        await pilot.press("f2")
        await settle(pilot)
        await pilot.press("enter")  # the first image
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ResultScreen)
        assert "e Next exhibit, same case" in footer(pilot)
        await pilot.press("e")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, CaseScreen)
        assert fields(pilot) == {
            "case_ref": "C42",
            "exhibit_ref": "",
            "officer": "PC1",
            "authorised_by": "DS2",
            "legal_ref": "W117",
            "device": "",
        }
        assert screen.query_one("#legal_basis", Select).value is LegalBasis.WARRANT
        assert screen.query_one("#scope", CategoryList).categories == [
            ("rule", "demo_marker"),
            *BUILTIN,
        ]
        assert pilot.app.focused is screen.query_one("#exhibit_ref", Input)
        assert "Same case as exhibit EX7" in screen_text(pilot.app)
        await pilot.press(*"EX8", "f2")
        await settle(pilot)
        assert isinstance(pilot.app.screen, EvidenceScreen)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        await pilot.press("n")  # "New triage" still starts blank
        await settle(pilot)
        assert set(fields(pilot).values()) == {""}

    run(desk, drive, triage)
    first, second = triage.requests
    assert second.case.exhibit_ref == "EX8"
    assert second.case.device_description == ""
    assert (second.case.case_ref, second.case.authorised_by, second.case.legal_ref) == (
        first.case.case_ref,
        first.case.authorised_by,
        first.case.legal_ref,
    )
    assert second.scope == first.scope
    audit = audit_events()
    (kept,) = [e for e in audit if e["kind"] == "next_exhibit"]
    assert kept["case_ref"] == "C42"
    assert kept["after_exhibit"] == "EX7"
    assert kept["report_id"] == "r1"
    assert "scope" in kept["kept"]


# --------------------------------------------------------------------------- 7: the picker


def test_the_picker_labels_each_category_and_shows_every_one(
    desk: Settings, tmp_path: Path
) -> None:
    """Every pack's categories (the starter pack has five) in sight at 80x24, each with a
    readable title and where it comes from, and none hidden inside the list."""
    (tmp_path / "rules" / "demo").unlink()
    (tmp_path / "rules").rmdir()
    (tmp_path / "rules").symlink_to(RULES)

    async def drive(pilot: Pilot[None]) -> None:
        await pilot.press("n")
        await settle(pilot)
        scope = pilot.app.screen.query_one("#scope", CategoryList)
        # "all", six rule categories, the kiosk's own two, one hash-set category
        assert scope.option_count == 10
        assert scope.size.height == scope.option_count  # nothing scrolls inside the list
        text = screen_text(pilot.app)
        for line in (
            "All of these: the authority covers every category below",
            "Card fraud       rules in kiosk-core (3)",
            "Demo marker      rules in demo (2)",
            "Encrypted data   kiosk's own check: encrypted files, vaults, wallets",
            "Disguised file   kiosk's own check: a name that hides the content's kind",
            # (with the kiosk's own two categories the form is a line taller than 24: a scrollbar
            # takes two columns, every category is still in sight)
            "Demo known bad   hash set demo-known-bad: The SHA-256 of kiosk's harml",
        ):
            assert line in text
        assert "rule pack category:" not in text

    run(desk, drive)


def test_all_of_these_ticks_and_unticks_every_category_and_follows_them(desk: Settings) -> None:
    async def drive(pilot: Pilot[None]) -> None:
        await pilot.press("n")
        await settle(pilot)
        scope = pilot.app.screen.query_one("#scope", CategoryList)
        scope.focus()
        await pilot.press("space")
        assert set(scope.selected) == {
            ALL,
            ("rule", "demo_marker"),
            *BUILTIN,
            ("hash", "demo_known_bad"),
        }
        await pilot.press("down", "space")  # one category off: no longer "all"
        assert set(scope.selected) == {*BUILTIN, ("hash", "demo_known_bad")}
        await pilot.press("space")  # every one ticked by hand: "all" again
        assert ALL in scope.selected
        await pilot.press("up", "space")
        assert scope.selected == []
        await settle(pilot)
        assert "✓" not in screen_text(pilot.app)

    run(desk, drive)


def test_a_message_goes_as_soon_as_its_field_is_right(desk: Settings) -> None:
    """Stale "required" messages clear while the officer types, without leaving the field; a
    new message waits until the field is left."""

    async def drive(pilot: Pilot[None]) -> None:
        await pilot.press("n")
        await settle(pilot)
        await pilot.press("f2")
        await settle(pilot)
        assert "case_ref" in errors(pilot)
        assert pilot.app.focused is pilot.app.screen.query_one("#case_ref", Input)
        await pilot.press("C")
        await settle(pilot)
        assert "case_ref" not in errors(pilot)
        assert "exhibit_ref" in errors(pilot)  # the others stay until they are right
        await type_into(pilot, "officer", "PC1")
        await type_into(pilot, "authorised_by", "pc1")
        await pilot.press("tab")
        await settle(pilot)
        assert "someone other than you" in errors(pilot)["authorised_by"]
        await type_into(pilot, "officer", "2")  # the officer changes: the clash is gone
        await settle(pilot)
        assert "authorised_by" not in errors(pilot)
        device = pilot.app.screen.query_one("#device", Input)
        device.focus()
        await settle(pilot)
        device.value = "x" * 121  # as if typed (a key each would cost seconds)
        await settle(pilot)  # the message is shown only once the field is left
        assert "device" not in errors(pilot)
        pilot.app.screen.query_one("#scope", CategoryList).focus()
        await pilot.press("space")
        await settle(pilot)
        assert "scope" not in errors(pilot)
        assert "too long" in errors(pilot)["device"]

    run(desk, drive)


def test_the_footer_offers_only_the_keys_that_work(desk: Settings) -> None:
    async def drive(pilot: Pilot[None]) -> None:
        await fill_case(pilot, keys=False)
        await pilot.press("f2")
        await settle(pilot)
        await type_into(pilot, "path", "evidence/notes.txt")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(pilot.app.screen, PreflightScreen)
        assert "Start scan" not in screen_text(pilot.app)  # neither key nor button
        await pilot.press("escape")
        await settle(pilot)
        table_screen = pilot.app.screen
        assert isinstance(table_screen, EvidenceScreen)
        table_screen.query_one("#images").focus()
        await pilot.press("down", "enter")  # fat16.dd
        await settle(pilot)
        assert "s Start scan" in footer(pilot)
        pilot.app.push_screen(ResultScreen(None, "the signing key could not be read"))
        await settle(pilot)
        assert "HTML report" not in footer(pilot)  # no report to print
        assert "Next exhibit" not in footer(pilot)  # no case to keep
        assert "e to keep" not in screen_text(pilot.app)

    run(desk, drive)


def test_new_triage_is_not_offered_when_triage_cannot_start(desk: Settings) -> None:
    Path("home/keys/kiosk.key").unlink()

    async def drive(pilot: Pilot[None]) -> None:
        assert "New triage" not in footer(pilot)
        assert "Review reports" in footer(pilot)

    run(desk, drive)


# --------------------------------------------------------------------------- 8: segments


def test_a_continuation_segment_chosen_alone_names_the_first_segment(
    desk: Settings, tmp_path: Path
) -> None:
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "split.002").symlink_to(SAMPLES / "split.002")
    triage = ScriptedTriage()

    async def drive(pilot: Pilot[None]) -> None:
        await fill_case(pilot, keys=False)
        await pilot.press("f2")
        await settle(pilot)
        for path, says in (
            ("evidence/split.002", "split.002 is a continuation segment: choose split.001"),
            ("evidence/ewf.E02", "ewf.E02 is a continuation segment: choose ewf.E01"),
            ("lone/split.002", "its first segment split.001 is not in lone"),
        ):
            await type_into(pilot, "path", path)
            await pilot.press("enter")
            await settle(pilot)
            assert isinstance(pilot.app.screen, PreflightScreen)
            text = " ".join(screen_text(pilot.app).split())
            assert says in text
            assert "random" not in text
            await pilot.press("s")  # nothing to start
            await settle(pilot)
            assert isinstance(pilot.app.screen, PreflightScreen)
            await pilot.press("escape")
            await settle(pilot)
            pilot.app.screen.query_one("#path", Input).value = ""

    run(desk, drive, triage)
    assert triage.requests == []
    audit = audit_events()
    refused = [e for e in audit if e["kind"] == "preflight"]
    assert [e["opened"] for e in refused] == [False, False, False]
    assert "continuation segment" in refused[0]["reason"]


def test_the_first_segment_still_opens(desk: Settings, tmp_path: Path) -> None:
    (tmp_path / "evidence" / "split.003").symlink_to(SAMPLES / "split.003")

    async def drive(pilot: Pilot[None]) -> None:
        await to_preflight(pilot, "split.001")
        text = screen_text(pilot.app)
        assert "Segments 3: split.001, split.002, split.003" in text
        assert "s Start scan" in footer(pilot)

    run(desk, drive)
