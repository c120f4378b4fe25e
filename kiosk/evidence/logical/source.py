"""Logical evidence opened: its files, its one "volume", its reader and its own SHA-256.

``Evidence`` (``kiosk.evidence.image``) hands a logical ``EvidenceRef`` here instead of to the
image layers: there is no partition table, so the evidence is one region, described by what it
is -- "iOS full-file-system extraction (tar)", "iTunes backup, encrypted, iPhone 12, iOS 17.4"
-- and read by one ``Filesystem`` (zip, tar, folder, itunes, adb), chosen by ``FsLoc.fs_type``.

The signed subject is the evidence's own bytes, as for images: a file (or the parts of a split
zip, end to end) is hashed as it is. A folder has no bytes of its own, so its SHA-256 is that of
a manifest: one line ``<sha256> <size> <path>`` per regular file (``link -> <target>`` for a
link), in the walk's order. The same folder gives the same digest; any change to a file, a
name or a link changes it.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, cast

from kiosk.errors import ImageError
from kiosk.evidence.filesystems import READ_CHUNK, Filesystem, NoByteAreas, WalkState
from kiosk.evidence.logical import adb, itunes
from kiosk.evidence.logical.common import PASSWORD_NEEDED
from kiosk.evidence.logical.folder import FolderFilesystem
from kiosk.evidence.logical.stream import MediaFile
from kiosk.evidence.logical.tarfs import TarFilesystem
from kiosk.evidence.logical.zipfs import ZipFilesystem
from kiosk.evidence.media import hash_media
from kiosk.evidence.media.raw import RawMedia
from kiosk.evidence.resolve import EvidenceRef
from kiosk.locator import FsLoc, VolumeLoc
from kiosk.model import DeviceInfo, MediaRecord, VolumeRecord

FORMATS = ("zip", "tar", "tar.gz", "tar.bz2", "tar.xz", "folder", "itunes", "adb")
FS_TYPES = {"zip": "zip", "folder": "folder", "itunes": "itunes", "adb": "adb"}
KIND_SAMPLE = 2000  # members looked at to tell an iOS or Android extraction from an archive
_IOS = ("/private/var/", "/var/mobile/")
_ANDROID = ("/data/data/", "/data/user/", "/data/media/", "/storage/emulated/", "/data/system/")


def fs_type_of(fmt: str) -> str:
    return FS_TYPES.get(fmt, "tar")


def _decompressing(fmt: str, raw: MediaFile) -> Any:
    if fmt == "tar.gz":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if fmt == "tar.bz2":
        return bz2.BZ2File(raw)
    if fmt == "tar.xz":
        return lzma.LZMAFile(cast(IO[bytes], raw))
    return raw


class LogicalEvidence:
    """One logical evidence item, opened read-only. ``record`` says what it is."""

    def __init__(self, ref: EvidenceRef) -> None:
        self.ref = ref
        self.fs_type = fs_type_of(ref.format)
        self._root = Path(ref.segments[0].path)
        self._media: RawMedia | None = None
        self._fs: Filesystem | None = None
        self.device: DeviceInfo | None = None
        self._encrypted = False  # an ADB backup's header says AES-256
        if ref.format in ("folder", "itunes"):
            if not self._root.is_dir():
                raise ImageError(f"the folder {self._root} is gone")
            size = ref.segments[0].size
            if ref.format == "itunes":
                self.device = itunes.device_info(self._root)
        else:
            self._media = RawMedia(ref.segments)
            size = self._media.size
        self.record = MediaRecord(
            name=ref.name,
            format=ref.format,
            segments=tuple(s.name for s in ref.files),
            size=size,
            device=self.device,
        )

    def close(self) -> None:
        if self._fs is not None:
            close: Callable[[], None] | None = getattr(self._fs, "close", None)
            if close:
                close()
            self._fs = None
        if self._media is not None:
            self._media.close()
            self._media = None

    # -- the reader

    def filesystem(self) -> Filesystem:
        """The reader of this evidence, opened once (ImageError if it cannot be)."""
        if self._fs is None:
            self._fs = self._open()
        return self._fs

    def _open(self) -> Filesystem:
        fmt, name = self.ref.format, self.ref.name
        if fmt == "folder":
            return FolderFilesystem(self._root)
        if fmt == "itunes":
            return itunes.ItunesFilesystem(self._root, self.ref.secret)
        media = self._media
        if media is None:
            raise ImageError(f"{name}: no evidence file is open")
        if fmt == "zip":
            return ZipFilesystem(media, tuple(s.size for s in self.ref.segments), name)
        if fmt == "adb":
            header = adb.read_header(media.pread(0, adb.MAX_HEADER), name)
            keys = None
            self._encrypted = header.encryption != "none"
            if self._encrypted:
                if self.ref.secret is None:
                    return _Locked(PASSWORD_NEEDED)
                keys = adb.master_key(header, self.ref.secret, name)
            return TarFilesystem(lambda: adb.tar_stream(media, header, keys), name, "adb")
        return TarFilesystem(lambda: _decompressing(fmt, MediaFile(media)), name)

    # -- the one region

    def volumes(self) -> list[VolumeRecord]:
        """The evidence as one region: examined, or locked (an encrypted backup, no password)."""
        fs = self.filesystem()
        locked = getattr(fs, "locked", "")
        kind = self._kind(fs) if not locked else self._locked_kind()
        if locked:
            return [VolumeRecord(0, 0, self.record.size, kind, None, False, locked)]
        return [VolumeRecord(0, 0, self.record.size, kind, self.fs_type, True)]

    def _locked_kind(self) -> str:
        if self.device is not None:
            return self.device.kind
        return "Android backup (ADB), encrypted"

    def _kind(self, fs: Filesystem) -> str:
        """What the evidence is, as the preflight names it."""
        fmt = self.ref.format
        if self.device is not None:
            return self.device.kind
        if fmt == "folder":
            base = "folder (logical copy)"
        elif fmt == "adb":
            return "Android backup (ADB)" + (", encrypted" if self._encrypted else "")
        else:
            base = f"{fmt} archive"
        at = FsLoc(VolumeLoc(0, 0), self.fs_type)
        state = WalkState()
        ios = android = False
        for n, task in enumerate(fs.walk(at, state)):
            ios = ios or any(m in task.path for m in _IOS)
            android = android or any(m in task.path for m in _ANDROID)
            if n >= KIND_SAMPLE or ios or android:
                break
        label = "zip" if fmt == "zip" else "folder" if fmt == "folder" else fmt
        if ios:
            return f"iOS full-file-system extraction ({label})"
        if android:
            return f"Android full-file-system ({label})"
        return base

    # -- the signed subject

    def hash(self, hashes: list[Any], stopped: Callable[[], bool], chunk: int) -> bool:
        """Feed the evidence's own bytes (a folder: its manifest) to ``hashes``."""
        if self._media is not None:
            return hash_media(self._media, hashes, stopped, chunk)
        folder = FolderFilesystem(self._root)
        for path, st in folder.entries():
            if stopped():
                return False
            full = self._root / path.lstrip("/")
            shown = os.fsencode(path)
            if stat.S_ISLNK(st.st_mode):
                line = b"link -> " + os.fsencode(str(full.readlink())) + b" " + shown
            elif stat.S_ISREG(st.st_mode):
                line = _file_digest(full, chunk).encode() + f" {st.st_size} ".encode() + shown
            else:
                line = f"special {st.st_mode:o} ".encode() + shown
            for h in hashes:
                h.update(line + b"\n")
        return True


def _file_digest(path: Path, chunk: int) -> str:
    h = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        raise ImageError(
            f"{path.name} could not be read for the evidence hash: {e.strerror}"
        ) from e
    with os.fdopen(fd, "rb", buffering=0) as f:
        while data := f.read(chunk):
            h.update(data)
    return h.hexdigest()


class _Locked(NoByteAreas):
    """The reader of an encrypted backup opened without its password: it lists nothing."""

    fs_type = "adb"

    def __init__(self, reason: str) -> None:
        self.locked = reason

    def claimed_size(self) -> int:
        return 0

    def walk(self, at: FsLoc, state: WalkState) -> Any:
        return iter(())

    def chunks(self, loc: Any, size: int, chunk: int = READ_CHUNK) -> Any:
        raise OSError(self.locked)

    def stored_bytes(self, loc: Any) -> int | None:
        return None
