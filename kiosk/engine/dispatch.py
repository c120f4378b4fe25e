"""Which worker gets which file: byte-identical copies go to the same worker.

Why: the content memo (``kiosk.engine.memo``) is per worker, so a copy is typed and matched
again whenever it lands on a worker that has not seen its content, and the more workers (a
hub's), the more often. On the bench's realistic image, where 727 of the 3,230 files typed and
matched are copies of another, files handed out in turn cost 2,974 libmagic calls with two
workers and 3,096 with four; sent to their home worker, 2,767 and 2,797 (bench/README.md, round
4). Copies have the same size, which the walk knows before anything is read. So a file the
memo could serve (readable, not empty, not over the YARA cap, not an area) has a *home* worker
picked by its size, and waits in that worker's queue when another worker pulls it from the
walk. Every other task goes to whichever worker asks.

Balance comes first: a worker with nothing of its own pulls from the walk; when the walk has
ended or the pool's re-ordering window is full, it takes (steals) the oldest file of the longest
other queue; and a queue is bounded (``QUEUE_FILES``): past it, the worker that pulled a file
keeps it. So no worker waits while there is work anywhere, and when the preference gives way
the cost is what it was before: a copy typed twice. The records are the same either way (the
memo returns what the work would have).

Order: the pool still releases results in sequence order; the re-ordering window counts every
task taken from the walk, queued or sent, so the parent holds at most ``window`` results.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

from kiosk.model import FileTask

QUEUE_FILES = 2048  # a worker's own queue at most (256 lost 1 in 10 homes); then the puller keeps
_MIX = 0x9E3779B97F4A7C15  # Fibonacci hashing: sizes that are multiples of a block spread too


class Dispatch:
    """Hands tasks to ``workers`` workers, copies (by size) to one home worker each.

    ``affinity_max``: files up to this size have a home (the content memo serves only files
    matched whole). ``window``: at most this many sequence numbers between the first result
    not yet released and the last task taken.
    """

    def __init__(
        self, tasks: Iterable[FileTask], workers: int, affinity_max: int, window: int
    ) -> None:
        self._tasks: Iterator[FileTask] = iter(tasks)
        self._n = workers
        self._max = affinity_max
        self._window = window
        self._own: list[deque[FileTask]] = [deque() for _ in range(workers)]
        self._back: deque[FileTask] = deque()  # given back by a crashed worker: first in line
        self.exhausted = False
        self.first_seq: int | None = None  # the first task's sequence number (contiguous on)
        self._highest = -1

    def home(self, task: FileTask) -> int | None:
        """The worker a file's copies go to; None: any worker."""
        if self._n < 2 or not task.readable or not 0 < task.size <= self._max:
            return None
        if task.area is not None:
            return None
        return ((task.size * _MIX) & 0xFFFFFFFFFFFFFFFF) % self._n

    def give_back(self, tasks: list[FileTask]) -> None:
        """Tasks a worker took but did not answer: before anything else, in their order."""
        self._back.extendleft(reversed(tasks))

    def queued(self) -> int:
        return len(self._back) + sum(len(q) for q in self._own)

    def next_for(self, worker: int, released: int | None) -> FileTask | None:
        """The next task for ``worker``; None when there is none for it now. ``released`` is
        the sequence number of the first result the pool has not released yet."""
        if self._back:
            return self._back.popleft()
        if self._own[worker]:
            return self._own[worker].popleft()
        while (t := self._pull(released)) is not None:
            j = self.home(t)
            if j is None or j == worker or len(self._own[j]) >= QUEUE_FILES:
                return t
            self._own[j].append(t)
        return self._steal(worker)

    def _pull(self, released: int | None) -> FileTask | None:
        if self.exhausted:
            return None
        if released is not None and self._highest - released >= self._window:
            return None
        try:
            t = next(self._tasks)
        except StopIteration:
            self.exhausted = True
            return None
        if self.first_seq is None:
            self.first_seq = t.seq
        self._highest = max(self._highest, t.seq)
        return t

    def _steal(self, worker: int) -> FileTask | None:
        others = [q for i, q in enumerate(self._own) if i != worker and q]
        if not others:
            return None
        return max(others, key=len).popleft()
