"""Byte areas in the report: unallocated space, slack and disk areas outside partitions.

An area is not a file: it never counts in the file totals or the inventory. Each area task and
each file's slack comes back as ``AreaScan`` values; ``AreaTally`` folds them, per volume and
kind, into one coverage line (bytes in the area, bytes scanned) and one finding per rule (its
offsets merged across the area's range tasks, first ones kept, all counted), and keeps the
ranges that could not be scanned for ``not_examined``. Memory is bounded by the number of
volumes and rules, and of files whose slack matched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kiosk.model import AreaScan, FileResult, FileStatus, VolumeRecord
from kiosk.reports.model import (
    AreaCoverage,
    AreaFinding,
    AreaNotExamined,
    AreasRecord,
    NotExaminedKind,
)

MAX_OFFSETS = 32
KIND_WORDS = {
    "unallocated": "unallocated space",
    "slack": "file slack",
    "outside_partitions": "disk area outside partitions",
}


@dataclass(slots=True)
class AreaTally:
    """Running totals of the area scans of one run."""

    done: dict[int, int] = field(default_factory=dict)  # volume -> range bytes fully scanned
    cover: dict[tuple[int, str], list[int]] = field(default_factory=dict)  # -> [length, scanned]
    found: dict[tuple[int, str, str, str, str], AreaFinding] = field(default_factory=dict)
    failed: list[AreaNotExamined] = field(default_factory=list)

    @property
    def findings(self) -> list[AreaFinding]:
        return [self.found[k] for k in sorted(self.found)]

    def add(self, r: FileResult) -> None:
        """An area task's result, or the slack of a file's result."""
        loc = r.task.area
        if loc is not None and r.status is not FileStatus.SCANNED:
            kind = (
                NotExaminedKind.DISK_AREA
                if loc.kind == "outside_partitions"
                else NotExaminedKind.FS_UNALLOCATED
            )
            self.failed.append(
                AreaNotExamined(
                    kind, loc.volume.index, loc.offset, loc.length, r.task.path, r.reason
                )
            )
            return
        if loc is not None:
            self.done[loc.volume.index] = self.done.get(loc.volume.index, 0) + loc.length
        for a in r.areas:
            self._scan(a, loc is None)

    def _scan(self, a: AreaScan, slack: bool) -> None:
        c = self.cover.setdefault((a.volume, a.kind), [0, 0])
        if slack:
            c[0] += a.length
        c[1] += a.scanned
        for h in a.hits:
            m = h.match
            key = (a.volume, a.kind, a.where if slack else "", m.pack, m.rule)
            old = self.found.get(key)
            if old is None:
                self.found[key] = AreaFinding(
                    a.kind,
                    a.volume,
                    a.start,
                    a.length,
                    a.where if slack else None,
                    m,
                    h.offsets[:MAX_OFFSETS],
                    h.count,
                )
                continue
            offs = tuple(sorted({*old.offsets, *h.offsets}))[:MAX_OFFSETS]
            self.found[key] = AreaFinding(
                old.kind,
                old.volume,
                old.offset,
                old.length,
                old.file,
                m,
                offs,
                old.count + h.count,
            )

    def complete(self, v: VolumeRecord, media_size: int) -> bool:
        """Every range of the volume was scanned (its area leaves ``not_examined``)."""
        return self.done.get(v.index, 0) >= max(min(v.length, media_size - v.offset), 0)

    def record(
        self,
        volumes: list[VolumeRecord],
        searched: bool,
        reason: str,
        window_rules: tuple[str, ...],
        window_bytes: int,
        overlap: int,
    ) -> AreasRecord:
        """The report's ``areas``; whole areas take the volume's place and length."""
        by_index = {v.index: v for v in volumes}
        cover = []
        for (vol, kind), (length, scanned) in sorted(self.cover.items()):
            v = by_index.get(vol)
            if kind == "slack" or v is None:
                cover.append(AreaCoverage(kind, vol, v.offset if v else 0, length, scanned))
            else:
                cover.append(AreaCoverage(kind, vol, v.offset, v.length, scanned))
        findings = []
        for f in self.findings:
            v = by_index.get(f.volume)
            if f.kind != "slack" and v is not None:
                f = AreaFinding(
                    f.kind, f.volume, v.offset, v.length, None, f.match, f.offsets, f.count
                )
            findings.append(f)
        return AreasRecord(
            searched=searched,
            reason=reason,
            window_rules=window_rules,
            window_bytes=window_bytes,
            overlap=overlap,
            coverage=tuple(cover),
            findings=tuple(findings),
        )
