"""Is the evidence given a logical one -- an archive, a folder, a phone backup -- and which?

Asked by ``resolve`` before the image containers are, from the first bytes of a file (or the
names in a folder) only: zip (and the parts of a split zip), tar (plain, or the first block of
a gzip, bzip2 or xz stream), an Android backup, a folder, an iTunes/Finder backup folder. Like
``headers.py``, nothing here hands the evidence to a native parser: the officer's app asks it
in its own process.
"""

from __future__ import annotations

import bz2
import lzma
import os
import re
import stat
import tarfile
import zlib
from pathlib import Path
from typing import Any

from kiosk.errors import ImageError
from kiosk.evidence import headers
from kiosk.evidence.headers import ADB_MAGIC
from kiosk.evidence.logical import itunes

HEAD = 64 * 1024
ZIP_HEADS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")  # local file, empty archive, split mark
_COMPRESSED: dict[bytes, tuple[str, Any]] = {
    b"\x1f\x8b": ("tar.gz", lambda: zlib.decompressobj(47)),
    b"BZh": ("tar.bz2", bz2.BZ2Decompressor),
    b"\xfd7zXZ\x00": ("tar.xz", lzma.LZMADecompressor),
}
_PART = re.compile(r"\.z(\d{2,})\Z", re.IGNORECASE)


def _is_tar_block(block: bytes) -> bool:
    """A first 512-byte block whose header checksum adds up (POSIX ustar, GNU or v7 tar)."""
    if len(block) < 512:
        return False
    try:
        tarfile.TarInfo.frombuf(block[:512], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def sniff(path: Path) -> str | None:
    """The logical format of ``path`` (``folder``, ``itunes``, ``zip``, ``tar``, ``tar.gz``,
    ``tar.bz2``, ``tar.xz``, ``adb``), or None for anything else (a disk image)."""
    if path.is_dir():
        return "itunes" if itunes.is_backup(path) else "folder"
    if not path.is_file():
        return None
    with path.open("rb") as f:
        head = f.read(HEAD)
    if head.startswith(ADB_MAGIC):
        return "adb"
    if head[:4] in ZIP_HEADS:
        return None if headers._is_aff4(path) else "zip"  # AFF4 is refused by name there
    if path.suffix.lower() == ".zip" and path.with_suffix(".z01").is_file():
        return "zip"  # the last part of a split set starts mid-member; its first part says zip
    for magic, (fmt, make) in _COMPRESSED.items():
        if head.startswith(magic):
            try:
                first = make().decompress(head)
            except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError):
                first = b""
            if _is_tar_block(first):
                return fmt
            raise ImageError(
                f"{path.name}: a compressed file that is not a tar archive: not supported "
                "(decompress it first)"
            )
    if _is_tar_block(head):
        return "tar"
    return None


def zip_parts(first: Path, extra: list[Path]) -> list[Path]:
    """The files of a zip, in order: one file, or a split set ``.z01 … .zNN`` then ``.zip``.

    Parts given explicitly are put in that order by their names; given only the ``.zip`` (or
    the ``.z01``), the other parts are looked for beside it, under the same stem.
    """
    given = [first, *extra]
    if not extra:
        stem = first.with_suffix("")
        last = stem.with_name(stem.name + ".zip") if _PART.search(first.name) else first
        found: list[Path] = []
        n = 1
        while (p := stem.with_name(f"{stem.name}.z{n:02d}")).is_file():
            found.append(p)
            n += 1
        if not found:
            return [first]
        if not last.is_file():
            raise ImageError(
                f"{first.name} is part of a split zip whose last part {last.name} is missing"
            )
        given = [*found, last]

    def order(p: Path) -> tuple[int, int]:
        m = _PART.search(p.name)
        return (0, int(m.group(1))) if m else (1, 0)

    parts = sorted(given, key=order)
    if sum(1 for p in parts if not _PART.search(p.name)) != 1:
        raise ImageError("a split zip is its .z01, .z02 … parts and one .zip: give those")
    numbers = [int(m.group(1)) for p in parts if (m := _PART.search(p.name))]
    if numbers != list(range(1, len(numbers) + 1)):
        raise ImageError("the parts of the split zip are not numbered .z01, .z02 … without a gap")
    return parts


def needs_password(path: Path) -> bool:
    """Whether the evidence is a backup encrypted with a password (asked before the scan)."""
    try:
        fmt = sniff(path)
        if fmt == "itunes":
            return itunes.encrypted(path)
        if fmt == "adb":
            with path.open("rb") as f:
                head = f.read(1024)
            return head.split(b"\n")[3:4] == [b"AES-256"]
    except (ImageError, OSError):
        return False
    return False


def folder_size(folder: Path) -> int:
    """Bytes of the regular files under a folder (links not followed): what the picker shows."""
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))  # noqa: PTH118 (os.walk gives str)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


def holds_files(folder: Path) -> bool:
    """Whether anything but folders lies under ``folder`` (links not followed)."""
    return any(files for _dir, _dirs, files in os.walk(folder))
