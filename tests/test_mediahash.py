"""The image's own hash keeps pace with the scan (kiosk.engine.mediahash).

The pace's rule is pure logic (a progress figure in, a wait out) and is tested with a number
standing for the scan's progress; the hasher itself reads a real ext4 image made by mke2fs, and
its digest is checked against hashlib over the file's bytes.
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time
from pathlib import Path

import pytest

from kiosk.engine.mediahash import FIRST_FINDING_HOLD_S, MediaHasher, Pace, pace_for
from kiosk.evidence.media import HASH_CHUNK
from kiosk.evidence.resolve import resolve

MIB = 1 << 20


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    img = tmp_path_factory.mktemp("mediahash") / "disk.img"
    subprocess.run(["truncate", "-s", "40M", str(img)], check=True)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", str(img)], check=True)
    with img.open("r+b") as f:  # data in the free space too: every byte must reach the hash
        f.seek(30 * MIB)
        f.write(b"kiosk-mediahash" * 1000)
    return img


class Progress:
    """The scan's fraction done, as the scan's thread would move it."""

    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


def test_the_pace_holds_the_hash_within_its_lead_of_the_scan() -> None:
    progress, cancel = Progress(), threading.Event()
    pace = Pace(1000, progress, cancel, lead=0.1)
    assert pace.allowed() == 100
    assert pace.go(50) is False  # within the lead: no wait
    assert pace.waits == 0
    progress.value = 0.5
    assert pace.allowed() == 600
    progress.value = 2.0  # a figure over 1 never allows more than the media
    assert pace.allowed() == 1000
    progress.value = 0.0
    pace.release()
    assert pace.allowed() == 1000  # released: the scan's results are all in


def test_a_hash_held_for_the_first_finding_waits_for_it_or_for_the_bound() -> None:
    progress, cancel = Progress(), threading.Event()
    progress.value = 0.5
    pace = Pace(1000, progress, cancel, lead=0.1, hold_s=60.0)
    assert pace.allowed() == 0  # nothing until the first finding
    pace.found()
    assert pace.allowed() == 1000  # then at full speed: it was held for the first finding only
    bounded = Pace(1000, progress, cancel, lead=0.1, hold_s=0.2)
    assert bounded.allowed() == 0
    started = time.monotonic()
    assert bounded.go(0) is False  # no finding: it waits out the bound, then goes on
    assert 0.15 <= time.monotonic() - started < 5
    assert bounded.allowed() == 600
    released = Pace(1000, progress, cancel, lead=0.1, hold_s=60.0)
    released.release()  # the user areas are done (or there were none): free at once
    assert released.allowed() == 1000
    assert Pace(1000, progress, cancel, lead=0.1).allowed() == 600  # no one watching: no hold


def test_only_a_watched_scan_paces_its_hash() -> None:
    """The app's hash waits for the first finding, then runs free; the command line's may read
    the whole media at once, with the scan at its start."""
    progress = Progress()
    unwatched = pace_for(100 * MIB, progress, threading.Event(), watched=False)
    assert unwatched.allowed() == 100 * MIB
    assert not unwatched.go(50 * MIB)
    assert unwatched.waits == 0
    watched = pace_for(100 * MIB, progress, threading.Event(), watched=True)
    progress.value = 0.2
    assert watched.allowed() == 0  # held for the first finding (FIRST_FINDING_HOLD_S at most)
    assert FIRST_FINDING_HOLD_S > 0
    watched.found()
    assert watched.allowed() == 100 * MIB  # shown: the hash catches up at full speed


def test_a_hash_ahead_waits_until_the_scan_moves_or_it_is_released() -> None:
    progress, cancel = Progress(), threading.Event()
    pace = Pace(1000, progress, cancel, lead=0.1)
    returned = threading.Event()

    def ahead() -> None:
        pace.go(500)  # half the media hashed while the scan has done nothing
        returned.set()

    t = threading.Thread(target=ahead)
    t.start()
    assert not returned.wait(0.2)  # held back
    progress.value = 0.45  # now 550 are allowed
    assert returned.wait(2)
    t.join()
    assert pace.waits > 0
    # and a release frees a hash that is still ahead
    returned.clear()
    progress.value = 0.0
    t = threading.Thread(target=ahead)
    t.start()
    assert not returned.wait(0.1)
    pace.release()
    assert returned.wait(2)
    t.join()


def test_a_cancelled_scan_stops_a_waiting_hash() -> None:
    cancel = threading.Event()
    pace = Pace(1000, Progress(), cancel, lead=0.1)
    answer: list[bool] = []
    t = threading.Thread(target=lambda: answer.append(pace.go(900)))
    t.start()
    time.sleep(0.05)
    cancel.set()
    t.join(2)
    assert answer == [True]


def test_the_paced_hash_of_a_real_image_is_its_sha256(image: Path) -> None:
    progress, cancel = Progress(), threading.Event()
    size = image.stat().st_size
    pace = Pace(size, progress, cancel, lead=0.25)
    hasher = MediaHasher(resolve([image]), {}, pace)
    hasher.start()
    time.sleep(0.3)  # the scan has not moved: the hash stops at a quarter of the media
    assert hasher.is_alive()
    assert hasher.result.error == "not finished"
    assert pace.waits > 0
    progress.value = 0.5
    time.sleep(0.1)
    assert hasher.is_alive()  # three quarters allowed, not all
    pace.release()
    hasher.join(10)
    assert not hasher.is_alive()
    assert hasher.result.computed == {"sha256": hashlib.sha256(image.read_bytes()).hexdigest()}
    assert size > 4 * HASH_CHUNK  # the image is read in several steps, so the pace was tested


def test_a_hash_cancelled_while_held_back_says_the_image_was_not_fully_read(image: Path) -> None:
    cancel = threading.Event()
    pace = Pace(image.stat().st_size, Progress(), cancel, lead=0.25)
    hasher = MediaHasher(resolve([image]), {}, pace)
    hasher.start()
    time.sleep(0.2)
    cancel.set()
    hasher.join(10)
    assert hasher.result.computed == {}
    assert "stopped before the image was fully read" in hasher.result.error
