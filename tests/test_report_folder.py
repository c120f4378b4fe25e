"""A report folder is data, not trust: planted links, pipes, devices, renamed folders, unsigned
extra files, forged checkpoints and non-canonical audit lines, each refused with one line.

Every attack runs through the command line as a supervisor would (``python -m kiosk …``), on a
report the real engine wrote; each of these passed, hung or overwrote a file before.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kiosk.canonical import canonical
from kiosk.engine.triage import Hooks, TriageRequest, TriageResult, run_triage
from kiosk.errors import AuditError
from kiosk.trust.audit import AuditLog, verify_log
from kiosk.trust.signing import load_signer
from tests.conftest import (
    CASE,
    HASHSETS,
    RULES,
    SAMPLES,
    check_written_report,
    fixed_hooks,
    supervisor_key,
)

Triage = Callable[..., TriageResult]
MEMORY_CAP = 2 << 30  # address space for a verify: /dev/zero read whole would hit it, not the box


def _kiosk(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    return subprocess.run(
        [sys.executable, "-m", "kiosk", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=cap,
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, kiosk_home: Path) -> Path:
    """One real report for the module (a scan costs seconds); each test attacks its own copy."""
    out = tmp_path_factory.mktemp("pristine") / "reports"
    request = TriageRequest(
        case=CASE,
        image=(SAMPLES / "fat16.dd",),
        rules_dir=RULES,
        hashsets_dir=HASHSETS,
        out_dir=out,
        inventory=True,
        workers=0,
    )
    hooks = Hooks(  # fixed_hooks(), for a module-scoped fixture
        clock=lambda: datetime(2026, 11, 27, 12, 0, tzinfo=UTC),
        new_id=lambda: "r1",
        signer=load_signer(kiosk_home / "keys" / "kiosk.key"),
        audit=AuditLog(kiosk_home / "audit.jsonl"),
    )
    with pytest.MonkeyPatch.context() as mp:  # the trust store the packs are checked against
        mp.setenv("KIOSK_HOME", str(kiosk_home))
        result = run_triage(request, hooks)
    check_written_report(result)
    return result.report_dir


@pytest.fixture
def report(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "reports" / pristine.name  # the folder keeps the report's id as its name
    shutil.copytree(pristine, copy)
    return copy


def test_report_html_replaces_a_planted_link_never_writes_through_it(
    report: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    for name, command in (("report.html", "html"), ("report.case.jsonld", "case")):
        (report / name).symlink_to(victim)
        run = _kiosk("report", command, report)
        assert run.returncode == 0, run.stderr
        assert victim.read_text() == "precious\n"
        assert not (report / name).is_symlink()
        assert (report / name).stat().st_size > 1000
    assert sorted(p.name for p in report.iterdir() if p.name.startswith(".")) == []  # no temps


def test_a_review_is_never_written_through_a_symlinked_reviews_folder(
    report: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (report / "reviews").symlink_to(elsewhere, target_is_directory=True)
    key = supervisor_key(Path(os.environ["KIOSK_HOME"]))
    args = ("--decision", "return", "--reason", "r", "--key", str(key))
    run = _kiosk("review", report, *args)
    assert run.returncode == 1
    assert run.stderr == "kiosk: error: reviews is a symbolic link, not the report's own folder\n"
    assert list(elsewhere.iterdir()) == []
    verify = _kiosk("report", "verify", report)
    assert verify.stdout == "invalid: reviews is a symbolic link, not the report's own folder\n"


def test_an_inventory_linked_to_dev_zero_is_refused_without_reading_it(report: Path) -> None:
    (report / "files.jsonl").unlink()
    (report / "files.jsonl").symlink_to("/dev/zero")
    run = _kiosk("report", "verify", report)
    assert (run.returncode, run.stdout) == (
        1,
        "invalid: files.jsonl is a symbolic link, not a file (refused)\n",
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["report.dsse.json", "report.json", "reviews/001.dsse.json"])
def test_a_fifo_in_place_of_a_file_is_refused_at_once(report: Path, name: str) -> None:
    path = report / name
    path.parent.mkdir(exist_ok=True)
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    run = _kiosk("report", "verify", report, timeout=30)  # it used to block here for ever
    assert run.returncode == 1
    assert run.stdout.startswith("invalid: ")
    assert "is not a regular file (a device, pipe or folder is refused)" in run.stdout


def test_a_renamed_report_folder_is_refused_by_its_signed_id(report: Path) -> None:
    renamed = report.with_name("0123456789abcdef")
    report.rename(renamed)
    run = _kiosk("report", "verify", renamed)
    assert (run.returncode, run.stdout) == (
        1,
        "invalid: the folder is named 0123456789abcdef but holds the signed report r1 "
        "(renamed or moved)\n",
    )


def test_verify_names_the_report_case_and_exhibit_and_every_unsigned_file(report: Path) -> None:
    (report / "report.html").write_text("<p>NO MATCHES</p>")
    (report / "notes").mkdir()
    (report / "notes" / "x.txt").write_text("x")
    (report / "reviews").mkdir()
    (report / "reviews" / "README").write_text("x")
    run = _kiosk("report", "verify", report)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("valid: signed by ")
    assert lines[1:] == [
        "report r1  case CASE-2026-0042  exhibit EX-7",
        "note: extra file not covered by the signature: notes",
        "note: extra file not covered by the signature: report.html",
        "note: extra file not covered by the signature: reviews/README",
    ]


def test_a_checkpoint_is_trusted_only_from_a_report_whose_signature_verifies(
    triage: Triage, tmp_path: Path
) -> None:
    """Drop the log's tail and edit report.json's checkpoint to match: the log alone is a valid
    prefix, so only the report's signature can tell."""
    log = tmp_path / "audit.jsonl"
    report = triage("fat16.dd", hooks=fixed_hooks(audit=AuditLog(log))).report_dir
    assert _kiosk("audit", "verify", "--log", log, "--checkpoint", report).returncode == 0
    lines = log.read_bytes().splitlines(keepends=True)
    kept = lines[:1]
    log.write_bytes(b"".join(kept))
    data = json.loads((report / "report.json").read_bytes())
    data["audit_checkpoint"] = {"size": 1, "head": json.loads(kept[0])["hash"]}
    (report / "report.json").write_bytes(canonical(data))
    run = _kiosk("audit", "verify", "--log", log, "--checkpoint", report)
    assert (run.returncode, run.stdout, run.stderr) == (
        1,
        "",
        f"kiosk: error: {report}: its checkpoint is not used: invalid: report.json differs "
        "from the signed report (tampered or replaced)\n",
    )


def _audit_lines(tmp_path: Path) -> tuple[Path, list[bytes]]:
    log = AuditLog(tmp_path / "audit.jsonl")
    for i in range(3):
        log.append("test_event", n=i)
    return log.path, log.path.read_bytes().splitlines(keepends=True)


def test_an_audit_line_with_a_key_twice_is_refused(tmp_path: Path) -> None:
    """JSON readers disagree on which of two values counts; the hash covers only one."""
    path, lines = _audit_lines(tmp_path)
    lines[1] = b'{"event":{"kind":"key_revoked"},' + lines[1][1:]
    path.write_bytes(b"".join(lines))
    with pytest.raises(AuditError, match=r"^audit log entry 2: the key 'event' appears twice"):
        verify_log(path)


def test_an_audit_line_not_in_canonical_form_is_refused(tmp_path: Path) -> None:
    path, lines = _audit_lines(tmp_path)
    lines[2] = lines[2].replace(b'","', b'", "', 1)
    path.write_bytes(b"".join(lines))
    with pytest.raises(AuditError, match=r"^audit log entry 3: not in canonical form \(edited\)$"):
        verify_log(path)
    run = _kiosk("audit", "verify", "--log", path)
    assert run.stderr == "kiosk: error: audit log entry 3: not in canonical form (edited)\n"
