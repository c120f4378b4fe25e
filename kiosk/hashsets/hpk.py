"""The ``.hpk`` file: one algorithm's digests of one hash-set version, sorted, memory-mapped.

Layout (shared/reference/hashsets-and-rule-packs.md §2.3, adapted)::

    0x00  8 B   magic "KIOSKHP1"
    0x08  u8    digest width (16 MD5, 20 SHA-1, 32 SHA-256)
    0x09  u8    bucket bits b (8 to 24)
    0x0A  u8    format version (1)
    0x10  u64   count                                   (header little-endian, 64 bytes)
    0x40  u64[2**b + 1]  index of the first digest of each bucket (top b bits of the digest)
    ....  count * width raw digests, strictly increasing (de-duplicated)

Why: a lookup reads one table entry and a few hundred bytes of one page, so it costs the same at
1 k or 1 G digests, and the file is never copied into process memory — the kernel's page cache
holds what is hot, shared by every scan worker. Written by ``hashset_build.write_pack``.

**Verified page by page** (as dm-verity does for a disk): beside each pack, ``<pack>.pages`` holds
the SHA-256 of every ``PAGE_SIZE`` page of it, back to back; that small file is what the set's
signature covers (through the signed manifest), not the pack itself. A pack is then used without
hashing it whole: each page is hashed the first time a lookup touches it, in each process, and a
page that does not match refuses the lookup with the reason (``PageCheck``). So loading a set
costs the same at 1 k or 1 G digests (the page list is 1/2048 of the pack), a lookup reads and
checks only what it reads, and what is matched is exactly what was signed — a pack swapped or
rewritten after signing fails on the first page it serves.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import HashSetError, PageMismatch

MAGIC = b"KIOSKHP1"
HEADER = struct.Struct("<8sBBB5xQ")  # magic, width, bucket bits, format version, count
HEADER_SIZE = 64
FORMAT_VERSION = 1
FIND_RECORDS = 16  # from this many records down, one C find beats bisecting in Python
PAGE_SIZE = 1 << 16  # 64 KiB: ~30 µs to hash with SHA-NI; the page list is 1/2048 of the pack
PAGE_DIGEST = 32
PAGES_SUFFIX = ".pages"  # sha256.hpk -> sha256.hpk.pages


@dataclass(frozen=True, slots=True)
class FileId:
    """Which file, holding which content: the identity of a file whose bytes were verified.

    A file swapped in by rename is another inode; any write to it (``write``, ``truncate``, a
    writable map) sets its change time (``ctime``), which no unprivileged process can set back.
    So two equal ``FileId`` name the same bytes, and a scan worker that maps a file with the
    identity its parent recorded while hashing maps exactly the bytes that were verified, without
    hashing gigabytes again (figures: bench/hashsets.md). Only root can defeat this (by setting
    the clock or editing the disk underneath), and root can also change the kiosk itself.
    """

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileId:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def changed(path: Path) -> str:
    """The one-line reason for a verified file whose identity is no longer what was verified."""
    return (
        f"{path.name} of hash set {path.parent.parent.name} {path.parent.name} changed on disk "
        "after it was verified (replaced or rewritten); its matches cannot be trusted"
    )


def table_size(bits: int) -> int:
    return 8 * ((1 << bits) + 1)


def page_digests(data: bytes | memoryview, page_size: int = PAGE_SIZE) -> bytes:
    """The ``.pages`` content for ``data``: SHA-256 of each page, back to back."""
    view = memoryview(data)
    return b"".join(
        hashlib.sha256(view[i : i + page_size]).digest() for i in range(0, len(view), page_size)
    )


def pages_of(path: Path, page_size: int = PAGE_SIZE) -> bytes:
    """``page_digests`` of a file, read page by page (for signing: the whole pack is read once)."""
    out = bytearray()
    with path.open("rb") as f:
        while page := f.read(page_size):
            out += hashlib.sha256(page).digest()
    return bytes(out)


def page_list_problem(path: Path, pages: bytes, page_size: int) -> str | None:
    """Why ``pages`` is not the page list of the pack at ``path``, judged from its size and its
    first page (the header and bucket table's start, which every lookup reads); None if it may
    be. The other pages are checked as a scan first reads them."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            first = f.read(page_size)
    except OSError as e:
        return f"{path.name} cannot be read: {e.strerror or e}"
    if page_size != PAGE_SIZE or len(pages) != -(-size // page_size) * PAGE_DIGEST:
        return f"{path.name} does not match its signed page list (size; tampered)"
    if hashlib.sha256(first).digest() != pages[:PAGE_DIGEST]:
        return f"{path.name} does not match its signed page list (page 0; tampered)"
    return None


class PageCheck:
    """Which pages of one mapped pack are verified, and the signed digests to verify the rest.

    ``need(start, end)`` before reading ``[start, end)`` of the map: each page not yet checked in
    this process is hashed once and compared; a mismatch raises HashSetError naming the page.
    """

    __slots__ = ("_digests", "_done", "_mm", "_path", "_size")

    def __init__(self, mm: mmap.mmap, digests: bytes, path: Path, page_size: int) -> None:
        pages = -(-len(mm) // page_size)
        if page_size != PAGE_SIZE or len(digests) != pages * PAGE_DIGEST:
            raise HashSetError(
                f"{path}: its page list covers {len(digests) // PAGE_DIGEST} pages of "
                f"{page_size} bytes, the pack has {pages} of {PAGE_SIZE}"
            )
        self._mm, self._digests, self._path, self._size = mm, digests, path, page_size
        self._done = bytearray(pages)

    def need(self, start: int, end: int) -> None:
        if end <= start:
            return
        size, done = self._size, self._done
        for page in range(start // size, (end - 1) // size + 1):
            if not done[page]:
                self._verify(page)

    def _verify(self, page: int) -> None:
        at = page * self._size
        got = hashlib.sha256(self._mm[at : at + self._size]).digest()
        if got != self._digests[page * PAGE_DIGEST : (page + 1) * PAGE_DIGEST]:
            raise PageMismatch(
                f"{self._path.name} of hash set {self._path.parent.parent.name} "
                f"{self._path.parent.name}: page {page} does not match its signed digest "
                "(tampered, replaced or damaged); its matches cannot be trusted"
            )
        self._done[page] = 1


class Pack:
    """One ``.hpk`` file, memory-mapped read-only; ``digest in pack`` is the lookup."""

    __slots__ = ("_mm", "base", "contains", "count", "pages", "width")

    def __init__(
        self,
        path: Path,
        width: int,
        expect: FileId | None = None,
        pages: bytes | None = None,
    ) -> None:
        """Map ``path``; with ``expect``, only if it is still the file verified (else refused);
        with ``pages`` (the verified page list), every page is checked when first read."""
        try:
            with path.open("rb") as f:
                if expect is not None and FileId.of(os.fstat(f.fileno())) != expect:
                    raise HashSetError(changed(path))
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as e:  # ValueError: an empty file cannot be mapped
            raise HashSetError(f"{path}: cannot be mapped: {e}") from e
        try:
            self.pages = None if pages is None else PageCheck(mm, pages, path, PAGE_SIZE)
            self._check(mm, path, width)
        except HashSetError:
            mm.close()
            raise
        self._mm = mm

    def _check(self, mm: mmap.mmap, path: Path, width: int) -> None:
        if len(mm) < HEADER_SIZE:
            raise HashSetError(f"{path}: truncated (no header)")
        if self.pages is not None:
            self.pages.need(0, HEADER_SIZE)
        magic, w, bits, fmt, count = HEADER.unpack_from(mm, 0)
        if (magic, w, fmt) != (MAGIC, width, FORMAT_VERSION) or not 8 <= bits <= 24:
            raise HashSetError(f"{path}: not a kiosk hash pack of {width}-byte digests")
        expected = HEADER_SIZE + table_size(bits) + count * width
        if len(mm) != expected:
            raise HashSetError(f"{path}: {len(mm)} bytes where its header implies {expected}")
        if self.pages is not None:
            self.pages.need(HEADER_SIZE, HEADER_SIZE + 8)
            self.pages.need(HEADER_SIZE + table_size(bits) - 8, HEADER_SIZE + table_size(bits))
        first = struct.unpack_from("<Q", mm, HEADER_SIZE)[0]
        last = struct.unpack_from("<Q", mm, HEADER_SIZE + table_size(bits) - 8)[0]
        if (first, last) != (0, count):
            raise HashSetError(f"{path}: its bucket table does not match its digest count")
        with contextlib.suppress(AttributeError, OSError):  # no readahead: lookups are random
            mm.madvise(mmap.MADV_RANDOM)
        self.count = count
        self.width = width
        base = self.base = HEADER_SIZE + table_size(bits)  # where the sorted records start
        self.contains = (
            _lookup(mm, width, base, 32 - bits)
            if self.pages is None
            else _checked_lookup(mm, width, base, 32 - bits, self.pages.need)
        )

    def __contains__(self, digest: bytes) -> bool:
        return self.contains(digest)

    def records(self) -> tuple[mmap.mmap, int, int]:
        """The map, the offset of the first record and the count: for searches that are not
        exact lookups (``kiosk.hashsets.perceptual.nearest``), which read every record, so every
        page of them is checked first (once per process, as any page is)."""
        if self.pages is not None:
            self.pages.need(self.base, self.base + self.count * self.width)
        return self._mm, self.base, self.count

    def close(self) -> None:
        self._mm.close()


def _lookup(mm: mmap.mmap, w: int, base: int, shift: int) -> Callable[[bytes], bool]:
    """The lookup as a closure: no attribute loads per call (~15 % faster, bench/hashsets.md).

    Bucket table, then binary search down to ≤ 16 digests, then one aligned ``mmap.find``: the
    final ``find`` runs in C over about half a kilobyte, twice as fast as bisecting to the end
    in Python; the binary search keeps the worst case logarithmic if a bucket is ever crowded.
    """
    unpack = struct.Struct("<QQ").unpack_from
    from_bytes = int.from_bytes

    def contains(digest: bytes) -> bool:
        if len(digest) != w:
            return False
        lo, hi = unpack(mm, HEADER_SIZE + (from_bytes(digest[:4], "big") >> shift) * 8)
        while hi - lo > FIND_RECORDS:
            mid = (lo + hi) >> 1
            off = base + mid * w
            if mm[off : off + w] < digest:
                lo = mid + 1
            else:
                hi = mid + 1
        end = base + hi * w
        pos = mm.find(digest, base + lo * w, end)
        while pos >= 0:
            if (pos - base) % w == 0:
                return True
            pos = mm.find(digest, pos + 1, end)  # it straddled two digests: look further
        return False

    return contains


def _checked_lookup(
    mm: mmap.mmap, w: int, base: int, shift: int, need: Callable[[int, int], None]
) -> Callable[[bytes], bool]:
    """``_lookup`` over a pack verified page by page: every byte range is checked before it is
    read (a bitmap test once a page is known good, so a warm lookup costs little more)."""
    unpack = struct.Struct("<QQ").unpack_from
    from_bytes = int.from_bytes

    def contains(digest: bytes) -> bool:
        if len(digest) != w:
            return False
        at = HEADER_SIZE + (from_bytes(digest[:4], "big") >> shift) * 8
        need(at, at + 16)
        lo, hi = unpack(mm, at)
        while hi - lo > FIND_RECORDS:
            mid = (lo + hi) >> 1
            off = base + mid * w
            need(off, off + w)
            if mm[off : off + w] < digest:
                lo = mid + 1
            else:
                hi = mid + 1
        start, end = base + lo * w, base + hi * w
        need(start, end)
        pos = mm.find(digest, start, end)
        while pos >= 0:
            if (pos - base) % w == 0:
                return True
            pos = mm.find(digest, pos + 1, end)  # it straddled two digests: look further
        return False

    return contains
