"""Hostile content built with real tools: names, nesting, loops and sparse giants."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.engine.triage import TriageResult
from kiosk.model import Outcome, Recommendation
from kiosk.reports.model import NotExaminedKind
from kiosk.reports.text import render_text
from tests.conftest import MARKER
from tests.oracle import fls

Triage = Callable[..., TriageResult]

NAMES = {
    "escape": b"\x1b[2J\x1b[31mred\x07.txt",
    "markup": b"[bold red]alarm[reverse] [link=x]y[blink].txt",
    "html": b"<img src=x onerror=alert(1)>.txt",
    "bad_utf8": b"caf\xe9-\xff\xfe.txt",
    "long": b"L" * 250 + b".txt",
}
DEPTH = 120


@pytest.fixture(scope="module")
def hostile_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    src = root / "src"
    src.mkdir()
    for raw in NAMES.values():
        fd = os.open(os.fsencode(src) + b"/" + raw, os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"hostile name; " + MARKER + b"\n")
        os.close(fd)
    deep = src
    for i in range(DEPTH):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    (deep / "bottom.txt").write_bytes(MARKER)
    (src / "loop" / "inner").mkdir(parents=True)
    with (src / "sparse.bin").open("wb") as f:
        f.write(MARKER)
        f.truncate(20 << 30)  # 20 GiB claimed, one block stored
    img = root / "hostile.dd"
    env = {**os.environ, "E2FSPROGS_FAKE_TIME": "1700000000"}
    subprocess.run(
        ["mke2fs", "-q", "-t", "ext4", "-b", "4096", "-d", str(src), "-F", str(img), "16M"],
        check=True,
        env=env,
    )
    # a directory loop: /loop/inner/back is another name for /loop
    subprocess.run(
        ["debugfs", "-w", "-R", "ln /loop /loop/inner/back", str(img)],
        check=True,
        capture_output=True,
    )
    return img


def test_hostile_names_are_recorded_and_shown_inert(triage: Triage, hostile_image: Path) -> None:
    result = triage("ext4.dd", image=(hostile_image,))
    lines = (result.report_dir / "files.jsonl").read_text(encoding="utf-8").splitlines()
    paths = {json.loads(x)["path"] for x in lines}
    for raw in NAMES.values():
        assert "/" + raw.decode("utf-8", "backslashreplace") in paths
    assert "/caf\\xe9-\\xff\\xfe.txt" in paths
    deep = "/" + "/".join(f"d{i}" for i in range(DEPTH)) + "/bottom.txt"
    assert deep in paths
    oracle = {e.path for e in fls(hostile_image, 0) if not e.is_dir}
    assert len(oracle) == len(paths)
    text = render_text(result.report)
    assert "\x1b" not in text
    assert "\x07" not in text
    found = {f.path for f in result.report.findings}
    assert "/" + NAMES["escape"].decode() in found


def test_loop_is_listed_not_followed_and_nothing_is_missed(
    triage: Triage, hostile_image: Path
) -> None:
    report = triage("ext4.dd", image=(hostile_image,)).report
    loops = [n for n in report.not_examined if n.kind is NotExaminedKind.DIRECTORY]
    assert [n.where for n in loops] == ["/loop/inner/back"]
    assert "not entered again" in loops[0].reason


def test_sparse_giant_is_refused_with_its_reason_and_makes_the_result_inconclusive(
    triage: Triage, hostile_image: Path
) -> None:
    report = triage("ext4.dd", image=(hostile_image,)).report
    (entry,) = [n for n in report.not_examined if n.where == "/sparse.bin"]
    assert entry.kind is NotExaminedKind.FILE
    assert "claims 21474836480 bytes but stores only 4096" in entry.reason
    assert report.recommendation.result is Recommendation.SUBMIT  # markers still found
    assert any("could not be read or scanned" in r for r in report.recommendation.reasons) is False


def test_a_rule_that_runs_too_long_costs_that_file_an_error_not_the_scan(
    triage: Triage, tmp_path: Path
) -> None:
    pack = tmp_path / "rules" / "slow"
    pack.mkdir(parents=True)
    (pack / "pack.toml").write_text(
        'name = "slow"\nversion = "1"\ndescription = "d"\nmaintainer = "m"\ncategories = ["test"]\n'
    )
    (pack / "slow.yar").write_text(
        'rule quadratic\n{\n    meta:\n        category = "test"\n        severity = "low"\n'
        '        description = "compares every byte with every other"\n'
        '        author = "kiosk tests"\n        date = "2026-11-27"\n'
        "    condition:\n        for any i in (0..filesize - 1) : "
        "(for any j in (0..filesize - 1) : (uint8(i) == uint8(j) + 256))\n}\n"
    )
    report = triage(
        "fat16.dd",
        rules_dir=tmp_path / "rules",
        dev=True,
        yara_timeout_s=1,
        max_yara_bytes=64 << 20,
    ).report
    # the condition can never hold, so every byte is compared with every other: the 1.2 MB file
    # cannot finish in a second (smaller ones may or may not, depending on the machine)
    timed_out = {n.where for n in report.not_examined if "YARA scan timed out" in n.reason}
    assert "/Videos/large.bin" in timed_out
    assert report.coverage.files.error == len(timed_out)
    assert report.outcome.status is Outcome.COMPLETE
    assert report.recommendation.result is Recommendation.SUBMIT  # the known-bad file
    assert report.settings.dev_mode is True
