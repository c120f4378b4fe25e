"""Hash sets at scan time: find the active version of each set, verify it, memory-map it, look up.

The store (built by ``hashset_build``; layout in shared/reference/hashsets-and-rule-packs.md §2.3)::

    hashsets/<name>/current                 the active version, one line
    hashsets/<name>/<version>/manifest.json name, version, disposition, counts, source digests
    hashsets/<name>/<version>/<alg>.hpk     sorted fixed-width digests + prefix bucket table
    hashsets/<name>/<version>/props.sqlite  per-hash properties, read only on a hit (optional)
    hashsets/<name>/<version>/manifest.dsse.json   the signature (``kiosk hashsets sign``)

Why this shape: a lookup is one bucket-table read and a short binary search over an ``mmap``, so
memory does not grow with the set (the page cache holds what is hot, shared by every worker) and
pure Python does ≥ 500 k lookups/s (bench/hashsets.md). A version directory is never changed
after it is installed; an import builds a new one and flips ``current``.

Trust (``HashIndex.load``): a set is used only if its signature verifies against the kiosk's trust
store, every file matches it, it has not expired, and its version is not lower than one this
kiosk has already accepted (``$KIOSK_HOME/hashset-versions.json``). ``dev=True`` — forensic staff
only — accepts a set failing any of these, and says so in the audit log and in the set's record.
Worker processes load with ``verified=`` the records the parent checked: the same version
directories, each file opened only if it is still the very file the parent hashed (its
``FileId``: inode, size, change time), so what a worker matches is exactly what was verified,
at the cost of one ``fstat`` per file rather than hashing gigabytes again per worker. A file
swapped or rewritten after verification stops the worker, and so the run, with the reason;
``HashIndex.changed`` checks again when the scan ends (a rewrite while mapped).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.errors import HashSetError, SigningError, VerificationError
from kiosk.hashsets.hpk import FileId, Pack, changed
from kiosk.hashsets.perceptual import ALGORITHM, DEFAULT_THRESHOLD, nearest
from kiosk.hashsets.trust import Verdict, check_version, set_ledger
from kiosk.model import HashMatch
from kiosk.trust.policy import Used, VersionLedger
from kiosk.trust.signing import TrustStore, kiosk_home

if TYPE_CHECKING:  # kiosk.trust.audit imports kiosk.reports.report, which imports this module
    from kiosk.trust.audit import AuditLog

ALGORITHMS = {"md5": 16, "sha1": 20, "sha256": 32, "pdq": 32}  # raw digest widths
# strongest first: the match names the best evidence; "pdq" (perceptual sets,
# kiosk.hashsets.perceptual) is never looked up exactly, only searched by ``HashIndex.near``
LOOKUP_ORDER = ("sha256", "sha1", "md5", "pdq")
DISPOSITIONS = ("known_bad", "known_good")
MANIFEST = "manifest.json"
CURRENT = "current"
PROPS = "props.sqlite"
MANIFEST_FORMAT = "kiosk.hashset/1"
SET_INTEGRITY = "hash set integrity: "  # a result's reason: the run fails (kiosk.engine.triage)
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


def check_name(kind: str, value: str) -> str:
    """A set name or version becomes a directory name: keep it to a safe alphabet."""
    if not NAME_RE.fullmatch(value):
        raise HashSetError(
            f"hash set {kind} {value!r}: use letters, digits, '.', '_' and '-' (80 at most)"
        )
    return value


@dataclass(frozen=True, slots=True)
class HashSet:
    """One set version: what it is, where it is, and the digest of exactly what was loaded."""

    name: str
    version: str
    algorithm: str  # the algorithms it holds, strongest first, joined by "+"
    disposition: str
    category: str
    description: str
    path: Path  # the version directory
    count: int  # digests of its largest algorithm (≈ records)
    digest: str  # SHA-256 of manifest.json, which holds the SHA-256 of every other file
    algorithms: tuple[str, ...] = ()
    signed_by: str | None = None  # key id that verified it; None when loaded unverified (dev)
    dev_override: tuple[str, ...] = ()  # the problems accepted because of --dev
    files: tuple[tuple[str, FileId], ...] = ()  # each file's identity when it was hashed
    threshold: int | None = None  # a perceptual (PDQ) set's largest matching Hamming distance

    def file_id(self, name: str) -> FileId | None:
        return dict(self.files).get(name)


# --------------------------------------------------------------------------- manifests


def read_manifest(version_dir: Path, name: str | None = None) -> tuple[dict[str, Any], bytes]:
    """The manifest of one version directory, checked for shape (not yet for trust)."""
    name = name or version_dir.parent.name
    where = f"hash set {name}"
    try:
        raw = (version_dir / MANIFEST).read_bytes()
        m = json.loads(raw)
    except FileNotFoundError as e:
        raise HashSetError(f"{where}: {version_dir.name}/{MANIFEST} is missing") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HashSetError(f"{where}: {MANIFEST} is not readable JSON") from e
    if not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT:
        raise HashSetError(f"{where}: {MANIFEST} is not a {MANIFEST_FORMAT} manifest")
    algos = m.get("algorithms")
    ok = (
        isinstance(algos, dict)
        and algos
        and all(a in ALGORITHMS and isinstance(v, dict) for a, v in algos.items())
        and m.get("disposition") in DISPOSITIONS
        and all(isinstance(m.get(k), str) for k in ("name", "version", "category"))
    )
    if not ok:
        raise HashSetError(f"{where}: {MANIFEST} lacks name, version, disposition or algorithms")
    if (m["name"], m["version"]) != (name, version_dir.name):
        raise HashSetError(
            f"{where}: its manifest names {m['name']} {m['version']}, "
            f"but it is stored as {name}/{version_dir.name}"
        )
    return m, raw


def active_version(set_dir: Path) -> Path:
    """The version directory that ``current`` names."""
    try:
        version = (set_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError as e:
        hint = (
            ": it is in the old manifest.toml format; re-import it with 'kiosk hashsets import'"
            if (set_dir / "manifest.toml").exists()
            else " (no 'current' file)"
        )
        raise HashSetError(f"{set_dir} is not a hash set{hint}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise HashSetError(f"hash set {set_dir.name}: 'current' cannot be read") from e
    check_name("version", version)
    if not (set_dir / version).is_dir():
        raise HashSetError(f"hash set {set_dir.name}: active version {version} is missing")
    return set_dir / version


def find_sets(hashsets_dir: Path) -> list[Path]:
    """Every set directory in the store, sorted; hidden entries are imports in progress."""
    if not hashsets_dir.is_dir():
        raise HashSetError(f"hash sets directory not found: {hashsets_dir}")
    return sorted(p for p in hashsets_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


# --------------------------------------------------------------------------- the index


class _Loaded:
    """A set in use: its record, its mapped packs, and its property table opened on first hit."""

    def __init__(self, info: HashSet, manifest: dict[str, Any]) -> None:
        """Map the set's packs; a trusted set's packs are checked page by page as read (a set
        taken in ``--dev`` despite its problems is not: it is marked untrusted already)."""
        self.info = info
        self.packs: list[tuple[str, Pack]] = []
        try:
            for algo in info.algorithms:
                entry = manifest["algorithms"][algo]
                file = str(entry["file"])
                pages = None if info.dev_override else _page_list(info, entry.get("pages"))
                pack = Pack(info.path / file, ALGORITHMS[algo], info.file_id(file), pages)
                self.packs.append((algo, pack))
                if pack.count != entry.get("count"):
                    raise HashSetError(
                        f"hash set {info.name}: {entry['file']} holds {pack.count} digests, "
                        f"its manifest says {entry.get('count')}"
                    )
        except BaseException:
            self.close()
            raise
        props = manifest.get("properties")
        self.props_path = info.path / str(props["file"]) if isinstance(props, dict) else None
        self.per_hash_category = bool(manifest.get("per_hash_category")) and bool(self.props_path)
        self._db: sqlite3.Connection | None = None
        self._db_fd: int | None = None

    def _props_db(self) -> sqlite3.Connection | None:
        """The property table, opened on first hit, and only if it is the file verified.

        SQLite is given this process's open descriptor (``/proc/self/fd/N``), not the path, so
        the file checked is the file read.
        """
        if self.props_path is None:
            return None
        if self._db is None:
            expect = self.info.file_id(self.props_path.name)
            try:
                fd = os.open(self.props_path, os.O_RDONLY)
            except OSError as e:
                raise HashSetError(f"hash set {self.info.name}: {PROPS} cannot be opened") from e
            if expect is not None and FileId.of(os.fstat(fd)) != expect:
                os.close(fd)
                raise HashSetError(changed(self.props_path))
            uri = f"file:/proc/self/fd/{fd}?mode=ro&immutable=1"
            try:
                self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            except sqlite3.Error as e:
                os.close(fd)
                raise HashSetError(f"hash set {self.info.name}: {PROPS} cannot be opened") from e
            self._db_fd = fd
        return self._db

    def category(self, digest: bytes) -> str:
        if not self.per_hash_category:
            return self.info.category
        db = self._props_db()
        if db is None:
            return self.info.category
        rows = db.execute(
            "SELECT DISTINCT category FROM props WHERE digest = ? AND category IS NOT NULL "
            "ORDER BY category",
            (digest,),
        ).fetchall()
        return ", ".join(str(r[0]) for r in rows) or self.info.category

    def properties(self, digest: bytes) -> list[dict[str, Any]]:
        db = self._props_db()
        if db is None:
            return []
        rows = db.execute(
            "SELECT DISTINCT category, props FROM props WHERE digest = ? ORDER BY props",
            (digest,),
        ).fetchall()
        return [{**json.loads(p), **({"category": c} if c else {})} for c, p in rows]

    def close(self) -> None:
        for _, pack in self.packs:
            pack.close()
        self.packs = []
        db, self._db = getattr(self, "_db", None), None
        if db is not None:
            db.close()
        fd, self._db_fd = getattr(self, "_db_fd", None), None
        if fd is not None:
            os.close(fd)


def _page_list(info: HashSet, pages: object) -> bytes | None:
    """A pack's verified page list (None: an older set, hashed whole when it was verified).

    Read by the identity recorded when it was verified, and checked against the manifest's
    digest of it (a few hundred kilobytes for a gigabyte pack, so each process checks its own).
    """
    if not isinstance(pages, dict):
        return None
    path = info.path / str(pages.get("file"))
    expect = info.file_id(path.name)
    try:
        with path.open("rb") as f:
            same = expect is None or FileId.of(os.fstat(f.fileno())) == expect
            data = f.read()
    except OSError as e:
        raise HashSetError(f"{changed(path)}: {e.strerror or e}") from e
    if not same or hashlib.sha256(data).hexdigest() != pages.get("sha256"):
        raise HashSetError(changed(path))
    return data


def _hashset(version_dir: Path, manifest: dict[str, Any], raw: bytes, **kw: Any) -> HashSet:
    algorithms = tuple(a for a in LOOKUP_ORDER if a in manifest["algorithms"])
    counts = [int(manifest["algorithms"][a].get("count", 0)) for a in algorithms]
    if ALGORITHM in algorithms:
        kw["threshold"] = int(manifest.get("pdq_threshold", DEFAULT_THRESHOLD))
    return HashSet(
        name=manifest["name"],
        version=manifest["version"],
        algorithm="+".join(algorithms),
        disposition=manifest["disposition"],
        category=manifest["category"],
        description=str(manifest.get("description", "")),
        path=version_dir,
        count=max(counts),
        digest=hashlib.sha256(raw).hexdigest(),
        algorithms=algorithms,
        **kw,
    )


@dataclass(frozen=True, slots=True)
class Inspection:
    """One set's active version, read and checked: the record it would load as, and why not."""

    info: HashSet
    manifest: dict[str, Any]
    verdict: Verdict
    problems: tuple[str, ...]  # the verdict's, and a version lower than one already used here


def trust_context() -> tuple[TrustStore, VersionLedger]:
    """This kiosk's trust store and record of versions used (both under ``$KIOSK_HOME``)."""
    home = kiosk_home()
    try:
        trust = TrustStore.load(home / "trust.json", missing_ok=True)
    except SigningError as e:
        raise HashSetError(f"hash sets cannot be verified: {e}") from e
    return trust, set_ledger(home)


def inspect_set(
    set_dir: Path, trust: TrustStore, ledger: VersionLedger, now: datetime
) -> Inspection:
    """Read and check a set without using it (``kiosk hashsets list/info`` show the result)."""
    version_dir = active_version(set_dir)
    manifest, raw = read_manifest(version_dir)
    verdict = check_version(version_dir, manifest, trust, now)
    problems = list(verdict.problems)
    hashed = {name: digest for name, digest, _ in verdict.files}
    if hashed.get(MANIFEST) != hashlib.sha256(raw).hexdigest():
        problems.append(f"{MANIFEST} changed while it was being verified")
    try:
        downgrade = ledger.check(manifest["name"], manifest["version"])
    except VerificationError as e:
        raise HashSetError(str(e)) from e
    if downgrade:
        problems.append(downgrade)
    info = _hashset(
        version_dir,
        manifest,
        raw,
        signed_by=None if problems else verdict.keyid,
        dev_override=tuple(problems),
        files=tuple((name, fid) for name, _, fid in verdict.files),
    )
    return Inspection(info, manifest, verdict, tuple(problems))


class HashIndex:
    """Every loaded set, looked up with the file's MD5, SHA-1 and SHA-256."""

    def __init__(self, loaded: list[_Loaded]) -> None:
        self._loaded = loaded
        self.sets = tuple(s.info for s in loaded)

    @classmethod
    def load(
        cls,
        hashsets_dir: Path | None,
        *,
        dev: bool = False,
        audit: AuditLog | None = None,
        verified: tuple[HashSet, ...] | None = None,
        now: datetime | None = None,
    ) -> HashIndex:
        """Load every set in ``hashsets_dir``, refusing any that is not trusted (unless ``dev``).

        ``verified``: in a worker process, the sets the parent verified; exactly those files are
        opened, each only if its identity is the one the parent recorded while hashing it (a
        signature check there would hash every pack once more per worker: seconds per gigabyte,
        bench/hashsets.md). ``audit`` receives one event per set loaded or refused.
        """
        if verified is not None:
            return cls._load_verified(verified)
        if hashsets_dir is None:
            return cls([])
        now = now or datetime.now(UTC)
        trust, ledger = trust_context()
        if dev and audit:
            audit.append("hashsets_dev_mode", sets=len(find_sets(hashsets_dir)))
        loaded: list[_Loaded] = []
        try:
            for set_dir in find_sets(hashsets_dir):
                found = inspect_set(set_dir, trust, ledger, now)
                loaded.append(cls._load_trusted(found, dev, audit))
            signed = [s.info for s in loaded if s.info.signed_by]  # dev overrides raise no bar
            try:
                ledger.record((Used(i.name, i.version, i.digest) for i in signed), now)
            except VerificationError as e:
                raise HashSetError(str(e)) from e
        except BaseException:
            for s in loaded:
                s.close()
            raise
        return cls(loaded)

    @staticmethod
    def _load_trusted(found: Inspection, dev: bool, audit: AuditLog | None) -> _Loaded:
        info, problems = found.info, found.problems
        if problems and not dev:
            if audit:
                audit.append(
                    "hashset_refused", name=info.name, version=info.version, reasons=list(problems)
                )
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise HashSetError(f"hash set {info.name} {info.version} refused: {problems[0]}{more}")
        loaded = _Loaded(info, found.manifest)
        if audit:
            audit.append(
                "hashset_loaded",
                name=info.name,
                version=info.version,
                digest=info.digest,
                signed_by=info.signed_by,
                dev_override=list(problems),
            )
        return loaded

    @classmethod
    def _load_verified(cls, verified: tuple[HashSet, ...]) -> HashIndex:
        """The parent's sets, each file opened only if it is still the file the parent hashed."""
        loaded: list[_Loaded] = []
        try:
            for info in verified:
                manifest_path = info.path / MANIFEST
                expect = info.file_id(MANIFEST)
                try:
                    with manifest_path.open("rb") as f:
                        same = expect is not None and FileId.of(os.fstat(f.fileno())) == expect
                        raw = f.read()
                except OSError as e:
                    raise HashSetError(f"{changed(manifest_path)}: {e.strerror or e}") from e
                if not same or hashlib.sha256(raw).hexdigest() != info.digest:
                    raise HashSetError(changed(manifest_path))
                loaded.append(_Loaded(info, json.loads(raw)))
        except BaseException:
            for s in loaded:
                s.close()
            raise
        return cls(loaded)

    def changed(self) -> str | None:
        """Why a file of a loaded set is no longer the one verified (checked when a scan ends:
        a file rewritten in place under a worker's map); None if every one is unchanged."""
        for s in self._loaded:
            for name, expect in s.info.files:
                path = s.info.path / name
                try:
                    same = FileId.of(path.stat()) == expect
                except OSError:
                    same = False
                if not same:
                    return changed(path)
        return None

    def lookup(self, digests: dict[str, bytes]) -> tuple[HashMatch, ...]:
        """Sets listing any of the file's digests (``{"md5": b"…", "sha1": …, "sha256": …}``)."""
        out = []
        for s in self._loaded:
            for algo, pack in s.packs:
                d = digests.get(algo) if algo != ALGORITHM else None
                if d is not None and pack.contains(d):
                    i = s.info
                    out.append(HashMatch(i.name, i.version, algo, i.disposition, s.category(d)))
                    break
        return tuple(out)

    def perceptual(self) -> bool:
        """Whether any loaded set is a perceptual (PDQ) set: only then are pictures hashed."""
        return any(ALGORITHM in s.info.algorithms for s in self._loaded)

    def near(self, pdq: bytes) -> tuple[HashMatch, ...]:
        """Perceptual sets holding a hash within their threshold of this picture's PDQ hash,
        each with the distance of the nearest one and its category."""
        out = []
        for s in self._loaded:
            for algo, pack in s.packs:
                if algo != ALGORITHM:
                    continue
                i = s.info
                limit = DEFAULT_THRESHOLD if i.threshold is None else i.threshold
                found = nearest(*pack.records(), pdq, limit)
                if found is not None:
                    distance, record = found
                    out.append(
                        HashMatch(
                            i.name,
                            i.version,
                            algo,
                            i.disposition,
                            s.category(record),
                            distance,
                            limit,
                        )
                    )
        return tuple(out)

    def properties(self, name: str, digest: bytes) -> list[dict[str, Any]]:
        """The side-table records of one digest in one set (for ``kiosk hashsets lookup``)."""
        for s in self._loaded:
            if s.info.name == name:
                return s.properties(digest)
        return []

    def close(self) -> None:
        for s in self._loaded:
            s.close()

    def __enter__(self) -> HashIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
