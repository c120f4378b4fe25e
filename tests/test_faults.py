"""Faults a kiosk meets: power loss mid-scan, two scans at once, cancel, evidence changing."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.engine.triage import TriageResult
from kiosk.errors import ReportError
from kiosk.model import Outcome, Recommendation
from kiosk.reports.attestation import verify_report_dir
from kiosk.trust.audit import verify_log
from kiosk.trust.signing import TrustStore
from tests.conftest import SAMPLES, fixed_hooks, scan_cmd

Triage = Callable[..., TriageResult]
CASE_ARGS = [
    "--case",
    "C-9",
    "--exhibit",
    "EX-9",
    "--officer",
    "PC-1",
    "--authorised-by",
    "DS-2",
    "--legal-basis",
    "warrant",
    "--legal-ref",
    "W-9",
]


@pytest.fixture(scope="module")
def big_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ext4 image with three 200 MB files: long enough to interrupt a scan in the middle."""
    root = tmp_path_factory.mktemp("big")
    src = root / "src"
    src.mkdir()
    rng = random.Random(20261127)
    block = rng.randbytes(1 << 20)
    for i in range(3):
        with (src / f"video{i}.bin").open("wb") as f:
            for j in range(200):
                f.write(block[j:] + block[:j])
    for i in range(50):
        (src / f"note{i}.txt").write_text(f"note {i}\n")
    img = root / "big.dd"
    subprocess.run(
        ["mke2fs", "-q", "-t", "ext4", "-d", str(src), "-F", str(img), "700M"],
        check=True,
        env={**os.environ, "E2FSPROGS_FAKE_TIME": "1700000000"},
    )
    return img


def _scan_cmd(image: Path, out: Path) -> list[str]:
    return scan_cmd(image, out, CASE_ARGS)


def _events(home: Path) -> list[dict[str, object]]:
    return [json.loads(x)["event"] for x in (home / "audit.jsonl").read_text().splitlines()]


def test_power_loss_mid_scan_leaves_nothing_that_verifies_and_the_next_scan_works(
    big_image: Path, tmp_path: Path
) -> None:
    home = Path(os.environ["KIOSK_HOME"])
    out = tmp_path / "reports"
    proc = subprocess.Popen(
        [*_scan_cmd(big_image, out), "--workers", "1"],  # one worker: 600 MB takes seconds
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not list(out.glob(".partial-*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # the image is open and the first file is being read
    assert proc.poll() is None, "the scan ended before the power cut: make the image bigger"
    os.killpg(proc.pid, signal.SIGKILL)  # the whole kiosk, workers too, as a power cut would
    proc.wait()
    (partial,) = out.glob(".partial-*")
    assert not (partial / "report.dsse.json").exists()
    assert [p for p in out.iterdir() if not p.name.startswith(".")] == []
    verify_log(home / "audit.jsonl")
    last = _events(home)[-1]
    assert last["kind"] == "scan_started"
    interrupted = last["report_id"]
    again = subprocess.run(
        _scan_cmd(SAMPLES / "fat16.dd", out),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert list(out.glob(".partial-*")) == []
    assert {"kind": "interrupted_run_cleaned", "report_id": interrupted} in _events(home)
    verify_log(home / "audit.jsonl")


def test_two_scans_at_once_both_complete_and_the_log_verifies(tmp_path: Path) -> None:
    home = Path(os.environ["KIOSK_HOME"])
    procs = [
        subprocess.Popen(
            _scan_cmd(SAMPLES / name, tmp_path / "r"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("ntfs.dd", "mbr-fat16-ext4.dd")
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    trust = TrustStore.load(home / "trust.json")
    for stdout, _ in outs:
        verify_report_dir(Path(stdout.strip().splitlines()[-1]), trust)
    verify_log(home / "audit.jsonl")


def test_cancel_stops_within_two_seconds_and_the_cancelled_report_is_signed(
    triage: Triage, big_image: Path
) -> None:
    hooks = fixed_hooks()
    cancelled_at: list[float] = []

    def cancel_once(_: object) -> None:  # at the first progress: workers are mid-way through
        if not cancelled_at:
            cancelled_at.append(time.monotonic())
            hooks.cancel.set()

    hooks.on_progress = cancel_once
    result = triage("ext4.dd", image=(big_image,), hooks=hooks, max_yara_bytes=64 << 20)
    assert time.monotonic() - cancelled_at[0] < 2.0
    assert result.report.outcome.status is Outcome.CANCELLED
    assert result.report.recommendation.result is Recommendation.INCONCLUSIVE
    trust = TrustStore.load(Path(os.environ["KIOSK_HOME"]) / "trust.json")
    assert verify_report_dir(result.report_dir, trust).report["outcome"]["status"] == "cancelled"


def test_evidence_truncated_mid_scan_ends_without_a_crash_or_a_clean_result(
    triage: Triage, big_image: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "shrinking.dd"
    copy.write_bytes(big_image.read_bytes())
    hooks = fixed_hooks()

    def shrink_once(_: object) -> None:  # at the first progress: the scan is under way
        if copy.stat().st_size > 300 << 20:
            os.truncate(copy, 300 << 20)

    hooks.on_progress = shrink_once
    report = triage("ext4.dd", image=(copy,), hooks=hooks, max_yara_bytes=64 << 20).report
    assert report.recommendation.result is not Recommendation.NO_MATCHES
    # whichever read the missing bytes first says so: the media hash, or the files beyond the end
    media_failed = "ended early" in (report.image.hash_error or "")
    assert media_failed or report.coverage.files.error > 0
    if media_failed:
        assert report.image.sha256 is None


def test_unwritable_report_location_is_refused_before_the_image_is_opened(
    triage: Triage, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(ReportError, match="cannot write the report to"):
        triage("fat16.dd", out_dir=blocker / "reports", image=(tmp_path / "never-opened.dd",))
