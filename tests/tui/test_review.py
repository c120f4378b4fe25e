"""The supervisor's flow: list and verify reports, read one, record a signed decision."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.binding import Binding
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from kiosk.cli.main import main
from kiosk.config import DEFAULT_MAX_YARA_BYTES
from kiosk.engine.scope import Scope
from kiosk.engine.triage import TriageResult
from kiosk.model import Outcome, Progress
from kiosk.trust.signing import kiosk_home
from kiosk.tui.flow import Settings
from kiosk.tui.review import DecisionScreen, ReportScreen, ReviewListScreen
from tests.conftest import (
    CASE,
    HASHSETS,
    RULES,
    SAMPLES,
    SUPERVISOR_PASSPHRASE,
    fixed_hooks,
    supervisor_key,
)
from tests.tui.conftest import SIZE, kiosk_app, screen_text, settle

Drive = Callable[[Pilot[None]], Awaitable[None]]


@pytest.fixture
def reports(triage: Callable[..., TriageResult], tmp_path: Path) -> Path:
    """One real, signed report (officer PC-1234) in a reports folder."""
    result = triage("fat16.dd", out_dir=tmp_path / "reports", workers=0)
    return result.report_dir.parent


def run(reports: Path, drive: Drive, size: tuple[int, int] = SIZE) -> None:
    settings = Settings(SAMPLES, reports, RULES, HASHSETS, kiosk_home(), workers=0)

    async def go() -> None:
        app = kiosk_app(settings)
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await pilot.press("r")
            await settle(pilot)
            assert isinstance(pilot.app.screen, ReviewListScreen)
            await drive(pilot)

    asyncio.run(go())


def footer_of(screen: type[ReportScreen]) -> str:
    return " ".join(str(b.description) for b in screen.BINDINGS if isinstance(b, Binding))


def rows(pilot: Pilot[None]) -> list[list[str]]:
    table = pilot.app.screen.query_one("#reports", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def test_a_review_recorded_in_the_app_is_accepted_by_report_verify(
    reports: Path, capsys: pytest.CaptureFixture[str], own_home: Path
) -> None:
    """The supervisor names their own key file and types its passphrase; the review carries the
    name the trust store binds to that key, and the passphrase never stays on the screen."""
    key = str(supervisor_key(own_home))
    secret = SUPERVISOR_PASSPHRASE.decode()

    async def drive(pilot: Pilot[None]) -> None:
        (row,) = rows(pilot)
        assert row[0] == "✓ valid"
        assert row[1] == "SUBMIT FOR EXAMINATION"
        assert row[2:4] == ["CASE-2026-0042", "EX-7"]
        assert row[4:6] == ["PC-1234", "none"]
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ReportScreen)
        assert "[VERIFIED]" in screen_text(pilot.app)
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(pilot.app.screen, DecisionScreen)
        await pilot.press("enter", "down", "enter")  # decision: submit
        await pilot.press("tab", *key, "tab", *"not it", "tab", *"markers", "f2")
        await settle(pilot)
        assert isinstance(pilot.app.screen, DecisionScreen)  # a wrong passphrase
        text = screen_text(pilot.app)
        assert "the passphrase does not open the key file" in text
        assert "not it" not in text
        assert pilot.app.screen.query_one("#passphrase", Input).value == ""  # never kept
        assert pilot.app.focused is not None
        assert pilot.app.focused.id == "keyfile"
        await pilot.press("tab", *secret, "f2")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ReportScreen)
        assert "submit by SGT-9" in screen_text(pilot.app)
        assert secret not in screen_text(pilot.app)
        await pilot.press("escape")
        await settle(pilot)
        assert rows(pilot)[0][5] == "1"

    run(reports, drive)
    (report_dir,) = [d for d in reports.iterdir()]
    assert [p.name for p in (report_dir / "reviews").iterdir()] == ["001.dsse.json"]
    capsys.readouterr()
    assert main(["report", "verify", str(report_dir)]) == 0
    out = capsys.readouterr().out
    assert "review: submit by SGT-9" in out
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
        # what the file claims is shown, and every value says it is not to be trusted
        assert row[1:5] == [
            "NO MATCHES WITHIN SCOPE (unverified)",
            "CASE-2026-0042 (unverified)",
            "EX-7 (unverified)",
            "PC-1234 (unverified)",
        ]
        assert row[5:] == ["-", "2026-11-27 12:00 (unverified)"]
        await pilot.press("enter")
        await settle(pilot)
        text = screen_text(pilot.app)
        assert "[INVALID]" in text
        assert "tampered" in text
        assert "Record decision" not in text  # d is not offered
        assert "Record decision" in footer_of(ReportScreen)  # (it is, on a valid report)
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ReportScreen)

    run(reports, drive)
    assert not (report_dir / "reviews").exists()


@pytest.fixture
def many(triage: Callable[..., TriageResult], tmp_path: Path) -> Path:
    """Three real reports: a submit (r1), a no-matches with matches outside the scope in another
    case (r2), and a cancelled one (r3), in the same reports folder."""
    out = tmp_path / "reports"
    triage("fat16.dd", out_dir=out, workers=0)
    triage(
        "mbr-fat16-ext4.dd",
        out_dir=out,
        workers=0,
        scope=Scope(categories=frozenset({"card_fraud"})),
        max_yara_bytes=DEFAULT_MAX_YARA_BYTES,
        case=dataclasses.replace(CASE, case_ref="CASE-2026-0099"),
        hooks=dataclasses.replace(fixed_hooks(), new_id=lambda: "r2"),
    )
    hooks = dataclasses.replace(fixed_hooks(), new_id=lambda: "r3")

    def stop(_: Progress) -> None:
        hooks.cancel.set()

    hooks.on_progress = stop
    cancelled = triage("ntfs.dd", out_dir=out, workers=0, hooks=hooks).report
    assert cancelled.outcome.status is Outcome.CANCELLED
    return out


def results(pilot: Pilot[None]) -> dict[str, str]:
    """Case -> Result for every row shown."""
    return {r[2]: r[1] for r in rows(pilot)}


# 10 outside scope: the demo markers of the two deleted files are also found in unallocated
# space (issue 17), out of a card_fraud scope like the rest
def test_the_review_list_filters_and_says_cancelled_and_outside_scope(many: Path) -> None:
    async def drive(pilot: Pilot[None]) -> None:
        assert sorted(r[1] for r in rows(pilot)) == [
            "INCONCLUSIVE · CANCELLED",
            "NO MATCHES WITHIN SCOPE · 10 outside scope",
            "SUBMIT FOR EXAMINATION",
        ]
        await pilot.press("s")
        assert [r[1] for r in rows(pilot)] == ["SUBMIT FOR EXAMINATION"]
        assert "showing 1 submit report(s), of 3" in screen_text(pilot.app)
        await pilot.press("i")
        assert [r[1] for r in rows(pilot)] == ["INCONCLUSIVE · CANCELLED"]
        await pilot.press("a", "c")
        await settle(pilot)
        await pilot.press(*"case-2026-0099", "enter")  # a, s, u, c, i here are text, not filters
        await settle(pilot)
        assert results(pilot) == {"CASE-2026-0099": "NO MATCHES WITHIN SCOPE · 10 outside scope"}
        await pilot.press("u")  # the case filter stays under a status filter
        assert len(rows(pilot)) == 1
        await pilot.press("c")
        await settle(pilot)
        await pilot.press("x", "escape")  # Esc closes the case box, changing nothing
        await settle(pilot)
        assert isinstance(pilot.app.screen, ReviewListScreen)
        assert len(rows(pilot)) == 1
        await pilot.press("a")
        assert len(rows(pilot)) == 3
        await pilot.press("s", "enter")  # a filtered row opens its own report
        await settle(pilot)
        assert isinstance(pilot.app.screen, ReportScreen)
        assert "SUBMIT FOR EXAMINATION" in screen_text(pilot.app)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ReviewListScreen)

    run(many, drive)


def test_a_decision_leaves_the_unreviewed_filter(many: Path, own_home: Path) -> None:
    key, secret = str(supervisor_key(own_home)), SUPERVISOR_PASSPHRASE.decode()

    async def drive(pilot: Pilot[None]) -> None:
        await pilot.press("s", "enter")
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        await pilot.press("enter", "down", "enter", "tab", *key, "tab", *secret)
        await pilot.press("tab", *"markers", "f2")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ReportScreen)
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("u")
        assert sorted(results(pilot)) == ["CASE-2026-0042", "CASE-2026-0099"]  # r3, r2
        assert "SUBMIT FOR EXAMINATION" not in [r[1] for r in rows(pilot)]

    run(many, drive)


@pytest.mark.parametrize("width", [60, 80])
def test_the_result_column_is_whole_at_60_and_80_columns(many: Path, width: int) -> None:
    async def drive(pilot: Pilot[None]) -> None:
        text = screen_text(pilot.app)
        assert "NO MATCHES WITHIN SCOPE · 10 outside scope" in text
        assert "INCONCLUSIVE · CANCELLED" in text

    run(many, drive, size=(width, 24))


def test_the_report_screen_shows_what_a_supervisor_decides_from(many: Path) -> None:
    async def drive(pilot: Pilot[None]) -> None:
        await pilot.press("c", *"0099", "enter")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ReportScreen)
        text = " ".join(screen_text(pilot.app).split())
        for shown in (
            "Recommendation: NO MATCHES WITHIN SCOPE",
            "! 10 match(es) outside the authorised scope",
            "Legal basis warrant, reference",
            "authorised by",
            "Scope rule categories card_fraud; hash-set categories none",
            "demo_known_bad 2, demo_marker 8",
            "Stored hash none (raw image)",
        ):
            assert shown in text, shown
        assert "/Documents" not in text  # never which files matched outside the scope
        await pilot.press("end")
        await settle(pilot)
        text = " ".join(screen_text(pilot.app).split())
        # the areas beyond files, scanned now (issue 17): each kind with its bytes, not a count
        assert "Areas beyond files: disk area outside partitions" in text

    run(many, drive)
