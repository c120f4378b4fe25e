"""The supervisor's flow: list and verify reports, read one, record a signed decision."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from kiosk.cli.main import main
from kiosk.engine.triage import TriageResult
from kiosk.trust.signing import kiosk_home
from kiosk.tui.flow import Settings
from kiosk.tui.review import DecisionScreen, ReportScreen, ReviewListScreen
from tests.conftest import HASHSETS, RULES, SAMPLES
from tests.tui.conftest import SIZE, kiosk_app, screen_text, settle

Drive = Callable[[Pilot[None]], Awaitable[None]]


@pytest.fixture
def reports(triage: Callable[..., TriageResult], tmp_path: Path) -> Path:
    """One real, signed report (officer PC-1234) in a reports folder."""
    result = triage("fat16.dd", out_dir=tmp_path / "reports", workers=0)
    return result.report_dir.parent


def run(reports: Path, drive: Drive) -> None:
    settings = Settings(SAMPLES, reports, RULES, HASHSETS, kiosk_home(), workers=0)

    async def go() -> None:
        app = kiosk_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("r")
            await settle(pilot)
            assert isinstance(pilot.app.screen, ReviewListScreen)
            await drive(pilot)

    asyncio.run(go())


def rows(pilot: Pilot[None]) -> list[list[str]]:
    table = pilot.app.screen.query_one("#reports", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def test_a_review_recorded_in_the_app_is_accepted_by_report_verify(
    reports: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def drive(pilot: Pilot[None]) -> None:
        (row,) = rows(pilot)
        assert row[0] == "✓ valid"
        assert row[2:5] == ["CASE-2026-0042", "EX-7", "PC-1234"]
        assert row[5] == "SUBMIT"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ReportScreen)
        assert "[VERIFIED]" in screen_text(pilot.app)
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(pilot.app.screen, DecisionScreen)
        await pilot.press("enter", "down", "enter")  # decision: submit
        await pilot.press("tab", *"PC-1234", "tab", *"markers", "f2")
        await settle(pilot)
        assert isinstance(pilot.app.screen, DecisionScreen)  # the officer may not review
        assert "someone other than the officer" in screen_text(pilot.app)
        assert pilot.app.focused is not None
        assert pilot.app.focused.id == "reviewer"
        await pilot.press(*["backspace"] * 7, *"DS-9", "f2")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ReportScreen)
        assert "submit by DS-9" in screen_text(pilot.app)
        await pilot.press("escape")
        await settle(pilot)
        assert rows(pilot)[0][5] == "SUBMIT · 1 review(s)"

    run(reports, drive)
    (report_dir,) = [d for d in reports.iterdir()]
    assert [p.name for p in (report_dir / "reviews").iterdir()] == ["001.dsse.json"]
    capsys.readouterr()
    assert main(["report", "verify", str(report_dir)]) == 0
    out = capsys.readouterr().out
    assert "review: submit by DS-9" in out
    assert "valid" in out
    audit = (kiosk_home() / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    kinds = [json.loads(line)["event"]["kind"] for line in audit[-2:]]
    assert kinds == ["review_recorded", "report_verified"]  # the app's, then the CLI's


def test_a_tampered_report_is_listed_invalid_and_cannot_be_reviewed(reports: Path) -> None:
    (report_dir,) = [d for d in reports.iterdir()]
    report = json.loads((report_dir / "report.json").read_bytes())
    report["recommendation"]["result"] = "no_matches_in_scope"
    (report_dir / "report.json").write_text(json.dumps(report, separators=(",", ":")))

    async def drive(pilot: Pilot[None]) -> None:
        (row,) = rows(pilot)
        assert row[0] == "✗ INVALID"
        await pilot.press("enter")
        await settle(pilot)
        text = screen_text(pilot.app)
        assert "[INVALID]" in text
        assert "tampered" in text
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ReportScreen)

    run(reports, drive)
    assert not (report_dir / "reviews").exists()
