"""Nothing raw on a terminal: strings from evidence and users reach stdout/stderr only through
``visible()``.

The attack: a GPT partition named ``p2 ESC]0;TITLE BEL ESC[2J \\n fake`` (set window title,
clear the screen, fake a line), made by parted on a real image — an ext4 partition with one
file, and a second partition of random bytes that no filesystem claims, so its name lands in
the recommendation's reasons — and case fields and a reviewer carrying the same escapes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.trust.audit import events_of
from kiosk.trust.signing import REVIEWING, TrustStore, new_key
from tests.conftest import HASHSETS, RULES

HOSTILE = "p2\x1b]0;TITLE\x07\x1b[2J\nfake"
SHOWN = "p2\\x1b]0;TITLE\\x07\\x1b[2J\\nfake"  # what visible() prints instead
MIB = 1 << 20


@pytest.fixture(scope="module")
def hostile_gpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile-gpt")
    src = root / "src"
    src.mkdir()
    (src / "note.txt").write_text("nothing to see\n")
    img = root / "gpt.dd"
    with img.open("wb") as f:
        f.truncate(10 * MIB)
    parted = ["parted", "-s", str(img), "mklabel", "gpt"]
    parted += ["mkpart", "p1", "ext4", "1MiB", "7MiB", "mkpart", "p2", "7MiB", "9MiB"]
    parted += ["name", "1", HOSTILE, "name", "2", HOSTILE]
    subprocess.run(parted, check=True, capture_output=True)
    env = {**os.environ, "E2FSPROGS_FAKE_TIME": "1700000000"}
    mke2fs = ["mke2fs", "-q", "-t", "ext4", "-d", str(src), "-E", f"offset={MIB}", "-F", str(img)]
    subprocess.run([*mke2fs, "6M"], check=True, env=env)
    with img.open("r+b") as f:  # partition 2: random bytes, "possibly encrypted", not examined
        f.seek(7 * MIB)
        f.write(os.urandom(2 * MIB))
    return img


def _kiosk(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _inert(run: subprocess.CompletedProcess[str]) -> None:
    """No control character reaches the terminal, and no line was faked."""
    for stream in (run.stdout, run.stderr):
        for ch in "\x1b\x07\r\x9b":
            assert ch not in stream
        assert not any(line.startswith("fake") for line in stream.splitlines())


def test_a_hostile_partition_name_and_case_fields_print_inert(
    hostile_gpt: Path, tmp_path: Path
) -> None:
    case = [
        *("--case", "C-1\x1b]0;T\x07", "--exhibit", "EX\nfake exhibit"),
        *("--officer", "PC-1\r", "--authorised-by", "DS-2"),
        *("--legal-basis", "warrant", "--legal-ref", "W\x1b[2J"),
    ]
    out = tmp_path / "reports"
    rules, sets = ("--rules", RULES), ("--hashsets", HASHSETS)
    scan = _kiosk("scan", hostile_gpt, *case, *rules, *sets, "--out", out)
    assert scan.returncode == 0, scan.stderr
    _inert(scan)
    assert f"volume 2 (GPT: {SHOWN}) was not examined" in scan.stdout
    assert "Case C-1\\x1b]0;T\\x07  exhibit EX\\nfake exhibit  officer PC-1\\r" in scan.stdout
    report = Path(scan.stdout.splitlines()[-1])
    # a supervisor trusted under a hostile label (the reviewer's name is the label)
    store_path = Path(os.environ["KIOSK_HOME"]) / "trust.json"
    saved = store_path.read_bytes()
    key = new_key(tmp_path / "ds.key", b"")
    store = TrustStore.load(store_path)
    store.add(key.public, label="DS\x1b[31m-9\nfake", purposes=(REVIEWING,))
    store.save(store_path)
    try:
        review = _kiosk(
            "review",
            report,
            "--decision",
            "return",
            "--reason",
            "r\x07",
            "--key",
            tmp_path / "ds.key",
        )
        assert review.returncode == 0, review.stderr
        _inert(review)
        for command in ("show", "verify"):
            run = _kiosk("report", command, report)
            assert run.returncode == 0, run.stderr
            _inert(run)
        show = _kiosk("report", "show", report).stdout
        verify = _kiosk("report", "verify", report).stdout
    finally:
        store_path.write_bytes(saved)
    assert f"volume 2 (GPT: {SHOWN})" in show
    assert "Review: return by DS\\x1b[31m-9\\nfake at " in show
    assert "case C-1\\x1b]0;T\\x07  exhibit EX\\nfake exhibit" in verify
    audit = Path(os.environ["KIOSK_HOME"]) / "audit.jsonl"
    recorded = events_of(audit, "review_recorded", reviewer="DS\\x1b[31m-9\\nfake")
    assert [e["review"] for e in recorded] == ["001.dsse.json"]  # in the log as it is shown


def test_the_one_line_error_printer_shows_paths_inert(tmp_path: Path) -> None:
    hostile = tmp_path / "img\x1b]0;T\x07\nfake.dd"
    case = ("--case", "C", "--exhibit", "E", "--officer", "O", "--authorised-by", "A")
    run = _kiosk("scan", hostile, *case, "--legal-basis", "warrant", "--legal-ref", "W")
    assert run.returncode == 1
    _inert(run)
    assert "img\\x1b]0;T\\x07\\nfake.dd" in run.stderr
    verify = _kiosk("report", "verify", tmp_path / "r\x1b[2J")
    assert verify.returncode == 3
    _inert(verify)
