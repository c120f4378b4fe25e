"""Whether a hash-set version may be used: its signature, its files, its expiry, its version.

A knowledge base that decides what an officer sees must come from the lab, whole and current. So
a set is signed (``kiosk hashsets sign``): a DSSE envelope (kiosk.trust.signing) whose payload
is the RFC 8785 JSON ``{kind: "hashset", name, version, created, expires, files: {name: sha256}}``,
verified against the kiosk's trust store. The highest version accepted per set name is kept in
``$KIOSK_HOME/hashset-versions.json``, so an older, validly signed set cannot be slipped back in
(rollback). ``check_version`` lists every reason not to trust a version; the caller refuses on
any, or — in ``--dev`` mode — records them. Deleting hashset-versions.json resets the rollback
guard on that kiosk: it is local state, protected like the audit log beside it.
"""

from __future__ import annotations

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

from kiosk.errors import HashSetError
from kiosk.trust.signing import TrustStore, VerificationError, verify_envelope

SIGNATURE = "manifest.dsse.json"
PAYLOAD_TYPE = "application/vnd.kiosk.manifest+json"
VERSIONS_FORMAT = "kiosk.hashset-versions/1"


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Order versions by their numeric and alphabetic runs: ``1.10`` > ``1.9``, ``2025.03.1``."""
    return tuple(
        (0, int(p)) if p.isdigit() else (1, p) for p in re.findall(r"\d+|[A-Za-z]+", version)
    )


def utc_text(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else None


def file_digests(version_dir: Path) -> dict[str, str]:
    """SHA-256 of every file of a version except its signature: what a signature covers."""
    out = {}
    for p in sorted(version_dir.iterdir()):
        if p.name == SIGNATURE or p.name.startswith("."):
            continue
        if not p.is_file():
            raise HashSetError(f"hash set {version_dir.parent.name}: unexpected entry {p.name}")
        with p.open("rb") as f:
            out[p.name] = hashlib.file_digest(f, "sha256").hexdigest()
    return out


def signed_payload(
    version_dir: Path, manifest: dict[str, Any], created: datetime, expires: datetime | None
) -> bytes:
    """The bytes a hash-set signature covers."""
    body = {
        "kind": "hashset",
        "name": manifest["name"],
        "version": manifest["version"],
        "created": utc_text(created),
        "expires": utc_text(expires) if expires else None,
        "files": file_digests(version_dir),
    }
    return bytes(rfc8785.dumps(body))


def _manifest_problems(manifest: dict[str, Any], actual: dict[str, str]) -> list[str]:
    entries = [*manifest["algorithms"].values(), manifest.get("properties")]
    return [
        f"{e.get('file')} does not match its manifest (tampered)"
        for e in entries
        if isinstance(e, dict) and actual.get(str(e.get("file"))) != e.get("sha256")
    ]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the signature check found; ``problems`` empty means the version may be used."""

    keyid: str | None
    signed_at: str | None
    expires: str | None
    problems: tuple[str, ...]


def check_version(
    version_dir: Path, manifest: dict[str, Any], trust: TrustStore, now: datetime
) -> Verdict:
    """Every reason not to trust one version; hashes each of its files once to know."""
    actual = file_digests(version_dir)
    problems = _manifest_problems(manifest, actual)
    try:
        raw = (version_dir / SIGNATURE).read_bytes()
    except FileNotFoundError:
        problems.append(f"unsigned (no {SIGNATURE}): sign it, or use --dev")
        return Verdict(None, None, None, tuple(problems))
    except OSError as e:
        problems.append(f"its signature cannot be read: {e.strerror or e}")
        return Verdict(None, None, None, tuple(problems))
    try:
        key, payload_bytes = verify_envelope(raw, trust, "signature", PAYLOAD_TYPE)
        payload = json.loads(payload_bytes)
    except (VerificationError, ValueError) as e:
        return Verdict(None, None, None, (*problems, str(e)))
    if not isinstance(payload, dict) or payload.get("kind") != "hashset":
        return Verdict(key.keyid, None, None, (*problems, "the signature is not for a hash set"))
    if (payload.get("name"), payload.get("version")) != (manifest["name"], manifest["version"]):
        problems.append(
            f"the signature is for {payload.get('name')} {payload.get('version')}, "
            f"not {manifest['name']} {manifest['version']}"
        )
    created = _parse_time(payload.get("created"))
    key_problem = key.problem_at(created) if created else "the signature has no creation time"
    if key_problem:
        problems.append(f"signing key: {key_problem}")
    expires = payload.get("expires")
    if expires is not None:
        t = _parse_time(expires)
        if t is None or now >= t:
            problems.append(f"the signature expired at {expires}")
    signed = payload.get("files")
    if not isinstance(signed, dict):
        signed = {}
        problems.append("the signature lists no files")
    for name in sorted(set(signed) | set(actual)):
        if name not in actual:
            problems.append(f"{name} is signed but missing")
        elif name not in signed:
            problems.append(f"{name} is not covered by the signature")
        elif signed[name] != actual[name]:
            problems.append(f"{name} does not match its signature (tampered)")
    return Verdict(
        key.keyid,
        str(payload.get("created")),
        None if expires is None else str(expires),
        tuple(problems),
    )


class VersionBook:
    """The highest version of each set this kiosk has accepted (``hashset-versions.json``).

    Updated under a lock so that two kiosk processes never lose each other's entries.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise HashSetError(
                f"{self.path} is not readable: hash-set versions cannot be checked"
            ) from e
        if not isinstance(data, dict) or data.get("format") != VERSIONS_FORMAT:
            raise HashSetError(f"{self.path} is not a kiosk versions file")
        sets = data.get("sets")
        return sets if isinstance(sets, dict) else {}

    def highest(self, name: str) -> str | None:
        entry = self.entries().get(name)
        return str(entry["version"]) if isinstance(entry, dict) and "version" in entry else None

    def record(self, sets: list[tuple[str, str, str]], now: datetime) -> None:
        """Raise each ``(name, version, digest)`` set's recorded version (never lower it)."""
        if not sets:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = os.open(self.path.with_name(".versions.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise HashSetError(f"cannot record hash-set versions: {e.strerror or e}") from e
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = self.entries()
            changed = False
            for name, version, digest in sets:
                old = entries.get(name)
                if isinstance(old, dict) and version_key(str(old.get("version"))) >= version_key(
                    version
                ):
                    continue
                entries[name] = {"version": version, "digest": digest, "recorded": utc_text(now)}
                changed = True
            if changed:
                tmp = self.path.with_name(self.path.name + ".tmp")
                body = {"format": VERSIONS_FORMAT, "sets": dict(sorted(entries.items()))}
                tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
                tmp.replace(self.path)
        except OSError as e:
            raise HashSetError(f"cannot record hash-set versions in {self.path}: {e}") from e
        finally:
            os.close(lock)
