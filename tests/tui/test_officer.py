"""The officer's flow driven with keys: the form, evidence, preflight, scan, cancel, result."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static

from kiosk.model import BUILTIN_CATEGORIES, LegalBasis, Outcome, Recommendation
from kiosk.reports.attestation import verify_report_dir
from kiosk.trust.signing import TrustStore, kiosk_home
from kiosk.tui.app import KioskApp
from kiosk.tui.flow import Settings
from kiosk.tui.intake import CaseScreen, EvidenceScreen, PreflightScreen
from kiosk.tui.screens import HomeScreen, ResultScreen, ScanScreen
from kiosk.tui.widgets import CategoryList, ConfirmScreen
from tests.conftest import HASHSETS, RULES, SAMPLES
from tests.tui.conftest import SIZE, kiosk_app, screen_text, settle
from tests.tui.fakes import ScriptedTriage, finding

Drive = Callable[[Pilot[None]], Awaitable[None]]

CASE_KEYS = {  # short: every character is one key press through the Pilot
    "case_ref": "C42",
    "exhibit_ref": "EX7",
    "officer": "PC1",
    "authorised_by": "DS2",
    "legal_ref": "W117",
    "device": "grey",
}
HOSTILE = "/[b]x[/b]\x1b[31m\u202eexe"  # markup, a colour escape, a right-to-left override


def run(settings: Settings, drive: Drive, triage: Callable[..., object] | None = None) -> None:
    """Run the app headless at 80x24 and drive it."""

    async def main() -> None:
        app = kiosk_app(settings, triage)  # type: ignore[arg-type]
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await drive(pilot)

    asyncio.run(main())


async def type_into(pilot: Pilot[None], field: str, text: str) -> None:
    pilot.app.screen.query_one(f"#{field}", Input).focus()
    await pilot.press(*text)


async def fill_case(pilot: Pilot[None], keys: bool = True, **override: str) -> None:
    """Open the form from home and fill it; choose warrant; tick every category.

    With ``keys=False`` the fields are set directly, for tests whose subject is a later screen
    (each key press through the Pilot costs a wait for the app to go idle).
    """
    await pilot.press("n")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, CaseScreen)
    values = {**CASE_KEYS, **override}
    if not keys:
        for name, value in values.items():
            screen.query_one(f"#{name}", Input).value = value
        screen.query_one("#legal_basis", Select).value = LegalBasis.WARRANT
        screen.query_one("#scope", CategoryList).select_all()
        await settle(pilot)
        return
    for name in ("case_ref", "exhibit_ref", "officer", "authorised_by"):
        if values[name]:
            await pilot.press(*values[name])
        await pilot.press("enter")  # next field
    await pilot.press("enter", "down", "enter")  # open the legal basis list, take "warrant"
    await pilot.press("tab")
    for name in ("legal_ref", "device"):
        if values[name]:
            await pilot.press(*values[name])
        await pilot.press("tab")
    await pilot.press("space")  # "All of these": both categories
    await settle(pilot)


async def to_preflight(pilot: Pilot[None], image: str, keys: bool = False) -> None:
    await fill_case(pilot, keys=keys)
    await pilot.press("f2")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, EvidenceScreen)
    table = screen.query_one("#images", DataTable)
    names = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
    for _ in range(names.index(image)):
        await pilot.press("down")
    await pilot.press("enter")
    await settle(pilot)
    assert isinstance(pilot.app.screen, PreflightScreen)


def errors(pilot: Pilot[None]) -> dict[str, str]:
    return {
        str(w.id).removesuffix("-error"): str(w.render())
        for w in pilot.app.screen.query(".field-error")
        if w.display
    }


def test_the_form_refuses_to_continue_and_says_why_field_by_field(desk: Settings) -> None:
    async def drive(pilot: Pilot[None]) -> None:
        await fill_case(pilot, authorised_by="pc1", legal_ref="")
        await pilot.press("f2")
        await settle(pilot)
        assert isinstance(pilot.app.screen, CaseScreen)
        shown = errors(pilot)
        assert set(shown) == {"authorised_by", "legal_ref"}
        assert "someone other than you" in shown["authorised_by"]
        assert "Legal basis reference is required" in shown["legal_ref"]
        assert pilot.app.focused is not None
        assert pilot.app.focused.id == "authorised_by"  # the first problem has the cursor
        # fixing a field clears its message as the officer leaves it
        await pilot.press(*"x")
        await pilot.press("tab")
        await settle(pilot)
        assert set(errors(pilot)) == {"legal_ref"}

    run(desk, drive)


def test_an_empty_form_lists_every_required_item_and_opens_nothing(desk: Settings) -> None:
    triage = ScriptedTriage()

    async def drive(pilot: Pilot[None]) -> None:
        await pilot.press("n")
        await settle(pilot)
        await pilot.press("f2")
        await settle(pilot)
        assert isinstance(pilot.app.screen, CaseScreen)
        assert set(errors(pilot)) == {
            "case_ref",
            "exhibit_ref",
            "officer",
            "authorised_by",
            "legal_basis",
            "legal_ref",
            "scope",
        }
        assert "✗" in screen_text(pilot.app)  # the marker, not only the colour

    run(desk, drive, triage)
    assert triage.requests == []


def test_the_request_carries_the_case_the_authority_and_the_scope(desk: Settings) -> None:
    triage = ScriptedTriage()

    async def drive(pilot: Pilot[None]) -> None:
        await to_preflight(pilot, "fat16.dd", keys=True)
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ResultScreen)

    run(desk, drive, triage)
    (req,) = triage.requests
    assert req.case.case_ref == "C42"
    assert req.case.authorised_by == "DS2"
    assert req.case.legal_basis is LegalBasis.WARRANT
    assert req.case.device_description == "grey"
    assert req.image == (Path("evidence/fat16.dd"),)
    assert req.scope is not None
    assert req.scope.rule_categories == {"demo_marker", *BUILTIN_CATEGORIES}
    assert req.scope.hash_categories == {"demo_known_bad"}


def test_an_unticked_category_is_left_out_of_the_scope(desk: Settings) -> None:
    triage = ScriptedTriage()

    async def drive(pilot: Pilot[None]) -> None:
        await fill_case(pilot)
        # untick the hash-set category, below demo_marker and the kiosk's own two
        await pilot.press("down", "down", "down", "down", "space")
        await pilot.press("f2")
        await settle(pilot)
        await pilot.press("enter")  # the first image
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)

    run(desk, drive, triage)
    (req,) = triage.requests
    assert req.scope is not None
    assert req.scope.hash_categories == frozenset()
    assert req.scope.rule_categories == {"demo_marker", *BUILTIN_CATEGORIES}


def test_preflight_lists_what_cannot_be_examined(desk: Settings) -> None:
    async def drive(pilot: Pilot[None]) -> None:
        await to_preflight(pilot, "gpt.dd")
        text = screen_text(pilot.app)
        assert "[NOT EXAMINED]" in text
        assert "possibly encrypted" in text
        assert "[EXAMINE]" in text
        assert "1 of 4 areas can be examined" in text

    run(desk, drive)


def test_an_image_that_cannot_be_opened_cannot_be_scanned(desk: Settings) -> None:
    triage = ScriptedTriage()

    async def drive(pilot: Pilot[None]) -> None:
        await fill_case(pilot, keys=False)
        await pilot.press("f2")
        await settle(pilot)
        await type_into(pilot, "path", "evidence/notes.txt")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(pilot.app.screen, PreflightScreen)
        assert "[CANNOT OPEN]" in screen_text(pilot.app)
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(pilot.app.screen, PreflightScreen)

    run(desk, drive, triage)
    assert triage.requests == []


@pytest.mark.parametrize(
    ("recommendation", "title"),
    [
        ("submit_for_examination", "SUBMIT FOR EXAMINATION"),
        ("no_matches_in_scope", "NO MATCHES WITHIN SCOPE"),
        ("inconclusive", "INCONCLUSIVE"),
    ],
)
def test_the_result_banner_shows_each_recommendation_and_its_reasons(
    desk: Settings, recommendation: str, title: str
) -> None:
    findings = [finding("/a.txt")] if recommendation == "submit_for_examination" else []
    triage = ScriptedTriage(recommendation=Recommendation(recommendation), findings=findings)

    async def drive(pilot: Pilot[None]) -> None:
        await to_preflight(pilot, "fat16.dd")
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ResultScreen)
        banner = str(pilot.app.screen.query_one("#banner", Static).render())
        assert title in banner
        text = screen_text(pilot.app)
        assert "Why" in text
        assert "Report r1" in text
        assert "Signed with key abababab" in text
        lowered = text.casefold()
        assert "clear" not in lowered
        assert "no evidence" not in lowered

    run(desk, drive, triage)


def test_cancel_asks_first_then_stops_and_shows_a_cancelled_report(desk: Settings) -> None:
    hold = threading.Event()
    triage = ScriptedTriage(findings=[finding("/a.txt")], hold=hold)

    async def drive(pilot: Pilot[None]) -> None:
        await to_preflight(pilot, "fat16.dd")
        await pilot.press("s")
        await asyncio.to_thread(triage.reached.wait, 5)
        await pilot.pause()
        scan = pilot.app.screen
        assert isinstance(scan, ScanScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(pilot.app.screen, ConfirmScreen)
        await pilot.press("n")  # keep scanning
        await pilot.pause()
        assert pilot.app.screen is scan
        assert not scan.cancel.is_set()
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert scan.cancel.is_set()
        assert isinstance(pilot.app.screen, ResultScreen)
        text = screen_text(pilot.app)
        assert "Scan CANCELLED: not every file was examined" in text
        assert "10 file(s) not reached" in text

    run(desk, drive, triage)
    assert not hold.is_set()  # it stopped because of the cancel, not the test


def test_quitting_during_a_scan_asks_and_waits_for_the_cancelled_report(desk: Settings) -> None:
    hold = threading.Event()
    triage = ScriptedTriage(hold=hold)
    results: list[object] = []

    async def drive(pilot: Pilot[None]) -> None:
        await to_preflight(pilot, "fat16.dd")
        await pilot.press("s")
        await asyncio.to_thread(triage.reached.wait, 5)
        await pilot.pause()
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(pilot.app.screen, ConfirmScreen)
        await pilot.press("escape")  # no
        await pilot.pause()
        assert isinstance(pilot.app.screen, ScanScreen)
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        results.append(pilot.app.return_code)

    run(desk, drive, triage)
    assert results == [0]  # the app exited after the worker finished its report
    assert not hold.is_set()


def test_hostile_file_names_are_shown_literally_in_the_findings_table(desk: Settings) -> None:
    hold = threading.Event()
    triage = ScriptedTriage(findings=[finding(HOSTILE)], hold=hold)

    async def drive(pilot: Pilot[None]) -> None:
        await to_preflight(pilot, "fat16.dd")
        await pilot.press("s")
        await asyncio.to_thread(triage.reached.wait, 5)
        for _ in range(3):
            await pilot.pause()
        text = screen_text(pilot.app)
        assert "/[b]x[/b]\\x1b[31m\\u202eexe" in text
        assert "\x1b" not in text
        hold.set()
        await settle(pilot)

    run(desk, drive, triage)


def run_real(settings: Settings, drive: Callable[[Pilot[None]], Awaitable[None]]) -> None:
    """The app as ``kiosk tui`` builds it (the real engine and clock), driven by ``drive``."""

    async def main() -> None:
        from kiosk.tui.app import make_app

        app = make_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await drive(pilot)

    asyncio.run(main())


def test_the_real_engine_scans_a_sample_image_end_to_end(tmp_path: Path) -> None:
    home = kiosk_home()  # the session's test home, with a key and trust store
    settings = Settings(
        evidence_dir=SAMPLES,
        reports_dir=tmp_path / "reports",
        rules_dir=RULES,
        hashsets_dir=HASHSETS,
        home=home,
        workers=0,
    )

    async def drive(pilot: Pilot[None]) -> None:
        await to_preflight(pilot, "fat16.dd")
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ResultScreen)
        result = pilot.app.screen.result
        assert result is not None
        assert result.report.recommendation.result is Recommendation.SUBMIT
        table_paths = {f.path for f in result.report.findings}
        assert "/Downloads/known_bad_sample.bin" in table_paths
        verify_report_dir(result.report_dir, TrustStore.load(home / "trust.json"))
        victim = tmp_path / "victim.txt"  # a link planted in the report folder is replaced,
        victim.write_text("precious\n")  # never written through
        (result.report_dir / "report.html").symlink_to(victim)
        await pilot.press("h")
        await settle(pilot)
        assert (result.report_dir / "report.html").is_file()
        assert not (result.report_dir / "report.html").is_symlink()
        assert victim.read_text() == "precious\n"
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(pilot.app.screen, CaseScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(pilot.app.screen, HomeScreen)

    run_real(settings, drive)


def test_the_scans_workers_start_while_the_officer_fills_in_the_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kiosk.engine.standby: the case form opens, the app forks the workers and they load the
    rules; Run hands them the scan, which starts no worker of its own."""
    import kiosk.engine.scan as scan_mod
    import kiosk.engine.standby as standby_mod

    started: list[object] = []
    real = scan_mod.start_worker

    def counting(*a: Any, **kw: Any) -> scan_mod.WorkerSlot:
        started.append(a[0])  # the scan's configuration; None for a standby worker
        return real(*a, **kw)

    monkeypatch.setattr(scan_mod, "start_worker", counting)
    monkeypatch.setattr(standby_mod, "start_worker", counting)
    settings = Settings(
        evidence_dir=SAMPLES,
        reports_dir=tmp_path / "reports",
        rules_dir=RULES,
        hashsets_dir=HASHSETS,
        home=kiosk_home(),
        workers=2,
    )

    async def drive(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, KioskApp)
        await to_preflight(pilot, "fat16.dd")
        for _ in range(200):  # prepared on a thread of its own
            if not app._preparing:
                break
            await asyncio.sleep(0.05)
        assert started == [None, None]  # two standby workers, before any scan
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(app.screen, ResultScreen)
        result = app.screen.result
        assert result is not None
        assert result.report.outcome.status is Outcome.COMPLETE
        assert "/Downloads/known_bad_sample.bin" in {f.path for f in result.report.findings}
        assert started == [None, None]  # the scan ran on them
        assert app.take_standby() is None  # taken by that scan

    run_real(settings, drive)
