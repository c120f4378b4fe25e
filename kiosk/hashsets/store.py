"""Changing the hash-set store: import a new version, sign the active one, remove a set.

Why it is done this way: a scan may start at any moment, so the store must never show a
half-built set, and a failed import must leave the previous version working. A version is built
in a hidden ``.build-*`` directory of the store (``hashset_build``), fsynced, renamed into place,
and only then does ``current`` change (write-and-rename). A version directory is never modified
afterwards except to add its signature. One writer at a time per store: a lock on the store
directory, taken without waiting, so a second import says so instead of hanging.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rfc8785

from kiosk.canonical import utc_text_seconds
from kiosk.errors import HashSetError
from kiosk.hashsets.build import ImportRequest, build_version
from kiosk.hashsets.hpk import PAGE_SIZE, pages_of
from kiosk.hashsets.index import (
    CURRENT,
    DISPOSITIONS,
    MANIFEST,
    active_version,
    check_name,
    read_manifest,
)
from kiosk.hashsets.perceptual import check_threshold
from kiosk.hashsets.trust import (
    PAYLOAD_TYPE,
    SIGNATURE,
    file_digests,
    paged_files,
    signed_payload,
)
from kiosk.trust.policy import compare_versions
from kiosk.trust.signing import Signer


@dataclass(frozen=True, slots=True)
class ImportResult:
    version_dir: Path
    manifest: dict[str, Any]
    replaced: tuple[str, ...]  # superseded versions that were removed


@contextlib.contextmanager
def store_lock(store: Path) -> Iterator[None]:
    """One writer per store; a second one fails at once with a clear message."""
    try:
        store.mkdir(parents=True, exist_ok=True)
        fd = os.open(store, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise HashSetError(f"hash set store {store}: {e.strerror or e}") from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise HashSetError(f"another import, sign or remove is running in {store}") from e
        yield
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for p in sorted(root.rglob("*")):
        if p.is_file():
            with p.open("rb") as f:
                os.fsync(f.fileno())
        elif p.is_dir():
            _fsync_dir(p)
    _fsync_dir(root)


def _set_current(set_dir: Path, version: str) -> None:
    tmp = set_dir / f".{CURRENT}.tmp"
    with tmp.open("w", encoding="utf-8") as f:
        f.write(version + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(set_dir / CURRENT)
    _fsync_dir(set_dir)


def import_set(
    store: Path, req: ImportRequest, clock: Callable[[], datetime] | None = None
) -> ImportResult:
    """Build a new version of ``req.name`` and make it the active one — or change nothing.

    The version must be newer than the active one: versions only go up (and a kiosk that has
    used a version refuses lower ones anyway). Superseded versions are removed once the new one
    is active; a scan that already mapped them keeps working, a worker started later notices.
    """
    now = (clock or (lambda: datetime.now(UTC)))()
    check_name("name", req.name)
    version = check_name("version", req.version or now.strftime("%Y.%m.%d.%H%M%S"))
    if req.disposition not in DISPOSITIONS:
        raise HashSetError(f"disposition must be one of {', '.join(DISPOSITIONS)}")
    if not req.sources:
        raise HashSetError("no source files given")
    if req.threshold is not None:
        check_threshold(req.threshold)
    for p in req.sources:
        if not p.is_file():
            raise HashSetError(f"{p}: no such file")
    set_dir = store / req.name
    with store_lock(store):
        active = active_version(set_dir).name if set_dir.exists() else None
        if active is not None and compare_versions(version, active) <= 0:
            raise HashSetError(
                f"hash set {req.name}: version {version} is not newer than the active {active}"
            )
        for stale in store.glob(".build-*"):  # left by an import that was killed
            shutil.rmtree(stale, ignore_errors=True)
        build = store / f".build-{req.name}-{secrets.token_hex(4)}"
        staged = build / version
        try:
            staged.mkdir(parents=True)
            manifest = build_version(staged, req, version, now)
            (staged / MANIFEST).write_text(
                json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
            )
            read_manifest(staged, name=req.name)  # what the kiosk will read must read back
            if active is None:  # a new set appears whole: its directory is renamed in
                _set_current(build, version)
                _fsync_tree(build)
                build.rename(set_dir)
            else:
                _fsync_tree(staged)
                if (set_dir / version).exists():  # an interrupted earlier import of it
                    shutil.rmtree(set_dir / version)
                staged.rename(set_dir / version)
                _set_current(set_dir, version)
            _fsync_dir(store)
        finally:
            shutil.rmtree(build, ignore_errors=True)
        replaced = sorted(p.name for p in set_dir.iterdir() if p.is_dir() and p.name != version)
        for old in replaced:
            shutil.rmtree(set_dir / old, ignore_errors=True)
    return ImportResult(set_dir / version, manifest, tuple(replaced))


def sign_set(
    store: Path,
    name: str,
    signer: Signer,
    expires: datetime | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Path:
    """Sign the active version of ``name``, after checking its files against its manifest."""
    now = (clock or (lambda: datetime.now(UTC)))()
    if expires is not None and expires <= now:
        raise HashSetError(f"the expiry {utc_text_seconds(expires)} is already past")
    with store_lock(store):
        version_dir = active_version(store / check_name("name", name))
        manifest, _ = read_manifest(version_dir)
        actual = file_digests(version_dir)  # every file whole: signing is when packs are read
        for entry in [*manifest["algorithms"].values(), manifest.get("properties")]:
            if isinstance(entry, dict) and actual.get(entry["file"]) != entry["sha256"]:
                raise HashSetError(
                    f"hash set {name}: {entry['file']} does not match its manifest: not signing"
                )
        for pack, pages in paged_files(manifest).items():
            listed = version_dir / str(pages.get("file"))
            if (
                pages.get("page_size") != PAGE_SIZE
                or actual.get(listed.name) != pages.get("sha256")
                or pages_of(version_dir / pack) != listed.read_bytes()
            ):
                raise HashSetError(
                    f"hash set {name}: the page list of {pack} does not match it: not signing"
                )
        envelope = signer.envelope(
            signed_payload(version_dir, manifest, now, expires), PAYLOAD_TYPE
        )
        tmp = version_dir / f".{SIGNATURE}.tmp"
        tmp.write_bytes(bytes(rfc8785.dumps(envelope)))
        tmp.replace(version_dir / SIGNATURE)
        _fsync_dir(version_dir)
    return version_dir / SIGNATURE


def remove_set(store: Path, name: str) -> str:
    """Remove a set and all its versions (renamed away, then deleted); returns the version."""
    with store_lock(store):
        set_dir = store / check_name("name", name)
        if not set_dir.is_dir():
            raise HashSetError(f"no hash set {name} in {store}")
        version = active_version(set_dir).name
        gone = store / f".removing-{name}-{secrets.token_hex(4)}"
        set_dir.rename(gone)
        shutil.rmtree(gone)
    return version
