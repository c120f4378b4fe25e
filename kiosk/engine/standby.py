"""Scan workers started before Run is pressed, holding the rules already loaded.

Why: issue 19 asks that the first finding reach the app within 10 % of the scan. Of the wait
after Run, a fifth was the workers' own start: each deserialises the full, the gated and the
window-safe rule sets (26, 18 and 18 ms with YARA-X, the GIL held) and opens libmagic, whose
first buffer compiles its patterns (9 ms), while the parent waits (bench/README.md, round 5).
The app knows the rules long before Run -- the packs installed, the engine and the worker
count are the kiosk's settings -- so while the officer fills in the case it starts the workers
and hands them the compiled sets; Run then only gives them the scan's configuration.

What a standby worker holds is rules, nothing of any evidence. Its sets are used only if the
scan's configuration carries the very same bytes (``kiosk.packs.engines.load_for_scan``): packs
updated in between are loaded afresh and the report is as it would be without the standby.
Compiling here records no pack version (the scan does, ``compile_packs(record_use=False)``) and
audits nothing: nothing was used yet. A standby that is never used is dismissed when the app
ends (the workers are daemons of the app's process).

May import: the engine's workers and the packs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from kiosk.engine.areas import plan_areas
from kiosk.engine.scan import WorkerSlot, start_worker, stop_worker
from kiosk.engine.windows import WINDOW_BYTES
from kiosk.errors import KioskError
from kiosk.packs.engines import DEFAULT_ENGINE
from kiosk.packs.load import compile_packs


class Standby:
    """Workers forked now, each loading ``ahead`` (serialised rule sets), waiting for a scan."""

    def __init__(self, ahead: tuple[bytes, ...], workers: int) -> None:
        self._slots = [start_worker(None, ahead) for _ in range(workers)]

    def __len__(self) -> int:
        return len(self._slots)

    def take(self) -> list[WorkerSlot]:
        """The workers, for one scan's pool (``WorkerPool(cfg, standby=...)``); used once."""
        slots, self._slots = self._slots, []
        return slots

    def close(self) -> None:
        """Dismiss the workers not taken."""
        for slot in self.take():
            stop_worker(slot, graceful=True, wait_s=1.0)


def prepare_standby(
    rules_dir: Path | None,
    workers: int,
    yara_engine: str = DEFAULT_ENGINE,
    *,
    dev: bool = False,
    unallocated: bool = True,
    window_bytes: int = WINDOW_BYTES,
    clock: Callable[[], datetime] | None = None,
) -> Standby | None:
    """Standby workers for scans with these settings, or None when there is nothing to load
    ahead (no rules, no workers) or the packs cannot be compiled now -- the scan then compiles
    them itself and says why they fail, as it always did."""
    if rules_dir is None or workers <= 0:
        return None
    try:
        rules = compile_packs(
            rules_dir, dev=dev, clock=clock, yara_engine=yara_engine, record_use=False
        )
    except (KioskError, OSError):
        return None
    plan = plan_areas(unallocated, True, rules, window_bytes)
    blobs = (rules.to_bytes(), rules.gate_bytes(), plan.window.to_bytes() if plan.window else None)
    return Standby(tuple(b for b in blobs if b), workers)
