"""The sample phone extraction: an iOS full-file-system extraction as a tar, for ``make demo``.

What a kiosk is most often handed from a phone is not a disk image but an extraction tool's tar
of the file system (``private/var/mobile/…``). This one is small and made in pure Python with
tarfile, byte for byte the same on every build: fixed names, sizes, owners (mobile, 501) and
times, contents that are fixed text or bytes from ``random.Random(SEED)``, plain ustar (no gzip
header with a build time). It holds the same planted samples as the disk images -- the demo
rule pack's marker and the demo known-bad and known-good files -- plus a symbolic link, which
kiosk lists without following.

``manifest.json`` records it under ``logical``: the file's size and SHA-256, the kind kiosk's
preflight names, and every member with its size, SHA-256 and kind. ``verify`` checks them with
tarfile, reading the members back from the committed file.
"""

from __future__ import annotations

import hashlib
import io
import random
import tarfile
from pathlib import Path
from typing import Any

NAME = "iphone-ffs.tar"
KIND = "iOS full-file-system extraction (tar)"
UID = GID = 501
SEED = 20261206


def _members(marker: bytes, known_bad: bytes, known_good: bytes) -> list[tuple[str, bytes, str]]:
    rng = random.Random(SEED)
    mobile = "private/var/mobile/"
    app = mobile + "Containers/Data/Application/3C9A4E51-7B1F-4D2E-9A0C-5E6F7A8B9C0D/"
    return [
        (mobile + "Library/SMS/sms.db", b"SQLite format 3\x00" + rng.randbytes(4080), "ordinary"),
        (
            mobile + "Library/Notes/meeting.txt",
            b"Meet at the usual place at nine. Ref: " + marker + b"\n",
            "marker",
        ),
        (
            mobile + "Media/DCIM/100APPLE/IMG_0001.JPG",
            b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + rng.randbytes(6000) + b"\xff\xd9",
            "ordinary",
        ),
        (mobile + "Media/Downloads/known_bad_sample.bin", known_bad, "known_bad"),
        (mobile + "Library/Preferences/known_good_sample.txt", known_good, "known_good"),
        (app + "Documents/chat.log", b"[09:00] hi\n[09:01] see you later\n" * 20, "ordinary"),
        ("private/var/root/.profile", b"export PATH=/usr/bin:/bin\n", "ordinary"),
    ]


def build_phone(
    outdir: Path, marker: bytes, known_bad: bytes, known_good: bytes, mtime: int
) -> dict[str, Any]:
    """Write the tar into ``outdir``; its manifest record."""
    members = _members(marker, known_bad, known_good)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:

        def add(info: tarfile.TarInfo, data: bytes | None = None) -> None:
            info.uid, info.gid, info.uname, info.gname, info.mtime = (
                UID,
                GID,
                "mobile",
                "mobile",
                mtime,
            )
            t.addfile(info, io.BytesIO(data) if data is not None else None)

        dirs = sorted(
            {p.rsplit("/", 1)[0] for p, _, _ in members} | {"private/var/mobile/Library/Caches"}
        )
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            add(info)
        for path, data, _ in members:
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o644
            add(info, data)
        link = tarfile.TarInfo("private/var/mobile/Library/Caches/tmp")
        link.type, link.linkname, link.mode = tarfile.SYMTYPE, "/private/var/tmp", 0o755
        add(link)
    data = buf.getvalue()
    (outdir / NAME).write_bytes(data)
    files = [
        {"path": "/" + p, "size": len(b), "sha256": hashlib.sha256(b).hexdigest(), "kind": k}
        for p, b, k in members
    ]
    files.append(
        {
            "path": "/private/var/mobile/Library/Caches/tmp",
            "size": 0,
            "sha256": None,
            "kind": "symlink",
        }
    )
    return {
        "name": NAME,
        "segments": [NAME],
        "format": "tar",
        "kind": KIND,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "files": files,
    }


def verify_phone(record: dict[str, Any], directory: Path, problems: list[str]) -> int:
    """Check the committed tar against its manifest record with tarfile; files checked."""
    path = directory / record["name"]
    data = path.read_bytes()
    if len(data) != record["size"] or hashlib.sha256(data).hexdigest() != record["sha256"]:
        problems.append(f"{record['name']}: size/sha256 differ from the manifest")
    checked = 0
    with tarfile.open(path) as t:
        listed = {"/" + m.name: m for m in t.getmembers() if not m.isdir()}
        if sorted(listed) != sorted(f["path"] for f in record["files"]):
            problems.append(f"{record['name']}: members differ from the manifest")
        for f in record["files"]:
            m = listed.get(f["path"])
            if m is None:
                continue
            content = t.extractfile(m) if m.isreg() else None
            digest = hashlib.sha256(content.read()).hexdigest() if content else None
            if digest != f["sha256"] or (m.isreg() and m.size != f["size"]):
                problems.append(f"{record['name']}: {f['path']} differs from the manifest")
            checked += 1
    return checked
