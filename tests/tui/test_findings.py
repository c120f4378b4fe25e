"""The live findings table: paths cut in the middle, deleted files marked, the markers explained."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

import pytest
from rich.cells import cell_len
from textual.pilot import Pilot

from kiosk.tui.flow import Settings
from kiosk.tui.screens import FINDING_COLUMNS, FINDINGS_LEGEND, finding_path
from kiosk.tui.widgets import cut_middle
from tests.tui.conftest import screen_text, settle
from tests.tui.fakes import ScriptedTriage, finding
from tests.tui.test_officer import run, to_preflight

LONG = "/Users/officer/Documents/Very Long Folder Name/Another Level/evidence-file.txt"


@pytest.mark.parametrize(
    ("text", "width", "keep", "expected"),
    [
        ("[0] /a/b.txt", 30, 4, "[0] /a/b.txt"),  # fits: unchanged
        ("[3] " + LONG, 30, 4, "[3] /Use…vel/evidence-file.txt"),
        ("[3] deleted " + LONG, 30, 12, "[3] deleted …evidence-file.txt"),
        ("[0] /a/" + "n" * 40, 20, 4, "[0] …nnnnnnnnnnnnnnn"),  # a name longer than the room
        # wide characters take two cells each
        ("[0] /日本語/日本語/日本語/ファイル名.txt", 24, 4, "[0] /…語/ファイル名.txt"),
        ("abcdefghij", 5, 0, "ab…ij"),  # no prefix: half and half
        ("abcdefghij", 1, 0, "…"),
    ],
)
def test_cut_middle_keeps_the_prefix_and_the_file_name(
    text: str, width: int, keep: int, expected: str
) -> None:
    out = cut_middle(text, width, keep)
    assert out == expected
    assert cell_len(out) <= width


def test_cut_middle_never_exceeds_the_width() -> None:
    for width in range(1, 60):
        for keep in (0, 4, 12):
            assert cell_len(cut_middle("[12] deleted " + LONG + "日本", width, keep)) <= width


def test_a_finding_path_shows_volume_deleted_and_name() -> None:
    gone = replace(finding(LONG), volume=3, allocated=False)
    assert finding_path(gone, 30) == "[3] deleted …evidence-file.txt"
    live = replace(finding(LONG), volume=3, allocated=True)
    assert finding_path(live, 30) == "[3] /Use…vel/evidence-file.txt"


def test_the_table_marks_deleted_files_and_explains_its_markers(desk: Settings) -> None:
    hold = threading.Event()
    found = [
        replace(finding("/Documents/marker.txt"), volume=1, allocated=True),
        replace(finding(LONG), volume=3, allocated=False),
    ]
    triage = ScriptedTriage(findings=found, hold=hold)

    async def drive(pilot: Pilot[None]) -> None:
        await to_preflight(pilot, "fat16.dd")
        await pilot.press("s")
        await asyncio.to_thread(triage.reached.wait, 5)
        for _ in range(3):
            await pilot.pause()
        text = screen_text(pilot.app)
        hold.set()  # before any assertion: a failing test must not leave the scan waiting
        assert FINDINGS_LEGEND in text
        assert FINDING_COLUMNS[0][0] in text
        rows = [line for line in text.splitlines() if line.startswith(("  [1]", "  [3]"))]
        assert rows[0].startswith("  [1] /Documents/marker.txt")
        assert rows[1].startswith("  [3] deleted …evidence-file.txt")
        await settle(pilot)

    run(desk, drive, triage)
