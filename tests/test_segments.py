"""Segment discovery, on real files in a temporary folder: split raw runs and their gaps, EWF
sets made by ewfacquire that must not be mixed, the same file given twice."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

from kiosk.errors import ImageError, SegmentError
from kiosk.evidence.image import Evidence
from kiosk.evidence.media import hash_media
from kiosk.evidence.media.raw import RawMedia
from kiosk.evidence.resolve import find_segments, resolve
from kiosk.evidence.segments import continuation_of, ewf_next_name
from tests.conftest import IMAGES, SAMPLES


def _write(folder: Path, names: list[str]) -> list[Path]:
    paths = []
    for i, n in enumerate(names):
        p = folder / n
        p.write_bytes(bytes([i + 1]) * 1000)
        paths.append(p)
    return paths


@pytest.mark.parametrize(
    "names",
    [
        ["disk.001", "disk.002", "disk.003"],
        ["disk.000", "disk.001"],
        ["disk.dd.01", "disk.dd.02"],
        ["disk.aa", "disk.ab", "disk.ac"],
        ["x.aaa", "x.aab"],
    ],
)
def test_split_segments_are_found_from_the_first(tmp_path: Path, names: list[str]) -> None:
    paths = _write(tmp_path, names)
    _write(tmp_path, ["unrelated.005"])
    fmt, segs = find_segments(paths[0])
    assert (fmt, segs) == ("split_raw", paths)


def test_a_single_numbered_file_is_plain_raw_and_a_dd_is_not_split(tmp_path: Path) -> None:
    (one,) = _write(tmp_path, ["disk.001"])
    assert find_segments(one) == ("raw", [one])
    (dd,) = _write(tmp_path, ["disk.dd"])
    _write(tmp_path, ["disk.de"])
    assert find_segments(dd) == ("raw", [dd])


def test_split_reads_cross_segment_boundaries(tmp_path: Path) -> None:
    paths = _write(tmp_path, ["d.001", "d.002", "d.003"])
    with Evidence(resolve([paths[0]])) as ev:
        parts = _Collect()
        assert ev.hash_media([parts], lambda: False, chunk=700)
        data = b"".join(parts.chunks)
    assert data == b"\x01" * 1000 + b"\x02" * 1000 + b"\x03" * 1000
    assert ev.record.segments == ("d.001", "d.002", "d.003")
    assert ev.record.size == 3000


class _CountedRaw(RawMedia):
    """Raw media that counts the bytes it was asked to read."""

    read = 0

    def readinto(self, offset: int, view: memoryview) -> int:
        n = super().readinto(offset, view)
        self.read += n
        return n


def _sparse(path: Path, size: int, data: dict[int, bytes]) -> None:
    with path.open("wb") as f:
        f.truncate(size)
        for at, b in data.items():
            f.seek(at)
            f.write(b)


def test_holes_of_sparse_segments_are_hashed_as_zeros_without_being_read(tmp_path: Path) -> None:
    paths = [tmp_path / n for n in ("s.001", "s.002", "s.003")]
    _sparse(paths[0], 1 << 20, {300 << 10: b"first" * 1000})  # data amid holes
    _sparse(paths[1], 512 << 10, {})  # a segment that is one hole
    _sparse(paths[2], 768 << 10, {(768 << 10) - 5000: b"last!" * 1000})  # data at its end
    fd = os.open(paths[1], os.O_RDONLY)
    try:
        if os.lseek(fd, 0, os.SEEK_HOLE) != 0:
            pytest.skip("this file system does not report holes")
    finally:
        os.close(fd)
    whole = b"".join(p.read_bytes() for p in paths)
    media = _CountedRaw(resolve([paths[0]]).segments)
    try:
        h = hashlib.sha256()
        assert hash_media(media, [h], lambda: False, chunk=64 << 10)
    finally:
        media.close()
    assert h.hexdigest() == hashlib.sha256(whole).hexdigest()
    # the two data blocks' pages are read, the 2.3 MiB of holes are not
    assert 10_000 <= media.read <= 256 << 10


def test_a_sparse_segment_shortened_under_the_hash_is_an_early_end(tmp_path: Path) -> None:
    img = tmp_path / "sparse.dd"
    _sparse(img, 2 << 20, {0: b"head" * 100})
    media = RawMedia(resolve([img]).segments)
    try:
        os.truncate(img, 1 << 20)  # the holes after it are gone with it: not zeros to hash
        with pytest.raises(ImageError, match="ended early at offset 1048576"):
            hash_media(media, [hashlib.sha256()], lambda: False, chunk=64 << 10)
    finally:
        media.close()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: d / "missing.dd", "no such file"),
        (lambda d: d, "is a directory"),
        (lambda d: (d / "empty.dd").write_bytes(b"") or d / "empty.dd", "is empty"),
    ],
)
def test_bad_paths_are_one_line_errors(tmp_path: Path, setup, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ImageError, match=message):
        find_segments(setup(tmp_path))


@pytest.mark.parametrize(
    ("present", "chosen", "first"),
    [
        (["s.001", "s.002", "s.003"], "s.002", "s.001"),
        (["s.001", "s.002", "s.003"], "s.003", "s.001"),
        (["s.002"], "s.002", "s.001"),  # the first is missing: still named
        (["s.000", "s.001"], "s.001", "s.000"),
        (["d.dd.01", "d.dd.02"], "d.dd.02", "d.dd.01"),
        (["s.aa", "s.ab", "s.ac"], "s.ac", "s.aa"),
        (["s.ab"], "s.ab", "s.aa"),  # early letters: a continuation even alone
        (["x.aab"], "x.aab", "x.aaa"),
        (["s.aa", "s.ba"], "s.ba", "s.aa"),  # later letters count when the first is there
        (["ewf.E01", "ewf.E02"], "ewf.E02", "ewf.E01"),
        (["ewf.e03"], "ewf.e03", "ewf.e01"),
    ],
)
def test_a_continuation_segment_names_its_first_segment(
    tmp_path: Path, present: list[str], chosen: str, first: str
) -> None:
    _write(tmp_path, present)
    assert continuation_of(tmp_path / chosen) == tmp_path / first


@pytest.mark.parametrize(
    ("present", "chosen"),
    [
        (["s.001", "s.002"], "s.001"),
        (["s.001"], "s.001"),
        (["s.000", "s.001"], "s.000"),
        (["s.aa", "s.ab"], "s.aa"),
        (["disk.dd", "disk.de"], "disk.dd"),  # ordinary extensions are not letters of a series
        (["disk.de"], "disk.de"),
        (["notes.txt"], "notes.txt"),
        (["ewf.E01", "ewf.E02"], "ewf.E01"),
        (["disk.img"], "disk.img"),
    ],
)
def test_a_first_segment_or_a_single_image_is_no_continuation(
    tmp_path: Path, present: list[str], chosen: str
) -> None:
    _write(tmp_path, present)
    assert continuation_of(tmp_path / chosen) is None


class _Collect:
    """A stand-in "hash" that keeps what it is fed (each view copied: it is reused)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def update(self, data: memoryview) -> None:
        self.chunks.append(bytes(data))


# --------------------------------------------------------------------------- sets that cannot mix


def test_a_gap_in_a_split_run_names_the_missing_segment(tmp_path: Path) -> None:
    paths = _write(tmp_path, ["split.001", "split.002", "split.003", "split.004"])
    paths[1].unlink()
    with pytest.raises(SegmentError, match=r"^split\.002 is missing \(split\.003 is there"):
        resolve([paths[0]])
    letters = _write(tmp_path, ["x.aa", "x.ab", "x.ac"])
    letters[1].unlink()
    with pytest.raises(SegmentError, match=r"^x\.ab is missing"):
        resolve([letters[0]])
    paths[3].unlink()  # split.001 and split.003: still a gap, not a one-file image
    with pytest.raises(SegmentError, match=r"^split\.002 is missing"):
        resolve([paths[0]])


def test_the_same_file_given_twice_is_refused(tmp_path: Path) -> None:
    a, b = _write(tmp_path, ["a.001", "a.002"])
    with pytest.raises(SegmentError, match=r"^a\.001 is given twice$"):
        resolve([a, a])
    (tmp_path / "again.002").hardlink_to(b)
    with pytest.raises(SegmentError, match=r"^again\.002 is given twice \(as a\.002 and as it\)"):
        resolve([a, b, tmp_path / "again.002"])
    shutil.copyfile(SAMPLES / "ewf.E01", tmp_path / "e.E01")
    with pytest.raises(SegmentError, match=r"^e\.E01 is given twice$"):
        resolve([tmp_path / "e.E01", tmp_path / "e.E01"])


def _acquire(source: Path, target: Path) -> list[Path]:
    """ewfacquire as sample_images/build.py runs it: EnCase 6, 1 MiB segments."""
    flags = "-u -q -c empty-block -f encase6 -m fixed -M physical -S 1MiB -C c -E e -e x -D d -N n"
    subprocess.run(
        ["ewfacquire", *flags.split(), "-t", target, source], check=True, capture_output=True
    )
    return sorted(target.parent.glob(f"{target.name}.E??"))


def _set_guid(segment: Path, guid: bytes) -> None:
    """Write a set identifier into a segment's volume/data section, as EnCase does (ewfacquire
    20140813 writes zeros), and its Adler-32 again (libewf checks it)."""
    data = bytearray(segment.read_bytes())
    at = 13
    while True:
        kind = bytes(data[at : at + 16]).rstrip(b"\0")
        nxt = struct.unpack_from("<Q", data, at + 16)[0]
        if kind in (b"volume", b"data"):
            body = at + 76
            data[body + 64 : body + 80] = guid
            struct.pack_into("<I", data, body + 1048, zlib.adler32(bytes(data[body : body + 1048])))
        if kind in (b"next", b"done"):
            break
        at = nxt
    segment.write_bytes(bytes(data))


@pytest.fixture(scope="session")
def ewf_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Two-segment sets of ext4.dd and fat16.dd (both 2.5 MiB) and a three-segment set."""
    root = tmp_path_factory.mktemp("ewf-sets")
    out = {n: _acquire(SAMPLES / f"{n}.dd", root / n) for n in ("ext4", "fat16")}
    out["mbr"] = _acquire(SAMPLES / "mbr-fat16-ext4.dd", root / "mbr")
    assert [len(out[n]) for n in ("ext4", "fat16", "mbr")] == [2, 2, 3]
    return out


def _mix(tmp_path: Path, *segments: Path) -> Path:
    for i, seg in enumerate(segments):
        shutil.copyfile(seg, tmp_path / f"m.E0{i + 1}")
    return tmp_path / "m.E01"


def test_segments_of_two_acquisitions_with_set_identifiers_are_refused(
    ewf_sets: dict[str, list[Path]], tmp_path: Path
) -> None:
    first = _mix(tmp_path, *ewf_sets["ext4"])
    _set_guid(tmp_path / "m.E01", b"\x11" * 16)
    _set_guid(tmp_path / "m.E02", b"\x11" * 16)
    assert resolve([first]).format == "ewf"  # one acquisition: taken
    with Evidence(resolve([first])) as ev:  # and libewf still reads what was patched
        assert ev.record.size == IMAGES["ext4.dd"]["size"]
    shutil.copyfile(ewf_sets["fat16"][1], tmp_path / "m.E02")
    _set_guid(tmp_path / "m.E02", b"\x22" * 16)
    with pytest.raises(
        SegmentError, match=r"^m\.E02 is from another acquisition than m\.E01 \(its set identifier"
    ):
        resolve([first])


def test_segments_of_two_acquisitions_without_set_identifiers_are_refused(
    ewf_sets: dict[str, list[Path]], tmp_path: Path
) -> None:
    """ewfacquire's zero identifiers: the chunk tables of the mixed segments do not add up
    (libewf itself opens this mix and reads it to the end)."""
    first = _mix(tmp_path, ewf_sets["ext4"][0], ewf_sets["fat16"][1])
    with pytest.raises(SegmentError, match=r"^m\.E02 does not belong with the other segments"):
        resolve([first])


def test_a_missing_ewf_segment_is_named(ewf_sets: dict[str, list[Path]], tmp_path: Path) -> None:
    first = _mix(tmp_path, *ewf_sets["mbr"])
    assert [s.name for s in resolve([first]).segments] == ["m.E01", "m.E02", "m.E03"]
    (tmp_path / "m.E03").unlink()
    with pytest.raises(SegmentError, match=r"^m\.E03 is missing \(it follows m\.E02\)$"):
        resolve([first])
    shutil.copyfile(ewf_sets["mbr"][2], tmp_path / "m.E03")
    (tmp_path / "m.E02").unlink()
    with pytest.raises(SegmentError, match=r"^m\.E02 is missing \(it follows m\.E01\)$"):
        resolve([first])
    with pytest.raises(SegmentError, match=r"^m\.E03 is segment 3 of its set, but was taken as"):
        resolve([first, tmp_path / "m.E03"])


def test_libewf_words_stay_out_of_the_message_and_go_to_the_audit_log(
    ewf_sets: dict[str, list[Path]], tmp_path: Path, triage: Any, kiosk_home: Path
) -> None:
    first = _mix(tmp_path, *ewf_sets["ext4"])
    data = bytearray(first.read_bytes())
    volume = data.index(b"volume\0")
    data[volume + 76 + 200] ^= 0xFF  # inside the volume section: its checksum no longer matches
    first.write_bytes(bytes(data))
    with pytest.raises(ImageError) as e:
        triage("ewf.E01", image=(first,))
    assert str(e.value) == "EWF image cannot be opened (a segment is missing or damaged)"
    last = json.loads((kiosk_home / "audit.jsonl").read_text().splitlines()[-1])["event"]
    assert last["kind"] == "scan_failed"
    assert "libewf" not in last["reason"]
    assert "checksum does not match" in last["detail"]


@pytest.mark.parametrize(
    ("name", "following"),
    [
        ("x.E01", "x.E02"),
        ("x.E09", "x.E10"),
        ("x.E99", "x.EAA"),
        ("x.EAZ", "x.EBA"),
        ("x.EZZ", "x.FAA"),
        ("x.e01", "x.e02"),
        ("x.s01", "x.s02"),
    ],
)
def test_the_next_ewf_segment_name_follows_libewf(name: str, following: str) -> None:
    assert ewf_next_name(name) == following
