"""The walk and the reads, checked against the Sleuth Kit CLI on real images made by real tools."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from kiosk.errors import ImageError
from kiosk.evidence.image import Evidence
from kiosk.evidence.resolve import resolve
from kiosk.model import FileTask, WalkProblem
from tests.conftest import IMAGES, MARKER, SAMPLES
from tests.oracle import fls, icat_sha256

ALL = sorted(IMAGES)
RAW = [n for n in ALL if IMAGES[n]["format"] == "raw"]


def _oracle_image(name: str) -> Path:
    """What fls/icat open: the container itself (Debian's TSK reads E01 and split raw too)."""
    return SAMPLES / IMAGES[name]["segments"][0]


def _walk(name: str) -> tuple[list[Any], list[FileTask], list[WalkProblem]]:
    im = IMAGES[name]
    problems: list[WalkProblem] = []
    with Evidence(resolve([SAMPLES / im["segments"][0]])) as ev:
        vols = ev.volumes()
        tasks = list(ev.walk(vols, problems))
    return vols, tasks, problems


def _content_sha256(name: str, task: FileTask) -> str:
    with Evidence(resolve([SAMPLES / IMAGES[name]["segments"][0]])) as ev:
        ev.volumes()
        return hashlib.sha256(b"".join(ev.chunks(task))).hexdigest()


@pytest.mark.parametrize("name", ALL)
def test_volumes_match_the_manifest_and_nothing_is_dropped(name: str) -> None:
    vols, _, _ = _walk(name)
    fs_vols = [(v.offset, v.fs_type, v.examined) for v in vols if v.examined or v.fs_type]
    want = [(v["offset"], v["fs_type"], True) for v in IMAGES[name]["volumes"] if v["examinable"]]
    assert [(o, t) for o, t, _ in fs_vols] == [(o, t) for o, t, _ in want]
    for v in IMAGES[name]["volumes"]:
        if not v["examinable"]:
            (rec,) = [r for r in vols if r.offset == v["offset"]]
            assert not rec.examined
            assert "encrypted" in rec.reason


@pytest.mark.parametrize("name", ALL)
def test_walk_lists_exactly_what_fls_lists(name: str) -> None:
    vols, tasks, problems = _walk(name)
    assert problems == []
    for v in vols:
        if not v.examined:
            continue
        oracle = {
            (e.path, e.inode_number, e.deleted)
            for e in fls(_oracle_image(name), v.offset)
            if not e.is_dir
        }
        ours = {(t.path, t.inode, not t.allocated) for t in tasks if t.volume == v.index}
        assert ours == oracle
        assert len(ours) > 10


@pytest.mark.parametrize("name", ALL)
def test_every_readable_file_reads_as_icat_reads_it(name: str) -> None:
    _, tasks, _ = _walk(name)
    checked = 0
    with Evidence(resolve([SAMPLES / IMAGES[name]["segments"][0]])) as ev:
        ev.volumes()
        for t in tasks:
            if not t.readable or t.path.endswith(":$Bad"):
                continue
            loc = t.locator
            spec = str(t.inode) if loc.attr_id < 0 else f"{t.inode}-{loc.attr_type}-{loc.attr_id}"
            content = b"".join(ev.chunks(t))
            oracle = icat_sha256(_oracle_image(name), t.fs_offset, spec)
            if oracle is None:
                # icat refuses entries with no data attribute (unused NTFS records): we read none
                assert (t.size, content) == (0, b""), t.path
                continue
            assert hashlib.sha256(content).hexdigest() == oracle, t.path
            checked += 1
    assert checked > 10


@pytest.mark.parametrize("name", ALL)
def test_manifest_files_are_found_with_their_hashes(name: str) -> None:
    _, tasks, _ = _walk(name)
    by_key = {(t.fs_offset, t.path): t for t in tasks}
    for f in IMAGES[name]["files"]:
        task = by_key[(f["volume_offset"], f["path"])]
        assert task.allocated == f["allocated"], f["path"]
        if f["content_recoverable"]:
            assert task.size == f["size"]
            assert _content_sha256(name, task) == f["sha256"], f["path"]


def test_deleted_files_with_content_are_found_on_every_filesystem() -> None:
    for name in ("fat16.dd", "ext4.dd", "ntfs.dd"):
        _, tasks, _ = _walk(name)
        deleted = [t for t in tasks if t.path == "/Documents/deleted_marker.txt"]
        assert len(deleted) == 1
        assert not deleted[0].allocated
        assert deleted[0].readable


def test_ntfs_alternate_data_stream_is_its_own_file() -> None:
    _, tasks, _ = _walk("ntfs.dd")
    (ads,) = [t for t in tasks if t.path == "/report.txt:hidden"]
    (main,) = [t for t in tasks if t.path == "/report.txt"]
    assert ads.inode == main.inode
    assert ads.locator.attr_id != main.locator.attr_id
    with Evidence(resolve([SAMPLES / "ntfs.dd"])) as ev:
        ev.volumes()
        stream = b"".join(ev.chunks(ads))
        body = b"".join(ev.chunks(main))
    assert MARKER in stream
    assert MARKER not in body


@pytest.mark.parametrize("name", ["ewf.E01", "split.001"])
def test_containers_decode_to_the_same_media_as_their_raw_source(name: str) -> None:
    im = IMAGES[name]
    with Evidence(resolve([SAMPLES / im["segments"][0]])) as ev:
        h = hashlib.sha256()
        assert ev.hash_media([h], lambda: False)
        digest = h.hexdigest()
        assert ev.record.segments == tuple(im["segments"])
        assert ev.record.format == im["format"]
    assert digest == im["sha256"] == IMAGES[im["derived_from"]]["sha256"]


def test_ewf_stored_hash_is_read() -> None:
    with Evidence(resolve([SAMPLES / "ewf.E01"])) as ev:
        assert ev.record.ewf_stored_hashes["md5"] == IMAGES["ewf.E01"]["ewf_md5"]


def test_media_hash_stops_when_asked_and_refuses_a_short_image(tmp_path: Path) -> None:
    img = tmp_path / "short.dd"
    img.write_bytes((SAMPLES / "ext4.dd").read_bytes())
    with Evidence(resolve([img])) as ev:
        whole = hashlib.sha256()
        assert ev.hash_media([whole], lambda: False, chunk=3000)  # pieces not sector-aligned
        assert whole.hexdigest() == IMAGES["ext4.dd"]["sha256"]
        assert not ev.hash_media([hashlib.sha256()], lambda: True)
        os.truncate(img, img.stat().st_size // 2)  # shrinks under the open handle
        with pytest.raises(ImageError, match="ended early"):
            ev.hash_media([hashlib.sha256()], lambda: False)
