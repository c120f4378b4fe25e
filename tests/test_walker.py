"""The walk runs in its own process: a crash there cuts the walk short, never the kiosk."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.engine.triage import TriageResult
from kiosk.errors import ImageError
from kiosk.evidence.image import Evidence
from kiosk.evidence.resolve import resolve
from kiosk.evidence.walker import Walker
from kiosk.model import Outcome, Progress, Recommendation, WalkProblem
from tests.archive_kit import mke2fs
from tests.conftest import SAMPLES, fixed_hooks

Triage = Callable[..., TriageResult]


@pytest.fixture(scope="module")
def wide_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough entries that the walker is still sending when the test stops it.

    More than the scan's re-ordering window (REORDER_WINDOW tasks), so the main process cannot
    have taken every task off the walker's pipe by the first progress report.
    """
    root = tmp_path_factory.mktemp("wide")
    src = root / "src"
    for d in range(12):
        (src / f"d{d}").mkdir(parents=True)
        for i in range(1000):
            (src / f"d{d}" / f"f{i:04d}.txt").write_bytes(b"y" * (i % 300))
    img = root / "wide.dd"
    mke2fs = ["mke2fs", "-q", "-t", "ext4", "-b", "1024", "-N", "14000", "-d", str(src)]
    subprocess.run(
        [*mke2fs, "-F", str(img), "48M"],
        check=True,
        env={**os.environ, "E2FSPROGS_FAKE_TIME": "1700000000"},
    )
    return img


@pytest.mark.parametrize("name", ["mbr-fat16-ext4.dd", "ntfs.dd"])
def test_the_walker_lists_what_the_in_process_walk_lists(name: str) -> None:
    """One walk, streamed: the same tasks and problems, and its totals once it is done."""
    image = SAMPLES / name
    inline_problems: list[WalkProblem] = []
    with Evidence(resolve([image])) as ev:
        inline = list(ev.walk(ev.volumes(), inline_problems))
    assert len(inline) > 3
    with Walker(resolve([image])) as w:
        w.survey()
        problems: list[WalkProblem] = []
        streamed = list(w.tasks(problems))
    assert streamed == inline
    assert (w.files_found, w.bytes_found) == (len(inline), sum(t.size for t in inline))
    assert w.done
    assert problems == inline_problems
    assert w.crash == ""


def test_the_walk_streams_before_it_is_asked_and_the_areas_follow_the_files(
    wide_image: Path,
) -> None:
    """The child walks as soon as it is told which folders come first (its batches wait in the
    pipe), and the area pieces' size given with the first read still puts the areas after every
    file."""
    with Walker(resolve([wide_image])) as w:
        w.survey()
        w.order(())  # the scan's rules are loaded: no user areas in them
        time.sleep(0.5)  # the scan opens its report folder, starts its workers: the child walks
        with Path(f"/proc/{w.pid}/io").open() as f:
            read_early = int(next(x for x in f if x.startswith("rchar")).split()[1])
        problems: list[WalkProblem] = []
        got = list(w.tasks(problems, 1 << 20))
    files = [t for t in got if t.area is None]
    areas = [t for t in got if t.area is not None]
    assert read_early > 4 << 20  # it had read well past the volumes' headers
    assert files
    assert areas
    assert got == files + areas
    assert all(t.size <= 1 << 20 for t in areas)
    assert w.files_found == len(files)


def test_a_killed_walker_cuts_the_walk_short_and_says_so(wide_image: Path) -> None:
    with Evidence(resolve([wide_image])) as ev:
        total = sum(1 for _ in ev.walk(ev.volumes(), []))
    with Walker(resolve([wide_image])) as w:
        w.survey()
        problems: list[WalkProblem] = []
        it = w.tasks(problems)
        first = [next(it) for _ in range(10)]  # the walker is now blocked on a full pipe
        assert w.pid is not None
        os.kill(w.pid, signal.SIGKILL)
        rest = list(it)
    got = len(first) + len(rest)
    assert 10 <= got < total
    assert not w.done
    assert "crashed (signal 9)" in w.crash
    assert problems[-1].reason == w.crash
    assert problems[-1].blocking


def test_a_walker_crash_mid_scan_gives_a_signed_failed_report(
    triage: Triage, wide_image: Path
) -> None:
    hooks = fixed_hooks()

    def kill_walker(_: object) -> None:
        for child in multiprocessing.active_children():
            if child.name == "kiosk-walker" and child.pid:
                os.kill(child.pid, signal.SIGKILL)

    hooks.on_progress = kill_walker
    report = triage("ext4.dd", image=(wide_image,), hooks=hooks).report
    if report.outcome.status is Outcome.COMPLETE:
        pytest.skip("the walk had finished before the first progress report")  # machine too fast
    assert report.outcome.status is Outcome.FAILED
    assert "crashed (signal 9)" in (report.outcome.reason or "")
    assert report.recommendation.result is Recommendation.INCONCLUSIVE
    # one walk, streamed: what it never listed cannot be counted, and the report says so
    (cut,) = [n for n in report.not_examined if "crashed (signal 9)" in n.reason]
    assert "the rest of the image was not listed" in cut.reason
    assert report.coverage.files.found < 12_000  # the image's files: the walk was cut short


def test_a_broken_image_is_a_clean_preflight_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.dd"
    junk.write_bytes(bytes(range(256)) * 4096)
    with Walker(resolve([junk])) as w, pytest.raises(ImageError, match="no filesystem found"):
        w.survey()


def test_a_walker_killed_before_its_preflight_is_a_clean_image_error() -> None:
    with Walker(resolve([SAMPLES / "ext4.dd"])) as w:
        assert w.pid is not None
        os.kill(w.pid, signal.SIGKILL)  # still starting up: nothing can have been sent yet
        with pytest.raises(ImageError, match=r"the parser crashed \(signal 9\)"):
            w.survey()


@pytest.mark.parametrize("name", ["gpt.dd", "ewf.E01"])
def test_the_survey_gives_media_and_volumes_as_the_in_process_parse_does(name: str) -> None:
    """What the app's preflight uses: no counting walk, the same records."""
    ref = resolve([SAMPLES / name])
    with Evidence(ref) as ev:
        want = (ev.record, ev.volumes())
    with Walker(ref, count=False) as w:
        got = w.survey()
    assert (got.media, got.volumes) == want


def test_progress_counts_against_what_the_walk_has_found_and_says_so_until_it_ends(
    triage: Triage, wide_image: Path
) -> None:
    """The totals only grow while ``counting``; once the walk has ended they are the image's and
    stay put, and the last snapshot is not counting."""
    seen: list[Progress] = []
    hooks = fixed_hooks()
    hooks.on_progress = seen.append
    report = triage("ext4.dd", image=(wide_image,), hooks=hooks).report
    assert report.outcome.status is Outcome.COMPLETE
    assert seen
    assert not seen[-1].counting
    assert seen[-1].files_total == report.coverage.files.found > 12_000 - 100
    totals = [p.files_total for p in seen]
    assert totals == sorted(totals)  # never backwards
    settled = [p.files_total for p in seen if not p.counting]
    assert set(settled) == {seen[-1].files_total}  # after the count, the total is final
    assert all(p.files_done <= p.files_total for p in seen)


def test_user_area_folders_are_walked_first_and_nothing_else_changes(tmp_path: Path) -> None:
    """On a Windows-like volume ``Program Files`` comes before ``Users``: told the user areas,
    the walk enters ``Users`` (any case) first; the same files, the same content locations,
    the rest in the order of a plain walk. Checked against the Sleuth Kit's own listing."""
    src = tmp_path / "src"
    for rel in (
        "Program Files/app/a.dll",
        "ProgramData/cache/b.dat",
        "users/alice/Desktop/c.txt",
        "users/alice/AppData/WhatsApp/Media/d.jpg",
        "Windows/System32/e.sys",
        "z.txt",
    ):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(rel.encode())
    img = mke2fs(tmp_path, src)
    ref = resolve([img])
    with Walker(ref) as w:
        w.survey()
        w.order(("Users", "WhatsApp/Media"))
        ordered = list(w.tasks([]))
    with Evidence(ref) as ev:
        plain = list(ev.walk(ev.volumes(), []))
    paths = [t.path for t in ordered]
    first_user = next(i for i, t in enumerate(plain) if t.path.startswith("/users/"))
    assert first_user > 0  # a plain walk finds other files first: the order did change
    user = [p for p in paths if p.startswith("/users/")]
    assert paths[: len(user)] == user  # every user file before any other
    assert len(user) == 2
    rest = [t.path for t in plain if not t.path.startswith("/users/")]
    assert paths[len(user) :] == rest  # the others as a plain walk gives them
    assert sorted((t.path, t.locator) for t in ordered) == sorted(
        (t.path, t.locator) for t in plain
    )
    fls = subprocess.run(
        ["fls", "-r", "-p", "-F", str(img)], capture_output=True, text=True, check=True
    ).stdout
    listed = {"/" + line.split("\t", 1)[1] for line in fls.splitlines() if "\t" in line}
    assert {p for p in paths if not p.startswith("/$")} == {
        p for p in listed if not p.startswith("/$") and "lost+found" not in p
    }
