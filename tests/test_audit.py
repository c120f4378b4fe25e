"""The audit log: every action chained; edits, dropped tails and re-written chains detected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.canonical import canonical
from kiosk.engine.triage import TriageResult
from kiosk.errors import AuditError, RulesError
from kiosk.trust.audit import AuditLog, Checkpoint, entry_hash, verify_log
from tests.conftest import MANIFEST, fixed_hooks

Triage = Callable[..., TriageResult]


def _log(tmp_path: Path, n: int = 6) -> tuple[Path, list[Checkpoint]]:
    log = AuditLog(tmp_path / "audit.jsonl")
    cps = [log.append("test_event", n=i) for i in range(n)]
    return log.path, cps


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_bytes().splitlines()]


def _write(path: Path, entries: list[dict[str, object]]) -> None:
    """Rewrite the log as an attacker would: canonical lines, so only the chain can tell."""
    path.write_bytes(b"".join(canonical(e) + b"\n" for e in entries))


def test_chain_verifies_and_checkpoints_agree(tmp_path: Path) -> None:
    path, cps = _log(tmp_path)
    result = verify_log(path, cps)
    assert (result.entries, result.head, result.checkpoints_checked) == (6, cps[-1].head, 6)
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_an_edited_entry_is_detected(tmp_path: Path) -> None:
    path, _ = _log(tmp_path)
    entries = _lines(path)
    entries[2]["event"] = {"kind": "test_event", "n": 99}
    _write(path, entries)
    with pytest.raises(AuditError, match="entry 3: its hash does not match"):
        verify_log(path)


def test_a_dropped_tail_is_detected_only_with_a_checkpoint(tmp_path: Path) -> None:
    path, cps = _log(tmp_path)
    _write(path, _lines(path)[:4])
    assert verify_log(path).entries == 4  # the chain alone cannot tell
    with pytest.raises(AuditError, match="removed from the end"):
        verify_log(path, [cps[5]])


def test_a_rewritten_chain_is_detected_by_an_earlier_checkpoint(tmp_path: Path) -> None:
    path, cps = _log(tmp_path)
    entries = _lines(path)
    entries[1]["event"] = {"kind": "test_event", "n": 42}
    for i in range(1, len(entries)):  # recompute every hash after the edit
        entries[i]["prev"] = entries[i - 1]["hash"]
        entries[i]["hash"] = entry_hash(entries[i])
    _write(path, entries)
    assert verify_log(path).entries == 6
    with pytest.raises(AuditError, match="rewritten"):
        verify_log(path, [cps[4]])


def test_a_removed_middle_entry_breaks_the_sequence(tmp_path: Path) -> None:
    path, _ = _log(tmp_path)
    entries = _lines(path)
    del entries[3]
    _write(path, entries)
    with pytest.raises(AuditError, match="entry 4: wrong sequence"):
        verify_log(path)


def test_a_scan_is_logged_without_file_names_and_its_report_holds_the_checkpoint(
    triage: Triage, tmp_path: Path
) -> None:
    log = AuditLog(tmp_path / "scan-audit.jsonl")
    result = triage("ntfs.dd", hooks=fixed_hooks(audit=log))
    kinds = [e["event"]["kind"] for e in _lines(log.path)]  # type: ignore[index]
    loads = kinds[:-3]
    assert kinds[-3:] == ["scan_started", "scan_finished", "report_written"]
    assert sorted(set(loads)) == ["hashset_loaded", "rulepack_loaded"]
    started = _lines(log.path)[-3]["event"]
    assert started["case_ref"] == "CASE-2026-0042"  # type: ignore[index]
    assert started["legal_basis"] == {  # type: ignore[index]
        "type": "warrant",
        "reference": "Warrant 2026/117, Sheriff Court",
    }
    raw = log.path.read_bytes()
    for image in MANIFEST["images"]:
        for f in image["files"]:
            name = f["path"].rsplit("/", 1)[-1].split(":")[0].encode()
            assert name not in raw
    cp = result.report.audit_checkpoint
    assert cp is not None
    assert cp.size == len(kinds) - 1  # taken at scan_finished, before report_written
    assert verify_log(log.path, [cp]).entries == len(kinds)


def test_refused_knowledge_is_logged(triage: Triage, tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl")
    with pytest.raises(RulesError, match="rules directory not found"):
        triage("fat16.dd", rules_dir=tmp_path / "none", hooks=fixed_hooks(audit=log))
    (entry,) = _lines(log.path)
    assert entry["event"]["kind"] == "knowledge_refused"  # type: ignore[index]


def test_cli_audit_verify_with_report_checkpoints(triage: Triage) -> None:
    home = Path(os.environ["KIOSK_HOME"])
    report = triage("fat16.dd").report_dir
    cmd = [sys.executable, "-m", "kiosk", "audit", "verify", "--checkpoint", str(report)]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("valid: ")
    log = home / "audit.jsonl"
    original = log.read_bytes()
    try:
        size = json.loads((report / "report.json").read_bytes())["audit_checkpoint"]["size"]
        log.write_bytes(b"".join(original.splitlines(keepends=True)[: size - 1]))
        bad = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        assert bad.returncode == 1
        assert "removed from the end" in bad.stderr
        assert "Traceback" not in bad.stderr
    finally:
        log.write_bytes(original)
