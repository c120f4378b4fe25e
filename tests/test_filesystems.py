"""Filesystems beyond the sample set, each made by its own real tool, checked against fls/icat.

Includes the known trap: a FAT32 volume with fewer clusters than the FAT32 minimum, which the
Sleuth Kit does not auto-detect, found through the explicit-type retry.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from kiosk.evidence.image import Evidence
from kiosk.evidence.resolve import resolve
from tests.conftest import MARKER
from tests.oracle import fls, icat_sha256

FS_ENV = {**os.environ, "E2FSPROGS_FAKE_TIME": "1700000000", "SOURCE_DATE_EPOCH": "1700000000"}


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, env=FS_ENV)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str, bool]]:
    """name -> (image, expected TSK type, holds the two test files)."""
    root = tmp_path_factory.mktemp("fs")
    src = root / "src"
    (src / "docs").mkdir(parents=True)
    (src / "docs" / "marker.txt").write_bytes(b"before " + MARKER + b" after\n")
    (src / "plain.txt").write_bytes(b"nothing to see\n")
    out: dict[str, tuple[Path, str, bool]] = {}

    def blank(name: str, size: str) -> Path:
        p = root / name
        _run("truncate", "-s", size, str(p))
        return p

    for kind in ("ext2", "ext3"):
        img = blank(f"{kind}.img", "4M")
        _run("mke2fs", "-q", "-t", kind, "-d", str(src), "-F", str(img))
        out[kind] = (img, kind, True)
    f12 = blank("fat12.img", "1M")
    _run("mkfs.fat", "-F", "12", "-i", "12345678", str(f12))
    _run("mcopy", "-s", "-i", str(f12), str(src / "docs"), str(src / "plain.txt"), "::/")
    out["fat12"] = (f12, "fat12", True)
    f32 = blank("fat32.img", "34M")
    _run("mkfs.fat", "-F", "32", "-s", "1", "-i", "12345678", str(f32))
    _run("mcopy", "-s", "-i", str(f32), str(src / "docs"), str(src / "plain.txt"), "::/")
    out["fat32"] = (f32, "fat32", True)
    small32 = blank("fat32-few-clusters.img", "34M")
    _run("mkfs.fat", "-F", "32", "-s", "8", "-i", "12345678", str(small32))
    out["fat32-few-clusters"] = (small32, "fat32", False)
    exfat = blank("exfat.img", "8M")
    _run("mkfs.exfat", str(exfat))
    out["exfat"] = (exfat, "exfat", False)
    iso = root / "iso.img"
    _run("genisoimage", "-quiet", "-R", "-J", "-o", str(iso), str(src))
    out["iso9660"] = (iso, "iso9660", True)
    return out


NAMES = ["ext2", "ext3", "fat12", "fat32", "fat32-few-clusters", "exfat", "iso9660"]


@pytest.mark.parametrize("name", NAMES)
def test_detected_walked_and_read_as_the_sleuth_kit_does(
    images: dict[str, tuple[Path, str, bool]], name: str
) -> None:
    img, fs_type, has_files = images[name]
    with Evidence(resolve([img])) as ev:
        (vol,) = ev.volumes()
        assert (vol.fs_type, vol.examined) == (fs_type, True)
        tasks = list(ev.walk([vol]))
        contents: dict[str, bytes | None] = {}
        for t in tasks:
            try:
                contents[t.path] = b"".join(ev.chunks(t))
            except OSError:
                contents[t.path] = None  # must agree with icat failing too
    # fls needs the type spelled out where TSK's own detection fails (the few-clusters FAT32)
    oracle = fls(img, 0, fs_type if name == "fat32-few-clusters" else None)
    assert {t.path for t in tasks} == {e.path for e in oracle if not e.is_dir}
    for t in tasks:
        want = icat_sha256(img, 0, str(t.inode), fs_type if name == "fat32-few-clusters" else None)
        got = contents[t.path]
        # exFAT's virtual $FAT1 is unreadable to both TSK versions: then both must fail
        assert (hashlib.sha256(got).hexdigest() if got is not None else None) == want, t.path
    if has_files:
        assert MARKER in (contents["/docs/marker.txt"] or b"")
        assert contents["/plain.txt"] == b"nothing to see\n"


def test_the_few_clusters_fat32_is_not_auto_detected_by_the_sleuth_kit(
    images: dict[str, tuple[Path, str, bool]],
) -> None:
    img = images["fat32-few-clusters"][0]
    run = subprocess.run(["fsstat", str(img)], capture_output=True, text=True, check=False)
    assert run.returncode != 0
    assert "Cannot determine file system type" in run.stderr
