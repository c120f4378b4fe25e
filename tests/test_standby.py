"""Standby workers (kiosk.engine.standby): started before Run with the rules loaded, the scan
they serve writes the very report a scan without them writes; and findings shown as they
arrive are each in the report, even when the officer stops the scan at the first one."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import kiosk.engine.scan as scan_mod
from kiosk.engine.standby import Standby, prepare_standby
from kiosk.engine.triage import TriageResult
from kiosk.evidence.resolve import resolve
from kiosk.model import Outcome
from kiosk.packs import engines
from kiosk.packs.cache import RulesCache
from kiosk.reports.model import FileRecord
from tests.conftest import RULES, SAMPLES, fixed_hooks, pack_toml

Triage = Callable[..., TriageResult]
FIXED = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # fixed_hooks' clock: the packs' expiry


def _standby(rules: Path = RULES, workers: int = 2) -> Standby:
    standby = prepare_standby(rules, workers, clock=lambda: FIXED)
    assert standby is not None
    assert len(standby) == workers
    return standby


def _without_checkpoint(result: TriageResult) -> dict[str, Any]:
    report = json.loads((result.report_dir / "report.json").read_bytes())
    assert report.pop("audit_checkpoint")
    return dict(report)


def _spawns(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Workers the scan starts itself (not taken from a standby)."""
    started: list[object] = []
    real = scan_mod.start_worker

    def counting(*a: Any, **kw: Any) -> scan_mod.WorkerSlot:
        started.append(a[0])
        return real(*a, **kw)

    monkeypatch.setattr(scan_mod, "start_worker", counting)
    return started


def test_a_scan_on_standby_workers_writes_the_same_report_bytes(
    triage: Triage, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    plain = triage("mbr-fat16-ext4.dd")
    standby = _standby()
    started = _spawns(monkeypatch)
    ready = triage(
        "mbr-fat16-ext4.dd", hooks=fixed_hooks(standby=standby), out_dir=tmp_path / "ready"
    )
    assert started == []  # both workers were the standby's
    assert len(standby) == 0  # taken, once
    assert ready.report.findings  # the comparison is not of two empty reports
    # the same bytes but for the audit log's checkpoint, which the first scan moved on
    assert _without_checkpoint(ready) == _without_checkpoint(plain)
    assert (ready.report_dir / "files.jsonl").read_bytes() == (
        plain.report_dir / "files.jsonl"
    ).read_bytes()


def test_rules_changed_after_the_standby_started_are_the_rules_used(
    triage: Triage, tmp_path: Path
) -> None:
    other = tmp_path / "rules" / "other"
    other.mkdir(parents=True)
    (other / "pack.toml").write_text(pack_toml("other"))
    (other / "r.yar").write_text(
        'rule any_marker {\n meta:\n  category = "test"\n  severity = "low"\n'
        '  description = "the demo marker, under another pack"\n  author = "tests"\n'
        '  date = "2026-12-07"\n strings:\n  $a = "KIOSK"\n condition:\n  $a\n}\n'
    )
    plain = triage("mbr-fat16-ext4.dd", rules_dir=other.parent, dev=True)
    standby = _standby()  # the committed packs, loaded ahead: not what this scan runs
    ready = triage(
        "mbr-fat16-ext4.dd",
        rules_dir=other.parent,
        dev=True,
        hooks=fixed_hooks(standby=standby),
        out_dir=tmp_path / "ready",
    )
    rules = {getattr(m, "rule", None) for f in ready.report.findings for m in f.matches} - {None}
    assert rules == {"any_marker"}
    assert dataclasses.replace(ready.report, audit_checkpoint=None) == dataclasses.replace(
        plain.report, audit_checkpoint=None
    )


def test_a_standby_worker_that_died_is_replaced(
    triage: Triage, monkeypatch: pytest.MonkeyPatch
) -> None:
    standby = _standby()
    slot = standby._slots[0]
    slot.proc.kill()
    slot.proc.join(5)
    started = _spawns(monkeypatch)
    result = triage("mbr-fat16-ext4.dd", hooks=fixed_hooks(standby=standby))
    assert len(started) == 1
    assert result.report.outcome.status is Outcome.COMPLETE
    assert result.report.findings


def test_a_standby_not_taken_is_dismissed() -> None:
    standby = _standby(workers=1)
    (slot,) = standby._slots
    standby.close()
    assert not slot.proc.is_alive()
    assert slot.proc.exitcode == 0  # it left when told, it was not killed


def test_a_set_loaded_ahead_is_used_for_those_bytes_only_and_once() -> None:
    eng = engines.engine(engines.YARA_X)
    blob = eng.save(eng.compile({"t": 'rule a { strings: $a = "x" condition: $a }'}, {}))
    other = eng.save(eng.compile({"t": 'rule b { strings: $b = "y" condition: $b }'}, {}))
    engines.load_ahead(eng, blob)
    (ahead,) = engines._AHEAD.values()
    assert eng.load_for_scan(other) is not ahead  # other bytes: loaded afresh
    assert eng.load_for_scan(blob) is ahead
    assert engines._AHEAD == {}
    again = eng.load_for_scan(blob)
    assert again is not ahead
    assert [r.identifier for r in again.scan(b"x").matching_rules] == ["a"]


def test_every_finding_shown_before_a_stop_is_in_the_report(triage: Triage) -> None:
    """The officer stops at the first finding shown: the scan ends CANCELLED, and what was
    shown -- as soon as its worker found it, perhaps ahead of files not yet done -- is still
    among the report's findings, as shown."""
    shown: list[FileRecord] = []
    hooks = fixed_hooks()

    def stop(f: FileRecord) -> None:
        shown.append(f)
        hooks.cancel.set()

    hooks.on_finding = stop
    report = triage("ntfs.dd", hooks=hooks).report
    assert report.outcome.status is Outcome.CANCELLED
    assert shown
    assert set(shown) <= set(report.findings)


def test_a_worker_whose_scan_is_gone_before_it_is_ready_leaves_quietly(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The scan was killed while its workers started: each finds the pipe closed when it says
    it is ready, and exits (0, no traceback) instead of raising BrokenPipeError."""
    cfg = scan_mod.ScanConfig(
        evidence=resolve([SAMPLES / "fat16.dd"]), rules_blob=None, rule_meta={}, hashsets=()
    )
    slot = scan_mod.start_worker(cfg)
    slot.conn.close()
    slot.proc.join(30)
    assert slot.proc.exitcode == 0
    assert "Traceback" not in capfd.readouterr().err


def test_two_threads_storing_one_compiled_set_leave_a_valid_entry(tmp_path: Path) -> None:
    """The app compiles ahead of a scan on one thread while Run may compile the same packs on
    another: each write goes through a file of its own, so the entry is always one whole
    write, never two interleaved (which this kiosk would then refuse as altered)."""
    blobs = [bytes([i]) * (1 << 20) for i in (1, 2)]
    for n in range(20):
        cache = RulesCache(tmp_path / str(n))  # the first store also makes the cache's key
        start = threading.Barrier(2)
        errors: list[str | None] = []

        def store(
            i: int,
            cache: RulesCache = cache,
            start: threading.Barrier = start,
            errors: list[str | None] = errors,
        ) -> None:
            start.wait()
            errors.append(cache.store("k", blobs[i], {"writer": i}, "yara-x 1"))

        threads = [threading.Thread(target=store, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        entry, why = cache.load("k", "yara-x 1")
        assert why is None
        assert entry is not None
        assert entry.blob == blobs[entry.header["writer"]]
        assert errors == [None, None]
