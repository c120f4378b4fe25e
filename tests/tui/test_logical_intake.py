"""The app with logical evidence: folders and backups in the picker, the backup password prompt."""

from __future__ import annotations

import json
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable

from kiosk.tui.flow import Settings
from kiosk.tui.intake import EvidenceScreen, PreflightScreen
from tests import phones
from tests.tui.conftest import screen_text, settle
from tests.tui.fakes import ScriptedTriage
from tests.tui.test_officer import fill_case, run, to_preflight, type_into

PASSWORD = "s3cret phrase"  # noqa: S105 (a test backup's password)


def test_the_picker_offers_phone_extractions_and_backups(desk: Settings, tmp_path: Path) -> None:
    phones.ffs_tar(tmp_path / "evidence" / "iphone-ffs.tar")
    phones.itunes_backup(tmp_path / "evidence" / "backup-0001")

    async def drive(pilot: Pilot[None]) -> None:
        await fill_case(pilot, keys=False)
        await pilot.press("f2")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, EvidenceScreen)
        table = screen.query_one("#images", DataTable)
        rows = {
            str(table.get_row_at(i)[0]): str(table.get_row_at(i)[1]) for i in range(table.row_count)
        }
        assert rows["iphone-ffs.tar"] == "tar"
        assert rows["backup-0001"] == "itunes"
        assert "notes.txt" not in rows

    run(desk, drive)


def test_an_encrypted_backup_asks_for_its_password_and_never_shows_it(
    desk: Settings, tmp_path: Path
) -> None:
    phones.itunes_backup(tmp_path / "evidence" / "enc-backup", password=PASSWORD.encode())
    triage = ScriptedTriage()

    async def drive(pilot: Pilot[None]) -> None:
        await to_preflight(pilot, "enc-backup")
        text = " ".join(screen_text(pilot.app).split())
        assert "This backup is encrypted" in text
        assert "encrypted backup: password needed" in text
        await type_into(pilot, "password", "wrong one")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(pilot.app.screen, PreflightScreen)
        assert "This backup is encrypted" in " ".join(screen_text(pilot.app).split())
        await type_into(pilot, "password", PASSWORD)
        await pilot.press("enter")
        await settle(pilot)
        text = " ".join(screen_text(pilot.app).split())
        assert "iTunes backup, encrypted, iPhone 12, iOS 17.4" in text
        assert "EXAMINE" in text
        assert PASSWORD not in text
        await pilot.press("s")
        await settle(pilot)

    run(desk, drive, triage)
    (req,) = triage.requests
    assert req.secret == PASSWORD.encode()
    assert PASSWORD not in repr(req)
    audit = (Path("home") / "audit.jsonl").read_text()
    assert PASSWORD not in audit
    kinds = [json.loads(x)["event"]["kind"] for x in audit.splitlines()]
    assert kinds.count("preflight") >= 2
