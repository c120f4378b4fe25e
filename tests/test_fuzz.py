"""Fuzzed evidence: mutated and truncated sample images through the whole CLI scan.

Each case runs ``python -m kiosk scan`` in its own process, so a native crash shows as a signal
exit instead of killing the test run. Every case must end with exit 0 (a report) or exit 1 (one
clear line), never a traceback, a signal or a hang. ``KIOSK_FUZZ_EXAMPLES`` sets the number of
cases (a short run here; the long run is described in tests/README.md).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.archive_kit import HOSTILE, MANY, ODD_NAMES, SLIP_NAMES, hostile_archives, mke2fs
from tests.conftest import IMAGES, SAMPLES, scan_cmd

EXAMPLES = int(os.environ.get("KIOSK_FUZZ_EXAMPLES", "25"))
RAW = sorted(n for n in IMAGES if IMAGES[n]["format"] == "raw")
CASE_ARGS = [
    "--case",
    "F-1",
    "--exhibit",
    "EX-F",
    "--officer",
    "PC-1",
    "--authorised-by",
    "DS-2",
    "--legal-basis",
    "warrant",
    "--legal-ref",
    "W-F",
]


def _regions(name: str) -> list[tuple[int, int]]:
    """Where the filesystem metadata lives: boot sectors, superblocks, FATs, MFT, inode tables."""
    out = []
    for v in IMAGES[name]["volumes"]:
        off = v["offset"]
        out += [
            (off, 512),
            (off + 1024, 1024),
            (off, 64 * 1024),
            (off, min(v["length"], 512 * 1024)),
        ]
    return out


mutation = st.tuples(st.integers(0, 3), st.floats(0, 1), st.binary(min_size=1, max_size=64))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    name=st.sampled_from(RAW),
    mutations=st.lists(mutation, min_size=1, max_size=12),
    truncate=st.one_of(st.none(), st.floats(0.05, 0.99)),
)
def test_mutated_images_end_cleanly(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    mutations: list[tuple[int, float, bytes]],
    truncate: float | None,
) -> None:
    work = tmp_path_factory.mktemp("fuzz")
    data = bytearray((SAMPLES / name).read_bytes())
    regions = _regions(name)
    for which, where, blob in mutations:
        start, length = regions[which % len(regions)]
        pos = start + int(where * max(0, length - len(blob)))
        data[pos : pos + len(blob)] = blob
    if truncate is not None:
        del data[int(len(data) * truncate) :]
    image = work / name
    image.write_bytes(bytes(data))
    cmd = scan_cmd(image, work / "reports", CASE_ARGS)
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode in (0, 1), f"exit {run.returncode}: {run.stderr[-2000:]}"
    assert "Traceback" not in run.stderr + run.stdout
    if run.returncode == 1:
        assert run.stderr.startswith("kiosk: ")
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    else:
        report_dir = Path(run.stdout.strip().splitlines()[-1])
        assert (report_dir / "report.dsse.json").is_file()
    leftovers = (
        [p for p in (work / "reports").glob(".partial-*")] if (work / "reports").exists() else []
    )
    assert leftovers == []


def test_hostile_archives_end_cleanly_and_nothing_is_lost(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Bombs by ratio, by count and by nesting, escaping and duplicate names, truncation,
    encryption, an unsupported method, FIFOs and devices in a tar, on a real ext4, through the
    CLI: one report, no traceback, every archive and member accounted for with its reason."""
    work = tmp_path_factory.mktemp("hostile-archives")
    hostile_archives(work / "src")
    image = mke2fs(work, work / "src", "16M")
    cmd = [*scan_cmd(image, work / "reports", CASE_ARGS), "--inventory"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr + run.stdout
    report_dir = Path(run.stdout.strip().splitlines()[-1])
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    inv = [json.loads(x) for x in (report_dir / "files.jsonl").read_text().splitlines()]
    by_path = {x["path"]: x for x in inv}
    assert {f"/{n}" for n in HOSTILE} <= set(by_path)  # each archive scanned as a file
    cut = {n["path"]: n["reason"] for n in report["not_examined"] if n["kind"] == "archive"}
    member = {
        n["path"]: n["reason"] for n in report["not_examined"] if n["kind"] == "archive_member"
    }
    assert "likely archive bomb" in cut["/bomb.zip"]
    assert by_path["/bomb.zip!/zeros.bin"]["status"] == "error"
    assert "more than 10,000 members" in cut["/many.zip"]
    assert sum(p.startswith("/many.zip!/") for p in by_path) == MANY - 1
    deepest = "/deep.zip!/level1.zip!/level2.zip!/level3.zip"
    assert "beyond the depth limit (3)" in cut[deepest]
    assert by_path[deepest]["status"] == "scanned"
    slips = [x for x in inv if x["path"].startswith("/slip.zip!/")]
    assert [x["path"] for x in slips] == [f"/slip.zip!/{n}" for n in SLIP_NAMES]  # as data
    assert "damaged" in cut["/cut.zip"] or "could not be" in cut["/cut.zip"]
    assert "/cut.tar.gz" in cut
    assert "encrypted" in member["/secret.zip!/secret.txt"]
    assert "encrypted" in member["/aes.zip!/secret.txt"]
    assert (
        "WavPack" in member["/wavpack.zip!/sound.wv"]
        or "nsupported" in member["/wavpack.zip!/sound.wv"]
    )
    for name, kind in (("pipe", "FIFO"), ("dev/tty0", "character device"), ("hard", "hard link")):
        entry = by_path[f"/special.tar!/{name}"]
        assert kind in entry["reason"], entry
    assert "/etc/shadow" in by_path["/special.tar!/link-out"]["reason"]
    assert {f"/names.tar!/{shown}" for shown in ODD_NAMES.values()} <= set(by_path)
    assert "\x1b" not in run.stdout + run.stderr
    members = report["coverage"]["archive_members"]
    assert members["found"] == sum("!/" in x["path"] for x in inv)
    assert members["error"] == len(member)
    assert report["coverage"]["files"]["examined"] == len(inv) - members["found"]
    assert report["recommendation"]["result"] == "inconclusive"
