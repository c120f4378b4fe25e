"""Which worker gets which file (``kiosk.engine.dispatch``): pure logic, on plain tasks.

The properties the scan relies on: every task is handed out exactly once whatever order the
workers ask in; a task given back comes first; no task is taken more than the re-ordering window
ahead of the first unreleased result; byte-identical copies (same size) go to one worker, and a
worker gets another worker's file only when it has nothing else to do at that moment (its own
queue empty and the walk ended or at the window) or the home worker's queue is full. The whole
scan with the pool is checked against ``workers=0`` in ``tests/test_memo.py`` and
``tests/test_scan.py``.
"""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.engine import dispatch as dispatch_module
from kiosk.engine.dispatch import Dispatch
from kiosk.locator import FsLoc, RangeLoc, StreamLoc, VolumeLoc
from kiosk.model import FileTask

FS = FsLoc(VolumeLoc(0, 1 << 20), "ext4")
CAP = 64 << 20


def _tasks(sizes: list[int]) -> list[FileTask]:
    return [
        FileTask(i + 1, StreamLoc(FS, 100 + i, 1, -1), f"/f{i}", True, size)
        for i, size in enumerate(sizes)
    ]


def _drain(
    d: Dispatch, workers: int, rng: random.Random, window_check: int | None = None
) -> list[tuple[int, FileTask, bool]]:
    """Workers ask in a random order, each finishing a file before asking again; results are
    released in sequence order as the pool releases them. Returns (worker, task, foreign)."""
    done: set[int] = set()
    released: int | None = None
    got: list[tuple[int, FileTask, bool]] = []
    idle = 0
    while idle < 4 * workers:
        w = rng.randrange(workers)
        own_before = len(d._own[w])
        exhausted_before = d.exhausted
        t = d.next_for(w, released)
        if released is None:
            released = d.first_seq
        if t is None:
            idle += 1
            continue
        idle = 0
        home = d.home(t)
        foreign = home is not None and home != w
        if home is not None and foreign:  # only when this worker had nothing of its own to do
            assert own_before == 0
            full = len(d._own[home]) + 1 >= dispatch_module.QUEUE_FILES
            assert exhausted_before or d.exhausted or full or _at_window(d, released)
        if window_check is not None and released is not None:
            assert t.seq - released <= window_check
        got.append((w, t, foreign))
        done.add(t.seq)
        while released is not None and released in done:
            released += 1
    return got


def _at_window(d: Dispatch, released: int | None) -> bool:
    return released is not None and d._highest - released >= d._window


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=2 * CAP), min_size=0, max_size=300),
    workers=st.integers(min_value=1, max_value=5),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_every_task_is_handed_out_exactly_once(sizes: list[int], workers: int, seed: int) -> None:
    tasks = _tasks(sizes)
    d = Dispatch(iter(tasks), workers, CAP, window=64)
    got = _drain(d, workers, random.Random(seed), window_check=64)
    assert sorted(t.seq for _, t, _ in got) == [t.seq for t in tasks]
    assert d.queued() == 0


def test_copies_go_to_one_worker_when_the_queues_allow() -> None:
    """600 files in 40 sizes (copies), asked for by three workers in a random order: every
    size's files went to a single worker except where a worker, with nothing else to do, took
    another's file (``_drain`` checks when that may happen), a small share."""
    rng = random.Random(7)
    sizes = [rng.choice(range(1000, 41000, 1000)) for _ in range(600)]
    d = Dispatch(iter(_tasks(sizes)), 3, CAP, window=10_000)
    got = _drain(d, 3, random.Random(8))
    by_size: dict[int, set[int]] = {}
    for w, t, foreign in got:
        if not foreign:
            by_size.setdefault(t.size, set()).add(w)
    assert all(len(ws) == 1 for ws in by_size.values())
    homes = Counter(d.home(t) for _, t, _ in got)
    assert len(homes) == 3  # the sizes spread over all three workers
    taken = [t for _, t, f in got if f]  # _drain checked each was taken only when idle
    assert len(taken) < len(got) // 5


def test_what_has_no_home_goes_to_whoever_asks() -> None:
    """Empty files, files over the cap, unreadable entries and byte areas have no home; with one
    worker nothing has."""
    area = FileTask(5, RangeLoc(FS, 0, 1 << 20, "unallocated"), "unallocated", False, 1 << 20)
    odd = [
        FileTask(1, StreamLoc(FS, 1, 1, -1), "/empty", True, 0),
        FileTask(2, StreamLoc(FS, 2, 1, -1), "/big", True, CAP + 1),
        FileTask(3, StreamLoc(FS, 3, 1, -1), "/gone", False, 10, False, "deleted"),
        area,
    ]
    d = Dispatch(iter(odd), 2, CAP, window=100)
    assert [d.home(t) for t in odd] == [None, None, None, None]
    assert [d.next_for(1, None) for _ in odd] == odd  # all to the one that asked, in order
    one = Dispatch(iter(_tasks([10, 10])), 1, CAP, window=100)
    assert one.home(_tasks([10])[0]) is None


def test_a_task_given_back_comes_first_and_the_window_holds() -> None:
    tasks = _tasks([100 + i for i in range(50)])
    d = Dispatch(iter(tasks), 2, CAP, window=8)
    first = [d.next_for(0, None) for _ in range(3)]
    assert all(t is not None for t in first)
    d.give_back([t for t in first if t is not None][1:])
    again = [d.next_for(1, 1), d.next_for(0, 1)]
    assert again == first[1:]
    # nothing is taken 8 or more sequence numbers past the first unreleased result (1)
    more = []
    while (t := d.next_for(0, 1)) is not None:
        more.append(t)
    while (t := d.next_for(1, 1)) is not None:
        more.append(t)
    assert max(t.seq for t in [*first, *more] if t is not None) <= 9
    assert not d.exhausted
