"""Every screen at 80x24, as SVG (and text) snapshots in ``__snapshots__``.

Deterministic by construction: a fixed key (so key ids never change), a frozen clock, report id
``r1``, relative folders, the scripted triage, no cursor blink. Regenerate on purpose with
``KIOSK_SNAPSHOT_UPDATE=1 pytest tests/tui/test_snapshots.py`` and review the .txt diffs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import threading
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input

from kiosk.engine.triage import TriageRequest, TriageResult
from kiosk.model import CaseRecord, LegalBasis, Recommendation
from kiosk.reports.model import ByteCounts, MatchType, OutOfScope, ScopeRecord
from kiosk.trust.signing import Signer, key_id
from kiosk.tui.flow import Settings
from kiosk.tui.screens import ResultScreen
from tests.conftest import RULES, fixed_hooks
from tests.tui.conftest import FIXED_KEY, SIZE, kiosk_app, settle, snapshot
from tests.tui.fakes import ScriptedTriage, finding
from tests.tui.test_officer import HOSTILE, fill_case, to_preflight

Drive = Callable[[Pilot[None]], Awaitable[None]]
REQUEST = TriageRequest(
    case=CaseRecord("C42", "EX7", "PC1", "DS2", LegalBasis.WARRANT, "W117"),
    image=(Path("evidence/fat16.dd"),),
    rules_dir=Path("rules"),
    hashsets_dir=Path("hashsets"),
    out_dir=Path("reports"),
)


def run(settings: Settings, drive: Drive, triage: ScriptedTriage | None = None) -> None:
    async def go() -> None:
        app = kiosk_app(settings, triage)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await drive(pilot)

    asyncio.run(go())


def test_officer_screens(desk: Settings) -> None:
    """Home, the form (empty with its messages, then complete), evidence, preflight, the
    running scan with a hostile file name, the cancel question and the cancelled result."""
    hold = threading.Event()
    deleted = replace(
        finding("/Users/pc/Pictures/Holiday 2025/receipts/card-dump.txt"),
        volume=1,
        allocated=False,
    )
    triage = ScriptedTriage(
        findings=[
            finding("/Documents/marker.txt"),
            finding(HOSTILE, 86, "demo_known_bad"),
            deleted,
        ],
        hold=hold,
    )

    async def drive(pilot: Pilot[None]) -> None:
        await snapshot(pilot, "home")
        await pilot.press("n")
        await settle(pilot)
        await pilot.press("f2")
        await snapshot(pilot, "case_form_errors")
        await pilot.press("escape")
        await settle(pilot)
        await fill_case(pilot, keys=False)
        await snapshot(pilot, "case_form_complete")
        await pilot.press("escape")
        await snapshot(pilot, "case_form_discard_question")
        await pilot.press("n")
        await settle(pilot)
        await pilot.press("f2")
        await snapshot(pilot, "evidence")
        await pilot.press("escape", "escape")
        await settle(pilot)
        await to_preflight(pilot, "gpt.dd")
        await snapshot(pilot, "preflight_gpt")
        await pilot.press("s")
        await asyncio.to_thread(triage.reached.wait, 5)
        await snapshot(pilot, "scan_running", workers=False)
        await pilot.press("escape")
        await snapshot(pilot, "scan_cancel_question", workers=False)
        await pilot.press("y")
        await snapshot(pilot, "result_cancelled")
        await pilot.press("e")
        await snapshot(pilot, "case_form_next_exhibit")

    run(desk, drive, triage)


def test_preflight_of_a_file_that_is_not_an_image(desk: Settings) -> None:
    async def drive(pilot: Pilot[None]) -> None:
        await fill_case(pilot, keys=False)
        await pilot.press("f2")
        await settle(pilot)
        pilot.app.screen.query_one("#path").focus()
        await pilot.press(*"evidence/notes.txt", "enter")
        await snapshot(pilot, "preflight_not_an_image")
        await pilot.press("escape")
        await settle(pilot)
        pilot.app.screen.query_one("#path", Input).value = "evidence/split.002"
        await pilot.press("enter")
        await snapshot(pilot, "preflight_continuation_segment")

    run(desk, drive)


def test_result_banners(desk: Settings) -> None:
    """The three recommendations, each with its reasons, counts and where the report is."""
    outcomes = {
        "result_submit": ScriptedTriage(findings=[finding("/Documents/marker.txt")]),
        "result_no_matches": ScriptedTriage(recommendation=Recommendation.NO_MATCHES),
        "result_inconclusive": ScriptedTriage(recommendation=Recommendation.INCONCLUSIVE),
    }

    async def drive(pilot: Pilot[None]) -> None:
        for name, fake in outcomes.items():
            result = await asyncio.to_thread(fake, None, fixed_hooks())  # type: ignore[arg-type]
            pilot.app.push_screen(ResultScreen(result, "", REQUEST))
            await snapshot(pilot, name)
            pilot.app.pop_screen()
        # matches outside a restricted scope, and content over the YARA cap: the banner says so
        result = await asyncio.to_thread(
            outcomes["result_no_matches"],
            None,
            fixed_hooks(),  # type: ignore[arg-type]
        )
        r = result.report
        scope = ScopeRecord(
            True,
            ("card_fraud",),
            (),
            (
                OutOfScope(MatchType.HASHSET, "demo_known_bad", 2),
                OutOfScope(MatchType.YARA, "demo_marker", 6),
            ),
        )
        r = dataclasses.replace(
            r,
            settings=dataclasses.replace(r.settings, scope=scope),
            coverage=dataclasses.replace(
                r.coverage, bytes=ByteCounts(8_000_000, 8_000_000, 6_000_000, 2_000_000)
            ),
        )
        pilot.app.push_screen(ResultScreen(dataclasses.replace(result, report=r), ""))
        await snapshot(pilot, "result_outside_scope")
        pilot.app.pop_screen()

    run(desk, drive)


def test_home_with_a_refused_rule_pack(desk: Settings, tmp_path: Path) -> None:
    """A pack that does not compile is shown as REFUSED with the reason; triage is disabled."""
    (tmp_path / "rules" / "demo").unlink()
    shutil.copytree(RULES / "demo", tmp_path / "rules" / "demo")
    (tmp_path / "rules" / "demo" / "demo.yar").write_text("rule x {\n condition: nosuch\n}\n")

    async def drive(pilot: Pilot[None]) -> None:
        await snapshot(pilot, "home_refused_pack")

    run(desk, drive)


def test_review_screens(desk: Settings, triage: Callable[..., TriageResult]) -> None:
    """The verified list, one report, and the decision form refusing a key file that is not
    there (the reviewer is whoever the named key belongs to)."""
    signer = Signer(FIXED_KEY, key_id(FIXED_KEY.public_key()))
    triage("fat16.dd", out_dir=Path("reports"), workers=0, hooks=fixed_hooks(signer=signer))

    async def drive(pilot: Pilot[None]) -> None:
        await pilot.press("r")
        await snapshot(pilot, "review_list")
        await pilot.press("enter")
        await snapshot(pilot, "review_report")
        await pilot.press("d")
        await settle(pilot)
        await pilot.press("enter", "down", "down", "enter", "tab", *"/media/token/pc-1234.key")
        await pilot.press("tab", *"secret", "tab", *"why", "f2")
        await snapshot(pilot, "review_decision_refused")

    run(desk, drive)
