"""Unallocated space, slack and disk areas outside partitions, against a brute-force oracle.

A real MBR disk (``sfdisk``) holds a real ext4 (``mke2fs -d``) with a file deleted and its inode
wiped (``debugfs rm`` + ``clri``: no metadata left, only the blocks), a marker in a live file's
slack, markers across a window edge and across a range task's edge in free blocks, and markers
in the disk areas no partition claims. The oracle: every occurrence of the marker in the raw
image, each placed with the Sleuth Kit's own tools -- ``mmls`` (outside partitions), ``blkls``
(unallocated blocks) and ``istat`` (the live file's last block and size: its slack). The report
must name each occurrence exactly once, in the right kind of area, and count exactly the bytes
``blkls`` and ``mmls`` list as scanned.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kiosk.engine import areas as engine_areas
from kiosk.engine.triage import TriageResult
from kiosk.reports.model import NotExaminedKind
from tests.conftest import pack_toml, sign_pack

MARK = "UNALLOC-MARK-5e2c0f"
SECTOR = 512
PART_START = 2048  # sectors
PART_SECTORS = 32 * 2048  # 32 MiB
DISK = 40 << 20
BS = 4096
WINDOW = 64 << 10
PIECE = 1 << 20
FIXED = datetime(2026, 11, 27, tzinfo=UTC)

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("sfdisk", "mke2fs", "debugfs", "blkls", "mmls", "istat")),
    reason="needs sfdisk, e2fsprogs and the Sleuth Kit",
)


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def _unalloc_blocks(fs: Path) -> list[int]:
    return [
        int(line.split("|")[0])
        for line in _run("blkls", "-l", str(fs)).splitlines()
        if line[:1].isdigit() and line.split("|")[1] == "f"
    ]


def _runs(blocks: list[int]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for b in blocks:
        if out and out[-1][1] == b:
            out[-1][1] = b + 1
        else:
            out.append([b, b + 1])
    return [(a * BS, e * BS) for a, e in out]


def _put(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(data)


def _inode(fs: Path, name: str) -> int:
    for line in _run("fls", str(fs)).splitlines():
        if line.endswith(f"\t{name}"):
            return int(line.split()[1].rstrip(":"))
    raise AssertionError(name)


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The disk image and where the planted markers were put (by construction)."""
    d = tmp_path_factory.mktemp("unalloc")
    src = d / "src"
    src.mkdir()
    (src / "keep.txt").write_bytes(b"a live file of 37 bytes, then slack.\n")
    (src / "gone.bin").write_bytes(b"\x01" * 5000 + MARK.encode() + b"\x02" * 15000)
    for i in range(6):
        (src / f"filler{i}.dat").write_bytes(bytes([65 + i]) * (300_000 + i * 7777))
    fs = d / "fs.img"
    _run("mke2fs", "-q", "-F", "-t", "ext4", "-b", str(BS), "-d", str(src), str(fs), "32M")
    gone = _inode(fs, "gone.bin")
    _run("debugfs", "-w", "-R", "rm /gone.bin", str(fs))
    _run("debugfs", "-w", "-R", f"clri <{gone}>", str(fs))
    keep = _inode(fs, "keep.txt")
    stat = _run("istat", str(fs), str(keep))
    last = int(stat.split("Direct Blocks:")[1].split()[-1])
    slack_at = last * BS + 37 + 100
    _put(fs, slack_at, MARK.encode())
    free = _runs(_unalloc_blocks(fs))
    planted: dict[str, int] = {}
    # across a window edge: windows start where an unallocated span starts within a task
    for a, e in free:
        for p0 in range(a // PIECE * PIECE, e, PIECE):
            start = max(a, p0)
            edge = start + WINDOW
            if edge + 64 <= min(e, p0 + PIECE) and "window_edge" not in planted:
                planted["window_edge"] = edge - 7
    # across a range task's edge (a multiple of PIECE inside one free run)
    for a, e in free:
        p = (a // PIECE + 1) * PIECE
        if p - 16 >= a and p + 64 <= e and "piece_edge" not in planted:
            planted["piece_edge"] = p - 9
    assert set(planted) == {"window_edge", "piece_edge"}
    for off in planted.values():
        _put(fs, off, MARK.encode())
    img = d / "disk.img"
    with img.open("wb") as f:
        f.truncate(DISK)
    subprocess.run(
        ["sfdisk", "-q", str(img)],
        input=f"label: dos\nstart={PART_START}, size={PART_SECTORS}, type=83\n",
        text=True,
        check=True,
        capture_output=True,
    )
    _put(img, PART_START * SECTOR, fs.read_bytes())
    _put(img, 100 * SECTOR, MARK.encode())  # before the partition
    _put(img, (PART_START + PART_SECTORS) * SECTOR + 4000, MARK.encode())  # after it
    return {"img": img, "fs": fs, "keep": keep, "slack_at": slack_at}


def _oracle(disk: dict[str, Any]) -> dict[int, str]:
    """Every occurrence of the marker in the raw image, placed by mmls, blkls and istat."""
    img: Path = disk["img"]
    raw = img.read_bytes()
    gaps = []
    for line in _run("mmls", str(img)).splitlines():
        cols = line.split()
        if len(cols) >= 5 and cols[-1] == "Unallocated":
            gaps.append((int(cols[2]) * SECTOR, (int(cols[3]) + 1) * SECTOR))
    fs_off = PART_START * SECTOR
    free = set(_unalloc_blocks(disk["fs"]))
    stat = _run("istat", str(disk["fs"]), str(disk["keep"]))
    size = int(re.search(r"^size: (\d+)", stat, re.M).group(1))  # type: ignore[union-attr]
    last = int(stat.split("Direct Blocks:")[1].split()[-1])
    slack = (fs_off + last * BS + size, fs_off + (last + 1) * BS)
    found: dict[int, str] = {}
    for m in re.finditer(re.escape(MARK.encode()), raw):
        o = m.start()
        if any(a <= o < e for a, e in gaps):
            found[o] = "outside_partitions"
        elif slack[0] <= o < slack[1]:
            found[o] = "slack"
        elif fs_off <= o < fs_off + PART_SECTORS * SECTOR and (o - fs_off) // BS in free:
            found[o] = "unallocated"
        else:
            found[o] = "elsewhere"
    return found


@pytest.fixture(scope="module")
def marker_rules(tmp_path_factory: pytest.TempPathFactory, kiosk_home: Path) -> Path:
    from kiosk.trust.signing import load_signer

    rules = tmp_path_factory.mktemp("rules") / "rules"
    pack = rules / "areas"
    pack.mkdir(parents=True)
    (pack / "pack.toml").write_text(pack_toml("areas"))
    meta = 'category = "test"\n severity = "high"\n description = "marker"\n'
    meta += ' author = "t"\n date = "2026-12-06"\n'
    (pack / "m.yar").write_text(
        f'rule area_marker\n{{\n meta:\n {meta} strings:\n $m = "{MARK}"\n condition:\n $m\n}}\n'
        f'rule sized_marker\n{{\n meta:\n {meta} strings:\n $m = "{MARK}"\n condition:\n'
        " $m and filesize > 0\n}\n"
    )
    # signed at the fixed clock of fixed_hooks, so it is valid when the scan checks it
    sign_pack(pack, load_signer(kiosk_home / "keys" / "kiosk.key"), created=FIXED)
    return rules


def _scan(
    triage_any: Callable[..., TriageResult], disk: dict[str, Any], rules: Path, **kw: Any
) -> dict[str, Any]:
    result = triage_any(disk["img"], rules, **kw)
    data: dict[str, Any] = json.loads((result.report_dir / "report.json").read_text())
    data["_result"] = result
    return data


@pytest.fixture
def triage_any(
    tmp_path: Path, written_reports: list[Path], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., TriageResult]:
    from kiosk.engine.triage import TriageRequest, run_triage
    from tests.conftest import CASE, check_written_report, fixed_hooks

    monkeypatch.setattr(engine_areas, "AREA_PIECE", PIECE)  # several range tasks per volume

    def run(image: Path, rules: Path, **kw: Any) -> TriageResult:
        req = TriageRequest(
            case=CASE,
            image=(image,),
            rules_dir=rules,
            hashsets_dir=None,
            out_dir=tmp_path / f"reports{len(written_reports)}",
            inventory=True,
            workers=kw.pop("workers", 2),
            window_bytes=WINDOW,
            **kw,
        )
        result = run_triage(req, fixed_hooks())
        check_written_report(result)
        written_reports.append(result.report_dir)
        return result

    return run


def test_every_marker_in_areas_is_found_once_where_the_oracle_places_it(
    disk: dict[str, Any], marker_rules: Path, triage_any: Callable[..., TriageResult]
) -> None:
    oracle = _oracle(disk)
    assert sorted(set(oracle.values())) == ["outside_partitions", "slack", "unallocated"]
    assert list(oracle.values()).count("unallocated") == 3  # deleted, window edge, task edge
    assert list(oracle.values()).count("outside_partitions") == 2
    assert disk["slack_at"] + PART_START * SECTOR in oracle
    rep = _scan(triage_any, disk, marker_rules)
    areas = rep["areas"]
    assert areas["searched"] is True
    assert areas["window_bytes"] == WINDOW
    assert areas["window_rules"] == ["areas:area_marker"]  # filesize: whole-file only
    got: dict[int, str] = {}
    total = 0
    for f in areas["findings"]:
        assert f["match"]["rule"] == "area_marker"
        total += f["count"]
        for o in f["offsets"]:
            assert o not in got, f"offset {o} reported twice"
            got[o] = f["kind"]
    assert got == oracle
    assert total == len(oracle)  # each exactly once
    slack = [f for f in areas["findings"] if f["kind"] == "slack"]
    assert [f["file"] for f in slack] == ["/keep.txt"]
    # no file holds the marker: the file walk found none, only the areas did
    assert rep["findings"] == []
    assert rep["recommendation"]["result"] == "submit_for_examination"
    # bytes scanned: exactly what blkls lists as unallocated, and mmls as outside partitions
    cover = {(c["kind"], c["volume"]): c for c in areas["coverage"]}
    unalloc = [c for (k, _), c in cover.items() if k == "unallocated"]
    assert [c["scanned"] for c in unalloc] == [len(_unalloc_blocks(disk["fs"])) * BS]
    gaps = [c for (k, _), c in cover.items() if k == "outside_partitions"]
    assert sorted(c["scanned"] for c in gaps) == sorted(
        (PART_START * SECTOR, DISK - (PART_START + PART_SECTORS) * SECTOR)
    )
    # scanned areas leave not_examined; nothing unallocated is listed any more
    kinds = {n["kind"] for n in rep["not_examined"]}
    assert NotExaminedKind.FS_UNALLOCATED.value not in kinds
    assert NotExaminedKind.DISK_AREA.value not in kinds
    assert rep["settings"]["unallocated"] is True
    # report show and the HTML page both name each area finding, with its first offset
    from kiosk.reports.attestation import verify_report_dir
    from kiosk.reports.html import render_html
    from kiosk.reports.text import render_text
    from kiosk.trust.signing import TrustStore, kiosk_home

    result = rep["_result"]
    text = render_text(result.report)
    v = verify_report_dir(result.report_dir, TrustStore.load(kiosk_home() / "trust.json"))
    page = " ".join(re.sub(r"<[^>]+>", " ", render_html(v)).split())
    slack_at = disk["slack_at"] + PART_START * SECTOR
    shown = f"[1] file slack of /keep.txt: areas:area_marker at byte {slack_at}"
    assert f"  {shown}" in text.splitlines()
    assert shown in page
    assert "Areas beyond files: " in text
    # an area is not a file: the file counts and the inventory hold files only
    assert rep["coverage"]["files"]["found"] == rep["inventory"]["records"]


def test_inline_and_pooled_scans_agree(
    disk: dict[str, Any], marker_rules: Path, triage_any: Callable[..., TriageResult]
) -> None:
    a = _scan(triage_any, disk, marker_rules, workers=0)["areas"]
    b = _scan(triage_any, disk, marker_rules, workers=2)["areas"]
    assert a == b


def test_no_unallocated_leaves_the_areas_listed_and_says_why(
    disk: dict[str, Any], marker_rules: Path, triage_any: Callable[..., TriageResult]
) -> None:
    rep = _scan(triage_any, disk, marker_rules, unallocated=False)
    areas = rep["areas"]
    assert areas["searched"] is False
    assert "--no-unallocated" in areas["reason"]
    assert areas["findings"] == []
    assert areas["coverage"] == []
    listed = [n for n in rep["not_examined"] if n["kind"] in ("fs_unallocated", "disk_area")]
    assert {n["kind"] for n in listed} == {"fs_unallocated", "disk_area"}
    assert all("--no-unallocated" in n["reason"] for n in listed)
    assert rep["settings"]["unallocated"] is False
    assert rep["recommendation"]["result"] == "no_matches_in_scope"


def _cluster_size(image: Path) -> int:
    m = re.search(r"Cluster Size: (\d+)", _run("fsstat", str(image)))
    assert m is not None
    return int(m.group(1))


def _slack_oracle(image: Path, inode: str, first_unit: int, unit: int) -> tuple[int, int]:
    """The file's slack in the image by the Sleuth Kit's own words: its size (istat) and its
    last cluster (fsstat's cluster size from the unit istat lists)."""
    stat = _run("istat", str(image), inode)
    m = re.search(r"(?im)^size: (\d+)|Non-Resident\s+size: (\d+)", stat)
    assert m is not None
    size = int(m.group(1) or m.group(2))
    cs = _cluster_size(image)
    start = first_unit * unit + size // cs * cs
    return start + size % cs, start + cs


@pytest.mark.parametrize("fs", ["fat", "ntfs"])
def test_slack_of_fat_and_ntfs_files_is_searched_to_the_cluster_end(
    fs: str,
    tmp_path: Path,
    marker_rules: Path,
    triage_any: Callable[..., TriageResult],
) -> None:
    if fs == "fat":
        if not shutil.which("mkfs.vfat") or not shutil.which("mcopy"):
            pytest.skip("needs dosfstools and mtools")
        img = tmp_path / "fat.img"
        _run("mkfs.vfat", "-C", "-s", "4", str(img), "8192")  # 2 KiB clusters
        small = tmp_path / "small.txt"
        small.write_bytes(b"y" * 100)
        _run("mcopy", "-i", str(img), str(small), "::small.txt")
        inode, path = "3", "/small.txt"
        first = int(_run("istat", str(img), inode).split("Sectors:")[1].split()[0])
        lo, hi = _slack_oracle(img, inode, first, SECTOR)
    else:
        img = tmp_path / "ntfs.dd"
        shutil.copyfile(Path(__file__).parent.parent / "sample_images" / "ntfs.dd", img)
        inode, path = "77-128-2", "/Documents/marker.txt"  # 1289 bytes, one 4 KiB cluster
        stat = _run("istat", str(img), inode)
        first = int(stat.split("init_size:")[1].split()[1])
        lo, hi = _slack_oracle(img, inode, first, _cluster_size(img))
    at = hi - len(MARK) - 3  # near the cluster's end: past the first sector of the slack
    _put(img, at, MARK.encode())
    raw = img.read_bytes()
    assert [m.start() for m in re.finditer(re.escape(MARK.encode()), raw)] == [at]
    assert lo <= at < hi
    rep = _scan(triage_any, {"img": img}, marker_rules)
    found = [f for f in rep["areas"]["findings"] if f["match"]["rule"] == "area_marker"]
    assert [(f["kind"], f["file"], f["offsets"], f["count"]) for f in found] == [
        ("slack", path, [at], 1)
    ]
    assert (found[0]["offset"], found[0]["length"]) == (lo, hi - lo)
    # the unallocated bytes scanned are exactly the blocks blkls lists (sectors on FAT)
    unit = SECTOR if fs == "fat" else _cluster_size(img)
    (cover,) = [c for c in rep["areas"]["coverage"] if c["kind"] == "unallocated"]
    assert cover["scanned"] == len(_unalloc_blocks(img)) * unit
