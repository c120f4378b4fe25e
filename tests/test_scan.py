"""The engine on real images: statuses, caps, known-good skip, determinism, crash isolation."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kiosk.canonical import canonical
from kiosk.engine.scan import BESIDE_MD5_MIN, ScanConfig, scan_tasks
from kiosk.evidence.image import Evidence
from kiosk.evidence.resolve import resolve
from kiosk.hashsets.index import HashIndex
from kiosk.model import FileResult, FileStatus, FileTask
from kiosk.packs.load import compile_packs
from kiosk.reports.encode import file_json
from kiosk.reports.report import file_record
from tests.conftest import HASHSETS, IMAGES, RULES, SAMPLES, TEST_CAP

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _config(
    image: Path, workers: int, cap: int = TEST_CAP, engine: str | None = None
) -> ScanConfig:
    """``engine``: the YARA engine (default: kiosk's); a cluster runs libyara (engine_for)."""
    kw = {} if engine is None else {"yara_engine": engine}
    rules = compile_packs(RULES, dev=True, **kw)  # the engine, not trust: see test_rules.py
    index = HashIndex.load(HASHSETS)
    return ScanConfig(
        evidence=resolve([image]),
        rules_blob=rules.to_bytes(),
        rule_meta=dict(rules.meta),
        hashsets=index.sets,
        max_yara_bytes=cap,
        workers=workers,
    )


def _tasks(image: Path) -> list[FileTask]:
    with Evidence(resolve([image])) as ev:
        return list(ev.walk(ev.volumes()))


def _scan(name: str, workers: int, cap: int = TEST_CAP) -> dict[str, FileResult]:
    image = SAMPLES / IMAGES[name]["segments"][0]
    results = list(scan_tasks(_tasks(image), _config(image, workers, cap)))
    return {f"{r.task.volume}:{r.task.path}": r for r in results}


def test_statuses_and_matches_follow_the_sample_manifest() -> None:
    results = _scan("ext4.dd", workers=2)
    by_path = {k.split(":", 1)[1]: r for k, r in results.items()}
    manifest = {f["path"]: f for f in IMAGES["ext4.dd"]["files"]}
    for path, f in manifest.items():
        r = by_path[path]
        if f["content_recoverable"]:
            assert r.sha256 == f["sha256"], path
        rules = {m.rule for m in r.rule_matches}
        sets = {m.hashset for m in r.hash_matches}
        if f["kind"] in ("marker", "deleted_marker"):
            assert r.status is FileStatus.SCANNED
            assert rules == {"kiosk_demo_marker"}, path
        elif f["kind"] == "known_bad":
            assert sets == {"demo-known-bad"}
            assert r.is_finding
        elif f["kind"] == "known_good":
            # it carries the marker too: a known-good file must not be YARA-scanned
            assert r.status is FileStatus.KNOWN_GOOD
            assert (rules, sets) == (set(), {"demo-known-good"})
            assert not r.is_finding
        elif f["kind"] == "large":
            assert r.status is FileStatus.HASHED_ONLY
            assert "size cap" in r.reason
            assert rules == set()
        elif f["kind"] == "empty":
            assert (r.status, r.sha256, r.mime) == (
                FileStatus.SCANNED,
                EMPTY_SHA256,
                "application/x-empty",
            )
        else:
            assert (r.status, rules, sets) == (FileStatus.SCANNED, set(), set()), path
    assert by_path["/Pictures/holiday.png"].mime == "image/png"


def test_a_file_over_the_cap_is_yara_scanned_once_the_cap_allows_it() -> None:
    large = "/Videos/large.bin"
    small_cap = _scan("ext4.dd", workers=0, cap=TEST_CAP)[f"0:{large}"]
    big_cap = _scan("ext4.dd", workers=0, cap=64 << 20)[f"0:{large}"]
    assert small_cap.status is FileStatus.HASHED_ONLY
    assert big_cap.status is FileStatus.SCANNED
    assert [m.rule for m in big_cap.rule_matches] == ["kiosk_demo_marker"]
    assert small_cap.sha256 == big_cap.sha256


def test_inline_and_pooled_scans_give_byte_identical_records() -> None:
    for name in ("mbr-fat16-ext4.dd", "ntfs.dd"):
        inline = [canonical(file_json(file_record(r))) for r in _scan(name, workers=0).values()]
        pooled = [canonical(file_json(file_record(r))) for r in _scan(name, workers=2).values()]
        assert inline == pooled
        assert len(inline) > 20


def test_a_killed_worker_costs_one_file_and_the_scan_goes_on() -> None:
    image = SAMPLES / "ntfs.dd"
    tasks = _tasks(image)
    cfg = _config(image, workers=1)
    killed: list[int] = []

    def kill_worker_once_busy() -> None:
        import multiprocessing

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not killed:
            for child in multiprocessing.active_children():
                if child.pid:
                    os.kill(child.pid, signal.SIGKILL)
                    killed.append(child.pid)
                    return
            time.sleep(0.001)

    results = []
    killer = threading.Thread(target=kill_worker_once_busy)
    for i, r in enumerate(scan_tasks(tasks, cfg)):
        if i == 0:
            killer.start()
            killer.join()
        results.append(r)
    assert killed
    assert [r.task.seq for r in results] == [t.seq for t in tasks]
    crashed = [r for r in results if "crashed" in r.reason]
    assert len(crashed) == 1
    assert crashed[0].status is FileStatus.ERROR
    assert "signal 9" in crashed[0].reason
    assert sum(r.status is FileStatus.SCANNED for r in results) >= len(tasks) - 10


def test_cancel_stops_early_without_claiming_the_rest() -> None:
    image = SAMPLES / "ntfs.dd"
    tasks = _tasks(image)
    cancel = threading.Event()
    got = []
    for r in scan_tasks(tasks, _config(image, workers=2), cancel):
        got.append(r)
        cancel.set()
    assert 1 <= len(got) < len(tasks)


def test_large_files_hash_the_same_with_md5_beside_and_a_truncated_read_stops_it(
    tmp_path: Path,
) -> None:
    """Files from BESIDE_MD5_MIN up hash MD5 on a second thread: digests must not change."""
    src = tmp_path / "src"
    src.mkdir()
    rng = random.Random(6)
    sizes = {"just-under.bin": BESIDE_MD5_MIN - 1, "at.bin": BESIDE_MD5_MIN, "big.bin": 23 << 20}
    for name, size in sizes.items():
        (src / name).write_bytes(rng.randbytes(size))
    img = tmp_path / "big.dd"
    subprocess.run(
        ["mke2fs", "-q", "-t", "ext4", "-d", str(src), "-F", str(img), "96M"],
        check=True,
        env={**os.environ, "E2FSPROGS_FAKE_TIME": "1700000000"},
    )
    got = {r.task.path: r for r in scan_tasks(_tasks(img), _config(img, workers=2))}
    for name in sizes:
        data = (src / name).read_bytes()
        r = got[f"/{name}"]
        assert (r.md5, r.sha1, r.sha256) == (
            hashlib.md5(data).hexdigest(),  # noqa: S324 - the oracle for a forensic identity
            hashlib.sha1(data).hexdigest(),  # noqa: S324
            hashlib.sha256(data).hexdigest(),
        ), name
    # a read that fails part-way must not leave the MD5 thread waiting
    (big,) = [t for t in _tasks(img) if t.path == "/big.bin"]
    os.truncate(img, 40 << 20)
    cfg = _config(img, workers=0)
    before = threading.active_count()  # other tests' threads (a Dask client's) may linger
    (r,) = list(scan_tasks([big], cfg))
    assert r.status is FileStatus.ERROR
    assert "content could not be read" in r.reason
    assert threading.active_count() == before


FAULTY_RUN = r"""
import json, sys
from pathlib import Path

import tests.dask_faults  # wraps Scanner.scan; every helper re-runs this script to rebuild
                          # __main__ (only the kiosk command skips that), so workers carry it

if __name__ == "__main__":
    from kiosk.engine.scan import scan_tasks
    from tests.test_scan import _config, _tasks

    image = Path(sys.argv[1])
    cfg = _config(image, workers=int(sys.argv[2]))
    cfg = type(cfg)(**{**{f: getattr(cfg, f) for f in cfg.__dataclass_fields__},
                       "file_timeout_s": 3})
    got = [(r.task.seq, r.task.path, r.status.value, r.reason, r.sha256)
           for r in scan_tasks(_tasks(image), cfg)]
    print(json.dumps(got))
"""


@pytest.fixture
def plain_files(tmp_path: Path) -> tuple[Path, list[FileTask], str]:
    """40 small files no rule or set matches (so results are not sent early as findings), and
    the one at walk position 13: in a batch of 32 sent in groups of 8, files 8-12 are done and
    unsent when it is reached."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(40):
        (src / f"note{i:02d}.txt").write_text(f"an ordinary note, number {i}\n" * (i + 1))
    image = tmp_path / "plain.dd"
    subprocess.run(
        ["mke2fs", "-q", "-t", "ext4", "-d", str(src), "-F", str(image), "8M"],
        check=True,
        env={**os.environ, "E2FSPROGS_FAKE_TIME": "1700000000"},
    )
    tasks = _tasks(image)
    return image, tasks, tasks[13].path


def _faulty_scan(image: Path, env: dict[str, str], workers: int) -> list[list[Any]]:
    script = image.parent / "faulty_run.py"
    script.write_text(FAULTY_RUN, "utf-8")
    run = subprocess.run(
        [sys.executable, str(script), str(image), str(workers)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **env},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    got: list[list[Any]] = json.loads(run.stdout.strip().splitlines()[-1])
    return got


@pytest.mark.parametrize("workers", [1, 2])
def test_a_file_that_kills_its_worker_is_blamed_alone_though_results_travel_in_groups(
    plain_files: tuple[Path, list[FileTask], str], workers: int
) -> None:
    """Workers send results a few at a time; the file a worker dies on is still the only one
    blamed (it writes which file it is on to shared memory), and the files it had finished but
    not yet sent are scanned again elsewhere, not lost and not blamed."""
    image, tasks, poison = plain_files
    reference = {r.task.seq: r for r in scan_tasks(tasks, _config(image, workers=0))}
    assert not [r for r in reference.values() if r.is_finding]
    got = _faulty_scan(image, {"KIOSK_TEST_POISON": f"plain.dd:{poison}"}, workers)
    assert [g[0] for g in got] == [t.seq for t in tasks]  # none lost, none twice, in order
    bad = [g for g in got if g[2] == FileStatus.ERROR.value]
    assert [g[1] for g in bad] == [poison]
    assert "crashed (signal 9)" in bad[0][3]
    for seq, path, status, _, sha256 in got:
        if path != poison:
            assert (status, sha256) == (reference[seq].status.value, reference[seq].sha256)


def test_a_file_that_hangs_is_stopped_by_the_time_limit_and_blamed_alone(
    plain_files: tuple[Path, list[FileTask], str],
) -> None:
    """The time limit runs from when the worker began the file (its own word in shared memory),
    not from when its last group of results arrived."""
    image, tasks, stuck = plain_files
    marker = image.parent / "hung.pid"
    got = _faulty_scan(image, {"KIOSK_TEST_HANG": f"plain.dd:{stuck}={marker}"}, workers=1)
    assert marker.is_file()  # it did hang there
    assert [g[0] for g in got] == [t.seq for t in tasks]
    bad = [g for g in got if g[2] == FileStatus.ERROR.value]
    assert [g[1] for g in bad] == [stuck]
    assert "exceeded the time limit" in bad[0][3]
