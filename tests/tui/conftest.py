"""Fixtures for driving the kiosk app: a fixed kiosk home, an evidence folder, the app itself,
and SVG snapshots at 80x24.

Snapshots are compared by our own small harness rather than pytest-textual-snapshot: its only
release pins syrupy 4.8, which requires pytest < 9, and the project is on pytest 9. It does the
same thing — ``App.export_screenshot()`` after the app has settled — and also writes a plain-text
rendering beside each SVG so a changed screen can be reviewed as a diff. Regenerate on purpose
with ``KIOSK_SNAPSHOT_UPDATE=1 pytest tests/tui`` and review the diff like code.
"""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from textual import events
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input

from kiosk.trust.signing import OWN_KEY_PURPOSES, PUBLISHING, TrustStore, load_public
from kiosk.tui.app import KioskApp, TriageFn, make_app
from kiosk.tui.flow import Settings
from tests.conftest import DEMO_PUBLISHER, HASHSETS, RULES, SAMPLES
from tests.tui.fakes import ScriptedTriage

SIZE = (80, 24)
SNAPSHOTS = Path(__file__).parent / "__snapshots__"
FIXED_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def write_home(home: Path) -> Path:
    """A kiosk home with a fixed key (so key ids on screen never change) and a trust store that
    also trusts the demo publisher key for publishing only, as the ``make demo`` home does."""
    keys = home / "keys"
    keys.mkdir(parents=True)
    pem = FIXED_KEY.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(keys / "kiosk.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    store = TrustStore([])
    store.add(
        FIXED_KEY.public_key(),
        label="kiosk",
        not_before=datetime(2026, 1, 1, tzinfo=UTC),
        purposes=OWN_KEY_PURPOSES,
    )
    store.add(
        load_public(DEMO_PUBLISHER.read_text(encoding="utf-8")),
        label="demo publisher",
        purposes=(PUBLISHING,),
    )
    store.save(home / "trust.json")
    return home


@pytest.fixture
def desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A kiosk laid out in a fresh folder, with relative paths so screens show the same text.

    ``evidence/`` links a few sample images, ``rules/demo`` the demo pack, ``hashsets`` the sets.
    """
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evidence").mkdir()
    for name in ("fat16.dd", "gpt.dd", "ewf.E01", "ewf.E02", "split.001", "split.002"):
        (tmp_path / "evidence" / name).symlink_to(SAMPLES / name)
    (tmp_path / "evidence" / "notes.txt").write_text("not an image\n")
    (tmp_path / "rules").mkdir()  # the demo pack only: screens stay small and stable
    (tmp_path / "rules" / "demo").symlink_to(RULES / "demo")
    (tmp_path / "hashsets").symlink_to(HASHSETS)
    home = write_home(tmp_path / "home")
    monkeypatch.setenv("KIOSK_HOME", str(home))
    return Settings(
        evidence_dir=Path("evidence"),
        reports_dir=Path("reports"),
        rules_dir=Path("rules"),
        hashsets_dir=Path("hashsets"),
        home=Path("home"),
        workers=0,
        kiosk_id="kiosk-test-01",
    )


def kiosk_app(settings: Settings, triage: TriageFn | None = None) -> KioskApp:
    """The app as the CLI builds it, with a frozen clock and fixed ids."""
    return make_app(
        settings,
        triage or ScriptedTriage(),
        clock=lambda: NOW,
        new_id=lambda: "r1",
        monotonic=lambda: 0.0,
    )


async def settle(pilot: Pilot[None], workers: bool = True) -> None:
    """Let workers finish (unless a test holds one), messages drain and animations end; stop
    cursors blinking."""
    app = pilot.app
    for _ in range(3):
        await pilot.pause()
        if workers:
            await app.workers.wait_for_complete()
    await pilot.wait_for_scheduled_animations()
    for inp in app.screen.query(Input):
        inp.cursor_blink = False
    await pilot.pause()


_NAMED = {"tab": "\t", "enter": "\r", "space": " ", "escape": "\x1b", "shift+tab": None}
_SYMBOLS = {"-": "minus", " ": "space", "/": "slash", ".": "full_stop", "_": "underscore"}


async def burst(pilot: Pilot[None], *keys: str) -> None:
    """Deliver ``keys`` all at once, as a terminal does with a barcode scanner's or tmux's input.

    ``pilot.press`` waits for the app to go idle after every key, which hides the bugs a burst
    shows (a key handled by the field focused when it was *read*, not when it was typed). Here
    every key event is posted before the first is handled; then the app settles.
    """
    for key in keys:
        if len(key) == 1:
            event = events.Key(_SYMBOLS.get(key, key), key)
        else:
            event = events.Key(key, _NAMED.get(key))
        pilot.app.post_message(event)
    await settle(pilot)


def screen_text(app: App[None]) -> str:
    """What the terminal shows, as plain text (the same render the SVG export uses)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        record=True,
        color_system=None,
        legacy_windows=False,
        safe_box=False,
    )
    # private, but exactly what App.export_screenshot renders; tests only
    console.print(app.screen._compositor.render_update(full=True))
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


async def snapshot(pilot: Pilot[None], name: str, workers: bool = True) -> None:
    """Compare the screen with ``__snapshots__/<name>.svg`` (and ``.txt``)."""
    await settle(pilot, workers)
    svg = pilot.app.export_screenshot(title="kiosk", simplify=True)
    text = screen_text(pilot.app)
    svg_path, txt_path = SNAPSHOTS / f"{name}.svg", SNAPSHOTS / f"{name}.txt"
    if os.environ.get("KIOSK_SNAPSHOT_UPDATE") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        svg_path.write_text(svg, encoding="utf-8")
        txt_path.write_text(text, encoding="utf-8")
    assert txt_path.exists(), f"no snapshot {name}: run with KIOSK_SNAPSHOT_UPDATE=1"
    assert text == txt_path.read_text(encoding="utf-8"), f"{name}: the screen's text changed"
    assert svg == svg_path.read_text(encoding="utf-8"), f"{name}: the screen's styling changed"
