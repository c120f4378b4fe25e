"""Whether and how a run searches byte areas: unallocated space, slack, outside partitions.

Decided once, before the walk, from the officer's switch (``--no-unallocated``), whether YARA
runs at all, and the loaded packs' window-safe rules (``kiosk.packs.windowsafe``): the walker
is told the size of its area tasks (0: none), the workers get the window rules (also used for
the tails of files over the YARA cap, whatever the switch), and the report records what was
decided and why -- never a silent "not searched".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from kiosk.engine.scan import ScanConfig
from kiosk.engine.windows import AREA_PIECE
from kiosk.model import VolumeRecord
from kiosk.packs.load import CompiledRules
from kiosk.packs.windowsafe import WindowRules
from kiosk.reports.areas import AreaTally
from kiosk.reports.model import AreasRecord


@dataclass(frozen=True, slots=True)
class AreaPlan:
    """What this run does with byte areas."""

    piece: int  # bytes per area task; 0 when areas are not searched
    off_reason: str  # why they are not ("" when they are)
    window: WindowRules | None
    window_bytes: int
    total_rules: int

    @property
    def overlap(self) -> int:
        return max(self.window.max_match, 1) if self.window else 0

    def configure(self, cfg: ScanConfig) -> ScanConfig:
        """The workers' settings: the window rules (big files too) and slack when searched."""
        if self.window is None or not cfg.yara_enabled:
            return cfg
        return dataclasses.replace(
            cfg,
            window_blob=self.window.to_bytes(),
            window_engine=self.window.engine.name,
            window_rule_count=len(self.window.safe),
            window_max_match=self.window.max_match,
            window_bytes=self.window_bytes,
            slack=self.piece > 0,
        )

    def record(self, tally: AreaTally, volumes: list[VolumeRecord]) -> AreasRecord:
        """The report's ``areas`` section."""
        names = tuple(f"{ns}:{r}" for ns, r in self.window.safe) if self.window else ()
        reason = self.off_reason or (
            f"searched with the {len(names)} window-safe rule(s) of {self.total_rules}, in "
            f"windows of {self.window_bytes} bytes overlapping by {self.overlap}; the other "
            "rules depend on a whole file and run on files only"
        )
        return tally.record(volumes, self.piece > 0, reason, names, self.window_bytes, self.overlap)


def plan_areas(
    unallocated: bool, yara_on: bool, rules: CompiledRules | None, window_bytes: int
) -> AreaPlan:
    """Decide, and say why when the areas are not searched."""
    window = rules.window if rules is not None and yara_on else None
    total = rules.rule_count if rules is not None else 0
    why = ""
    if not unallocated:
        why = "not searched: turned off for this run (--no-unallocated)"
    elif not yara_on:
        why = "not searched: YARA disabled for this run"
    elif rules is None:
        why = "not searched: no rule packs loaded"
    elif window is None:
        why = "not searched: no loaded rule is window-safe (every rule depends on a whole file)"
    return AreaPlan(0 if why else AREA_PIECE, why, window, window_bytes, total)
