"""One snapshot of a public rule collection, read from its folder or archive without trusting it.

Labs receive collections as a git checkout, a GitHub archive (``.zip`` or ``.tar.gz``) or a
folder copied from elsewhere. The snapshot is data, not trust: only regular files are read,
never followed links; a member name that is absolute or climbs out with ``..`` is refused,
every file and the whole snapshot have a size limit, and nothing is extracted to disk — the
importer copies the bytes it needs. A GitHub archive's single top folder (``repo-<ref>/``) is
stripped, and its commit is read where GitHub records it: the zip comment, or the tar's pax
``comment`` header; a git checkout is asked with ``git rev-parse``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from kiosk.errors import RulesError
from kiosk.packs.collection import is_rule_file

MAX_FILE_BYTES = 64 << 20
MAX_TOTAL_BYTES = 2 << 30
MAX_FILES = 200_000
_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_LICENCE = re.compile(r"^(licen[cs]e|copying|copyright)([._-].*)?$", re.IGNORECASE)
_ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The files of a collection that matter to a pack: rule files and licence files."""

    label: str  # the folder or archive name, for messages and pack.toml
    files: dict[str, bytes]  # "/"-joined path in the collection -> bytes (rules and licences)
    skipped: tuple[str, ...]  # links and special files met (never followed), for the summary
    commit: str  # "" when the snapshot does not say
    date: str  # YYYY-MM-DD of the commit, or of the newest rule file
    sha256: str  # of the archive; "" for a folder


def _safe(name: str, label: str) -> str | None:
    """A member's path inside the collection, or None for the archive's own folders."""
    name = name.replace("\\", "/")
    p = PurePosixPath(name)
    if p.is_absolute() or re.match(r"^[A-Za-z]:", name) or ".." in p.parts:
        raise RulesError(f"{label}: member {name!r} would land outside the collection; refused")
    parts = [x for x in p.parts if x not in ("", ".")]
    return "/".join(parts) or None


def _wanted(path: str) -> bool:
    parts = path.split("/")
    if any(x.startswith(".") for x in parts[:-1]):
        return False  # .git, .github: not the collection's rules
    return is_rule_file(parts[-1]) or _LICENCE.match(parts[-1]) is not None


class _Budget:
    def __init__(self, label: str) -> None:
        self.label, self.total, self.count = label, 0, 0

    def take(self, path: str, size: int) -> None:
        self.count += 1
        self.total += size
        if size > MAX_FILE_BYTES:
            raise RulesError(f"{self.label}: {path} is larger than {MAX_FILE_BYTES >> 20} MiB")
        if self.total > MAX_TOTAL_BYTES or self.count > MAX_FILES:
            raise RulesError(f"{self.label}: more than {MAX_TOTAL_BYTES >> 30} GiB of rule files")


def _strip_top(files: dict[str, bytes], times: dict[str, float]) -> None:
    tops = {p.split("/")[0] for p in files}
    if len(tops) == 1 and all("/" in p for p in files):
        (top,) = tops
        for p in list(files):
            files[p.removeprefix(top + "/")] = files.pop(p)
            times[p.removeprefix(top + "/")] = times.pop(p)


def _day(times: dict[str, float]) -> str:
    stamps = [t for p, t in times.items() if is_rule_file(p)]
    if not stamps:
        return ""
    return datetime.fromtimestamp(max(stamps), UTC).strftime("%Y-%m-%d")


_Read = tuple[dict[str, bytes], dict[str, float], list[str], str]


def _read_zip(path: Path, budget: _Budget) -> _Read:
    files, times, skipped = {}, {}, []
    with zipfile.ZipFile(path) as z:
        comment = z.comment.decode("ascii", "replace").strip()
        for info in z.infolist():
            name = _safe(info.filename, budget.label)
            if name is None or info.is_dir():
                continue
            mode = (info.external_attr >> 16) & 0o170000
            if mode and mode != 0o100000:  # a link or a device stored in the archive
                skipped.append(name)
                continue
            if _wanted(name):
                budget.take(name, info.file_size)
                files[name] = z.read(info)
                times[name] = datetime(*info.date_time, tzinfo=UTC).timestamp()
    return files, times, skipped, comment


def _read_tar(path: Path, budget: _Budget) -> _Read:
    files, times, skipped = {}, {}, []
    with tarfile.open(path) as t:
        comment = str(t.pax_headers.get("comment", "")).strip()
        for m in t:
            name = _safe(m.name, budget.label)
            if name is None or m.isdir():
                continue
            if not m.isfile():
                skipped.append(name)
                continue
            if _wanted(name):
                budget.take(name, m.size)
                f = t.extractfile(m)
                if f is None:
                    skipped.append(name)
                    continue
                files[name] = f.read()
                times[name] = float(m.mtime)
    return files, times, skipped, comment


def _read_dir(root: Path, budget: _Budget) -> tuple[dict[str, bytes], dict[str, float], list[str]]:
    files, times, skipped = {}, {}, []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        base = Path(dirpath)
        for n in sorted(filenames + [d for d in dirnames if (base / d).is_symlink()]):
            p = base / n
            rel = p.relative_to(root).as_posix()
            st = p.lstat()
            if not p.is_file() or p.is_symlink():
                skipped.append(rel)
                continue
            if _wanted(rel):
                budget.take(rel, st.st_size)
                files[rel] = p.read_bytes()
                times[rel] = st.st_mtime
    return files, times, skipped


def _git(root: Path) -> tuple[str, str]:
    git = shutil.which("git")
    if git is None or not (root / ".git").exists():
        return "", ""
    try:
        out = subprocess.run(
            [git, "-C", str(root), "log", "-1", "--format=%H %cs"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return "", ""
    return (out[0], out[1]) if len(out) == 2 else ("", "")


def excluded(path: str, patterns: tuple[str, ...]) -> bool:
    """A collection path matched by an ``--exclude`` glob, or under a folder it names."""
    return any(
        fnmatch.fnmatchcase(path, p) or path.startswith(p.rstrip("/") + "/") for p in patterns
    )


def read_snapshot(source: Path, subdir: str = "", exclude: tuple[str, ...] = ()) -> Snapshot:
    """Read a collection's rule and licence files from a folder or an archive."""
    label = f"collection {source.name}"
    budget = _Budget(label)
    commit = date = digest = ""
    try:
        if source.is_dir():
            files, times, skipped = _read_dir(source, budget)
            commit, date = _git(source)
        elif source.is_file() and source.name.lower().endswith(_ARCHIVES):
            digest = _sha256(source)
            if source.name.lower().endswith(".zip"):
                files, times, skipped, comment = _read_zip(source, budget)
            else:
                files, times, skipped, comment = _read_tar(source, budget)
            _strip_top(files, times)
            commit = comment.lower() if _COMMIT.match(comment.lower()) else ""
        elif not source.exists():
            raise RulesError(f"{label}: not found")
        else:
            raise RulesError(f"{label}: not a folder or an archive ({', '.join(_ARCHIVES)})")
    except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as e:
        raise RulesError(f"{label}: cannot be read: {e}") from e
    if subdir:
        sub = _safe(subdir, label) or ""
        files = {
            p.removeprefix(sub + "/"): b for p, b in files.items() if p.startswith(sub + "/")
        } | {p: b for p, b in files.items() if "/" not in p and _LICENCE.match(p)}
    files = {p: b for p, b in files.items() if not (is_rule_file(p) and excluded(p, exclude))}
    if not any(is_rule_file(p) for p in files):
        raise RulesError(f"{label}: no .yar or .yara files in it")
    return Snapshot(label, files, tuple(sorted(skipped)), commit, date or _day(times), digest)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def licence_files(snapshot: Snapshot) -> list[str]:
    """The collection's licence files at its top (the terms its rules are shared under)."""
    return sorted(p for p in snapshot.files if "/" not in p and _LICENCE.match(p))
