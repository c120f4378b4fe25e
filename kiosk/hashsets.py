"""Hash sets: load, validate, look up.

For now a set is ``hashsets/<name>/manifest.toml`` (name, version, algorithm, disposition,
category) plus ``<algorithm>.txt``, one hex digest a line. Lookups go through ``HashIndex`` so the
managed, memory-mapped store can replace the in-memory sets without touching the scanner.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import HashSetError
from kiosk.model import HashMatch

ALGORITHMS = {"md5": 32, "sha1": 40, "sha256": 64}
DISPOSITIONS = ("known_bad", "known_good")


@dataclass(frozen=True, slots=True)
class HashSet:
    """One set: what it is, where it is, and the digest of exactly what was loaded."""

    name: str
    version: str
    algorithm: str
    disposition: str
    category: str
    description: str
    path: Path
    count: int
    digest: str  # SHA-256 over the manifest and the digest file


def _field(meta: dict[str, object], key: str, where: Path) -> str:
    value = meta.get(key)
    if not isinstance(value, str) or not value:
        raise HashSetError(f"hash set {where.parent.name}: manifest.toml has no '{key}'")
    return value


def _read_set(set_dir: Path) -> tuple[HashSet, frozenset[bytes]]:
    manifest = set_dir / "manifest.toml"
    try:
        raw_manifest = manifest.read_bytes()
        meta = tomllib.loads(raw_manifest.decode("utf-8"))
    except FileNotFoundError as e:
        raise HashSetError(f"hash set {set_dir.name}: manifest.toml is missing") from e
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise HashSetError(f"hash set {set_dir.name}: manifest.toml cannot be read: {e}") from e
    name = _field(meta, "name", manifest)
    algorithm = _field(meta, "algorithm", manifest).lower()
    if algorithm not in ALGORITHMS:
        raise HashSetError(
            f"hash set {name}: algorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}"
        )
    disposition = _field(meta, "disposition", manifest)
    if disposition not in DISPOSITIONS:
        raise HashSetError(
            f"hash set {name}: disposition {disposition!r} is not one of {', '.join(DISPOSITIONS)}"
        )
    digest_file = set_dir / f"{algorithm}.txt"
    try:
        data = digest_file.read_bytes()
    except OSError as e:
        raise HashSetError(
            f"hash set {name}: {digest_file.name} cannot be read: {e.strerror}"
        ) from e
    width = ALGORITHMS[algorithm]
    digests: set[bytes] = set()
    for lineno, line in enumerate(data.decode("ascii", "replace").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if len(text) != width:
            raise HashSetError(
                f"hash set {name}: {digest_file.name} line {lineno}: not a {algorithm} digest"
            )
        try:
            digests.add(bytes.fromhex(text))
        except ValueError as e:
            raise HashSetError(f"hash set {name}: {digest_file.name} line {lineno}: not hex") from e
    h = hashlib.sha256()
    for part in (raw_manifest, data):
        h.update(len(part).to_bytes(8, "big") + part)
    hs = HashSet(
        name=name,
        version=_field(meta, "version", manifest),
        algorithm=algorithm,
        disposition=disposition,
        category=_field(meta, "category", manifest),
        description=str(meta.get("description", "")),
        path=set_dir,
        count=len(digests),
        digest=h.hexdigest(),
    )
    return hs, frozenset(digests)


def find_sets(hashsets_dir: Path) -> list[Path]:
    """Set directories under ``hashsets_dir``: each sub-directory holding a manifest.toml."""
    if not hashsets_dir.is_dir():
        raise HashSetError(f"hash sets directory not found: {hashsets_dir}")
    return sorted(
        p for p in hashsets_dir.iterdir() if p.is_dir() and (p / "manifest.toml").exists()
    )


class HashIndex:
    """Every loaded set, looked up by the digest its algorithm uses."""

    def __init__(self, sets: list[tuple[HashSet, frozenset[bytes]]]) -> None:
        self.sets = tuple(s for s, _ in sets)
        self._entries = sets

    @classmethod
    def load(cls, hashsets_dir: Path | None) -> HashIndex:
        if hashsets_dir is None:
            return cls([])
        loaded = [_read_set(p) for p in find_sets(hashsets_dir)]
        names = [s.name for s, _ in loaded]
        if len(set(names)) != len(names):
            raise HashSetError(f"two hash sets share a name in {hashsets_dir}")
        return cls(loaded)

    def lookup(self, digests: dict[str, bytes]) -> tuple[HashMatch, ...]:
        """Sets listing any of the file's digests (``{"md5": b"…", "sha1": …, "sha256": …}``)."""
        out = []
        for hs, members in self._entries:
            d = digests.get(hs.algorithm)
            if d is not None and d in members:
                out.append(
                    HashMatch(hs.name, hs.version, hs.algorithm, hs.disposition, hs.category)
                )
        return tuple(out)
