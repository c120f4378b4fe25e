"""Segment discovery for split raw images, on real files in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.errors import ImageError
from kiosk.evidence.image import Evidence
from kiosk.evidence.resolve import continuation_of, find_segments, resolve


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
