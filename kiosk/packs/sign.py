"""Signed manifests for content directories (rule packs), and the highest-version ledger.

A manifest is RFC 8785 JSON ``{kind, name, version, created, expires, files: {relpath: sha256}}``
in a DSSE envelope (payload type ``application/vnd.kiosk.manifest+json``) written as
``manifest.dsse.json`` inside the directory it covers. It lists *every* file there, so a changed,
removed or added file — a planted ``.yar`` included — is refused, not only an edited one. Who may
sign is the trust store's business (``kiosk.trust.signing``), never the envelope's.

Rollback: ``$KIOSK_HOME/rulepack-versions.json`` holds the highest version of each pack the kiosk
has used, ``{"rulepack:<name>": "<version>"}``; a lower version is refused.
Versions compare per dot-separated component, numerically when both components are numbers,
otherwise as text, missing components counting as 0 (so ``1.0`` equals ``1.0.0``).

This module knows nothing of YARA: ``kiosk.packs.load`` decides what a refusal means for a scan.
It serialises with ``rfc8785`` directly (the same bytes as ``kiosk.canonical`` for manifests).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rfc8785

from kiosk.trust.signing import (
    Signer,
    TrustStore,
    VerificationError,
    open_envelope,
    verify_envelope,
)

MANIFEST_FILE = "manifest.dsse.json"
MANIFEST_PAYLOAD_TYPE = "application/vnd.kiosk.manifest+json"
VERSIONS_FILE = "rulepack-versions.json"
_TIME = "%Y-%m-%dT%H:%M:%SZ"
_MAX_LISTED = 3  # files named in a tamper message; the rest are counted


def time_text(t: datetime) -> str:
    """An aware datetime as RFC 3339 UTC to the second, the form manifests use."""
    if t.tzinfo is None:
        raise ValueError("naive datetime in a manifest")
    return t.astimezone(UTC).strftime(_TIME)


def _parse_time(value: object, what: str, label: str) -> datetime:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            t = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if t.tzinfo is not None:
                return t
    raise VerificationError(f"{label}: the manifest's {what} is not an RFC 3339 UTC time")


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a publisher signs: which content, which version, how long it may be used."""

    kind: str
    name: str
    version: str
    created: datetime
    expires: datetime
    files: dict[str, str]  # "/"-joined path relative to the directory -> SHA-256 hex

    def payload(self) -> bytes:
        out: bytes = rfc8785.dumps(
            {
                "kind": self.kind,
                "name": self.name,
                "version": self.version,
                "created": time_text(self.created),
                "expires": time_text(self.expires),
                "files": dict(sorted(self.files.items())),
            }
        )
        return out


@dataclass(frozen=True, slots=True)
class VerifiedManifest:
    manifest: Manifest
    keyid: str
    envelope_sha256: str


def content_digests(root: Path, label: str) -> dict[str, str]:
    """SHA-256 of every file under ``root`` but the manifest itself.

    Symbolic links and special files are refused: a link could point the signed name at
    content the publisher never saw.
    """
    out: dict[str, str] = {}
    try:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            base = Path(dirpath)
            for name in sorted(dirnames + filenames):
                p = base / name
                rel = p.relative_to(root).as_posix()
                if p.is_symlink():
                    raise VerificationError(f"{label}: {rel} is a symbolic link; not allowed")
                if p.is_dir() or rel == MANIFEST_FILE:
                    continue
                if not p.is_file():
                    raise VerificationError(f"{label}: {rel} is not a regular file")
                h = hashlib.sha256()
                with p.open("rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                out[rel] = h.hexdigest()
    except OSError as e:
        raise VerificationError(f"{label}: cannot read {e.filename}: {e.strerror or e}") from e
    return dict(sorted(out.items()))


def build_manifest(
    kind: str, name: str, version: str, root: Path, created: datetime, expires: datetime
) -> Manifest:
    if expires <= created:
        raise VerificationError(f"{kind} {name}: the expiry must be after the signing time")
    return Manifest(kind, name, version, created, expires, content_digests(root, f"{kind} {name}"))


def write_manifest(root: Path, manifest: Manifest, signer: Signer) -> Path:
    """Sign ``manifest`` and write it atomically as ``root/manifest.dsse.json``."""
    env = signer.envelope(manifest.payload(), payload_type=MANIFEST_PAYLOAD_TYPE)
    path = root / MANIFEST_FILE
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(env, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise VerificationError(f"cannot write {path}: {e.strerror or e}") from e
    return path


def _parse_manifest(payload: bytes, label: str) -> Manifest:
    try:
        data = json.loads(payload)
    except ValueError as e:
        raise VerificationError(f"{label}: the signed manifest is not JSON") from e
    if not isinstance(data, dict):
        raise VerificationError(f"{label}: the signed manifest is not an object")
    files = data.get("files")
    fields = (data.get("kind"), data.get("name"), data.get("version"))
    if not all(isinstance(v, str) and v for v in fields) or not isinstance(files, dict):
        raise VerificationError(f"{label}: the signed manifest lacks kind, name, version or files")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise VerificationError(f"{label}: the signed manifest's file list is malformed")
    return Manifest(
        kind=str(data["kind"]),
        name=str(data["name"]),
        version=str(data["version"]),
        created=_parse_time(data.get("created"), "creation time", label),
        expires=_parse_time(data.get("expires"), "expiry", label),
        files=dict(files),
    )


def read_unverified(root: Path) -> Manifest | None:
    """The manifest a directory carries, signature *not* checked; None if absent or unreadable.

    Only for the signing side, to notice a version number reused for different content.
    """
    try:
        _, payload, _, _ = open_envelope((root / MANIFEST_FILE).read_bytes(), "manifest")
        return _parse_manifest(payload, "manifest")
    except (OSError, VerificationError):
        return None


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


def verify_manifest(
    root: Path, kind: str, name: str, trust: TrustStore, now: datetime, label: str
) -> VerifiedManifest:
    """Check signature, signer, coverage of every file, then expiry; raise with the reason.

    ``label`` starts every message ("rule pack demo"), so the officer sees which pack it was.
    """
    path = root / MANIFEST_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError as e:
        raise VerificationError(f"{label}: not signed (no {MANIFEST_FILE})") from e
    except OSError as e:
        raise VerificationError(f"{label}: cannot read {MANIFEST_FILE}: {e.strerror}") from e
    key, payload = verify_envelope(raw, trust, label, MANIFEST_PAYLOAD_TYPE)
    m = _parse_manifest(payload, label)
    if (m.kind, m.name) != (kind, name):
        raise VerificationError(f"{label}: the signed manifest is for {m.kind} {m.name!r}")
    problem = key.problem_at(m.created)
    if problem:
        raise VerificationError(f"{label}: {problem}, when the manifest says it was signed")
    if key.revoked_at is not None and now >= key.revoked_at:
        raise VerificationError(f"{label}: signed by key {key.keyid[:16]}…, since revoked")
    disk = content_digests(root, label)
    changed = sorted(p for p in m.files if p in disk and disk[p] != m.files[p])
    missing = sorted(set(m.files) - set(disk))
    added = sorted(set(disk) - set(m.files))
    for what, names in (("changed", changed), ("missing", missing), ("not signed", added)):
        if names:
            raise VerificationError(
                f"{label}: tampered since it was signed: {what}: {_listed(names)}"
            )
    if now >= m.expires:
        raise VerificationError(
            f"{label}: version {m.version} expired at {time_text(m.expires)}; "
            "a newly signed version is needed"
        )
    return VerifiedManifest(m, key.keyid, hashlib.sha256(raw).hexdigest())


# --------------------------------------------------------------------------- versions

_NUMBER = re.compile(r"^[0-9]+$")


def _version_key(version: str) -> list[tuple[int, int | str]]:
    return [(0, int(c)) if _NUMBER.match(c) else (1, c) for c in version.split(".")]


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is lower than, equal to or higher than ``b``."""
    ka, kb = _version_key(a), _version_key(b)
    pad: tuple[int, int | str] = (0, 0)
    ka += [pad] * (len(kb) - len(ka))
    kb += [pad] * (len(ka) - len(kb))
    for x, y in zip(ka, kb, strict=True):
        if x != y:
            # (0, int) and (1, str) never compare across kinds: the first elements differ
            return -1 if x < y else 1
    return 0


class VersionLedger:
    """``rulepack-versions.json``: the highest version of each pack used on this kiosk.

    Shared with hash sets (``hashset:<name>`` keys); writes take a lock and keep the maximum,
    so two writers never lower an entry. Keys without a ``kind:`` prefix are someone else's:
    kept as they are on every write, never read.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def _raw(self) -> dict[str, Any]:
        try:
            data: Any = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise VerificationError(
                f"the version record {self.path} is unreadable; downgrades cannot be checked"
            ) from e
        ours = {k: v for k, v in data.items() if ":" in k} if isinstance(data, dict) else None
        if ours is None or not all(isinstance(v, str) for v in ours.values()):
            raise VerificationError(
                f"the version record {self.path} is damaged; downgrades cannot be checked"
            )
        return data  # type: ignore[no-any-return]

    def load(self) -> dict[str, str]:
        return {k: str(v) for k, v in self._raw().items() if ":" in k}

    def check(self, key: str, version: str, label: str) -> None:
        """Refuse ``version`` when a higher one was already used here."""
        seen = self.load().get(key)
        if seen is not None and compare_versions(version, seen) < 0:
            raise VerificationError(
                f"{label}: version {version} is older than version {seen}, already used on "
                "this kiosk (downgrade refused)"
            )

    def record(self, versions: dict[str, str]) -> None:
        if not versions:
            return
        lock = self.path.with_name(self.path.name + ".lock")
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise VerificationError(f"cannot record versions in {self.path}: {e.strerror}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = self._raw()
            for key, version in versions.items():
                if key not in data or compare_versions(version, str(data[key])) > 0:
                    data[key] = version
            tmp.write_text(json.dumps(dict(sorted(data.items())), indent=2) + "\n", "utf-8")
            tmp.replace(self.path)
        except OSError as e:
            raise VerificationError(f"cannot record versions in {self.path}: {e.strerror}") from e
        finally:
            os.close(fd)
