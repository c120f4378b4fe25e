"""Reading an archive found inside the evidence, entry by entry, through libarchive.

Why libarchive: one well-kept reader for every kind an officer meets inside a device -- zip,
7-Zip, RAR, tar, cpio, ISO 9660, and gzip/bzip2/xz (and more) around them -- instead of one
Python module per format with its own bugs. Debian ships it (``libarchive13``); ``libarchive-c``
is the thin ctypes binding. We call its ``ffi`` layer directly rather than its ``ArchiveEntry``
helpers, because those raise from inside ctypes callbacks (printed as tracebacks, never seen by
us), decode names strictly (a non-UTF-8 name would stop the archive) and log libarchive's
warnings on stderr; here each of those is data: an ``ArchiveReadError`` with a one-line reason.

An archive is read from bytes already in memory (random access: 7-Zip and the zip central
directory need it) or from a chunk iterator (forward only: tar, cpio, ISO, compressed streams,
and zip by its local headers; a 7-Zip archive read this way fails with libarchive's reason).
Nothing is ever written to disk and nothing is extracted: the caller streams each entry's
content in blocks (``blocks``) and decides what to keep.

May import: ``kiosk.errors`` and libarchive-c.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import libarchive.ffi as ffi
from libarchive.exception import ArchiveError

from kiosk.errors import ArchiveReadError

# libarchive-c logs libarchive's warnings (ARCHIVE_WARN); with no handler Python would print them
# raw on stderr. The reasons that matter reach the report as data instead.
logging.getLogger("libarchive").addHandler(logging.NullHandler())
logging.getLogger("libarchive").propagate = False

BLOCK = 1 << 20
# Named one by one, not libarchive's "all": its "all" filters run external programs (lzop,
# lrzip, grzip) on the evidence when they are installed, and "all" formats include mtree, whose
# entries name files on the reading machine's own disk. These filters are compiled into Debian's
# libarchive13; these formats are the ones kiosk claims and tests.
FILTERS = ("gzip", "bzip2", "xz", "lzma", "lzip", "zstd", "compress", "lz4")
FORMATS = ("zip", "7zip", "rar", "rar5", "tar", "cpio", "iso9660", "empty")
_TYPE_MASK = 0o170000
KINDS = {
    0o100000: "file",
    0o040000: "directory",
    0o120000: "symbolic link",
    0o010000: "FIFO",
    0o020000: "character device",
    0o060000: "block device",
    0o140000: "socket",
}

_lib = ffi.libarchive
_lib.archive_entry_pathname_utf8.argtypes = [ctypes.c_void_p]
_lib.archive_entry_pathname_utf8.restype = ctypes.c_char_p
_lib.archive_entry_is_encrypted.argtypes = [ctypes.c_void_p]
_lib.archive_entry_is_encrypted.restype = ctypes.c_int
_lib.archive_read_support_format_raw.argtypes = [ctypes.c_void_p]
_lib.archive_read_support_format_raw.restype = ctypes.c_int


# What libmagic calls the formats libarchive reads. A compressed stream may hold no archive at
# all (a bare .gz): libarchive's "raw" format then lists its content as one member, "data".
STREAM_MIMES = frozenset(
    {
        "application/gzip",
        "application/x-gzip",
        "application/x-bzip2",
        "application/x-xz",
        "application/x-lzma",
        "application/x-lzip",
        "application/zstd",
        "application/x-compress",
    }
)
ARCHIVE_MIMES = STREAM_MIMES | frozenset(
    {
        "application/zip",
        "application/x-zip-compressed",
        "application/x-7z-compressed",
        "application/x-rar",
        "application/vnd.rar",
        "application/x-rar-compressed",
        "application/x-tar",
        "application/x-gtar",
        "application/x-cpio",
        "application/x-iso9660-image",
    }
)
# libmagic sees 8 KiB; an ISO 9660 volume descriptor starts at 32 KiB: told by name or signature
_ISO_AT, _ISO_MAGIC = 0x8001, b"CD001"


def is_archive(mime: str | None, path: str, content: bytes | bytearray | None = None) -> bool:
    """Whether a file or member is one libarchive should expand: by type, or an ISO image."""
    if mime in ARCHIVE_MIMES:
        return True
    if mime != "application/octet-stream":
        return False
    if content is not None and content[_ISO_AT : _ISO_AT + 5] == _ISO_MAGIC:
        return True
    return path.lower().endswith(".iso")


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry as the archive lists it: metadata only, read before its content."""

    index: int  # from 0, in the archive's own order, directories included
    name: str  # as stored; invalid UTF-8 as ``\\xNN``; ``../`` and absolute names kept as data
    kind: str  # "file", "directory", "symbolic link", "hard link", "FIFO", ... (KINDS)
    size: int | None  # the size the header claims; None when it does not say
    encrypted: bool
    link: str  # a link's target, else ""


def _text(raw: bytes | None) -> str:
    return "" if raw is None else raw.decode("utf-8", "backslashreplace")


def _message(e: ArchiveError) -> str:
    msg = e.msg
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "backslashreplace")
    return str(msg or "libarchive gave no reason").strip().rstrip(".")


class ArchiveReader:
    """One archive opened for reading; use as a context manager.

    ``source`` is the whole archive (``bytes`` or a ``bytearray``, read with random access) or
    an iterator of its bytes in order (read forward only). ``raw``: also accept a compressed
    stream that holds no archive (a bare ``.gz``), listed as one entry named ``data``.
    """

    def __init__(self, source: bytes | bytearray | Iterator[bytes], raw: bool = False) -> None:
        self._p: Any = ffi.read_new()
        self._keep: list[Any] = []  # buffers libarchive points into, alive while it may read
        self._failure = ""  # why the chunk iterator stopped, told by read_func
        self._cb: Any = None
        try:
            for name in FILTERS:
                ffi.get_read_filter_function(name)(self._p)
            for name in FORMATS:
                ffi.get_read_format_function(name)(self._p)
            if raw:
                _lib.archive_read_support_format_raw(self._p)
            if isinstance(source, bytes | bytearray):
                # no copy: libarchive reads the caller's buffer, kept alive (and, for a
                # bytearray, fixed in size) by the reference held here
                view: Any = (
                    ctypes.c_char_p(source)
                    if isinstance(source, bytes)
                    else (ctypes.c_char * len(source)).from_buffer(source)
                )
                self._keep.append(view)
                ffi.read_open_memory(self._p, ctypes.cast(view, ctypes.c_void_p), len(source))
            else:
                self._open_stream(source)
        except ArchiveError as e:
            self.close()
            raise ArchiveReadError(f"the archive could not be opened: {self._why(e)}") from e

    def _open_stream(self, chunks: Iterator[bytes]) -> None:
        def read_func(_a: Any, _c: Any, ptrptr: Any) -> int:
            # Runs inside libarchive: it must never raise (ctypes would print a traceback and
            # libarchive would read garbage). A failure is kept and reported by the caller.
            try:
                chunk = next(chunks, b"")
            except Exception as e:  # the evidence read failed: told to libarchive as fatal
                self._failure = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                return -1
            self._keep[:] = [chunk]
            ptrptr[0] = ctypes.cast(ctypes.c_char_p(chunk), ctypes.c_void_p).value
            return len(chunk)

        self._cb = ffi.READ_CALLBACK(read_func)
        ffi.read_open(self._p, None, ffi.NO_OPEN_CB, self._cb, ffi.NO_CLOSE_CB)

    def _why(self, e: ArchiveError) -> str:
        return self._failure or _message(e)

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._p is not None:
            ffi.read_free(self._p)
            self._p = None
        self._keep.clear()

    @property
    def format_name(self) -> str:
        """What libarchive found, e.g. ``ZIP 2.0 (deflation)``, ``GNU tar format``."""
        return _text(ffi.format_name(self._p)) if self._p is not None else ""

    def entries(self) -> Iterator[Entry]:
        """Every entry in the archive's order; ``ArchiveReadError`` when a header is damaged.

        The content of the entry just yielded is read with ``blocks`` before asking for the
        next; libarchive skips whatever was not read.
        """
        ptr = ctypes.c_void_p()
        index = 0
        while True:
            try:
                r = ffi.read_next_header(self._p, ctypes.byref(ptr))
            except ArchiveError as e:
                raise ArchiveReadError(self._why(e)) from e
            if r == ffi.ARCHIVE_EOF:
                return
            p = ptr.value
            ftype = ffi.entry_filetype(p) & _TYPE_MASK
            hard = ffi.entry_hardlink(p)
            kind = "hard link" if hard else KINDS.get(ftype, f"entry of type {ftype:o}")
            name = _lib.archive_entry_pathname_utf8(p) or ffi.entry_pathname(p)
            yield Entry(
                index=index,
                name=_text(name) if name is not None else f"(entry {index}: name not readable)",
                kind=kind,
                size=int(ffi.entry_size(p)) if ffi.entry_size_is_set(p) else None,
                encrypted=bool(_lib.archive_entry_is_encrypted(p)),
                link=_text(hard or ffi.entry_symlink(p)),
            )
            index += 1

    def blocks(self, size: int = BLOCK) -> Iterator[bytes]:
        """The current entry's content in order; ``ArchiveReadError`` when it cannot be read
        (encrypted, an unsupported method, a bad checksum, the archive cut short)."""
        buf = ctypes.create_string_buffer(size)
        while True:
            try:
                n = ffi.read_data(self._p, buf, size)
            except ArchiveError as e:
                raise ArchiveReadError(self._why(e)) from e
            if n < 0:  # ARCHIVE_WARN is returned, not raised, by libarchive-c
                raise ArchiveReadError(self._failure or _text(ffi.error_string(self._p)))
            if n == 0:
                return
            yield ctypes.string_at(buf, n)
