"""What every kiosk screen may ask of the app, as an interface: screens never import the app.

The app (``kiosk.tui.app``) builds the screens; the screens reach back only through
``KioskHost``, so the import arrows run one way (app -> screens -> base) and a screen can be
driven by any host that offers these members.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from textual.screen import Screen

from kiosk.engine.standby import Standby
from kiosk.engine.triage import Hooks, TriageRequest, TriageResult
from kiosk.trust.audit import AuditLog
from kiosk.tui.authority import CaseDraft
from kiosk.tui.flow import KioskState, Settings

T = TypeVar("T")


@runtime_checkable
class KioskHost(Protocol):
    """The app as the screens see it: shared settings and state, injected effects, two moves."""

    settings: Settings
    state: KioskState | None
    triage: Callable[[TriageRequest, Hooks], TriageResult]
    clock: Callable[[], datetime] | None
    new_id: Callable[[], str] | None
    monotonic: Callable[[], float]

    def now(self) -> datetime: ...

    def audit_log(self) -> AuditLog: ...

    def audit_event(self, event: str, **fields: Any) -> None: ...

    def start_scan(self, request: TriageRequest) -> None: ...

    def go_home(self, then_new_triage: bool = False, draft: CaseDraft | None = None) -> None: ...

    def prepare_scan(self) -> None: ...

    def take_standby(self) -> Standby | None: ...


class KioskScreen(Screen[T]):
    """A screen that knows its app is a kiosk host (typed access to settings and state)."""

    @property
    def kiosk(self) -> KioskHost:
        app = self.app
        if not isinstance(app, KioskHost):
            raise TypeError("kiosk screens run only inside a kiosk app")
        return app
