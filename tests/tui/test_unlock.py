"""The preflight's passphrase field: an encrypted volume is unlocked in the app, never shown.

The image is a real LUKS1 volume made by ``cryptsetup luksFormat`` (``tests/layered.py``); the
preflight runs the real walker on it. The scan itself is the scripted stand-in: what matters
here is that the request carries the passphrase and no screen ever shows it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from kiosk.tui.flow import Settings
from tests.layered import ext4_with, luks_volume
from tests.tui.conftest import screen_text, settle
from tests.tui.fakes import ScriptedTriage
from tests.tui.test_officer import run, to_preflight

SECRET = "tui-passphrase-93"  # noqa: S105 - the test volume's passphrase


@pytest.fixture
def encrypted(desk: Settings, tmp_path: Path) -> Path:
    if shutil.which("cryptsetup") is None:
        pytest.fail("cryptsetup is missing: apt-get install cryptsetup-bin")
    plain = ext4_with(tmp_path / "root", {"a.txt": b"hello\n"}, 3 << 20, tmp_path / "p.ext4")
    image = Path("evidence") / "luks.img"
    image.write_bytes(bytes(6 << 20))
    luks_volume(image, SECRET, plain)
    return image


def _flat(pilot: Pilot[None]) -> str:
    """The screen's text with its line wrapping undone."""
    return " ".join(screen_text(pilot.app).split())


async def _type(pilot: Pilot[None], text: str) -> None:
    field = pilot.app.screen.query_one("#passphrase", Input)
    assert field.password  # shown as dots, never as text
    assert field.display
    field.focus()
    await pilot.press(*text, "enter")
    await settle(pilot)


def test_a_passphrase_typed_in_the_preflight_unlocks_the_volume(
    desk: Settings, encrypted: Path
) -> None:
    triage = ScriptedTriage()
    seen: list[str] = []

    async def drive(pilot: Pilot[None]) -> None:
        await to_preflight(pilot, "luks.img")
        text = _flat(pilot)
        seen.append(text)
        assert "[ENCRYPTED]" in text
        assert "LUKS1 volume: encrypted; its passphrase is needed" in text
        await _type(pilot, "wrong-one")
        seen.append(_flat(pilot))
        assert "none of the 1 passphrase given unlocks it" in seen[-1]
        await _type(pilot, SECRET)
        seen.append(_flat(pilot))
        assert "LUKS1 volume unlocked with a passphrase" in seen[-1]
        assert "[EXAMINE]" in seen[-1]
        assert not pilot.app.screen.query_one("#unlock-row").display
        await pilot.press("s")
        await settle(pilot)
        seen.append(_flat(pilot))

    run(desk, drive, triage)
    (req,) = triage.requests
    assert req.keys.passwords == (SECRET,)
    assert SECRET not in repr(req)
    assert not any(SECRET in text or "wrong-one" in text for text in seen)
