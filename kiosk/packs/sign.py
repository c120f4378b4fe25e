"""Signed manifests for content directories (rule packs), and the highest-version ledger.

A manifest is RFC 8785 JSON ``{kind, name, version, created, expires, files: {relpath: sha256}}``
in a DSSE envelope (payload type ``application/vnd.kiosk.manifest+json``) written as
``manifest.dsse.json`` inside the directory it covers. It lists *every* file there, so a changed,
removed or added file — a planted ``.yar`` included — is refused, not only an edited one. Who may
sign is the trust store's business (``kiosk.trust.signing``), never the envelope's.

Rollback: ``$KIOSK_HOME/rulepack-versions.json`` holds the highest version of each pack the kiosk
has used, ``{"rulepack:<name>": "<version>"}``; a lower version is refused. Which version is
lower, and whether a key and an expiry still allow a manifest, is ``kiosk.trust.policy``'s
decision, the same for packs and hash sets; this module only reads and writes the files.

This module knows nothing of YARA: ``kiosk.packs.load`` decides what a refusal means for a scan.
It serialises with ``rfc8785`` directly (the same bytes as ``kiosk.canonical`` for manifests).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import rfc8785

from kiosk.canonical import parse_time_text, utc_text_seconds
from kiosk.errors import TimeTextError, VerificationError
from kiosk.trust.policy import Used, VersionLedger, signature_problem
from kiosk.trust.signing import PUBLISHING, Signer, TrustStore, open_envelope, verify_envelope

MANIFEST_FILE = "manifest.dsse.json"
MANIFEST_PAYLOAD_TYPE = "application/vnd.kiosk.manifest+json"
VERSIONS_FILE = "rulepack-versions.json"
_MAX_LISTED = 3  # files named in a tamper message; the rest are counted


def _parse_time(value: object, what: str, label: str) -> datetime:
    try:
        return parse_time_text(value)
    except TimeTextError as e:
        raise VerificationError(
            f"{label}: the manifest's {what} is not an RFC 3339 UTC time"
        ) from e


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
                "created": utc_text_seconds(self.created),
                "expires": utc_text_seconds(self.expires),
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
    key, payload = verify_envelope(raw, trust, label, MANIFEST_PAYLOAD_TYPE, purpose=PUBLISHING)
    m = _parse_manifest(payload, label)
    if (m.kind, m.name) != (kind, name):
        raise VerificationError(f"{label}: the signed manifest is for {m.kind} {m.name!r}")
    problem = signature_problem(
        key, m.created, now, expires=m.expires, version=m.version, future_ok=True
    )
    if problem:
        raise VerificationError(f"{label}: {problem}")
    disk = content_digests(root, label)
    changed = sorted(p for p in m.files if p in disk and disk[p] != m.files[p])
    missing = sorted(set(m.files) - set(disk))
    added = sorted(set(disk) - set(m.files))
    for what, names in (("changed", changed), ("missing", missing), ("not signed", added)):
        if names:
            raise VerificationError(
                f"{label}: tampered since it was signed: {what}: {_listed(names)}"
            )
    return VerifiedManifest(m, key.keyid, hashlib.sha256(raw).hexdigest())


# --------------------------------------------------------------------------- versions


@dataclass(frozen=True, slots=True)
class PackLedgerLayout:
    """``rulepack-versions.json``: ``{"rulepack:<name>": "<version>"}``, keys sorted, indent 2.

    Keys without a ``kind:`` prefix are someone else's: kept as they are on every write, never
    read. A recorded value that is not text makes the file damaged.
    """

    lock_name: str = VERSIONS_FILE + ".lock"

    def versions(self, data: Any) -> dict[str, str] | None:
        if data is None:
            return {}
        if not isinstance(data, dict):
            return None
        ours = {k: v for k, v in data.items() if ":" in k}
        return ours if all(isinstance(v, str) for v in ours.values()) else None

    def updated(self, data: Any, raised: list[Used], now: datetime) -> Any:
        body = dict(data or {})
        body.update({u.key: u.version for u in raised})
        return dict(sorted(body.items()))


def pack_ledger(home: Path) -> VersionLedger:
    """This kiosk's record of the highest version of each rule pack used."""
    return VersionLedger(home / VERSIONS_FILE, PackLedgerLayout())
