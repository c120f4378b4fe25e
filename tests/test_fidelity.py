"""What the Sleuth Kit CLI finds, kiosk must find too: the fidelity misses of issue 16.

A filesystem at byte 0 that overlaps a partition table: a FAT12 made by ``mkfs.fat`` whose boot
sector then gets an MBR partition table from ``sfdisk`` (its one partition, at 512 KiB, holds
an ext2 made by ``mke2fs -d``). ``mmls`` lists the partition, ``fsstat``/``fls -o 0`` the FAT:
both are examined, each against ``fls``/``icat`` at its offset.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from kiosk.evidence.image import Evidence
from kiosk.evidence.resolve import resolve
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
