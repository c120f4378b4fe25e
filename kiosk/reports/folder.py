"""Files inside a report folder: data someone handed us, never trusted to be what it looks like.

A report folder can be copied, emailed, put on a share or planted. So what kiosk reads from one
must be a regular file (a symbolic link, a FIFO or ``/dev/zero`` under a report's name would
redirect, hang or exhaust the reader), opened without following links or blocking, and read
within a size limit; and what kiosk writes into one (``report.html``, ``report.case.jsonld``,
``reviews/NNN.dsse.json``) is a new file made with ``O_EXCL | O_NOFOLLOW`` and renamed into
place, so a link planted under the name is replaced, never written through.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from kiosk.errors import ReportError, VerificationError

# report.json and its envelope (the report again, in base64): a report of a million findings
# stays well under this; anything larger is refused before it is read into memory.
MAX_REPORT_BYTES = 512 << 20
MAX_REVIEW_BYTES = 1 << 20
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


@contextlib.contextmanager
def _open_regular(path: Path, what: str, dir_fd: int | None = None) -> Iterator[int]:
    """A descriptor on ``path`` if it is a regular file: never follows a link, never waits on a
    FIFO (``O_NONBLOCK``), and checks what it opened (``fstat``), not what the name was."""
    try:
        fd = os.open(path, _READ_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError as e:
        raise VerificationError(f"{what} is missing") from e
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise VerificationError(f"{what} is a symbolic link, not a file (refused)") from e
        raise VerificationError(f"{what} cannot be read: {(e.strerror or str(e)).lower()}") from e
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise VerificationError(
                f"{what} is not a regular file (a device, pipe or folder is refused)"
            )
        yield fd
    finally:
        os.close(fd)


def read_file(path: Path, what: str, limit: int, dir_fd: int | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or VerificationError saying why."""
    with _open_regular(path, what, dir_fd) as fd:
        if os.fstat(fd).st_size > limit:
            raise VerificationError(f"{what} is larger than {limit} bytes (refused)")
        parts: list[bytes] = []
        total = 0
        while chunk := _read(fd, what, min(_CHUNK, limit + 1 - total)):
            parts.append(chunk)
            total += len(chunk)
            if total > limit:  # grew while being read
                raise VerificationError(f"{what} is larger than {limit} bytes (refused)")
        return b"".join(parts)


def file_sha256(path: Path, what: str) -> str:
    """SHA-256 of a regular file of any size, read in chunks (an inventory can be gigabytes)."""
    digest = hashlib.sha256()
    with _open_regular(path, what) as fd:
        while chunk := _read(fd, what, _CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _read(fd: int, what: str, n: int) -> bytes:
    if n <= 0:
        return b""
    try:
        return os.read(fd, n)
    except OSError as e:
        raise VerificationError(f"{what} cannot be read: {(e.strerror or str(e)).lower()}") from e


def write_file(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all, replacing (never writing through) a link there.

    The bytes go to a new, randomly named file beside it (``O_EXCL | O_NOFOLLOW``: a link
    planted under any name is never followed), which is then renamed over ``path``; a rename
    replaces a link itself, not what it points to. A full disk or a killed command never leaves
    half a page that looks like the report. Raises ReportError with one line.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, _NEW_FILE_FLAGS, 0o644)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        tmp.replace(path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if not path.parent.is_dir():
            raise ReportError(f"cannot write {path}: no folder {path.parent}") from e
        raise ReportError(f"cannot write {path}: {(e.strerror or str(e)).lower()}") from e


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def open_reviews_folder(directory: Path) -> int:
    """A descriptor on ``directory/reviews`` (made if missing), refused if it is a link.

    Reviews are written relative to this descriptor, so a folder swapped for a link after the
    check still cannot send a review elsewhere. The caller closes it.
    """
    folder = directory / "reviews"
    try:
        if folder.is_symlink():
            raise VerificationError(
                f"{folder} is a symbolic link: a review is written only into the report's own "
                "folder (refused)"
            )
        with contextlib.suppress(FileExistsError):
            folder.mkdir()
        return os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise VerificationError(f"{folder} is not a folder (refused)") from e
        raise VerificationError(f"cannot write into {folder}: {e.strerror or e}") from e


def count_reviews(dir_fd: int) -> int:
    """How many review files the opened reviews folder holds."""
    return sum(name.endswith(".dsse.json") for name in os.listdir(dir_fd))


def write_new_in(dir_fd: int, name: str, data: bytes) -> bool:
    """Create ``name`` under ``dir_fd`` with ``data``; False if the name is taken (never
    replaced, never followed if it is a link)."""
    try:
        fd = os.open(name, _NEW_FILE_FLAGS, 0o644, dir_fd=dir_fd)
    except FileExistsError:
        return False
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)
    return True


def unsigned_files(directory: Path, covered: set[str]) -> tuple[str, ...]:
    """Every entry in the folder (``/``-joined, sorted) that no signature covers.

    ``covered`` names what the verification checked. Anything else — a planted ``report.html``
    that says something else, a note, a link — is not part of what the signature proves, and a
    reader must be told. Links are listed, never followed.
    """
    extra: list[str] = []
    for root, dirs, files in os.walk(directory):
        rel = Path(root).relative_to(directory)
        for name in sorted(dirs + files):
            path = (rel / name).as_posix()
            if path not in covered and not (name in dirs and path == "reviews"):
                extra.append(path)
        dirs[:] = [d for d in dirs if (rel / d).as_posix() == "reviews"]
    return tuple(sorted(extra))
