"""The Sleuth Kit (pytsk3): filesystem detection, the walk, NTFS streams and reads.

TSK only ever sees our own ``TskImage`` over the media, never a path it could open itself.
Known traps, each handled here and checked against ``fls``/``icat`` by the tests:

- small FAT32 volumes are not auto-detected: detection retries with explicit types;
- pytsk3's directory listing gives ``meta is None`` for many deleted and orphan entries that
  ``fls``/``icat`` still reach: fall back to ``open_meta(inode=...)``;
- NTFS entries carry several ``$DATA`` streams (``path:stream``) and named index roots;
- corrupt filesystems loop directories: a set of entered directory addresses, a depth limit;
- a stream with no stored runs (``$BadClus:$Bad``) reads nothing: ``SparseStreamError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytsk3

from kiosk.errors import ImageError, SparseStreamError
from kiosk.evidence.filesystems import READ_CHUNK, WalkState
from kiosk.evidence.filesystems.blocks import unallocated_runs
from kiosk.evidence.media import Media
from kiosk.locator import FsLoc, StreamLoc
from kiosk.model import FileTask, WalkProblem

MAX_DIR_DEPTH = 4096  # deeper than any real tree; beyond it a crafted image is cut off, and said so

# Filesystem types tried explicitly when auto-detection fails (small FAT32 is the known case).
FS_TYPES: dict[str, Any] = {
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
_FS_NAMES = {int(v): k for k, v in FS_TYPES.items()}
_RETRY_ORDER = ("fat32", "fat16", "fat12", "exfat", "ntfs", "ext4", "hfs", "iso9660")

_ATTR_DEFAULT = int(pytsk3.TSK_FS_ATTR_TYPE_DEFAULT)
_ATTR_NTFS_DATA = int(pytsk3.TSK_FS_ATTR_TYPE_NTFS_DATA)
_ATTR_NTFS_IDXROOT = int(pytsk3.TSK_FS_ATTR_TYPE_NTFS_IDXROOT)
_SPARSE_RUN = int(pytsk3.TSK_FS_ATTR_RUN_FLAG_SPARSE) | int(pytsk3.TSK_FS_ATTR_RUN_FLAG_FILLER)


class TskImage(pytsk3.Img_Info):  # type: ignore[misc]
    """Hands the Sleuth Kit our media; TSK never opens the evidence path itself."""

    def __init__(self, media: Media) -> None:
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


def detect(img: TskImage, offset: int) -> TskFilesystem:
    """The filesystem at ``offset``, auto-detected or by the explicit retries; OSError if none."""
    try:
        fs = pytsk3.FS_Info(img, offset=offset)
    except OSError:
        for name in _RETRY_ORDER:
            try:
                fs = pytsk3.FS_Info(img, offset=offset, type=FS_TYPES[name])
            except OSError:
                continue
            break
        else:
            raise
    return TskFilesystem(fs, _FS_NAMES.get(int(fs.info.ftype), str(fs.info.ftype)), offset)


def open_typed(img: TskImage, offset: int, fs_type: str) -> TskFilesystem:
    """A filesystem the walk found before, opened by its type (a worker's own handle)."""
    try:
        fs = pytsk3.FS_Info(img, offset=offset, type=FS_TYPES[fs_type])
    except OSError as e:
        raise ImageError(f"the {fs_type} filesystem at offset {offset} cannot be opened") from e
    return TskFilesystem(fs, fs_type, offset)


class TskFilesystem:
    """One filesystem opened by the Sleuth Kit (a ``pytsk3.FS_Info``)."""

    def __init__(self, fs: Any, fs_type: str, offset: int = 0) -> None:
        self._fs = fs
        self.fs_type = fs_type
        self._offset = offset  # in the media: the block walk checks it against TSK's own
        self._last: tuple[int, Any] | None = None  # (inode, file): see ``_open``

    def _open(self, inode: int) -> Any:
        """The Sleuth Kit's file for ``inode``; the last one opened is kept, because a scan
        reads a file's content and then its slack (two opens were 18 us of every file's 300 or
        so of Python in a worker, bench/README.md round 6). One reader at a time uses a
        filesystem (each worker opens its own), so sharing it is safe."""
        last = self._last
        if last is not None and last[0] == inode:
            return last[1]
        f = self._fs.open_meta(inode=inode)
        self._last = (inode, f)
        return f

    def claimed_size(self) -> int:
        return int(self._fs.info.block_count) * int(self._fs.info.block_size)

    # -- the walk

    def walk(self, at: FsLoc, state: WalkState) -> Iterator[FileTask]:
        """Every file stream: allocated, deleted, orphan, NTFS streams, in directory order.

        Directory loops are detected with a set of directory addresses already entered; a
        directory that would not open, or a loop, is appended to ``state.problems``.
        """
        fs, vol = self._fs, at.volume.index
        root_inum = int(fs.info.root_inum)
        try:
            root = fs.open_dir(inode=root_inum)
        except OSError as e:
            state.problems.append(
                WalkProblem(vol, "/", root_inum, f"root directory cannot be read: {e}")
            )
            return
        seen = {root_inum}
        stack: list[tuple[Iterator[Any], str, int]] = [(_ordered(root, state.first), "", 0)]
        is_ntfs = at.fs_type == "ntfs"
        while stack:
            it, parent, depth = stack[-1]
            try:
                entry = next(it)
            except StopIteration:
                stack.pop()
                continue
            except OSError as e:
                state.problems.append(
                    WalkProblem(vol, parent or "/", 0, f"directory listing cut short: {e}")
                )
                stack.pop()
                continue
            name_info = entry.info.name
            name = _name(entry)
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
                yield from self._ntfs_streams(at, source, addr, path, allocated, is_dir, state)
            if is_dir:
                if realloc or meta is None:
                    state.problems.append(
                        WalkProblem(
                            vol,
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
                            vol,
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
                            vol, path, addr, f"nesting deeper than {MAX_DIR_DEPTH}: not entered"
                        )
                    )
                    continue
                seen.add(addr)
                try:
                    sub = entry.as_directory()
                except OSError as e:
                    state.problems.append(
                        WalkProblem(vol, path, addr, f"directory cannot be opened: {e}")
                    )
                    continue
                stack.append((_ordered(sub, state.first), path, depth + 1))
                continue
            if is_ntfs and meta is not None and not realloc:
                continue  # its $DATA streams were yielded above
            yield _task(at, state, path, addr, allocated, meta, realloc)

    def _ntfs_streams(
        self,
        at: FsLoc,
        entry: Any,
        addr: int,
        path: str,
        allocated: bool,
        is_dir: bool,
        state: WalkState,
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
                WalkProblem(at.volume.index, path, addr, f"NTFS attributes cannot be listed: {e}")
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
            yield _task(
                at,
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
            yield _task(at, state, path, addr, allocated, entry.info.meta, False)

    # -- reading

    def chunks(self, loc: StreamLoc, size: int, chunk: int = READ_CHUNK) -> Iterator[bytes]:
        """The content of one file stream in order; raises OSError with the offset on failure."""
        f = self._open(loc.inode)
        off = 0
        while off < size:
            want = min(chunk, size - off)
            try:
                data = f.read_random(off, want, loc.attr_type, loc.attr_id)
            except OSError as e:
                raise OSError(f"read failed at offset {off} of {size}: {e}") from e
            if not data:
                if off == 0 and _no_stored_data(f, loc):
                    raise SparseStreamError(
                        f"sparse stream of {size} bytes with no stored data: nothing to read"
                    )
                raise OSError(f"content ends at offset {off} of {size} (unrecoverable blocks)")
            yield data
            off += len(data)

    def unallocated(self, start: int, end: int) -> list[tuple[int, int]] | None:
        """Byte spans ``(offset, length)`` (from the filesystem's start) of the unallocated
        blocks that meet ``[start, end)``, clipped to it; None when the walk is unavailable."""
        bs = int(self._fs.info.block_size)
        first = max(start // bs, int(self._fs.info.first_block))
        last = min((end - 1) // bs, int(self._fs.info.last_block))
        if end <= start or last < first:
            return []
        runs = unallocated_runs(self._fs, self._offset, first, last)
        if runs is None:
            return None
        out = []
        for addr, n in runs:
            lo, hi = max(addr * bs, start), min((addr + n) * bs, end)
            if hi > lo:
                out.append((lo, hi - lo))
        return out

    def slack(self, loc: StreamLoc, size: int) -> list[tuple[int, int]]:
        """Byte spans (from the filesystem's start) between a stream's end and the end of its
        last allocated cluster: its data runs beyond ``size``. Resident, sparse, compressed or
        unreadable streams have none we can place."""
        try:
            f = self._open(loc.inode)
            runs = _runs(f, loc)
        except OSError:
            return []
        if not runs:
            return []
        bs = int(self._fs.info.block_size)
        out = []
        for r in runs:
            if int(r.flags):  # sparse, filler, compressed: nothing stored where we could read
                return []
            lo, hi = int(r.offset) * bs, (int(r.offset) + int(r.len)) * bs
            if hi <= size:
                continue
            skip = max(size - lo, 0)
            out.append((int(r.addr) * bs + skip, hi - lo - skip))
        return out

    def stored_bytes(self, loc: StreamLoc) -> int | None:
        runs = _runs(self._open(loc.inode), loc)
        if runs is None:
            return None
        block = int(self._fs.info.block_size)
        return sum(int(r.len) * block for r in runs if not int(r.flags) & _SPARSE_RUN)


def _task(
    at: FsLoc,
    state: WalkState,
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
        reason = "deleted entry: its metadata now belongs to another file, content not this file's"
    return FileTask(
        seq=state.seq,
        locator=StreamLoc(at, addr, attr_type, attr_id),
        path=path,
        allocated=allocated,
        size=int(meta.size) if size is None and meta is not None and not realloc else (size or 0),
        readable=not reason,
        unreadable_reason=reason,
    )


def _name(entry: Any) -> str:
    """A directory entry's name as text (bytes that are not UTF-8 kept as escapes)."""
    raw = entry.info.name.name
    return raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else str(raw)


def _ordered(directory: Any, first: frozenset[str]) -> Iterator[Any]:
    """A directory's entries, those named in ``first`` (a user area's first folder: ``Users``,
    ``home``, ``DCIM``...) before the others, each group in directory order.

    Why: user-area files are scanned first (``kiosk.engine.priority``), but the walk must find
    them before they can be; on a Windows volume ``Program Files`` and ``ProgramData`` (a
    hundred thousand entries and more) come before ``Users``. The set walked is the same; a
    listing cut short still says so, after the entries it gave.
    """
    if not first:
        yield from directory
        return
    ahead: list[Any] = []
    rest: list[Any] = []
    failed: OSError | None = None
    try:
        for entry in directory:
            (ahead if _name(entry).casefold() in first else rest).append(entry)
    except OSError as e:
        failed = e
    yield from ahead
    yield from rest
    if failed is not None:
        raise failed


def _runs(f: Any, loc: StreamLoc) -> list[Any] | None:
    """The data runs of the located attribute; None when it is resident or not found."""
    for attr in f:
        if loc.attr_type != _ATTR_DEFAULT and (
            int(attr.info.type) != loc.attr_type or int(attr.info.id) != loc.attr_id
        ):
            continue
        if not int(attr.info.flags) & int(pytsk3.TSK_FS_ATTR_NONRES):
            return None
        return list(attr)
    return None


def _no_stored_data(f: Any, loc: StreamLoc) -> bool:
    runs = _runs(f, loc)
    return runs is not None and all(int(r.flags) & _SPARSE_RUN for r in runs)  # no runs: nothing
