"""The only code that opens evidence: formats, volumes, filesystems and the file walk.

Read-only by construction: every segment is opened with ``"rb"`` (``os.pread`` on the file
descriptor, so concurrent readers never share a file position), and the Sleuth Kit and libewf
only ever see our own file objects, never a path they could open themselves.

Layers, after dissect.target: media (raw, split raw, EWF) → ``_TskImage`` (a pytsk3
``Img_Info`` over the media) → volumes (MBR/GPT or one bare filesystem) → filesystems → the walk,
which yields ``FileTask`` metadata only. Content is read later, in worker processes, through
``FileReader``, which opens its own ``Evidence`` so a crash in native parsing costs one worker.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyewf
import pytsk3

from kiosk.errors import ImageError, SegmentError
from kiosk.model import FileTask, MediaRecord, VolumeRecord

EWF_SIGNATURES = (b"EVF\x09\x0d\x0a\xff\x00", b"EVF2\x0d\x0a\x81\x00")
READ_CHUNK = 1 << 20
HASH_CHUNK = 4 << 20  # the image hash reads larger pieces: fewer system calls, same cache use
MAX_DIR_DEPTH = 4096  # deeper than any real tree; beyond it a crafted image is cut off, and said so

# Filesystem types tried explicitly when auto-detection fails (small FAT32 is the known case).
_FS_TYPES: dict[str, Any] = {
    "fat12": pytsk3.TSK_FS_TYPE_FAT12,
    "fat16": pytsk3.TSK_FS_TYPE_FAT16,
    "fat32": pytsk3.TSK_FS_TYPE_FAT32,
    "exfat": pytsk3.TSK_FS_TYPE_EXFAT,
    "ntfs": pytsk3.TSK_FS_TYPE_NTFS,
    "ext2": pytsk3.TSK_FS_TYPE_EXT2,
    "ext3": pytsk3.TSK_FS_TYPE_EXT3,
    "ext4": pytsk3.TSK_FS_TYPE_EXT4,
    "hfs": pytsk3.TSK_FS_TYPE_HFS,
    "iso9660": pytsk3.TSK_FS_TYPE_ISO9660,
    "ufs1": pytsk3.TSK_FS_TYPE_FFS1,
    "ufs2": pytsk3.TSK_FS_TYPE_FFS2,
    "yaffs2": pytsk3.TSK_FS_TYPE_YAFFS2,
    "apfs": pytsk3.TSK_FS_TYPE_APFS,
}
_FS_NAMES = {int(v): k for k, v in _FS_TYPES.items()}
_SCHEMES = {
    int(pytsk3.TSK_VS_TYPE_DOS): "MBR",
    int(pytsk3.TSK_VS_TYPE_GPT): "GPT",
    int(pytsk3.TSK_VS_TYPE_BSD): "BSD disklabel",
    int(pytsk3.TSK_VS_TYPE_SUN): "Sun VTOC",
    int(pytsk3.TSK_VS_TYPE_MAC): "Apple partition map",
}
_RETRY_ORDER = ("fat32", "fat16", "fat12", "exfat", "ntfs", "ext4", "hfs", "iso9660")

_ATTR_DEFAULT = int(pytsk3.TSK_FS_ATTR_TYPE_DEFAULT)
_ATTR_NTFS_DATA = int(pytsk3.TSK_FS_ATTR_TYPE_NTFS_DATA)
_ATTR_NTFS_IDXROOT = int(pytsk3.TSK_FS_ATTR_TYPE_NTFS_IDXROOT)


# --------------------------------------------------------------------------- media


class _Media(Protocol):
    """Random access to the media bytes of one image, whatever its container."""

    size: int

    def pread(self, offset: int, length: int) -> bytes: ...

    def readinto(self, offset: int, view: memoryview) -> int:
        """Fill ``view`` from ``offset``; the count read, short only at the end of the media."""
        ...

    def close(self) -> None: ...


class _RawMedia:
    """Raw and split raw: segments laid end to end, read with ``os.pread`` (no shared seek)."""

    def __init__(self, paths: list[Path]) -> None:
        self._fds: list[int] = []
        self._starts: list[int] = []
        self._sizes: list[int] = []
        pos = 0
        try:
            for p in paths:
                fd = os.open(p, os.O_RDONLY)
                self._fds.append(fd)
                size = os.fstat(fd).st_size
                self._starts.append(pos)
                self._sizes.append(size)
                pos += size
        except OSError as e:
            self.close()
            raise SegmentError(f"cannot open segment {e.filename}: {e.strerror}") from e
        self.size = pos

    def pread(self, offset: int, length: int) -> bytes:
        end = min(offset + length, self.size)
        if end <= offset:
            return b""
        if len(self._fds) == 1:  # the common case: one read, no copy (every TSK read lands here)
            return os.pread(self._fds[0], end - offset, offset)
        buf = bytearray(end - offset)
        return bytes(buf[: self.readinto(offset, memoryview(buf))])

    def readinto(self, offset: int, view: memoryview) -> int:
        end = min(offset + len(view), self.size)
        done = 0
        for fd, start, size in zip(self._fds, self._starts, self._sizes, strict=True):
            if offset >= end:
                break
            if start + size <= offset:
                continue
            want = min(end, start + size) - offset
            got = os.preadv(fd, [view[done : done + want]], offset - start)
            done += got
            if got < want:
                break  # the segment shrank under us: return what there is
            offset += want
        return done

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()


class _EwfMedia:
    """EWF (E01): libewf over our own read-only file objects; reads serialised by a lock."""

    def __init__(self, paths: list[Path]) -> None:
        self._files = []
        try:
            self._files = [p.open("rb") for p in paths]
            self._handle = pyewf.handle()
            self._handle.open_file_objects(self._files)
        except OSError as e:
            for f in self._files:
                f.close()
            detail = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise SegmentError(
                f"EWF image cannot be opened (missing or damaged segment?): {detail}"
            ) from e
        self.size = int(self._handle.get_media_size())
        self._lock = threading.Lock()
        if self.size:
            # libewf opens a set whose later segments are missing; its last chunk then fails
            try:
                self._handle.read_buffer_at_offset(1, self.size - 1)
            except OSError as e:
                self.close()
                names = ", ".join(p.name for p in paths)
                raise SegmentError(
                    f"EWF image is incomplete: the end of the media cannot be read from the "
                    f"segments found ({names}); a segment is missing or damaged"
                ) from e

    def stored_hashes(self) -> dict[str, str]:
        """The MD5/SHA-1 the acquiring tool stored in the EWF, lower-case hex."""
        out: dict[str, str] = {}
        for name in ("MD5", "SHA1"):
            try:
                value = self._handle.get_hash_value(name)
            except OSError:
                value = None
            if value:
                out[name.lower()] = str(value).strip().lower()
        return out

    def pread(self, offset: int, length: int) -> bytes:
        if offset >= self.size:
            return b""
        with self._lock:
            try:
                data: bytes = self._handle.read_buffer_at_offset(
                    min(length, self.size - offset), offset
                )
            except OSError as e:
                raise OSError(f"EWF read failed at offset {offset}: {e}") from e
        return data

    def readinto(self, offset: int, view: memoryview) -> int:
        data = self.pread(offset, len(view))  # libewf hands out bytes; one copy into the view
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._handle.close()
        for f in self._files:
            f.close()


class _TskImage(pytsk3.Img_Info):  # type: ignore[misc]
    """Hands the Sleuth Kit our media; TSK never opens the evidence path itself."""

    def __init__(self, media: _Media) -> None:
        self._media = media
        super().__init__(url="", type=pytsk3.TSK_IMG_TYPE_EXTERNAL)

    def close(self) -> None:
        """Nothing to release here: the media is closed by its owner."""

    def read(self, offset: int, size: int) -> bytes:
        # An exception raised inside this callback surfaces from pytsk3 as a bare RuntimeError;
        # a short read instead makes TSK report its own read error for the structure it wanted.
        try:
            return self._media.pread(offset, size)
        except OSError:
            return b""

    def get_size(self) -> int:
        return self._media.size


# --------------------------------------------------------------------------- segments


_NUMERIC = re.compile(r"^(?P<stem>.*\.)(?P<num>\d{2,4})$")
_ALPHA = re.compile(r"^(?P<stem>.*\.)(?P<alpha>a{2,3})$")


def _alpha_next(s: str) -> str | None:
    chars = list(s)
    for i in range(len(chars) - 1, -1, -1):
        if chars[i] != "z":
            chars[i] = chr(ord(chars[i]) + 1)
            return "".join(chars)
        chars[i] = "a"
    return None


def find_segments(first: Path, extra: list[Path] | None = None) -> tuple[str, list[Path]]:
    """Work out the format and every segment from the first one the officer chose.

    EWF: libewf's own naming rules (E01, E02 … EAA …). Split raw: ``.000``/``.001``/``.01``
    numbering or ``.aa``/``.aaa`` lettering, followed while the next segment exists. Explicit
    extra segments are taken as given, in order.
    """
    _check_file(first)
    with first.open("rb") as f:
        head = f.read(8)
    if head in EWF_SIGNATURES:
        if extra:
            segs = [first, *extra]
        else:
            try:
                segs = [Path(p) for p in pyewf.glob(str(first))]
            except OSError as e:
                raise SegmentError(f"cannot find the segments of {first.name}: {e}") from e
        for s in segs:
            _check_file(s)
        return "ewf", segs
    if extra:
        for s in extra:
            _check_file(s)
        return "split_raw", [first, *extra]
    name = first.name
    segs = [first]
    m = _NUMERIC.match(name)
    a = _ALPHA.match(name)
    if m and int(m["num"]) in (0, 1):
        width, n = len(m["num"]), int(m["num"])
        while True:
            n += 1
            nxt = first.with_name(f"{m['stem']}{n:0{width}d}")
            if not nxt.is_file():
                break
            segs.append(nxt)
    elif a:
        suffix: str | None = a["alpha"]
        while suffix is not None:
            suffix = _alpha_next(suffix)
            if suffix is None:
                break
            nxt = first.with_name(f"{a['stem']}{suffix}")
            if not nxt.is_file():
                break
            segs.append(nxt)
    return ("split_raw" if len(segs) > 1 else "raw"), segs


def _check_file(p: Path) -> None:
    if not p.exists():
        raise ImageError(f"no such file: {p}")
    if p.is_dir():
        raise ImageError(f"{p} is a directory, not an image file")
    if not p.is_file():
        raise ImageError(f"{p} is not a regular file")
    if p.stat().st_size == 0:
        raise ImageError(f"{p} is empty (0 bytes)")
    if not os.access(p, os.R_OK):
        raise ImageError(f"{p} cannot be read (permission denied)")


# --------------------------------------------------------------------------- volumes


@dataclass(slots=True)
class _OpenFs:
    volume: VolumeRecord
    fs: Any


@dataclass(slots=True)
class WalkProblem:
    """An area the walk could not enter (a directory that would not open, a loop, depth cut)."""

    volume: int
    path: str
    inode: int
    reason: str
    blocking: bool = True  # False when nothing was missed (a second path to a walked directory)


@dataclass(slots=True)
class _WalkState:
    problems: list[WalkProblem] = field(default_factory=list)
    seq: int = 0


def _probe_reason(head: bytes) -> str:
    """Why a region without a recognised filesystem could not be examined, as best we can say."""
    if not head:
        return "no data: the region lies beyond the end of the image"
    if head[3:11] == b"-FVE-FS-":
        return "BitLocker-encrypted volume: not examined"
    if head[:6] == b"LUKS\xba\xbe":
        return "LUKS-encrypted volume: not examined"
    if head.count(0) == len(head):
        return "no filesystem: the region is blank (all zero bytes)"
    counts = [0] * 256
    for b in head:
        counts[b] += 1
    entropy = -sum(c / len(head) * math.log2(c / len(head)) for c in counts if c)
    if entropy > 7.5:
        return (
            f"no filesystem recognised; content looks random (entropy {entropy:.2f} bits/byte): "
            "possibly encrypted: not examined"
        )
    return "no filesystem recognised (unknown or damaged): not examined"


class Evidence:
    """One opened image: media, volumes and filesystems. Use as a context manager."""

    def __init__(self, first: Path, extra: list[Path] | None = None) -> None:
        fmt, segs = find_segments(first, extra)
        self.format = fmt
        self.segments = segs
        self._media: _Media = _EwfMedia(segs) if fmt == "ewf" else _RawMedia(segs)
        try:
            if self._media.size == 0:
                raise ImageError(f"{first.name}: the image holds no media bytes")
            self._img = _TskImage(self._media)
        except BaseException:
            self._media.close()
            raise
        stored = self._media.stored_hashes() if isinstance(self._media, _EwfMedia) else {}
        self.record = MediaRecord(
            name=first.name,
            format=fmt,
            segments=tuple(s.name for s in segs),
            size=self._media.size,
            ewf_stored_hashes=stored,
        )
        self._fs_cache: dict[tuple[int, str], Any] = {}

    def __enter__(self) -> Evidence:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._fs_cache.clear()
        self._media.close()

    # -- media

    def hash_media(
        self, hashes: list[Any], stopped: Callable[[], bool], chunk: int = HASH_CHUNK
    ) -> bool:
        """Feed the media bytes in order to ``hashes``; False if ``stopped()`` cut it short.

        Reads go into one reused buffer: a fresh ``bytes`` per read cost page faults and zeroing,
        about an eighth of the CPU this hash takes (measured on 1.9 GB). Each ``update`` gets a
        view that is only valid until the next call. Raises ImageError on a short read.
        """
        view = memoryview(bytearray(chunk))
        off = 0
        while off < self._media.size:
            if stopped():
                return False
            want = view[: min(chunk, self._media.size - off)]
            try:
                n = self._media.readinto(off, want)
            except OSError as e:
                raise ImageError(f"the image could not be read at offset {off}: {e}") from e
            if n == 0:
                raise ImageError(f"the image ended early at offset {off} (truncated or removed?)")
            for h in hashes:
                h.update(view[:n])
            off += n
        return True

    # -- volumes and filesystems

    def _open_fs(self, offset: int, fs_type: str | None = None) -> tuple[Any, str]:
        if fs_type is not None:
            fs = pytsk3.FS_Info(self._img, offset=offset, type=_FS_TYPES[fs_type])
            return fs, fs_type
        try:
            fs = pytsk3.FS_Info(self._img, offset=offset)
        except OSError:
            for name in _RETRY_ORDER:
                try:
                    fs = pytsk3.FS_Info(self._img, offset=offset, type=_FS_TYPES[name])
                except OSError:
                    continue
                break
            else:
                raise
        return fs, _FS_NAMES.get(int(fs.info.ftype), str(fs.info.ftype))

    def open_fs(self, offset: int, fs_type: str) -> Any:
        """A filesystem at a known offset and type (cached), for reading file content."""
        key = (offset, fs_type)
        fs = self._fs_cache.get(key)
        if fs is None:
            try:
                fs = self._open_fs(offset, fs_type)[0]
            except OSError as e:
                raise ImageError(
                    f"the {fs_type} filesystem at offset {offset} cannot be opened"
                ) from e
            self._fs_cache[key] = fs
        return fs

    def volumes(self) -> list[VolumeRecord]:
        """Every region of the image, examined or not; no region is left out silently."""
        size = self._media.size
        try:
            vs = pytsk3.Volume_Info(self._img)
        except OSError:
            vs = None
        records: list[VolumeRecord] = []
        if vs is None:
            records.append(self._volume_at(0, 0, size, "whole image (no partition table)"))
        else:
            bsize = int(vs.info.block_size)
            scheme = _SCHEMES.get(
                int(vs.info.vstype), f"partition table type {int(vs.info.vstype)}"
            )
            for part in vs:
                start, length = int(part.start) * bsize, int(part.len) * bsize
                desc = (
                    part.desc.decode("utf-8", "replace")
                    if isinstance(part.desc, bytes)
                    else str(part.desc)
                )
                flags = int(part.flags)
                index = len(records)
                if flags & int(pytsk3.TSK_VS_PART_FLAG_META):
                    continue  # partition-table structures themselves
                if flags & int(pytsk3.TSK_VS_PART_FLAG_UNALLOC):
                    if length:
                        records.append(
                            VolumeRecord(
                                index,
                                start,
                                length,
                                f"{scheme}: {desc}",
                                None,
                                False,
                                "unallocated disk space outside any partition: not searched",
                            )
                        )
                    continue
                records.append(self._volume_at(index, start, length, f"{scheme}: {desc}"))
        for r in records:
            if not r.examined:
                continue  # a region without a filesystem past the end is listed below instead
            fs = self._fs_cache[(r.offset, r.fs_type or "")]
            need = max(
                r.offset + r.length, r.offset + int(fs.info.block_count) * int(fs.info.block_size)
            )
            if need > size:
                raise ImageError(
                    f"the image is truncated: the {r.fs_type} filesystem of {r.description} "
                    f"ends at byte {need} but the image holds only {size} bytes"
                )
        for r in list(records):
            if r.offset + r.length > size:
                records.append(
                    VolumeRecord(
                        len(records),
                        size,
                        r.offset + r.length - size,
                        f"end of volume {r.index}",
                        None,
                        False,
                        "this part of the volume lies beyond the end of the image "
                        "(truncated image?): not examined",
                    )
                )
        if not any(r.examined for r in records):
            reasons = "; ".join(f"{r.description}: {r.reason}" for r in records) or "empty"
            raise ImageError(f"no filesystem found in {self.record.name} ({reasons})")
        return records

    def _volume_at(self, index: int, offset: int, length: int, desc: str) -> VolumeRecord:
        try:
            fs, name = self._open_fs(offset)
        except OSError:
            head = self._media.pread(offset, 64 * 1024)
            return VolumeRecord(index, offset, length, desc, None, False, _probe_reason(head))
        self._fs_cache[(offset, name)] = fs
        return VolumeRecord(index, offset, length, desc, name, True)

    # -- the walk

    def walk(
        self,
        volumes: list[VolumeRecord],
        problems: list[WalkProblem] | None = None,
        start_seq: int = 0,
    ) -> Iterator[FileTask]:
        """Every file stream of every examined volume: allocated, deleted, orphan, NTFS streams.

        Directory loops are detected with a set of directory addresses already entered; a
        directory that would not open, or a loop, is appended to ``problems``.
        """
        state = _WalkState(problems=problems if problems is not None else [], seq=start_seq)
        for vol in volumes:
            if vol.examined and vol.fs_type is not None:
                yield from self._walk_fs(vol, state)

    def _walk_fs(self, vol: VolumeRecord, state: _WalkState) -> Iterator[FileTask]:
        fs = self.open_fs(vol.offset, vol.fs_type or "")
        root_inum = int(fs.info.root_inum)
        try:
            root = fs.open_dir(inode=root_inum)
        except OSError as e:
            state.problems.append(
                WalkProblem(vol.index, "/", root_inum, f"root directory cannot be read: {e}")
            )
            return
        seen = {root_inum}
        stack: list[tuple[Iterator[Any], str, int]] = [(iter(root), "", 0)]
        is_ntfs = vol.fs_type == "ntfs"
        while stack:
            it, parent, depth = stack[-1]
            try:
                entry = next(it)
            except StopIteration:
                stack.pop()
                continue
            except OSError as e:
                state.problems.append(
                    WalkProblem(vol.index, parent or "/", 0, f"directory listing cut short: {e}")
                )
                stack.pop()
                continue
            name_info = entry.info.name
            raw = name_info.name
            name = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else str(raw)
            if name in (".", ".."):
                continue
            path = f"{parent}/{name}"
            addr = int(name_info.meta_addr)
            allocated = bool(int(name_info.flags) & int(pytsk3.TSK_FS_NAME_FLAG_ALLOC))
            meta = entry.info.meta
            source = entry  # the object whose attributes hold the content
            if meta is None and addr:
                # pytsk3's directory listing drops metadata that fls/icat still reach
                try:
                    source = fs.open_meta(inode=addr)
                    meta = source.info.meta
                except OSError:
                    meta = None
            name_type = int(name_info.type)
            is_dir = (
                int(meta.type)
                in (int(pytsk3.TSK_FS_META_TYPE_DIR), int(pytsk3.TSK_FS_META_TYPE_VIRT_DIR))
                if meta is not None
                else name_type
                in (int(pytsk3.TSK_FS_NAME_TYPE_DIR), int(pytsk3.TSK_FS_NAME_TYPE_VIRT_DIR))
            )
            realloc = (
                not allocated
                and meta is not None
                and bool(int(meta.flags) & int(pytsk3.TSK_FS_META_FLAG_ALLOC))
            )
            if is_ntfs and meta is not None and not realloc:
                yield from self._ntfs_streams(vol, source, addr, path, allocated, is_dir, state)
            if is_dir:
                if realloc or meta is None:
                    state.problems.append(
                        WalkProblem(
                            vol.index,
                            path,
                            addr,
                            "deleted directory whose metadata is gone or reused: "
                            "its entries cannot be listed",
                            blocking=False,
                        )
                    )
                    continue
                if addr in seen:
                    state.problems.append(
                        WalkProblem(
                            vol.index,
                            path,
                            addr,
                            "directory already walked by another path (loop or hard link): "
                            "not entered again",
                            blocking=False,
                        )
                    )
                    continue
                if depth + 1 >= MAX_DIR_DEPTH:
                    state.problems.append(
                        WalkProblem(
                            vol.index,
                            path,
                            addr,
                            f"nesting deeper than {MAX_DIR_DEPTH}: not entered",
                        )
                    )
                    continue
                seen.add(addr)
                try:
                    sub = entry.as_directory()
                except OSError as e:
                    state.problems.append(
                        WalkProblem(vol.index, path, addr, f"directory cannot be opened: {e}")
                    )
                    continue
                stack.append((iter(sub), path, depth + 1))
                continue
            if is_ntfs and meta is not None and not realloc:
                continue  # its $DATA streams were yielded above
            yield self._task(vol, state, path, addr, allocated, meta, realloc)

    def _task(
        self,
        vol: VolumeRecord,
        state: _WalkState,
        path: str,
        addr: int,
        allocated: bool,
        meta: Any,
        realloc: bool,
        attr_type: int = _ATTR_DEFAULT,
        attr_id: int = -1,
        size: int | None = None,
    ) -> FileTask:
        state.seq += 1
        reason = ""
        if meta is None:
            reason = "deleted entry: its metadata is not recoverable, only the name remains"
        elif realloc:
            reason = (
                "deleted entry: its metadata now belongs to another file, content not this file's"
            )
        return FileTask(
            seq=state.seq,
            volume=vol.index,
            fs_offset=vol.offset,
            fs_type=vol.fs_type or "",
            path=path,
            inode=addr,
            attr_type=attr_type,
            attr_id=attr_id,
            allocated=allocated,
            size=int(meta.size)
            if size is None and meta is not None and not realloc
            else (size or 0),
            readable=not reason,
            unreadable_reason=reason,
        )

    def _ntfs_streams(
        self,
        vol: VolumeRecord,
        entry: Any,
        addr: int,
        path: str,
        allocated: bool,
        is_dir: bool,
        state: _WalkState,
    ) -> Iterator[FileTask]:
        """Every content stream of an NTFS entry, as ``fls`` lists them.

        Each ``$DATA`` attribute (named ones become ``path:stream``) and each named index root
        other than a directory's own ``$I30`` (``$Quota:$O``, ``$Secure:$SDH``); an entry with
        neither is listed once with its default attribute.
        """
        found = False
        try:
            attrs = list(entry)
        except OSError as e:
            # its streams cannot be listed: say so, then fall back to the default attribute
            state.problems.append(
                WalkProblem(vol.index, path, addr, f"NTFS attributes cannot be listed: {e}")
            )
            attrs = []
        for attr in attrs:
            atype = int(attr.info.type)
            raw = attr.info.name
            sname = (
                raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else (raw or "")
            )
            if atype == _ATTR_NTFS_IDXROOT:
                found = True
                if sname == "$I30":
                    continue  # the directory's own index: the directory itself
            elif atype != _ATTR_NTFS_DATA:
                continue
            else:
                found = True
                if is_dir and not sname:
                    continue
            yield self._task(
                vol,
                state,
                f"{path}:{sname}" if sname else path,
                addr,
                allocated,
                entry.info.meta,
                False,
                atype,
                int(attr.info.id),
                int(attr.info.size),
            )
        if not found and not is_dir:
            yield self._task(vol, state, path, addr, allocated, entry.info.meta, False)


class FileReader:
    """Reads file content for the workers from their own ``Evidence`` handle."""

    def __init__(self, evidence: Evidence) -> None:
        self._ev = evidence

    def chunks(self, task: FileTask, chunk: int = READ_CHUNK) -> Iterator[bytes]:
        """The content of one file stream in order; raises OSError with the offset on failure."""
        fs = self._ev.open_fs(task.fs_offset, task.fs_type)
        f = fs.open_meta(inode=task.inode)
        off = 0
        while off < task.size:
            want = min(chunk, task.size - off)
            try:
                data = f.read_random(off, want, task.attr_type, task.attr_id)
            except OSError as e:
                raise OSError(f"read failed at offset {off} of {task.size}: {e}") from e
            if not data:
                if off == 0 and _no_stored_data(f, task):
                    raise SparseStreamError(
                        f"sparse stream of {task.size} bytes with no stored data: nothing to read"
                    )
                raise OSError(f"content ends at offset {off} of {task.size} (unrecoverable blocks)")
            yield data
            off += len(data)

    def stored_bytes(self, task: FileTask) -> int | None:
        """Bytes the filesystem really stores for a stream (holes excluded); None if unknown."""
        fs = self._ev.open_fs(task.fs_offset, task.fs_type)
        runs = _runs(fs.open_meta(inode=task.inode), task)
        if runs is None:
            return None
        block = int(fs.info.block_size)
        return sum(int(r.len) * block for r in runs if not int(r.flags) & _SPARSE_RUN)


class SparseStreamError(OSError):
    """A stream with no stored runs (NTFS ``$BadClus:$Bad``): TSK, like icat, reads nothing."""


_SPARSE_RUN = int(pytsk3.TSK_FS_ATTR_RUN_FLAG_SPARSE) | int(pytsk3.TSK_FS_ATTR_RUN_FLAG_FILLER)


def _runs(f: Any, task: FileTask) -> list[Any] | None:
    """The data runs of the task's attribute; None when it is resident or not found."""
    for attr in f:
        if task.attr_type != _ATTR_DEFAULT and (
            int(attr.info.type) != task.attr_type or int(attr.info.id) != task.attr_id
        ):
            continue
        if not int(attr.info.flags) & int(pytsk3.TSK_FS_ATTR_NONRES):
            return None
        return list(attr)
    return None


def _no_stored_data(f: Any, task: FileTask) -> bool:
    runs = _runs(f, task)
    return runs is not None and all(int(r.flags) & _SPARSE_RUN for r in runs)  # no runs: nothing
