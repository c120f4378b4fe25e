"""The kiosk terminal app: one ``KioskApp`` built by ``make_app`` for the CLI and the tests alike.

The app holds what every screen shares — the settings, the loaded key/packs state, the triage
function, and the injected clock and ids — and the two moves that cross screens: start a scan
(the officer cannot go back into the form once it runs) and go home. The triage function is a
parameter so tests drive every screen with a scripted fake and the real engine alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType

from kiosk.engine.standby import Standby, prepare_standby
from kiosk.engine.triage import Hooks, TriageRequest, TriageResult, run_triage
from kiosk.errors import KioskError
from kiosk.packs.engines import DEFAULT_ENGINE
from kiosk.processes import warm_up
from kiosk.reports.text import visible
from kiosk.trust.audit import AuditLog
from kiosk.tui.authority import CaseDraft
from kiosk.tui.flow import KioskState, Settings
from kiosk.tui.intake import CaseScreen
from kiosk.tui.screens import HomeScreen, ScanScreen
from kiosk.tui.widgets import ConfirmScreen

TriageFn = Callable[[TriageRequest, Hooks], TriageResult]


class KioskApp(App[None]):
    """The officer's triage flow and the supervisor's review, keyboard only."""

    CSS_PATH = "kiosk.tcss"
    TITLE = "kiosk"
    ENABLE_COMMAND_PALETTE = False  # a kiosk offers its flow, not every command
    # Tab is bound here with priority so it moves the focus before the next key is delivered:
    # Textual hands each key to the widget focused when the key is read, and a non-priority
    # Tab (the screen's) changes the focus only once the field has handled it, by which time a
    # burst — a barcode scanner, tmux send-keys, a fast typist — has put the next field's
    # characters into this one.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("tab", "focus_next", "Next field", show=False, priority=True),
        Binding("shift+tab", "focus_previous", "Previous field", show=False, priority=True),
    ]

    def __init__(
        self,
        settings: Settings,
        triage: TriageFn = run_triage,
        clock: Callable[[], datetime] | None = None,
        new_id: Callable[[], str] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.triage = triage
        self.clock = clock  # None: the engine's real clock
        self.new_id = new_id  # None: the engine's random report ids
        self.monotonic = monotonic
        self.state: KioskState | None = None
        self._standby: Standby | None = None  # the next scan's workers (kiosk.engine.standby)
        self._preparing = False
        self._standby_lock = threading.Lock()

    def on_mount(self) -> None:
        self.push_screen(HomeScreen())

    def on_unmount(self) -> None:
        standby = self.take_standby()
        if standby is not None:
            standby.close()

    def prepare_scan(self) -> None:
        """Start the next scan's workers now, loading the rules, while the officer fills in
        the case (``kiosk.engine.standby``): Run then finds them ready. Once per scan; with
        no workers (in-process scans) or packs that do not compile now, nothing is started."""
        with self._standby_lock:
            if self._standby is not None or self._preparing or self.triage is not run_triage:
                return
            self._preparing = True
        self._prepare()

    @work(thread=True, group="standby", exit_on_error=False)
    def _prepare(self) -> None:
        s = self.settings
        engine = self.state.yara_engine if self.state else DEFAULT_ENGINE
        standby = None
        try:
            standby = prepare_standby(s.rules_dir, s.workers, engine)
        finally:
            with self._standby_lock:
                self._standby, self._preparing = standby, False

    def take_standby(self) -> Standby | None:
        """The prepared workers, for the scan about to start (None: it starts its own)."""
        with self._standby_lock:
            standby, self._standby = self._standby, None
        return standby

    def now(self) -> datetime:
        return self.clock() if self.clock else datetime.now(UTC)

    def audit_log(self) -> AuditLog:
        return AuditLog(self.settings.home / "audit.jsonl", clock=self.clock)

    def audit_event(self, event: str, **fields: Any) -> None:
        """Chain one UI action into the audit log; a failure is told, not swallowed."""
        try:
            self.audit_log().append(event, **fields)
        except KioskError as e:
            message = visible(str(e))
            self.call_from_thread_or_now(
                lambda: self.notify(message, title="Audit log", severity="error", markup=False)
            )

    def call_from_thread_or_now(self, fn: Callable[[], object]) -> None:
        try:
            self.call_from_thread(fn)
        except RuntimeError:  # already on the app's thread
            fn()

    def start_scan(self, request: TriageRequest) -> None:
        """Leave the form screens behind (no way back into them mid-scan) and scan."""
        while not isinstance(self.screen, HomeScreen):
            self.pop_screen()
        self.push_screen(ScanScreen(request))

    def go_home(self, then_new_triage: bool = False, draft: CaseDraft | None = None) -> None:
        """Back to the home screen; then, if asked, a new case form (blank, or from ``draft``)."""
        while not isinstance(self.screen, HomeScreen):
            self.pop_screen()
        if then_new_triage and self.state is not None and self.state.can_triage:
            self.push_screen(CaseScreen(self.state, draft))

    async def action_quit(self) -> None:
        """Quit at once, except while a scan runs: then ask, stop it, and quit after its report."""
        scan = next((s for s in self.screen_stack if isinstance(s, ScanScreen)), None)
        if scan is None or not scan.running:
            self.exit()
            return
        if self.screen is not scan:
            return  # a question is already open

        def answered(yes: bool | None) -> None:
            if yes:
                scan.quit_when_done = True
                scan.stop()

        self.push_screen(
            ConfirmScreen(
                "A scan is running. Quit? The scan is stopped first and its signed report, "
                "marked CANCELLED, is written before the app closes.",
                "Stop and quit",
                "Keep scanning",
            ),
            answered,
        )


def make_app(
    settings: Settings,
    triage: TriageFn = run_triage,
    clock: Callable[[], datetime] | None = None,
    new_id: Callable[[], str] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> KioskApp:
    """The one factory for the CLI and the tests (posting's ``make_posting`` pattern).

    It starts multiprocessing's resource tracker now, while ``sys.stderr`` is still the real
    one: the scan's spawned workers need it, and once Textual runs it replaces ``sys.stderr``
    with an object whose ``fileno()`` is -1, so starting the tracker then fails with
    "bad value(s) in fds_to_keep". It also starts the scan helpers' server (``kiosk.processes``):
    its imports are done while the officer fills in the case, not after Run is pressed.
    """
    resource_tracker.ensure_running()
    warm_up()
    return KioskApp(settings, triage, clock, new_id, monotonic)


def default_settings(**overrides: Path | int | str | None) -> Settings:
    """Settings relative to the current folder, as ``kiosk tui`` uses them by default."""
    from kiosk.trust.signing import kiosk_home

    values: dict[str, Any] = {
        "evidence_dir": Path("sample_images"),
        "reports_dir": Path("reports"),
        "rules_dir": Path("rules"),
        "hashsets_dir": Path("hashsets"),
        "home": kiosk_home(),
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)
