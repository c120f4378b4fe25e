"""Locators: a FileTask says where its bytes are, and survives the pipes unchanged and cheaply."""

from __future__ import annotations

import pickle
import pickletools
from typing import Any

from kiosk.evidence.image import Evidence
from kiosk.evidence.resolve import resolve
from kiosk.locator import FsLoc, RangeLoc, StreamLoc, VolumeLoc
from kiosk.model import AreaHit, AreaScan, FileTask, HashMatch, RuleMatch
from tests.conftest import SAMPLES

FS = FsLoc(VolumeLoc(2, 1 << 20), "ntfs")


def _ops(data: bytes) -> set[str]:
    return {op.name for op, _, _ in pickletools.genops(data)}


def _roundtrip(obj: object) -> Any:
    return pickle.loads(pickle.dumps(obj, pickle.HIGHEST_PROTOCOL))  # noqa: S301 - our own bytes


def test_a_task_and_its_locator_chain_round_trip_through_pickle() -> None:
    task = FileTask(7, StreamLoc(FS, 36, 128, 3), "/report.txt:hidden", False, 123, False, "why")
    back = _roundtrip(task)
    assert back == task
    assert isinstance(back, FileTask)
    assert back.locator == StreamLoc(FsLoc(VolumeLoc(2, 1 << 20), "ntfs"), 36, 128, 3)
    assert (back.volume, back.fs_offset, back.fs_type, back.inode) == (2, 1 << 20, "ntfs", 36)


def test_every_link_pickles_as_a_plain_tuple_not_as_dataclass_state() -> None:
    """No BUILD opcode: each object is rebuilt from a tuple (issue 6: four times cheaper)."""
    task = FileTask(1, StreamLoc(FS, 5, 1, -1), "/a", True, 10)
    for obj in (task, task.locator, FS, FS.volume):
        assert "BUILD" not in _ops(pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)), obj


def test_the_records_a_result_carries_pickle_as_plain_tuples_and_round_trip() -> None:
    """A result's matches and its slack's scans cross the worker's pipe once per file too."""
    rule = RuleMatch("pack", "rule", "cat", "high", "what")
    scan = AreaScan("slack", 1, 4096, 512, 512, (AreaHit(rule, (4100, 4200), 3),), "/a")
    listed = HashMatch("set", "2", "sha256", "known_bad", "cat", None, None)
    near = HashMatch("pics", "1", "pdq", "known_bad", "cat", 4, 31)
    for obj in (rule, scan, scan.hits[0], listed, near):
        data = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
        assert "BUILD" not in _ops(data), obj
        assert _roundtrip(obj) == obj


def test_a_batch_writes_the_shared_outer_links_once() -> None:
    one = FileTask(1, StreamLoc(FS, 5, 1, -1), "/a", True, 10)
    batch = [FileTask(i, StreamLoc(FS, 5 + i, 1, -1), "/a", True, 10) for i in range(100)]
    per_task = len(pickle.dumps(batch, pickle.HIGHEST_PROTOCOL)) / len(batch)
    assert per_task < len(pickle.dumps(one, pickle.HIGHEST_PROTOCOL)) * 0.6
    assert _roundtrip(batch) == batch


def test_the_walk_shares_one_filesystem_link_per_volume_and_tasks_read_back() -> None:
    with Evidence(resolve([SAMPLES / "mbr-fat16-ext4.dd"])) as ev:
        vols = ev.volumes()
        tasks = list(ev.walk(vols))
        links = {id(t.locator.fs) for t in tasks}
        assert len(links) == len({(t.volume, t.fs_offset) for t in tasks}) == 2
        back = _roundtrip(tasks)
        assert back == tasks
        # a task that went through the pipes opens the same content
        t = next(t for t in back if t.readable and t.size)
        original = next(o for o in tasks if o.seq == t.seq)
        assert b"".join(ev.chunks(t)) == b"".join(ev.chunks(original))


def test_a_byte_range_task_round_trips_as_plain_tuples_and_names_its_area() -> None:
    """Issue 17: unallocated space off an FsLoc, a disk area outside partitions off a VolumeLoc."""
    for loc, fs_type in (
        (RangeLoc(FS, 4 << 20, 1 << 20, "unallocated"), "ntfs"),
        (RangeLoc(VolumeLoc(0, 0), 512, 1 << 20, "outside_partitions"), ""),
    ):
        task = FileTask(9, loc, "unallocated: volume 2", False, loc.length)
        back = _roundtrip(task)
        assert back == task
        assert back.area == loc
        assert (back.volume, back.fs_type, back.inode) == (loc.volume.index, fs_type, 0)
        assert back.locator.offset == loc.volume.offset + loc.start
        for obj in (task, loc):
            assert "BUILD" not in _ops(pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)), obj
