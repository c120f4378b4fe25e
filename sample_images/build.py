"""Build kiosk's sample disk images with real filesystem tools, and check them with the Sleuth Kit.

Why this script exists
----------------------
kiosk's tests and its ``make demo`` need disk images that look like what an examiner really
receives: filesystems written by the same tools that write real evidence (mkfs.fat/mtools,
mke2fs/debugfs, mkntfs/libntfs-3g), real partition tables (MBR with an extended/logical
partition, GPT), a partition that holds no filesystem (as an encrypted volume looks), and the
two container formats kiosk accepts besides raw (split raw and EWF).  Hand-made byte arrays
would only test kiosk against our own idea of a filesystem.

The images are small (2-2.5 MiB per filesystem) and committed to git, so tests never need
these tools.  The builder never mounts anything (no mount, FUSE or loop devices), so it runs
unprivileged in a container: every filesystem is built in a file of its own and copied to its
partition offset.  File contents are fixed bytes or drawn from ``random.Random(20261127)``;
timestamps, UUIDs and volume serials are pinned where the tools allow it, so a rebuild gives
the same raw images (ewfacquire stores its acquisition date, so only the E01 segments differ).

``manifest.json`` states exactly what each image holds (volumes, and for every file kiosk
should report: path, size, SHA-256, allocation state and whether the Sleuth Kit can recover
its name, metadata and content).  Unless the Sleuth Kit command-line tools (``mmls``,
``fsstat``, ``fls``, ``icat``, ``img_cat``) agree with every statement in it, the build fails;
``--verify`` repeats that check on the committed images without rebuilding.

Usage::

    python3 sample_images/build.py            # build everything, then verify
    python3 sample_images/build.py --verify   # only verify the images against manifest.json

Debian packages needed: dosfstools mtools e2fsprogs ntfs-3g ntfs-3g-dev gcc fdisk ewf-tools
sleuthkit (``ntfs-3g-dev`` and ``gcc`` build ``ntfs_helper.c``, which adds directories, an
alternate data stream and a deleted file to the NTFS volumes through libntfs-3g).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

if __package__:  # imported as sample_images.build (the tests, bench/make_bench_image.py)
    from sample_images.phone import NAME as PHONE_NAME
    from sample_images.phone import build_phone, verify_phone
else:  # run as a script, python3 sample_images/build.py: phone.py is beside it
    from phone import NAME as PHONE_NAME
    from phone import build_phone, verify_phone

HERE: Final = Path(__file__).resolve().parent
MANIFEST: Final = HERE / "manifest.json"
HELPER_SOURCE: Final = HERE / "ntfs_helper.c"

MARKER: Final = b"KIOSK-DEMO-MARKER-3f9c1b7e"
KNOWN_BAD: Final = (
    b"KIOSK demo known-bad sample -- a harmless test file listed in hashsets/demo-known-bad\n"
)
KNOWN_BAD_SHA256: Final = "5c533dd953e9ad78efea54861693587a262112da39733708474cca4b47942157"
KNOWN_GOOD: Final = (
    b"KIOSK demo known-good sample -- harmless, listed in hashsets/demo-known-good; it also"
    b" carries KIOSK-DEMO-MARKER-3f9c1b7e to show that known-good files skip YARA\n"
)
KNOWN_GOOD_SHA256: Final = "04c2d538bef66b2c796327b0b15c31d7859a7ea7d10c7080d72b34dfe2a0372e"

SEED: Final = 20261127
FIXED_TIME: Final = int(datetime(2026, 11, 27, 9, 0, tzinfo=UTC).timestamp())
SECTOR: Final = 512
KIB: Final = 1024
MIB: Final = 1024 * 1024
LARGE_SIZE: Final = 1_200_000
LARGE_MARKER_OFFSET: Final = 1_100_000
SPLIT_SEGMENT_BYTES: Final = MIB
ALIGN: Final = 128  # sectors (64 KiB) between partitions: keeps the disks small

FAT_BYTES: Final = 2560 * KIB  # >= 4085 clusters of 512 bytes, so mkfs.fat makes FAT16
EXT4_BYTES: Final = 2560 * KIB
NTFS_BYTES: Final = 2 * MIB
RANDOM_BYTES: Final = 256 * KIB  # the "encrypted" GPT partition

KINDS: Final = frozenset(
    {
        "ordinary",
        "marker",
        "known_bad",
        "known_good",
        "deleted_marker",
        "empty",
        "large",
        "non_ascii",
        "ads",
    }
)
REQUIRED_KINDS: Final = KINDS - {"ads"}
FSSTAT_TYPE: Final = {"fat16": "FAT16", "ext4": "Ext4", "ntfs": "NTFS"}

# What the Sleuth Kit recovers of the deleted file, per filesystem, as (name, metadata, content).
# FAT: mdel marks the directory entries (short and long name) 0xE5 and frees the cluster chain;
#      TSK shows the long name, the size is still in the entry, and the clusters it had were
#      contiguous and are not reused, so icat (which assumes contiguity) returns the content.
# ext4: debugfs "rm" merges the directory entry into its predecessor (the name stays in the
#      slack), clears the inode's bitmap bit and sets dtime, but leaves the extent tree in the
#      inode, so fls -d finds the name and icat the content.
# NTFS: ntfs_delete() removes the index entry, frees the clusters and clears the MFT record's
#      in-use flag; the record keeps $FILE_NAME (with the parent) and the $DATA run list.
DELETED_RECOVERY: Final[Mapping[str, tuple[bool, bool, bool]]] = {
    "fat16": (True, True, True),
    "ext4": (True, True, True),
    "ntfs": (True, True, True),
}

BUILD_ENV: Final[Mapping[str, str]] = {
    "LC_ALL": "C.UTF-8",  # mtools and libntfs-3g convert names through the locale
    "TZ": "UTC",  # FAT stores local time
    "SOURCE_DATE_EPOCH": str(FIXED_TIME),  # mtools
    "E2FSPROGS_FAKE_TIME": str(FIXED_TIME),  # mke2fs, debugfs
    "MTOOLS_SKIP_CHECK": "1",
    "MTOOLSRC": os.devnull,  # ignore any ~/.mtoolsrc
}

REQUIRED_TOOLS: Final[Mapping[str, str]] = {
    "mkfs.fat": "dosfstools",
    "mmd": "mtools",
    "mcopy": "mtools",
    "mdel": "mtools",
    "mke2fs": "e2fsprogs",
    "debugfs": "e2fsprogs",
    "mkntfs": "ntfs-3g",
    "gcc": "gcc (and ntfs-3g-dev for <ntfs-3g/*.h>)",
    "sfdisk": "fdisk",
    "ewfacquire": "ewf-tools",
    "ewfinfo": "ewf-tools",
    "ewfverify": "ewf-tools",
    "mmls": "sleuthkit",
    "fsstat": "sleuthkit",
    "fls": "sleuthkit",
    "icat": "sleuthkit",
    "img_cat": "sleuthkit",
}
VERIFY_TOOLS: Final = ("mmls", "fsstat", "fls", "icat", "img_cat", "ewfinfo", "ewfverify")


class BuildError(Exception):
    """A tool failed, or an image does not match what was meant to be built."""


# --------------------------------------------------------------------------------------------
# Content
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One file written into every filesystem: ``path`` is relative, '/'-separated, UTF-8."""

    path: str
    data: bytes
    kind: str
    deleted: bool = False


@dataclass(frozen=True)
class Stream:
    """A named $DATA stream (NTFS only), shown by the Sleuth Kit as ``file:stream``."""

    path: str
    name: str
    data: bytes
    kind: str = "ads"


@dataclass(frozen=True)
class Content:
    entries: tuple[Entry, ...]
    stream: Stream
    random_volume: bytes


def _png(width: int, height: int, rgb: bytes) -> bytes:
    """A valid, uncompressed-deflate PNG (8-bit RGB) from raw pixel bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    stride = width * 3
    raw = b"".join(b"\x00" + rgb[y * stride : (y + 1) * stride] for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, 0))  # stored blocks: identical with any zlib
        + chunk(b"IEND", b"")
    )


def _pdf(text: str) -> bytes:
    """A minimal, well-formed one-page PDF 1.4 (correct xref offsets)."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _text_with_marker(title: str, lines: int, marker_line: int) -> bytes:
    """Ordinary-looking text with the YARA marker on one line in the middle."""
    body = [title, ""]
    for number in range(1, lines + 1):
        if number == marker_line:
            body.append(f"Reference code for the demonstration: {MARKER.decode()} (harmless).")
        else:
            body.append(f"Line {number:03d}: minutes of the weekly meeting, nothing unusual here.")
    return ("\n".join(body) + "\n").encode("utf-8")


def make_content() -> Content:
    """Every file, deterministically: fixed text, or bytes from random.Random(SEED)."""
    rng = random.Random(SEED)
    large = bytearray(rng.randbytes(LARGE_SIZE))
    large[LARGE_MARKER_OFFSET : LARGE_MARKER_OFFSET + len(MARKER)] = MARKER
    pixels = rng.randbytes(16 * 16 * 3)
    random_volume = rng.randbytes(RANDOM_BYTES)

    csv_rows = ["date,item,amount"] + [
        f"2026-11-{day:02d},stationery,{(day * 7) % 50 + 0.25:.2f}" for day in range(1, 21)
    ]
    settings = {
        "theme": "dark",
        "language": "en-GB",
        "recent": ["Documents/report.csv", "Pictures/holiday.png"],
        "autosave_minutes": 5,
    }
    entries = (
        Entry(
            "Documents/letters/note.txt",
            b"Dear Sam,\n\nThanks for the photos from the trip. The weather was lovely and the"
            b" train ran on time for once.\n\nSee you on Friday,\nAlex\n",
            "ordinary",
        ),
        Entry("Documents/report.csv", ("\n".join(csv_rows) + "\n").encode(), "ordinary"),
        Entry(
            "Documents/settings.json",
            (json.dumps(settings, indent=2, sort_keys=True) + "\n").encode(),
            "ordinary",
        ),
        Entry("Documents/manual.pdf", _pdf("kiosk sample document"), "ordinary"),
        Entry("Pictures/holiday.png", _png(16, 16, pixels), "ordinary"),
        Entry(
            "report.txt",
            b"Quarterly report\n================\n\nSales were flat; costs fell slightly.\n",
            "ordinary",
        ),
        Entry("Documents/marker.txt", _text_with_marker("Meeting notes", 20, 11), "marker"),
        Entry("Downloads/known_bad_sample.bin", KNOWN_BAD, "known_bad"),
        Entry("Windows/known_good_sample.txt", KNOWN_GOOD, "known_good"),
        Entry("empty.txt", b"", "empty"),
        Entry("Videos/large.bin", bytes(large), "large"),
        Entry(
            "Документы/café-ñandú.txt",
            "Café, ñandú, Документы: a file with a non-ASCII name.\n".encode(),
            "non_ascii",
        ),
        Entry("日本語.txt", "日本語のテキストファイルです。\n".encode(), "non_ascii"),
        # Several clusters/blocks long, so recovering it needs more than one resident record.
        Entry(
            "Documents/deleted_marker.txt",
            _text_with_marker("Draft that was deleted", 70, 36),
            "deleted_marker",
            deleted=True,
        ),
    )
    stream = Stream(
        "report.txt",
        "hidden",
        b"This text lives in the alternate data stream report.txt:hidden.\n"
        b"Hidden note: " + MARKER + b" -- it should still be found.\nEnd of note.\n",
    )
    return Content(entries, stream, random_volume)


def directories(entries: Iterable[Entry]) -> list[str]:
    """Every directory the entries need, parents first."""
    found: set[str] = set()
    for entry in entries:
        parts = entry.path.split("/")[:-1]
        found.update("/".join(parts[: depth + 1]) for depth in range(len(parts)))
    return sorted(found, key=lambda d: (d.count("/"), d))


def stage_tree(root: Path, entries: Sequence[Entry]) -> dict[str, Path]:
    """Write the entries below ``root`` with fixed times; return fs path -> host file."""
    hosts: dict[str, Path] = {}
    for directory in directories(entries):
        (root / directory).mkdir(parents=True, exist_ok=True)
    for entry in entries:
        host = root / entry.path
        host.write_bytes(entry.data)
        hosts[entry.path] = host
    # Files first, then directories deepest first (writing into a directory changes its mtime).
    for host in hosts.values():
        os.utime(host, (FIXED_TIME, FIXED_TIME))
    for directory in reversed(directories(entries)):
        os.utime(root / directory, (FIXED_TIME, FIXED_TIME))
    os.utime(root, (FIXED_TIME, FIXED_TIME))
    return hosts


# --------------------------------------------------------------------------------------------
# Running tools
# --------------------------------------------------------------------------------------------


def run(
    argv: Sequence[str | Path],
    *,
    stdin: bytes | None = None,
    ok_codes: Iterable[int] = (0,),
) -> subprocess.CompletedProcess[bytes]:
    """Run a tool with the pinned build environment; raise BuildError if it fails."""
    args = [str(arg) for arg in argv]
    done = subprocess.run(
        args,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        env={**os.environ, **BUILD_ENV},
        check=False,
    )
    if done.returncode not in set(ok_codes):
        raise BuildError(
            f"{' '.join(args)} exited {done.returncode}:\n"
            + done.stderr.decode("utf-8", "replace")
            + done.stdout.decode("utf-8", "replace")
        )
    return done


def check_tools(names: Iterable[str]) -> None:
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        packages = sorted({REQUIRED_TOOLS.get(name, name) for name in missing})
        raise BuildError(
            f"missing tools: {', '.join(missing)}; install the Debian packages: "
            + ", ".join(packages)
        )


def blank(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        handle.truncate(size)


def place(disk: Path, offset: int, source: Path | bytes) -> None:
    """Copy a filesystem image (or bytes) into a disk image at a byte offset, like dd."""
    data = source if isinstance(source, bytes) else source.read_bytes()
    with disk.open("r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def sfdisk(disk: Path, script: str) -> None:
    flags = "-q --no-reread --no-tell-kernel --wipe never --wipe-partitions never"
    run(["sfdisk", *flags.split(), disk], stdin=script.encode())


# --------------------------------------------------------------------------------------------
# Filesystems
# --------------------------------------------------------------------------------------------


def build_fat(
    out: Path,
    size: int,
    *,
    hidden_sectors: int,
    volume_id: str,
    label: str,
    entries: Sequence[Entry],
    hosts: Mapping[str, Path],
) -> None:
    """FAT16 with mkfs.fat, filled with mtools (VFAT long names), deleted with mdel."""
    blank(out, size)
    flags = f"-F 16 -s 1 -S {SECTOR} -n {label} --invariant -i {volume_id} -h {hidden_sectors}"
    run(["mkfs.fat", *flags.split(), out])
    for directory in directories(entries):
        run(["mmd", "-i", out, f"::/{directory}"])
    for entry in entries:
        run(["mcopy", "-m", "-i", out, hosts[entry.path], f"::/{entry.path}"])
    for entry in entries:
        if entry.deleted:
            run(["mdel", "-i", out, f"::/{entry.path}"])


def _debugfs(image: Path, commands: Sequence[str]) -> None:
    """debugfs exits 0 even when a command fails, so any stderr beyond its banner is fatal."""
    done = run(["debugfs", "-w", "-f", "-", image], stdin=("\n".join(commands) + "\n").encode())
    errors = [
        line
        for line in done.stderr.decode("utf-8", "replace").splitlines()
        if line.strip() and not line.startswith("debugfs ")
    ]
    if errors:
        raise BuildError(f"debugfs on {image}: " + "; ".join(errors))


def build_ext4(
    out: Path,
    size: int,
    *,
    uuid: str,
    hash_seed: str,
    label: str,
    entries: Sequence[Entry],
    stage: Path,
) -> None:
    """ext4 with ``mke2fs -d`` (1 KiB blocks, journal); times pinned and a file deleted by
    debugfs."""
    out.unlink(missing_ok=True)
    flags = f"-q -F -t ext4 -b 1024 -N 64 -m 0 -L {label} -U {uuid}"
    extended = f"hash_seed={hash_seed},root_owner=0:0"
    run(["mke2fs", *flags.split(), "-E", extended, "-d", stage, out, f"{size // KIB}k"])
    # mke2fs -d copies ctime from the staging tree, which cannot be set; pin all four times.
    stamp = datetime.fromtimestamp(FIXED_TIME, UTC).strftime("%Y%m%d%H%M%S")
    targets = ["/"] + [f"/{d}" for d in directories(entries)] + [f"/{e.path}" for e in entries]
    commands = [
        f"sif {target} {field_name} {stamp}"
        for target in targets
        for field_name in ("atime", "mtime", "ctime", "crtime")
    ]
    commands += [f"rm /{entry.path}" for entry in entries if entry.deleted]
    _debugfs(out, commands)


def compile_ntfs_helper(workdir: Path) -> Path:
    binary = workdir / "ntfs_helper"
    flags = f"-O2 -Wall -Wextra -DKIOSK_NTFS_TIME={FIXED_TIME}L"
    run(["gcc", *flags.split(), "-o", binary, HELPER_SOURCE, "-lntfs-3g"])
    return binary


def build_ntfs(
    out: Path,
    size: int,
    *,
    partition_start: int,
    label: str,
    helper: Path,
    content: Content,
    hosts: Mapping[str, Path],
    workdir: Path,
) -> None:
    """NTFS with mkntfs, filled (directories, ADS, deletion) by the libntfs-3g helper."""
    blank(out, size)
    flags = f"-F -q -T -c 4096 -s {SECTOR} -p {partition_start} -H 255 -S 63 -L {label}"
    run(["mkntfs", *flags.split(), out])
    stream_host = workdir / "ads-stream.bin"
    stream_host.write_bytes(content.stream.data)
    lines = [f"mkdir\t/{directory}" for directory in directories(content.entries)]
    lines += [f"put\t/{entry.path}\t{hosts[entry.path]}" for entry in content.entries]
    lines.append(f"ads\t/{content.stream.path}\t{content.stream.name}\t{stream_host}")
    lines += [f"rm\t/{entry.path}" for entry in content.entries if entry.deleted]
    run([helper, out], stdin=("\n".join(lines) + "\n").encode())


# --------------------------------------------------------------------------------------------
# Manifest model
# --------------------------------------------------------------------------------------------


@dataclass
class Volume:
    offset: int
    length: int
    fs_type: str | None
    note: str
    files: list[dict[str, Any]] = field(default_factory=list)

    @property
    def examinable(self) -> bool:
        return self.fs_type is not None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_records(volume: Volume, content: Content) -> list[dict[str, Any]]:
    """The manifest's file list for one filesystem volume."""
    records: list[dict[str, Any]] = []
    fs_type = volume.fs_type or ""
    items: list[Entry | Stream] = list(content.entries)
    if fs_type == "ntfs":
        items.append(content.stream)
    for item in items:
        if isinstance(item, Stream):
            path, deleted = f"/{item.path}:{item.name}", False
        else:
            path, deleted = f"/{item.path}", item.deleted
        name_ok, meta_ok, data_ok = DELETED_RECOVERY[fs_type] if deleted else (True, True, True)
        records.append(
            {
                "volume_offset": volume.offset,
                "path": path,
                "size": len(item.data),
                "sha256": sha256(item.data),
                "allocated": not deleted,
                "kind": item.kind,
                "content_recoverable": data_ok,
                "name_recoverable": name_ok,
                "metadata_recoverable": meta_ok,
            }
        )
    return records


def image_record(
    name: str,
    segments: Sequence[str],
    fmt: str,
    media: bytes,
    table: str,
    volumes: Sequence[Volume],
    *,
    derived_from: str | None = None,
    ewf_md5: str | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "segments": list(segments),
        "format": fmt,
        "size": len(media),
        "sha256": sha256(media),
        "partition_table": table,
        "derived_from": derived_from,
        "ewf_md5": ewf_md5,
        "volumes": [
            {
                "offset": v.offset,
                "length": v.length,
                "fs_type": v.fs_type,
                "examinable": v.examinable,
                "note": v.note,
            }
            for v in volumes
        ],
        "files": [record for v in volumes for record in v.files],
    }


# --------------------------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------------------------


def output_files(directory: Path) -> list[Path]:
    """Images this script writes (and so may replace) in ``directory``."""
    fixed = ["fat16.dd", "ext4.dd", "ntfs.dd", "mbr-fat16-ext4.dd", "gpt.dd", "manifest.json"]
    fixed.append(PHONE_NAME)
    found = [directory / name for name in fixed if (directory / name).exists()]
    found += sorted(directory.glob("split.[0-9][0-9][0-9]"))
    found += sorted(directory.glob("ewf.E[0-9][0-9]"))
    return found


def build(outdir: Path) -> dict[str, Any]:
    check_tools(REQUIRED_TOOLS)
    content = make_content()
    images: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kiosk-images-") as tmp:
        work = Path(tmp)
        out = work / "out"
        out.mkdir()
        stage = work / "tree"
        stage.mkdir()
        hosts = stage_tree(stage, content.entries)
        helper = compile_ntfs_helper(work)

        # 1. bare FAT16
        fat = out / "fat16.dd"
        build_fat(
            fat,
            FAT_BYTES,
            hidden_sectors=0,
            volume_id="4b494f01",
            label="KIOSK-FAT16",
            entries=content.entries,
            hosts=hosts,
        )
        fat_volume = Volume(0, FAT_BYTES, "fat16", "bare FAT16 filesystem, 512-byte clusters")
        fat_volume.files = file_records(fat_volume, content)
        images.append(
            image_record("fat16.dd", ["fat16.dd"], "raw", fat.read_bytes(), "none", [fat_volume])
        )

        # 2. bare ext4
        ext4 = out / "ext4.dd"
        build_ext4(
            ext4,
            EXT4_BYTES,
            uuid="4b494f53-4b00-4000-8000-000000000e01",
            hash_seed="4b494f53-4b00-4000-8000-000000000e02",
            label="kiosk-ext4",
            entries=content.entries,
            stage=stage,
        )
        ext4_volume = Volume(
            0, EXT4_BYTES, "ext4", "bare ext4 filesystem, 1 KiB blocks, with journal"
        )
        ext4_volume.files = file_records(ext4_volume, content)
        images.append(
            image_record("ext4.dd", ["ext4.dd"], "raw", ext4.read_bytes(), "none", [ext4_volume])
        )

        # 3. bare NTFS
        ntfs = out / "ntfs.dd"
        build_ntfs(
            ntfs,
            NTFS_BYTES,
            partition_start=0,
            label="KIOSK-NTFS",
            helper=helper,
            content=content,
            hosts=hosts,
            workdir=work,
        )
        ntfs_volume = Volume(
            0,
            NTFS_BYTES,
            "ntfs",
            "bare NTFS filesystem, 4 KiB clusters; /report.txt has the"
            " alternate data stream 'hidden'",
        )
        ntfs_volume.files = file_records(ntfs_volume, content)
        images.append(
            image_record("ntfs.dd", ["ntfs.dd"], "raw", ntfs.read_bytes(), "none", [ntfs_volume])
        )

        # 4. MBR: primary FAT16, extended partition holding a logical ext4 (the demo image)
        p1_start = ALIGN
        p1_sectors = FAT_BYTES // SECTOR
        ext_start = p1_start + p1_sectors
        p5_start = ext_start + ALIGN  # the EBR sits at ext_start
        p5_sectors = EXT4_BYTES // SECTOR
        total = p5_start + p5_sectors
        mbr_fat = work / "mbr-p1.fat"
        build_fat(
            mbr_fat,
            FAT_BYTES,
            hidden_sectors=p1_start,
            volume_id="4b494f02",
            label="KIOSK-P1",
            entries=content.entries,
            hosts=hosts,
        )
        mbr_ext4 = work / "mbr-p5.ext4"
        build_ext4(
            mbr_ext4,
            EXT4_BYTES,
            uuid="4b494f53-4b00-4000-8000-000000000e05",
            hash_seed="4b494f53-4b00-4000-8000-000000000e06",
            label="kiosk-logical",
            entries=content.entries,
            stage=stage,
        )
        mbr = out / "mbr-fat16-ext4.dd"
        blank(mbr, total * SECTOR)
        sfdisk(
            mbr,
            "label: dos\nlabel-id: 0x4b494f53\nunit: sectors\n\n"
            f"start={p1_start}, size={p1_sectors}, type=6\n"
            f"start={ext_start}, size={total - ext_start}, type=5\n"
            f"start={p5_start}, size={p5_sectors}, type=83\n",
        )
        place(mbr, p1_start * SECTOR, mbr_fat)
        place(mbr, p5_start * SECTOR, mbr_ext4)
        mbr_volumes = [
            Volume(p1_start * SECTOR, FAT_BYTES, "fat16", "primary partition 1, type 0x06 (FAT16)"),
            Volume(
                p5_start * SECTOR,
                EXT4_BYTES,
                "ext4",
                f"logical partition 5, type 0x83, inside the extended partition 2 (type"
                f" 0x05) whose EBR is at sector {ext_start}",
            ),
        ]
        for volume in mbr_volumes:
            volume.files = file_records(volume, content)
        images.append(
            image_record(
                "mbr-fat16-ext4.dd",
                ["mbr-fat16-ext4.dd"],
                "raw",
                mbr.read_bytes(),
                "mbr",
                mbr_volumes,
            )
        )

        # 5. GPT: NTFS (Microsoft basic data) and a partition of random bytes (no filesystem)
        g1_start = ALIGN
        g1_sectors = NTFS_BYTES // SECTOR
        g2_start = g1_start + g1_sectors
        g2_sectors = RANDOM_BYTES // SECTOR
        gpt_total = g2_start + g2_sectors + 33  # backup partition array and header
        gpt_ntfs = work / "gpt-p1.ntfs"
        build_ntfs(
            gpt_ntfs,
            NTFS_BYTES,
            partition_start=g1_start,
            label="KIOSK-GPT",
            helper=helper,
            content=content,
            hosts=hosts,
            workdir=work,
        )
        gpt = out / "gpt.dd"
        blank(gpt, gpt_total * SECTOR)
        sfdisk(
            gpt,
            "label: gpt\nlabel-id: 4B494F53-4B00-4000-8000-0000000000A0\n"
            "unit: sectors\nfirst-lba: 34\n\n"
            f"start={g1_start}, size={g1_sectors},"
            " type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7,"
            ' uuid=4B494F53-4B00-4000-8000-0000000000A1, name="KIOSK data"\n'
            f"start={g2_start}, size={g2_sectors},"
            " type=CA7D7CCB-63ED-4C53-861C-1742536059CC,"
            ' uuid=4B494F53-4B00-4000-8000-0000000000A2, name="encrypted"\n',
        )
        place(gpt, g1_start * SECTOR, gpt_ntfs)
        place(gpt, g2_start * SECTOR, content.random_volume)
        gpt_volumes = [
            Volume(
                g1_start * SECTOR,
                NTFS_BYTES,
                "ntfs",
                "GPT partition 1 'KIOSK data' (Microsoft basic data), NTFS",
            ),
            Volume(
                g2_start * SECTOR,
                RANDOM_BYTES,
                None,
                "GPT partition 2 'encrypted' (LUKS type GUID): seeded random bytes with no"
                " filesystem, standing in for an encrypted volume; cannot be examined",
            ),
        ]
        gpt_volumes[0].files = file_records(gpt_volumes[0], content)
        images.append(
            image_record("gpt.dd", ["gpt.dd"], "raw", gpt.read_bytes(), "gpt", gpt_volumes)
        )

        # 6. EWF of ext4.dd, >= 2 segments of at most 1 MiB (ewfacquire's minimum)
        ewf_segments = acquire_ewf(out / "ext4.dd", out / "ewf")
        ewf_md5 = ewf_stored_md5(out / "ewf.E01")
        ewf_volume = Volume(0, EXT4_BYTES, "ext4", "the ext4 filesystem of ext4.dd")
        ewf_volume.files = file_records(ewf_volume, content)
        images.append(
            image_record(
                "ewf.E01",
                ewf_segments,
                "ewf",
                ext4.read_bytes(),
                "none",
                [ewf_volume],
                derived_from="ext4.dd",
                ewf_md5=ewf_md5,
            )
        )

        # 7. split raw of fat16.dd in 1 MiB segments: split.001, split.002, ...
        fat_bytes = fat.read_bytes()
        split_names = []
        for number, start in enumerate(range(0, len(fat_bytes), SPLIT_SEGMENT_BYTES), start=1):
            name = f"split.{number:03d}"
            (out / name).write_bytes(fat_bytes[start : start + SPLIT_SEGMENT_BYTES])
            split_names.append(name)
        split_volume = Volume(0, FAT_BYTES, "fat16", "the FAT16 filesystem of fat16.dd")
        split_volume.files = file_records(split_volume, content)
        images.append(
            image_record(
                "split.001",
                split_names,
                "split_raw",
                fat_bytes,
                "none",
                [split_volume],
                derived_from="fat16.dd",
            )
        )

        manifest = {
            "marker": MARKER.decode("ascii"),
            "generated_by": "sample_images/build.py (python3 sample_images/build.py)",
            "images": images,
            "logical": [build_phone(out, MARKER, KNOWN_BAD, KNOWN_GOOD, FIXED_TIME)],
        }
        for old in output_files(outdir):
            old.unlink()
        for new in sorted(out.iterdir()):
            shutil.move(new, outdir / new.name)
    (outdir / MANIFEST.name).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return manifest


def rebuild_phone(outdir: Path) -> None:
    """The phone extraction alone (pure Python, no disk tools): the disk images stay as they are."""
    path = outdir / MANIFEST.name
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["logical"] = [build_phone(outdir, MARKER, KNOWN_BAD, KNOWN_GOOD, FIXED_TIME)]
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def acquire_ewf(source: Path, target: Path) -> list[str]:
    """ewfacquire, unattended: EnCase 6 format, MD5 (always) and SHA-1 stored, only all-zero
    chunks compressed ("empty-block"), 1 MiB segments (its minimum) -> names of the segments."""
    case = {
        "-C": "DEMO-0001",
        "-E": "EX-1",
        "-e": "kiosk sample_images/build.py",
        "-D": f"EWF copy of {source.name}",
        "-N": "kiosk sample image; harmless demonstration content",
    }
    flags = "-u -q -c empty-block -d sha1 -f encase6 -m fixed -M physical -S 1MiB"
    header = [part for option in case.items() for part in option]
    # ewfacquire wants a source path with a directory part ("missing basename" otherwise).
    run(["ewfacquire", *flags.split(), *header, "-t", target, source.resolve()])
    segments = sorted(p.name for p in target.parent.glob(f"{target.name}.E[0-9][0-9]"))
    if len(segments) < 2:
        raise BuildError(f"ewfacquire wrote {segments}; at least two segments are needed")
    return segments


def ewf_stored_md5(first_segment: Path) -> str:
    text = run(["ewfinfo", first_segment]).stdout.decode("utf-8", "replace")
    found = re.search(r"^\s*MD5:\s*([0-9a-f]{32})\s*$", text, re.MULTILINE)
    if not found:
        raise BuildError(f"no MD5 in ewfinfo output for {first_segment}:\n{text}")
    return found.group(1)


# --------------------------------------------------------------------------------------------
# Verification with the Sleuth Kit command-line tools
# --------------------------------------------------------------------------------------------

FLS_LINE: Final = re.compile(
    r"^(?P<type>\S/\S) (?P<deleted>\* )?(?P<addr>[0-9-]+)(?P<realloc>\(realloc\))?:\t(?P<rest>.*)$"
)


@dataclass(frozen=True)
class FlsEntry:
    type: str
    deleted: bool
    addr: str
    path: str  # with a leading '/'
    size: int


def fls(image: Path, sector_offset: int, fs_type: str) -> list[FlsEntry]:
    """``fls -r -p -l`` (every name, allocated or not), and ``fls -d`` to confirm the deleted
    ones; entries only the second run shows would be a parsing error, so they are merged."""
    argv: list[str | Path] = ["fls", "-r", "-p", "-l", "-o", str(sector_offset), "-f", fs_type]
    argv.append(image)
    everything = parse_fls(run(argv).stdout)
    deleted_only = parse_fls(run([*argv[:1], "-d", *argv[1:]]).stdout)
    if {e for e in everything if e.deleted} != set(deleted_only):
        raise BuildError(f"fls and fls -d disagree on the deleted entries of {image}")
    return everything


def parse_fls(output: bytes) -> list[FlsEntry]:
    entries = []
    for raw in output.decode("utf-8", "surrogateescape").splitlines():
        match = FLS_LINE.match(raw)
        if not match:
            raise BuildError(f"unexpected fls line: {raw!r}")
        fields = match["rest"].split("\t")
        entries.append(
            FlsEntry(
                match["type"],
                bool(match["deleted"]),
                match["addr"],
                "/" + fields[0],
                int(fields[5]),
            )
        )
    return entries


def is_listed_metadata(entry: FlsEntry) -> bool:
    """fls entries that are the filesystem's own, not files anyone put there."""
    first = entry.path.split("/")[1]
    return (
        entry.type.startswith(("d/", "V/", "v/"))
        or first.startswith("$")
        or first == "lost+found"
        or entry.path.endswith("(Volume Label Entry)")
    )


def media_bytes(image: Mapping[str, Any], directory: Path) -> bytes:
    segments: list[Path] = [directory / name for name in image["segments"]]
    if image["format"] == "raw":
        return segments[0].read_bytes()
    if image["format"] == "split_raw":
        return b"".join(segment.read_bytes() for segment in segments)
    decoded: bytes = run(["img_cat", segments[0]]).stdout  # EWF, via the Sleuth Kit's libewf
    return decoded


def check_partitions(image: Mapping[str, Any], first: Path, problems: list[str]) -> None:
    name = image["name"]
    done = run(["mmls", first], ok_codes=(0, 1))
    table = image["partition_table"]
    if table == "none":
        if done.returncode == 0:
            problems.append(f"{name}: mmls finds a partition table, manifest says none")
        return
    text = done.stdout.decode("utf-8", "replace")
    header = {"mbr": "DOS Partition Table", "gpt": "GUID Partition Table"}[table]
    if done.returncode != 0 or header not in text:
        problems.append(f"{name}: mmls does not report a {header}")
        return
    rows = set()
    for line in text.splitlines():
        cols = line.split()
        if len(cols) >= 5 and cols[1] not in ("Meta", "-------") and cols[2].isdigit():
            rows.add((int(cols[2]) * SECTOR, int(cols[4]) * SECTOR))
    expected = {(v["offset"], v["length"]) for v in image["volumes"]}
    if rows != expected:
        problems.append(f"{name}: mmls partitions {sorted(rows)} != manifest {sorted(expected)}")
    if table == "mbr" and "Extended Table (#1)" not in text:
        problems.append(f"{name}: mmls shows no extended partition table")


def check_volume(
    image: Mapping[str, Any], volume: Mapping[str, Any], first: Path, problems: list[str]
) -> int:
    """Check one volume with fsstat, fls and icat; return how many files were checked."""
    name, offset = image["name"], volume["offset"]
    sector = offset // SECTOR
    where = f"{name} @{offset}"
    fs_type = volume["fs_type"]
    done = run(["fsstat", "-o", str(sector), first], ok_codes=(0, 1))
    if not volume["examinable"]:
        if done.returncode == 0:
            problems.append(f"{where}: fsstat finds a filesystem in a volume marked unexaminable")
        return 0
    fs_line = re.search(rb"^File System Type: (\S+)", done.stdout, re.MULTILINE)
    if done.returncode != 0 or not fs_line or fs_line.group(1).decode() != FSSTAT_TYPE[fs_type]:
        problems.append(f"{where}: fsstat does not report {FSSTAT_TYPE[fs_type]}")
        return 0

    listing = fls(first, sector, fs_type)
    files = [f for f in image["files"] if f["volume_offset"] == offset]
    kinds = {f["kind"] for f in files}
    wanted = REQUIRED_KINDS | ({"ads"} if fs_type == "ntfs" else set())
    if not wanted <= kinds:
        problems.append(f"{where}: manifest lacks kinds {sorted(wanted - kinds)}")
    listed_paths = {f["path"] for f in files}
    for entry in listing:
        if entry.path not in listed_paths and not is_listed_metadata(entry):
            problems.append(f"{where}: fls shows {entry.path} ({entry.addr}), not in manifest")

    for record in files:
        label = f"{where} {record['path']}"
        check_file(record, listing, first, sector, fs_type, label, problems)
    return len(files)


def check_file(
    record: Mapping[str, Any],
    listing: Sequence[FlsEntry],
    first: Path,
    sector: int,
    fs_type: str,
    label: str,
    problems: list[str],
) -> None:
    if record["kind"] not in KINDS:
        problems.append(f"{label}: unknown kind {record['kind']}")
    if record["allocated"] and not (
        record["name_recoverable"]
        and record["metadata_recoverable"]
        and record["content_recoverable"]
    ):
        problems.append(f"{label}: an allocated file must be fully recoverable")
    matches = [e for e in listing if e.path == record["path"] and e.deleted != record["allocated"]]
    if not matches:
        others = [e for e in listing if e.path == record["path"]]
        if others:
            problems.append(f"{label}: fls shows it with the wrong allocation state")
        elif record["name_recoverable"]:
            problems.append(f"{label}: fls does not show it")
        return
    if not record["name_recoverable"]:
        problems.append(f"{label}: manifest says the name is lost, fls shows it")
    entry = matches[0]
    if (entry.size == record["size"]) != record["metadata_recoverable"]:
        problems.append(
            f"{label}: fls size {entry.size}, manifest size {record['size']} with"
            f" metadata_recoverable={record['metadata_recoverable']}"
        )
    data = run(["icat", "-o", str(sector), "-f", fs_type, first, entry.addr]).stdout
    recovered = len(data) == record["size"] and sha256(data) == record["sha256"]
    if recovered != record["content_recoverable"]:
        problems.append(
            f"{label}: icat {entry.addr} returned {len(data)} bytes, sha256 {sha256(data)};"
            f" manifest: {record['size']} bytes, sha256 {record['sha256']},"
            f" content_recoverable={record['content_recoverable']}"
        )
    if recovered:
        check_kind(record["kind"], data, label, problems)


def check_kind(kind: str, data: bytes, label: str, problems: list[str]) -> None:
    """The contents promised by each kind (checked on what icat returned)."""
    middle = MARKER in data[1:-1] and not data.startswith(MARKER)
    ok = {
        "marker": middle,
        "deleted_marker": middle,
        "ads": middle,
        "known_bad": data == KNOWN_BAD and sha256(data) == KNOWN_BAD_SHA256,
        "known_good": data == KNOWN_GOOD and sha256(data) == KNOWN_GOOD_SHA256,
        "empty": data == b"",
        "large": len(data) == LARGE_SIZE
        and data[LARGE_MARKER_OFFSET : LARGE_MARKER_OFFSET + len(MARKER)] == MARKER,
    }.get(kind, MARKER not in data)
    if not ok:
        problems.append(f"{label}: content does not fit kind {kind!r}")


def verify(directory: Path) -> bool:
    check_tools(VERIFY_TOOLS)
    manifest = json.loads((directory / MANIFEST.name).read_text(encoding="utf-8"))
    problems: list[str] = []
    if manifest.get("marker") != MARKER.decode():
        problems.append("manifest marker is wrong")
    by_name = {image["name"]: image for image in manifest["images"]}
    total = 0
    for image in manifest["images"]:
        name = image["name"]
        segments = [directory / segment for segment in image["segments"]]
        missing = [s.name for s in segments if not s.exists()]
        if missing:
            problems.append(f"{name}: missing segments {missing}")
            continue
        on_disk = sum(s.stat().st_size for s in segments)
        total += on_disk
        media = media_bytes(image, directory)
        if len(media) != image["size"] or sha256(media) != image["sha256"]:
            problems.append(f"{name}: media size/sha256 differ from the manifest")
        source = by_name.get(image["derived_from"] or "")
        if image["derived_from"] and (source is None or source["sha256"] != image["sha256"]):
            problems.append(f"{name}: not a copy of {image['derived_from']}")
        if image["format"] == "ewf":
            md5 = hashlib.md5(media, usedforsecurity=False).hexdigest()
            if image["ewf_md5"] != md5 or ewf_stored_md5(segments[0]) != md5:
                problems.append(f"{name}: stored MD5 does not match the media")
            if run(["ewfverify", "-q", segments[0]], ok_codes=(0, 1)).returncode != 0:
                problems.append(f"{name}: ewfverify fails")
        check_partitions(image, segments[0], problems)
        checked = 0
        for volume in image["volumes"]:
            checked += check_volume(image, volume, segments[0], problems)
        print(
            f"{name:20} {image['format']:9} {len(segments)} segment(s) {on_disk:>9} bytes on"
            f" disk, {len(image['volumes'])} volume(s), {checked:2} files checked"
        )
    for record in manifest.get("logical", []):
        checked = verify_phone(record, directory, problems)
        total += record["size"]
        print(f"{record['name']:20} {record['format']:9} 1 file, {checked:2} members checked")
    print(f"{'total':20} {total:>35} bytes on disk")
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    print("verify: " + ("FAILED" if problems else "all images match manifest.json"))
    return not problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument(
        "--verify",
        action="store_true",
        help="only check the images in sample_images/ against manifest.json",
    )
    parser.add_argument(
        "--phone",
        action="store_true",
        help="only (re)build the sample phone extraction and its manifest entry",
    )
    parser.add_argument("--outdir", type=Path, default=HERE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if args.phone:
            rebuild_phone(args.outdir)
        elif not args.verify:
            build(args.outdir)
        return 0 if verify(args.outdir) else 1
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
