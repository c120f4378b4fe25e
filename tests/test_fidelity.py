"""What the Sleuth Kit CLI finds, kiosk must find too: the fidelity misses of issue 16.

A filesystem at byte 0 that overlaps a partition table: a FAT12 made by ``mkfs.fat`` whose boot
sector then gets an MBR partition table from ``sfdisk`` (its one partition, at 512 KiB, holds
an ext2 made by ``mke2fs -d``). ``mmls`` lists the partition, ``fsstat``/``fls -o 0`` the FAT:
both are examined, each against ``fls``/``icat`` at its offset.

A truncated image: examined as far as it goes, not refused (``icat`` on the full image is the
oracle for what could be read).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from kiosk.engine.triage import TriageRequest, run_triage
from kiosk.evidence.image import Evidence
from kiosk.evidence.resolve import resolve
from kiosk.model import FileStatus, Recommendation
from kiosk.reports.model import AreaNotExamined, NotExaminedKind
from tests.conftest import CASE, HASHSETS, RULES, SAMPLES, TEST_CAP, fixed_hooks
from tests.oracle import fls, icat_sha256

KIB = 1024


@pytest.fixture(scope="module")
def overlapping(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("overlap")
    fat, ext2, disk = d / "fat.img", d / "ext2.img", d / "disk.img"
    subprocess.run(["mkfs.fat", "-C", "-F", "12", "-n", "OVER", str(fat), "512"], check=True,
                   capture_output=True)  # fmt: skip
    (d / "hi.txt").write_bytes(b"on the FAT at byte 0\n")
    subprocess.run(["mcopy", "-i", str(fat), str(d / "hi.txt"), "::/HI.TXT"], check=True)
    (d / "root").mkdir()
    (d / "root" / "p.txt").write_bytes(b"in the partition\n")
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext2", "-d", str(d / "root"), str(ext2), "1024k"],
                   check=True, capture_output=True)  # fmt: skip
    disk.write_bytes(fat.read_bytes() + ext2.read_bytes())
    subprocess.run(
        ["sfdisk", "-q", "--no-reread", "--wipe", "never", str(disk)],
        input="label: dos\nstart=1024, size=2048, type=83\n",
        text=True,
        check=True,
        capture_output=True,
    )
    return disk


def test_a_filesystem_at_byte_0_under_a_partition_table_is_examined_too(
    overlapping: Path,
) -> None:
    mmls = subprocess.run(["mmls", str(overlapping)], capture_output=True, text=True, check=True)
    assert "Linux (0x83)" in mmls.stdout  # the partition table is really there
    with Evidence(resolve([overlapping])) as ev:
        vols = ev.volumes()
        walked = {(v.offset, v.fs_type) for v in vols if v.examined}
        assert walked == {(512 * KIB, "ext2"), (0, "fat12")}
        tasks = list(ev.walk(vols))
        for v in vols:
            if not v.examined:
                continue
            oracle = {(e.path, e.inode_number) for e in fls(overlapping, v.offset) if not e.is_dir}
            ours = {(t.path, t.inode) for t in tasks if t.volume == v.index}
            assert ours == oracle, v.description
            for t in tasks:
                if t.volume == v.index and t.readable:
                    got = hashlib.sha256(b"".join(ev.chunks(t))).hexdigest()
                    assert got == icat_sha256(overlapping, v.offset, str(t.inode)), t.path
        paths = {t.path for t in tasks}
        assert {"/HI.TXT", "/p.txt"} <= paths
    fat = next(v for v in vols if v.fs_type == "fat12")
    assert fat.description == "MBR: filesystem at byte 0, overlapping the partition table"


def test_a_truncated_image_is_examined_as_far_as_it_goes(tmp_path: Path) -> None:
    """ext4.dd cut at 1,000,000 of its 2,621,440 bytes (the case ``kiosk`` used to refuse whole):
    the file wholly inside is hashed as ``icat`` reads it from the full image, each file beyond
    the end is an error saying so, the missing range is listed, and the answer is inconclusive."""
    full = SAMPLES / "ext4.dd"
    cut = tmp_path / "evidence" / "t.dd"
    cut.parent.mkdir()
    cut.write_bytes(full.read_bytes()[:1_000_000])
    result = run_triage(
        TriageRequest(
            case=CASE,
            image=(cut,),
            rules_dir=RULES,
            hashsets_dir=HASHSETS,
            out_dir=tmp_path / "reports",
            inventory=True,
            workers=0,
            max_yara_bytes=TEST_CAP,
        ),
        fixed_hooks(),
    )
    report = result.report
    rows = [json.loads(x) for x in (result.report_dir / "files.jsonl").read_bytes().splitlines()]
    inside = [r for r in rows if r["status"] != FileStatus.ERROR.value]
    beyond = [r for r in rows if r["status"] == FileStatus.ERROR.value]
    assert inside
    assert beyond
    for r in inside:
        assert r["sha256"] == icat_sha256(full, 0, str(r["inode"])), r["path"]
    for r in beyond:
        assert r["reason"].endswith("beyond the end of the image (the image is truncated)")
    missing = [
        a
        for a in report.not_examined
        if isinstance(a, AreaNotExamined) and a.kind is NotExaminedKind.VOLUME
    ]
    assert [(a.offset, a.length) for a in missing] == [(1_000_000, 2_621_440 - 1_000_000)]
    assert missing[0].reason.startswith(
        "the image is truncated: the ext4 filesystem ends at byte 2621440 but the image holds "
        "only 1000000 bytes"
    )
    assert report.recommendation.result is Recommendation.INCONCLUSIVE
    assert any("the image is truncated" in r for r in report.recommendation.reasons)
