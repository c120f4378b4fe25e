"""iTunes/Finder backups of iPhones and iPads: ``Manifest.db`` and files named by SHA-1.

A backup folder holds ``Info.plist`` (device name, model, iOS version, serial number, IMEI),
``Manifest.plist`` (encrypted or not, the key bag), ``Manifest.db`` (SQLite: one row per file
with its domain, its path in that domain, its flags and an archived ``MBFile`` record with the
size and, when encrypted, the file's wrapped key) and the files themselves, each stored as
``<first two hex digits>/<SHA-1 of "domain-relativePath">``.

The walk lists ``Manifest.db`` and shows each file as ``/Domain/relative/path`` (what an
examiner reads); the hashed name is kept in the file's unreadable reason when it is missing and
is what the reader opens. A stored name that is not 40 hex digits is never used as a path (a
crafted ``Manifest.db`` cannot point outside the backup). ``Manifest.db`` is read into memory
(decrypted there when the backup is encrypted) and opened by SQLite from memory: nothing is
written, not even a journal. Without the password an encrypted backup is one area not examined,
and its device details (``Info.plist`` is never encrypted) still reach the report.
"""

from __future__ import annotations

import os
import plistlib
import re
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kiosk.errors import ImageError
from kiosk.evidence.filesystems import READ_CHUNK, NoByteAreas, WalkState
from kiosk.evidence.logical import keybag
from kiosk.evidence.logical.common import PASSWORD_NEEDED, member_path, member_task, read_chunks
from kiosk.locator import FsLoc, StreamLoc
from kiosk.model import DeviceInfo, FileTask, WalkProblem

MAX_PLIST = 16 << 20
MAX_MANIFEST_DB = 1 << 31

_HEX40 = re.compile(r"[0-9a-f]{40}\Z")
_FLAG_FILE, _FLAG_DIR, _FLAG_LINK = 1, 2, 4

# Marketing names of the models a kiosk meets most (Apple's "Identify your iPhone model").
MODELS = {
    "iPhone10,1": "iPhone 8", "iPhone10,4": "iPhone 8", "iPhone10,2": "iPhone 8 Plus",
    "iPhone10,5": "iPhone 8 Plus", "iPhone10,3": "iPhone X", "iPhone10,6": "iPhone X",
    "iPhone11,2": "iPhone XS", "iPhone11,4": "iPhone XS Max", "iPhone11,6": "iPhone XS Max",
    "iPhone11,8": "iPhone XR", "iPhone12,1": "iPhone 11", "iPhone12,3": "iPhone 11 Pro",
    "iPhone12,5": "iPhone 11 Pro Max", "iPhone12,8": "iPhone SE (2nd generation)",
    "iPhone13,1": "iPhone 12 mini", "iPhone13,2": "iPhone 12", "iPhone13,3": "iPhone 12 Pro",
    "iPhone13,4": "iPhone 12 Pro Max", "iPhone14,4": "iPhone 13 mini", "iPhone14,5": "iPhone 13",
    "iPhone14,2": "iPhone 13 Pro", "iPhone14,3": "iPhone 13 Pro Max",
    "iPhone14,6": "iPhone SE (3rd generation)", "iPhone14,7": "iPhone 14",
    "iPhone14,8": "iPhone 14 Plus", "iPhone15,2": "iPhone 14 Pro",
    "iPhone15,3": "iPhone 14 Pro Max",
    "iPhone15,4": "iPhone 15", "iPhone15,5": "iPhone 15 Plus", "iPhone16,1": "iPhone 15 Pro",
    "iPhone16,2": "iPhone 15 Pro Max", "iPhone17,3": "iPhone 16", "iPhone17,4": "iPhone 16 Plus",
    "iPhone17,1": "iPhone 16 Pro", "iPhone17,2": "iPhone 16 Pro Max", "iPhone17,5": "iPhone 16e",
}  # fmt: skip


def is_backup(folder: Path) -> bool:
    """A folder is an iTunes/Finder backup when it holds ``Manifest.plist`` and a manifest."""
    return (folder / "Manifest.plist").is_file() and (
        (folder / "Manifest.db").is_file() or (folder / "Manifest.mbdb").is_file()
    )


def read_small(path: Path, limit: int) -> bytes:
    """A control file of the backup, opened without following links, within a size limit."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ImageError(f"{path.name} in the backup is not a regular file")
        if st.st_size > limit:
            raise ImageError(f"{path.name} in the backup is too large ({st.st_size} bytes)")
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(limit + 1)
    finally:
        os.close(fd)


def _plist(path: Path) -> dict[str, Any]:
    try:
        value = plistlib.loads(read_small(path, MAX_PLIST))
    except FileNotFoundError:
        return {}
    except (plistlib.InvalidFileException, ValueError, OSError) as e:
        raise ImageError(f"{path.name} in the backup cannot be read (damaged plist)") from e
    return value if isinstance(value, dict) else {}


def encrypted(folder: Path) -> bool:
    """Whether the backup says it is encrypted (``Manifest.plist`` ``IsEncrypted``)."""
    return bool(_plist(folder / "Manifest.plist").get("IsEncrypted"))


def _text(*values: object) -> str:
    for v in values:
        if isinstance(v, str | int) and str(v):
            return str(v)
    return ""


def device_info(folder: Path) -> DeviceInfo:
    """The device the backup came from, as its plists say (absent values are "")."""
    info, manifest = _plist(folder / "Info.plist"), _plist(folder / "Manifest.plist")
    found = manifest.get("Lockdown")
    lock: dict[str, Any] = found if isinstance(found, dict) else {}
    product = _text(info.get("Product Type"), lock.get("ProductType"))
    version = _text(info.get("Product Version"), lock.get("ProductVersion"))
    model = MODELS.get(product, product)
    enc = bool(manifest.get("IsEncrypted"))
    kind = ", ".join(
        x
        for x in (
            "iTunes backup",
            "encrypted" if enc else "",
            model,
            f"iOS {version}" if version else "",
        )
        if x
    )
    return DeviceInfo(
        kind=kind,
        name=_text(info.get("Device Name"), info.get("Display Name"), lock.get("DeviceName")),
        model=f"{model} ({product})" if model != product else product,
        os_version=f"iOS {version}" if version else "",
        serial=_text(info.get("Serial Number"), lock.get("SerialNumber")),
        imei=_text(info.get("IMEI"), info.get("MEID")),
    )


def _mbfile(blob: object) -> tuple[int | None, bytes | None]:
    """(size, wrapped key) from a row's archived ``MBFile`` record; None where absent."""
    if not isinstance(blob, bytes):
        return None, None
    try:
        arch = plistlib.loads(blob)
        objects = arch["$objects"]
        root = objects[int(arch["$top"]["root"])]
        size = root.get("Size")
        key = None
        if "EncryptionKey" in root:
            holder = objects[int(root["EncryptionKey"])]
            key = holder.get("NS.data") if isinstance(holder, dict) else None
        return (int(size) if isinstance(size, int) else None), (
            bytes(key) if isinstance(key, bytes) else None
        )
    except (
        plistlib.InvalidFileException,
        KeyError,
        IndexError,
        TypeError,
        ValueError,
        AttributeError,
    ):
        return None, None


class ItunesFilesystem(NoByteAreas):
    """The files a backup's ``Manifest.db`` lists, as a ``Filesystem``."""

    fs_type = "itunes"

    def __init__(self, root: Path, password: bytes | None) -> None:
        self._root = root
        manifest = _plist(root / "Manifest.plist")
        self.locked = ""  # why nothing can be listed (an encrypted backup without its password)
        self._keys: dict[int, bytes] | None = None
        if not (root / "Manifest.db").is_file():
            raise ImageError(
                f"{root.name}: backups older than iOS 10 (Manifest.mbdb): not supported"
            )
        self._db: sqlite3.Connection | None = None
        if manifest.get("IsEncrypted"):
            if password is None:
                self.locked = PASSWORD_NEEDED
                return
            bag, wrapped = manifest.get("BackupKeyBag"), manifest.get("ManifestKey")
            if not isinstance(bag, bytes) or not isinstance(wrapped, bytes):
                raise ImageError(f"{root.name}: encrypted backup without its key bag (damaged)")
            self._keys = keybag.class_keys(bag, password)
            key = keybag.unwrap(self._keys, wrapped, "manifest")
            data = keybag.decrypt_all(key, read_small(root / "Manifest.db", MAX_MANIFEST_DB))
        else:
            data = read_small(root / "Manifest.db", MAX_MANIFEST_DB)
        try:
            db = sqlite3.connect(":memory:")
            db.deserialize(data)
            db.execute("SELECT count(*) FROM Files").fetchone()
            self._db = db
        except sqlite3.Error as e:
            raise ImageError(f"{root.name}: Manifest.db cannot be read ({e})") from e

    def claimed_size(self) -> int:
        return 0

    def _stored(self, file_id: object) -> Path | None:
        if not isinstance(file_id, str) or not _HEX40.match(file_id):
            return None
        return self._root / file_id[:2] / file_id

    def walk(self, at: FsLoc, state: WalkState) -> Iterator[FileTask]:
        """Every file row of ``Manifest.db`` in domain and path order (links listed as links)."""
        if self._db is None:
            return
        try:
            rows = self._db.execute(
                "SELECT rowid, fileID, domain, relativePath, flags, file FROM Files "
                "ORDER BY domain, relativePath, fileID"
            )
            for rowid, file_id, domain, rel, flags, blob in rows:
                if flags == _FLAG_DIR:
                    continue
                path = member_path(f"{domain}/{rel}")
                size, key = _mbfile(blob)
                stored = self._stored(file_id)
                reason = ""
                if flags == _FLAG_LINK:
                    reason = "symbolic link: a link, no content of its own; not followed"
                elif stored is None:
                    reason = f"stored name {file_id!r} is not a SHA-1 name: not followed"
                else:
                    try:
                        st = stored.lstat()
                    except OSError:
                        st = None
                    if st is None or not stat.S_ISREG(st.st_mode):
                        reason = (
                            f"listed in Manifest.db, but {file_id[:2]}/{file_id} is not in "
                            "the backup"
                        )
                    elif self._keys is not None and key is None:
                        reason = f"encrypted backup file {file_id} without its key: not examined"
                    elif self._keys is None:
                        size = st.st_size
                name = f"{file_id[:2]}/{file_id}" if stored is not None else ""
                yield member_task(at, state, int(rowid), path, size or 0, reason, name)
        except sqlite3.Error as e:
            state.problems.append(
                WalkProblem(at.volume.index, "/", 0, f"Manifest.db cannot be listed: {e}")
            )

    def chunks(self, loc: StreamLoc, size: int, chunk: int = READ_CHUNK) -> Iterator[bytes]:
        if self._db is None:
            raise OSError(PASSWORD_NEEDED)
        row = self._db.execute(
            "SELECT fileID, file FROM Files WHERE rowid = ?", (loc.inode,)
        ).fetchone()
        stored = self._stored(row[0]) if row else None
        if stored is None:
            raise OSError(f"no file number {loc.inode} in Manifest.db")
        fd = os.open(stored, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(f"{row[0]} in the backup is not a regular file")
            with os.fdopen(os.dup(fd), "rb", buffering=0) as f:
                if self._keys is None:
                    yield from read_chunks(f.read, size, chunk)
                    return
                _, wrapped = _mbfile(row[1])
                if wrapped is None:
                    raise OSError("encrypted backup file without its key")
                try:
                    key = keybag.unwrap(self._keys, wrapped, "file")
                except ImageError as e:
                    raise OSError(str(e)) from e
                yield from keybag.decrypting(key, iter(lambda: f.read(chunk), b""), size)
        finally:
            os.close(fd)

    def stored_bytes(self, loc: StreamLoc) -> int | None:
        return None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
