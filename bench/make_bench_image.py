"""Build the triage benchmark images (ext4, FAT32, NTFS) and a 200-rule pack from a fixed seed.

Why: ``triage_bench.py`` compares kiosk with a naive single-process script and with the Sleuth
Kit CLI pipeline on the same evidence. The evidence must look like a seized Windows disk (many
small files of real types, some medium files, a few large ones) and be rebuilt bit-for-bit in
content from the seed, so that figures from different sessions compare. Content comes from
slices of three pools (random, log text, zeros) behind real magic headers, so libmagic types
them and YARA has realistic work; about 2 % of text, script and PE files carry a "bait" string
that one rule of the pack matches. The filesystems are filled without mounting (``mke2fs -d``,
``mcopy -s``, and for NTFS ``mkntfs`` plus the libntfs-3g helper of ``sample_images/``, which
opens the image file itself). ``manifest.json`` holds path, size, kind and SHA-256 of every file.

Usage: ``python3 bench/make_bench_image.py [--out DIR] [--fs ext4,fat32,ntfs] [--huge-gib 2]``
(default DIR ``${TMPDIR:-/tmp}/kiosk-triage-bench``, default ``--fs ext4,fat32``: NTFS needs
``ntfs-3g``, ``ntfs-3g-dev`` and ``gcc`` besides). Every run regenerates the tree from the seed,
then builds only the images ``--fs`` names, so ``--fs ntfs`` adds ``ntfs.img`` next to the
others; ``manifest.json`` and the rule files are rewritten only if their bytes changed, so a
bench running meanwhile on the same directory is not disturbed. ``--huge-gib`` adds one
incompressible file of that size (for the peak-RSS check) in a separate image ``ext4-huge.img``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # sample_images.build (NTFS)
from pool_choice import (
    BAITS,
    PE_BAIT_TIMESTAMP,
    Pools,
    _hexbytes,
    _meta,
    _pe_header,
    _token,
    _word,
)

from sample_images.build import check_tools, compile_ntfs_helper, run

SEED = 20251127
VERSION = "1"
KIB, MIB = 1 << 10, 1 << 20
N_SMALL, N_MEDIUM = 20_000, 60  # the standard shape
LARGE = (
    ("pagefile.sys", 320, "mixed"),
    ("Users/alice/Videos/holiday.mp4", 200, "mp4"),
    ("Windows/MEMORY.DMP", 150, "mixed"),
    ("Users/bob/Downloads/backup.zip", 110, "zip"),
)
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
PACK = "benchsynth"
FILESYSTEMS = ("ext4", "fat32", "ntfs")


@dataclass(frozen=True)
class Shape:
    """How many files of each size class, the large files, the image size and the rule style.

    ``standard`` is the tree this bench always measured. ``independent`` is the shape of the
    independent bench in issue 19: a 1 GiB ext4 with about 8,000 small files, 24 of 1-10 MiB,
    one of 200 MiB and one of 100 MiB, and 201 rules that import ``pe`` and ``math`` -- where
    per-file fixed costs (libmagic, a YARA call with ``pe``) are most of the work, not bytes.
    Its ``pe`` rules are written as many public ones are, without an ``is_pe`` guard, so
    module gating cannot take the ``pe`` module off non-PE files. ``tiny`` is for the test
    suite (tests/test_engines.py): every kind of file and rule, a few hundred files.
    """

    n_small: int
    n_medium: int
    large: tuple[tuple[str, int, str], ...]
    image_mib: int | None  # None: sized from the content
    unguarded_pe: bool  # pe rules without the is_pe guard, and no elf import
    starter_samples: bool = True
    priority_areas: tuple[str, ...] = ()  # the pack's pack.toml priority_areas


SHAPES = {
    "standard": Shape(20_000, 60, LARGE, None, False),
    "independent": Shape(
        8_000,
        24,
        (("pagefile.sys", 200, "mixed"), ("Users/alice/Videos/holiday.mp4", 100, "mp4")),
        1024,
        True,
    ),
    "tiny": Shape(300, 2, (), None, False),
    # issue 19 item 2: an OS and its users' data, ~70 % known-good, ~15 % copies (plan_realistic)
    "realistic": Shape(
        0,
        0,
        (),
        None,
        False,
        starter_samples=False,
        priority_areas=("Users", "home", "DCIM", "WhatsApp/Media"),
    ),
}
# NTFS adds a 1 KiB MFT record per file and directory (20 MiB here) and a $LogFile (9.3 MiB at
# this size); one more 64 MiB step leaves ~20 % free (366 MiB), as libntfs-3g's allocator
# wants slack (see make_ntfs).
NTFS_EXTRA_MIB = 64
CATEGORIES = ("text", "hex", "regex", "pe", "elf", "bait", "math", "eicar")

_ROOTS = (
    "Windows/System32",
    "Windows/System32/drivers",
    "Windows/SysWOW64",
    "Windows/Temp",
    "Windows/INetCache",
    "Program Files/Vendor",
    "Program Files (x86)/Tools",
    "ProgramData/cache",
    "Users/alice/Documents",
    "Users/alice/Downloads",
    "Users/alice/AppData/Local/Temp",
    "Users/alice/AppData/Roaming/Mozilla",
    "Users/bob/Desktop",
    "Users/bob/AppData/Local/Microsoft",
    "Users/bob/Pictures",
    "var/log",
    "home/carol/projects",
    "usr/lib",
)


def _png() -> bytes:
    ihdr = struct.pack(">IIBBBBB", 640, 480, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


def _zip(name: bytes) -> bytes:
    return struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name


def _elf() -> bytes:
    ident = b"\x7fELF\x02\x01\x01" + bytes(9)
    return ident + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0x1000, 64, 0, 0, 64, 56, 0, 64, 0, 0)


# kind -> (extensions, header, (random, text, zeros) weights of the body)
KINDS: dict[str, tuple[tuple[str, ...], bytes, tuple[int, int, int]]] = {
    "text": (("txt", "log", "csv"), b"", (0, 1, 0)),
    "html": (
        ("html", "htm"),
        b"<!DOCTYPE html>\n<html><head><title>index</title></head><body>\n",
        (0, 1, 0),
    ),
    "json": (("json",), b'{"version": 3, "entries": [\n', (0, 1, 0)),
    "xml": (
        ("xml", "config"),
        b'<?xml version="1.0" encoding="UTF-8"?>\n<configuration>\n',
        (0, 1, 0),
    ),
    "script": (
        ("ps1", "py", "sh"),
        b"#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\n",
        (0, 1, 0),
    ),
    "eml": (
        ("eml",),
        b"From: alice@example.org\nTo: bob@example.org\nSubject: report\n"
        b"Date: Mon, 2 Nov 2026 10:00:00 +0000\nMIME-Version: 1.0\nContent-Type: text/plain\n\n",
        (0, 1, 0),
    ),
    "pdf": (
        ("pdf",),
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n",
        (3, 1, 0),
    ),
    "png": (("png",), _png(), (1, 0, 0)),
    "jpeg": (
        ("jpg",),
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
        (1, 0, 0),
    ),
    "gif": (("gif",), b"GIF89a\x80\x02\xe0\x01\xf7\x00\x00", (1, 0, 0)),
    "zip": (("zip", "docx", "xlsx"), _zip(b"[Content_Types].xml"), (1, 0, 0)),
    "gzip": (("gz",), b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", (1, 0, 0)),
    "sqlite": (
        ("sqlite", "db"),
        b"SQLite format 3\x00\x10\x00\x01\x01\x00@  \x00\x00\x00\x02",
        (2, 1, 3),
    ),
    "pe": (("exe", "dll", "sys"), b"", (5, 1, 3)),
    "elf": (("so", "bin"), _elf(), (5, 1, 3)),
    "lnk": (
        ("lnk",),
        b"L\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00F",
        (1, 0, 1),
    ),
    "evtx": (("evtx",), b"ElfFile\x00" + bytes(24), (2, 1, 2)),
    "regf": (("dat",), b"regf" + bytes(28), (2, 1, 2)),
    "ole": (
        ("doc", "msi", "xls"),
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(16) + b">\x00\x03\x00\xfe\xff",
        (2, 1, 2),
    ),
    "mp4": (("mp4",), b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", (1, 0, 0)),
    "mixed": (("bin", "tmp", "cache"), b"", (5, 3, 2)),
}
_SMALL_W = {
    "text": 14,
    "html": 7,
    "json": 5,
    "xml": 5,
    "script": 6,
    "eml": 3,
    "pdf": 5,
    "png": 8,
    "jpeg": 8,
    "gif": 2,
    "zip": 4,
    "gzip": 2,
    "sqlite": 2,
    "pe": 10,
    "elf": 3,
    "lnk": 3,
    "evtx": 1,
    "regf": 1,
    "ole": 3,
    "mixed": 6,
}
_MEDIUM_W = {
    "pdf": 10,
    "zip": 10,
    "pe": 15,
    "sqlite": 10,
    "mp4": 10,
    "jpeg": 5,
    "ole": 10,
    "text": 10,
    "mixed": 20,
}


def plan(rng: random.Random, shape: Shape = SHAPES["standard"]) -> list[dict[str, object]]:
    """Paths, sizes, kinds and planted strings of every file, from the seed."""
    dirs = list(_ROOTS)
    for _ in range(450):
        dirs.append(f"{rng.choice(dirs)}/{_word(rng)}")
    files: list[dict[str, object]] = []
    seen: set[str] = set()

    def add(size: int, kind: str, path: str | None = None) -> None:
        if path is None:
            ext = rng.choice(KINDS[kind][0])
            path = f"{rng.choice(dirs)}/{_word(rng)}_{len(files):05d}.{ext}"
        seen.add(path.lower())
        files.append({"path": path, "size": size, "kind": kind, "bait": ""})

    for _ in range(shape.n_small):
        add(
            round(2 ** rng.uniform(10, 16)), rng.choices(list(_SMALL_W), list(_SMALL_W.values()))[0]
        )
    for _ in range(shape.n_medium):
        lo = MIB if shape.n_medium > 4 else 64 * KIB  # tiny: small "medium" files
        add(rng.randint(lo, 10 * lo), rng.choices(list(_MEDIUM_W), list(_MEDIUM_W.values()))[0])
    for path, mib, kind in shape.large:
        add(mib * MIB, kind, path)
    for i in range(3):
        files.append(
            {
                "path": f"Users/alice/Downloads/eicar_{i}.com",
                "size": len(EICAR),
                "kind": "eicar",
                "bait": "",
            }
        )
    for f in files:
        size = int(f["size"])  # type: ignore[call-overload]
        if f["kind"] in ("text", "script", "pe") and size >= 4 * KIB and rng.random() < 0.02:
            f["bait"] = rng.choice(BAITS)
    return files


def content(rng: random.Random, f: dict[str, object], pools: Pools, index: int) -> bytes:
    kind, size = str(f["kind"]), int(f["size"])  # type: ignore[call-overload]
    if kind == "eicar":
        return EICAR
    out = bytearray()
    if kind == "pe":
        out += _pe_header(
            rng, PE_BAIT_TIMESTAMP if f["bait"] else rng.randint(0x50000000, 0x68000000)
        )
    else:
        out += KINDS[kind][1]
    if KINDS[kind][2] == (0, 1, 0):
        out += f"# file {index}\n".encode()
    w = KINDS[kind][2]
    while len(out) < size:
        src = rng.choices((pools.random, pools.text, pools.zeros), w)[0]
        n = min(size - len(out), rng.randint(4 * KIB, 256 * KIB), len(src))
        off = rng.randrange(len(src) - n + 1)
        out += src[off : off + n]
    del out[size:]
    if f["bait"]:
        plant = b"\n" + str(f["bait"]).encode() + b"\n"
        at = rng.randrange(len(out) // 2, len(out) - len(plant))
        out[at : at + len(plant)] = plant
    return bytes(out)


def write_tree(tree: Path, seed: int, shape: Shape = SHAPES["standard"]) -> dict[str, object]:
    rng = random.Random(seed)
    files = plan(rng, shape)
    pools = Pools(rng)
    shutil.rmtree(tree, ignore_errors=True)
    entries = []
    for i, f in enumerate(files):
        data = content(rng, f, pools, i)
        p = tree / str(f["path"])
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        entries.append({**f, "sha256": hashlib.sha256(data).hexdigest()})
    if shape.starter_samples:
        entries += plant_starter_samples(tree)
    return {
        "version": VERSION,
        "seed": seed,
        "files": len(entries),
        "bytes": sum(int(e["size"]) for e in entries),
        "entries": entries,
    }  # type: ignore[call-overload]


STARTER_SAMPLES = Path(__file__).resolve().parent.parent / "rules/kiosk-core/tests/positive"


def plant_starter_samples(tree: Path) -> list[dict[str, object]]:
    """Copy the starter pack's own positive samples into the tree (kind ``starter_sample``).

    Without them no file in the generated tree is meant for ``rules/kiosk-core``, and the
    findings check of a starter-pack run would compare two empty lists. They are small (about
    30 files, a few KiB) and come from the repository, so the tree stays reproducible.
    """
    out: list[dict[str, object]] = []
    for src in sorted(p for p in STARTER_SAMPLES.rglob("*") if p.is_file()):
        rel = src.relative_to(STARTER_SAMPLES).as_posix()
        path = f"Users/bob/Downloads/starter-samples/{rel}"
        data = src.read_bytes()
        dst = tree / path
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
        entry = {"path": path, "size": len(data), "kind": "starter_sample", "bait": ""}
        out.append({**entry, "sha256": hashlib.sha256(data).hexdigest()})
    return out


# --------------------------------------------------------------------------- realistic tree

REALISTIC_SYSTEM = (
    "Windows/System32",
    "Windows/System32/drivers",
    "Windows/SysWOW64",
    "Windows/WinSxS/amd64_microsoft-windows-a",
    "Windows/WinSxS/amd64_microsoft-windows-b",
    "Windows/Fonts",
    "Windows/INF",
    "Program Files/Vendor/bin",
    "Program Files/Vendor/lib",
    "Program Files/Office/root",
    "Program Files (x86)/Tools",
    "ProgramData/Package Cache",
)
REALISTIC_USER = (
    "Users/alice/Desktop",
    "Users/alice/Documents",
    "Users/alice/Downloads",
    "Users/alice/Pictures",
    "Users/alice/AppData/Roaming/WhatsApp/Media",
    "Users/bob/Documents",
    "Users/bob/Downloads",
    "Users/bob/Pictures/DCIM",
)
_SYSTEM_W = {"pe": 45, "text": 10, "xml": 15, "json": 5, "mixed": 10, "ole": 5, "png": 5, "gzip": 5}
_USER_W = {"jpeg": 30, "png": 10, "pdf": 12, "zip": 8, "text": 15, "html": 5, "script": 5, "pe": 5}
N_SYSTEM, N_USER = 6_000, 2_500  # unique files; copies on top: 15 % of all files


def plan_realistic(rng: random.Random) -> list[dict[str, object]]:
    """An OS-and-user-data tree: system files (the known-good set covers them), user files with
    the baits, three large videos, and byte-identical copies (15 % of all files).

    About 70 % of the files are system files or their copies, listed in ``known_good.hashdeep``;
    user files, their copies and the videos are not. Baits go only into user files, so a naive
    scan without hash sets finds exactly what kiosk finds with the set.
    """
    sys_dirs = list(REALISTIC_SYSTEM)
    for _ in range(120):
        sys_dirs.append(f"{rng.choice(REALISTIC_SYSTEM)}/{_word(rng)}")
    user_dirs = list(REALISTIC_USER)
    for _ in range(60):
        user_dirs.append(f"{rng.choice(REALISTIC_USER)}/{_word(rng)}")
    files: list[dict[str, object]] = []

    def add(dirs: list[str], weights: dict[str, int], system: bool) -> None:
        kind = rng.choices(list(weights), list(weights.values()))[0]
        ext = rng.choice(KINDS[kind][0])
        path = f"{rng.choice(dirs)}/{_word(rng)}_{len(files):05d}.{ext}"
        size = round(2 ** rng.uniform(10, 16 if system else 17.5))
        files.append({"path": path, "size": size, "kind": kind, "bait": "", "system": system})

    for _ in range(N_SYSTEM):
        add(sys_dirs, _SYSTEM_W, True)
    for _ in range(N_USER):
        add(user_dirs, _USER_W, False)
    for i, mib in enumerate((90, 60, 40)):
        files.append(
            {
                "path": f"Users/alice/Videos/clip_{i}.mp4",
                "size": mib * MIB,
                "kind": "mp4",
                "bait": "",
                "system": False,
            }
        )
    for f in files:
        size = int(f["size"])  # type: ignore[call-overload]
        user_text = not f["system"] and f["kind"] in ("text", "script", "pe")
        if user_text and size >= 4 * KIB and rng.random() < 0.05:
            f["bait"] = rng.choice(BAITS)
    n_copies = round(len(files) * 0.15 / 0.85)
    originals = [f for f in files if int(f["size"]) < MIB]  # type: ignore[call-overload]
    for k in range(n_copies):
        src = rng.choice(originals)
        dirs = sys_dirs if src["system"] else user_dirs
        name = str(src["path"]).rsplit("/", 1)[1]
        files.append(
            {**src, "path": f"{rng.choice(dirs)}/copy{k:04d}_{name}", "copy_of": src["path"]}
        )
    return files


def write_realistic_tree(tree: Path, seed: int) -> dict[str, object]:
    """The realistic tree and ``known_good`` (hashdeep lines of every system file)."""
    rng = random.Random(seed)
    files = plan_realistic(rng)
    pools = Pools(rng)
    shutil.rmtree(tree, ignore_errors=True)
    entries = []
    made: dict[str, bytes] = {}
    for i, f in enumerate(files):
        data = made[str(f["copy_of"])] if "copy_of" in f else content(rng, f, pools, i)
        if "copy_of" not in f and int(f["size"]) < MIB:  # type: ignore[call-overload]
            made[str(f["path"])] = data
        p = tree / str(f["path"])
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        entries.append(
            {
                **{k: v for k, v in f.items() if k != "copy_of"},
                "copy": "copy_of" in f,
                "sha256": hashlib.sha256(data).hexdigest(),
                "md5": hashlib.md5(data).hexdigest(),  # noqa: S324 - the hash set's identity
            }
        )
    return {
        "version": VERSION,
        "seed": seed,
        "shape": "realistic",
        "files": len(entries),
        "bytes": sum(int(e["size"]) for e in entries),
        "entries": entries,
    }


def write_known_good(out: Path, manifest: dict[str, object]) -> Path:
    """A hashdeep file of every system file (what a force's known-good set would list).

    kiosk imports it (``kiosk hashsets import --format hashdeep``) and signs it; the CLI
    pipeline gives the same file to ``hashdeep -x -k`` (negative matching).
    """
    seen: set[str] = set()
    lines = [
        "%%%% HASHDEEP-1.0",
        "%%%% size,md5,sha256,filename",
        "## Invoked from: bench/make_bench_image.py --shape realistic",
        "##",
    ]
    for e in manifest["entries"]:  # type: ignore[attr-defined]
        if e["system"] and e["sha256"] not in seen:
            seen.add(e["sha256"])
            lines.append(f"{e['size']},{e['md5']},{e['sha256']},/{e['path']}")
    path = out / "known_good.hashdeep"
    _write_if_changed(path, "\n".join(lines) + "\n")
    return path


def _size_mib(tree_bytes: int, nfiles: int) -> int:
    return math.ceil((tree_bytes * 1.08 + nfiles * 8 * KIB + 96 * MIB) / (64 * MIB)) * 64


def make_ext4(tree: Path, img: Path, size_mib: int) -> None:
    img.unlink(missing_ok=True)
    subprocess.run(
        [
            shutil.which("mke2fs") or "/usr/sbin/mke2fs",
            "-q",
            "-t",
            "ext4",
            "-L",
            "kbench",
            "-U",
            "5a1e0000-0000-4000-8000-000020251127",
            "-E",
            "root_owner=0:0",
            "-d",
            str(tree),
            "-F",
            str(img),
            f"{size_mib}M",
        ],
        check=True,
        env={**os.environ, "E2FSPROGS_FAKE_TIME": "1795000000"},
    )


def make_fat32(tree: Path, img: Path, size_mib: int) -> None:
    img.unlink(missing_ok=True)
    with img.open("wb") as f:
        f.truncate(size_mib * MIB)
    subprocess.run(
        [
            shutil.which("mkfs.fat") or "/usr/sbin/mkfs.fat",
            "-F",
            "32",
            "-n",
            "KBENCH",
            "-i",
            "20251127",
            str(img),
        ],
        check=True,
        capture_output=True,
    )
    srcs = sorted(str(p) for p in tree.iterdir())
    subprocess.run(
        ["mcopy", "-s", "-Q", "-i", str(img), *srcs, "::/"],
        check=True,
        env={**os.environ, "MTOOLS_SKIP_CHECK": "1"},
    )


def make_ntfs(tree: Path, img: Path, size_mib: int) -> None:
    """mkntfs on a plain file, then every directory and file of the tree through libntfs-3g.

    The ntfs-3g tools cannot create directories (ntfscp only copies into existing ones) and
    mounting is not allowed, so ``sample_images/ntfs_helper.c`` writes the tree: it opens the
    image file as a volume in its own process and pins every timestamp. Directories go first,
    sorted by component (a parent sorts before its children), then files largest first:
    libntfs-3g's allocator leaves a gap after every allocation and takes at most one free run
    per 32768-cluster bitmap block per pass, so a 320 MiB file written late into the gappy free
    space makes it mark every zone full, and the next file fails with ENOSPC although a fifth
    of the volume is free (seen with files written in path order).
    """
    img.unlink(missing_ok=True)
    with img.open("wb") as f:
        f.truncate(size_mib * MIB)
    flags = "-F -Q -q -T -c 4096 -s 512 -p 0 -H 255 -S 63 -L KBENCH"
    run(["mkntfs", *flags.split(), img])
    paths = sorted(tree.rglob("*"), key=lambda p: p.relative_to(tree).parts)
    files = sorted((p for p in paths if not p.is_dir()), key=lambda p: -p.stat().st_size)
    script = [f"mkdir\t/{p.relative_to(tree).as_posix()}" for p in paths if p.is_dir()]
    script += [f"put\t/{p.relative_to(tree).as_posix()}\t{p}" for p in files]
    with tempfile.TemporaryDirectory(prefix="kiosk-ntfs-helper-") as work:
        helper = compile_ntfs_helper(Path(work))
        run([helper, img], stdin=("\n".join(script) + "\n").encode())


def generate_rules(rng: random.Random, unguarded_pe: bool = False) -> str:
    """200 rules: 80 text, 50 hex, 35 regex (literal atoms), 20 pe, 3 elf, 8 bait, 3 math, EICAR.

    The pe and elf rules guard on ``pe.is_pe`` / ``uint32(0) == 0x464C457F`` as published rules
    usually do, so kiosk can gate them to files whose head can match. With ``unguarded_pe``
    (the independent shape): 201 rules importing only ``pe`` and ``math``; the 3 elf rules become
    3 more text rules, the 19 pe rules lose their ``pe.is_pe and`` guard (false on non-PE all
    the same, but every file now runs the ``pe`` module), and one more ``pe`` + ``math`` rule.
    """
    out = [
        'import "pe"\nimport "math"\n'
        if unguarded_pe
        else 'import "pe"\nimport "elf"\nimport "math"\n'
    ]

    def rule(name: str, what: str, strings: list[str], cond: str) -> None:
        body = "".join(f"        ${chr(97 + k)} = {s}\n" for k, s in enumerate(strings))
        out.append(
            f"rule {name}\n{{\n{_meta(rng, what)}"
            + (f"    strings:\n{body}" if strings else "")
            + f"    condition:\n        {cond}\n}}\n"
        )

    mods = ("ascii", "wide", "nocase", "ascii wide", "ascii wide nocase", "fullword")
    for i in range(80):
        ss = [f'"{_token(rng)}" {rng.choice(mods)}' for _ in range(rng.randint(2, 5))]
        rule(f"bench_text_{i:03d}", "text", ss, rng.choice(("any of them", "2 of them")))
    for i in range(50):
        ss = []
        for _ in range(rng.randint(1, 3)):
            mid = rng.choice(("?? ??", "[2-6]", f"( {_hexbytes(rng, 2)} | {_hexbytes(rng, 2)} )"))
            ss.append(f"{{ {_hexbytes(rng, 4)} {mid} {_hexbytes(rng, rng.randint(2, 4))} }}")
        rule(f"bench_hex_{i:03d}", "hex", ss, "any of them")
    for i in range(35):
        lit = _word(rng) + _word(rng)
        rx = rng.choice(
            (
                rf"/{lit}[_\-][a-z0-9]{{3,12}}\.(exe|dll|ps1)/ nocase",
                rf"/https?:\/\/{lit}\.[a-z]{{2,6}}\/[a-z0-9]{{2,16}}/",
                rf"/{lit}=[A-Za-z0-9+\/]{{8,40}}/",
            )
        )
        rule(f"bench_regex_{i:03d}", "regex", [rx], "any of them")
    for i in range(19):
        cond = rng.choice(
            (
                "pe.is_pe and pe.number_of_sections > 6 and "
                f"pe.timestamp == {rng.randrange(10**9)}",
                f'pe.is_pe and pe.exports("{_token(rng)}")',
                f'pe.is_pe and pe.imports("{_word(rng)}.dll", "{_token(rng)}")',
                f'pe.is_pe and for any s in pe.sections : (s.name == ".{_word(rng)[:6]}")',
            )
        )
        rule(
            f"bench_pe_{i:03d}",
            "pe",
            [],
            cond.removeprefix("pe.is_pe and ") if unguarded_pe else cond,
        )
    rule(
        "bench_pe_bait",
        "pe",
        [],
        f"pe.is_pe and pe.timestamp == {PE_BAIT_TIMESTAMP:#x} and pe.number_of_sections == 4",
    )
    for i in range(3):
        if unguarded_pe:
            rule(f"bench_text_x{i}", "text", [f'"{_token(rng)}" ascii wide'], "any of them")
            continue
        rule(
            f"bench_elf_{i:03d}",
            "elf",
            [],
            f"uint32(0) == 0x464C457F and elf.number_of_sections == {rng.randint(20, 90)}",
        )
    if unguarded_pe:
        rule(
            "bench_pe_math",
            "pe",
            [],
            "pe.number_of_sections == 4 and math.entropy(0, 1024) > 7.99",
        )
    for i, b in enumerate(BAITS):
        rule(f"bench_bait_{i:02d}", "bait", [f'"{b}"'], "any of them")
    for i in range(3):
        rule(
            f"bench_math_{i:03d}",
            "math",
            [f'"{_token(rng)}"'],
            "$a and math.entropy(0, filesize) > 7.9",
        )
    rule("bench_eicar", "eicar", ['"$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!"'], "$a at 35")
    return "\n".join(out)


def write_pack(out: Path, shape: Shape = SHAPES["standard"]) -> Path:
    import yara

    src = generate_rules(random.Random(f"{SEED}-rules"), shape.unguarded_pe)
    yara.compile(source=src, error_on_warning=True)  # no slow strings
    rules_dir = out / "rules"
    pack = rules_dir / PACK
    pack.mkdir(parents=True, exist_ok=True)
    _write_if_changed(
        pack / "pack.toml",
        f'name = "{PACK}"\nversion = "{VERSION}.0.0"\n'
        'description = "Synthetic rules for bench/triage_bench.py"\n'
        'maintainer = "kiosk bench"\nexternals = []\n'
        + (
            'modules = ["pe", "math"]\n'
            if shape.unguarded_pe
            else 'modules = ["pe", "elf", "math"]\n'
        )
        + f"categories = {json.dumps([f'synthetic_{c}' for c in CATEGORIES])}\n"
        + (
            f"priority_areas = {json.dumps(list(shape.priority_areas))}\n"
            if shape.priority_areas
            else ""
        )
        + '[meta_defaults]\nauthor = "bench/make_bench_image.py"\ndate = "2026-11-27"\n',
    )
    _write_if_changed(pack / "synthetic.yar", src)
    _write_if_changed(out / "synthetic.yar", src)  # one file, for yara -r and naive
    return rules_dir


def _write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` unless the file already holds it: a bench reading it meanwhile never sees
    it truncated. Same seed, same bytes, so rebuilding one image leaves these files alone."""
    if path.is_file() and path.read_text("utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def default_dir(shape: str = "standard") -> Path:
    base = Path(os.environ.get("TMPDIR") or tempfile.gettempdir()) / "kiosk-triage-bench"
    return base if shape == "standard" else base.with_name(f"{base.name}-{shape}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, help="default: $TMPDIR/kiosk-triage-bench[-SHAPE]")
    ap.add_argument(
        "--shape",
        choices=sorted(SHAPES),
        default="standard",
        help="standard (20,095 files) or independent (issue 19: 1 GiB, ~8,000 small files)",
    )
    ap.add_argument("--fs", default="ext4,fat32", help=f"comma list of {', '.join(FILESYSTEMS)}")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--huge-gib", type=float, default=0, help="also build ext4-huge.img")
    a = ap.parse_args()
    shape = SHAPES[a.shape]
    a.out = a.out or default_dir(a.shape)
    filesystems = a.fs.split(",")
    if unknown := sorted(set(filesystems) - set(FILESYSTEMS)):
        ap.error(f"--fs: unknown {', '.join(unknown)} (choose from {', '.join(FILESYSTEMS)})")
    if "ntfs" in filesystems:
        check_tools(["mkntfs", "gcc"])  # before the minute of tree generation
    a.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    write_pack(a.out, shape)
    tree = a.out / "tree"
    if a.shape == "realistic":
        manifest = write_realistic_tree(tree, a.seed)
        write_known_good(a.out, manifest)
    else:
        manifest = write_tree(tree, a.seed, shape)
    if _write_if_changed(a.out / "manifest.json", json.dumps(manifest)):
        stale = sorted({p.name for p in a.out.glob("*.img")} - {f"{fs}.img" for fs in filesystems})
        if stale:
            print(f"manifest.json changed: rebuild {', '.join(stale)} too", file=sys.stderr)
    size = shape.image_mib or _size_mib(int(manifest["bytes"]), int(manifest["files"]))  # type: ignore[call-overload]
    for fs in filesystems:
        t1 = time.monotonic()
        fs_size = size + (NTFS_EXTRA_MIB if fs == "ntfs" else 0)
        {"ext4": make_ext4, "fat32": make_fat32, "ntfs": make_ntfs}[fs](
            tree, a.out / f"{fs}.img", fs_size
        )
        print(
            f"{fs}.img: {fs_size} MiB, {manifest['files']} files, {manifest['bytes']} bytes "
            f"({time.monotonic() - t1:.0f} s for the image, {time.monotonic() - t0:.0f} s in all)",
            file=sys.stderr,
        )
    if a.huge_gib:
        huge = tree / "Windows" / "hiberfil.sys"
        rng = random.Random(a.seed + 1)
        with huge.open("wb") as f:
            for _ in range(int(a.huge_gib * 1024)):
                f.write(rng.randbytes(MIB))
        make_ext4(tree, a.out / "ext4-huge.img", size + int(a.huge_gib * 1024) + 64)
        print(f"ext4-huge.img built ({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    shutil.rmtree(tree)
    return 0


if __name__ == "__main__":
    sys.exit(main())
