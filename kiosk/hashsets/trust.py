"""Whether a hash-set version may be used: its signature, its files, its expiry, its version.

A knowledge base that decides what an officer sees must come from the lab, whole and current. So
a set is signed (``kiosk hashsets sign``): a DSSE envelope (kiosk.trust.signing) whose payload
is the RFC 8785 JSON ``{kind: "hashset", name, version, created, expires, files: {name: sha256}}``,
verified against the kiosk's trust store. The highest version accepted per set name is kept in
``$KIOSK_HOME/hashset-versions.json``, so an older, validly signed set cannot be slipped back in
(rollback). ``check_version`` lists every reason not to trust a version; the caller refuses on
any, or — in ``--dev`` mode — records them. Which version is older, and whether the signing key
and the expiry still allow a set, is decided by ``kiosk.trust.policy``, as for rule packs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import rfc8785

from kiosk.canonical import parse_time_text, utc_text_seconds
from kiosk.errors import HashSetError, TimeTextError, VerificationError
from kiosk.hashsets.hpk import FileId, changed, page_list_problem
from kiosk.trust.policy import Used, VersionLedger, signature_problem
from kiosk.trust.signing import PUBLISHING, TrustStore, verify_envelope

SIGNATURE = "manifest.dsse.json"
PAYLOAD_TYPE = "application/vnd.kiosk.manifest+json"
VERSIONS_FILE = "hashset-versions.json"
VERSIONS_FORMAT = "kiosk.hashset-versions/1"


def _parse_time(value: object) -> datetime | None:
    try:
        return parse_time_text(value)
    except TimeTextError:
        return None


def paged_files(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The packs of a version that carry a page list (``kiosk.hashsets.hpk``), by file name."""
    algorithms = manifest.get("algorithms")
    entries = algorithms.values() if isinstance(algorithms, dict) else []
    return {
        str(e["file"]): e["pages"]
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("pages"), dict) and "file" in e
    }


def verified_files(
    version_dir: Path, paged: Collection[str] = ()
) -> dict[str, tuple[str | None, FileId]]:
    """SHA-256 and identity of every file of a version except its signature.

    The identity is taken from the open file before and after hashing it: a file rewritten
    while it was hashed is refused, and what later opens the file by this identity (the scan's
    workers, ``kiosk.hashsets.hpk.Pack``) gets exactly the bytes hashed here. A file in
    ``paged`` (a pack with a page list) is not hashed here — its pages are, as they are read —
    so its digest is None.
    """
    out: dict[str, tuple[str | None, FileId]] = {}
    for p in sorted(version_dir.iterdir()):
        if p.name == SIGNATURE or p.name.startswith("."):
            continue
        if not p.is_file():
            raise HashSetError(f"hash set {version_dir.parent.name}: unexpected entry {p.name}")
        with p.open("rb") as f:
            before = FileId.of(os.fstat(f.fileno()))
            digest = (
                None if p.name in paged else hashlib.file_digest(f, "sha256").hexdigest()
            )
            if FileId.of(os.fstat(f.fileno())) != before:
                raise HashSetError(changed(p))
        out[p.name] = (digest, before)
    return out


def file_digests(version_dir: Path, paged: Collection[str] = ()) -> dict[str, str]:
    """SHA-256 of every file of a version except its signature and the ``paged`` packs: what a
    signature covers (a paged pack is covered by its page list, which is among these)."""
    return {
        name: digest
        for name, (digest, _) in verified_files(version_dir, paged).items()
        if digest is not None
    }


def signed_payload(
    version_dir: Path, manifest: dict[str, Any], created: datetime, expires: datetime | None
) -> bytes:
    """The bytes a hash-set signature covers."""
    body = {
        "kind": "hashset",
        "name": manifest["name"],
        "version": manifest["version"],
        "created": utc_text_seconds(created),
        "expires": utc_text_seconds(expires) if expires else None,
        "files": file_digests(version_dir, paged_files(manifest)),
    }
    return bytes(rfc8785.dumps(body))


def _manifest_problems(manifest: dict[str, Any], actual: dict[str, str | None]) -> list[str]:
    paged = paged_files(manifest)
    entries = [*manifest["algorithms"].values(), manifest.get("properties")]
    problems = []
    for e in entries:
        if not isinstance(e, dict):
            continue
        name = str(e.get("file"))
        if name in paged:  # the pack's pages are checked as read; its page list is checked here
            pages = paged[name]
            name, expect = str(pages.get("file")), pages.get("sha256")
        else:
            expect = e.get("sha256")
        if actual.get(name) != expect:
            problems.append(f"{name} does not match its manifest (tampered)")
    return problems


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the signature check found; ``problems`` empty means the version may be used."""

    keyid: str | None
    signed_at: str | None
    expires: str | None
    problems: tuple[str, ...]
    files: tuple[tuple[str, str, FileId], ...] = ()  # name, SHA-256, identity: as hashed


def check_version(
    version_dir: Path, manifest: dict[str, Any], trust: TrustStore, now: datetime
) -> Verdict:
    """Every reason not to trust one version; hashes each of its files once to know, except
    packs with a page list, whose pages are checked as a scan reads them (``hpk.PageCheck``)."""
    paged = paged_files(manifest)
    hashed = verified_files(version_dir, paged)
    actual = {name: digest for name, (digest, _) in hashed.items()}
    ids = tuple((name, digest or "", fid) for name, (digest, fid) in hashed.items())
    problems = _manifest_problems(manifest, actual)
    for pack, pages in paged.items():
        listed = version_dir / str(pages.get("file"))
        if pack in actual and listed.name in actual:
            problem = page_list_problem(
                version_dir / pack, listed.read_bytes(), int(pages.get("page_size", 0))
            )
            if problem:
                problems.append(problem)
    try:
        raw = (version_dir / SIGNATURE).read_bytes()
    except FileNotFoundError:
        problems.append(f"unsigned (no {SIGNATURE}): sign it, or use --dev")
        return Verdict(None, None, None, tuple(problems), ids)
    except OSError as e:
        problems.append(f"its signature cannot be read: {e.strerror or e}")
        return Verdict(None, None, None, tuple(problems), ids)
    try:
        key, payload_bytes = verify_envelope(
            raw, trust, "signature", PAYLOAD_TYPE, purpose=PUBLISHING
        )
        payload = json.loads(payload_bytes)
    except (VerificationError, ValueError) as e:
        return Verdict(None, None, None, (*problems, str(e)), ids)
    if not isinstance(payload, dict) or payload.get("kind") != "hashset":
        return Verdict(
            key.keyid, None, None, (*problems, "the signature is not for a hash set"), ids
        )
    if (payload.get("name"), payload.get("version")) != (manifest["name"], manifest["version"]):
        problems.append(
            f"the signature is for {payload.get('name')} {payload.get('version')}, "
            f"not {manifest['name']} {manifest['version']}"
        )
    created = _parse_time(payload.get("created"))
    expires = payload.get("expires")
    until = None if expires is None else _parse_time(expires)
    if created is None:
        problems.append("the signature has no creation time")
    else:
        problem = signature_problem(
            key, created, now, expires=until, version=manifest["version"], future_ok=True
        )
        if problem:
            problems.append(problem)
    if expires is not None and until is None:
        problems.append(f"the signature expired at {expires}")  # not a time: never valid
    signed = payload.get("files")
    if not isinstance(signed, dict):
        signed = {}
        problems.append("the signature lists no files")
    for name in sorted(set(signed) | set(actual)):
        if name in paged and name in actual and name not in signed:
            continue  # covered by its page list, which the signature covers
        if name not in actual:
            problems.append(f"{name} is signed but missing")
        elif name in paged:
            problems.append(f"{name} is signed whole but has a page list: sign the set again")
        elif name not in signed:
            problems.append(f"{name} is not covered by the signature")
        elif signed[name] != actual[name]:
            problems.append(f"{name} does not match its signature (tampered)")
    return Verdict(
        key.keyid,
        str(payload.get("created")),
        None if expires is None else str(expires),
        tuple(problems),
        ids,
    )


@dataclass(frozen=True, slots=True)
class SetLedgerLayout:
    """``hashset-versions.json``: ``{"format": …, "sets": {name: {version, digest, recorded}}}``.

    ``recorded`` is when the version was first used here, to the second. A file of another
    format is damaged; a set entry that is not an object counts as never recorded.
    """

    lock_name: str = ".versions.lock"

    def versions(self, data: Any) -> dict[str, str] | None:
        if data is None:
            return {}
        if not isinstance(data, dict) or data.get("format") != VERSIONS_FORMAT:
            return None
        sets = data.get("sets")
        if not isinstance(sets, dict):
            return {}
        return {
            name: str(entry["version"])
            for name, entry in sets.items()
            if isinstance(entry, dict) and "version" in entry
        }

    def updated(self, data: Any, raised: list[Used], now: datetime) -> Any:
        sets = data.get("sets") if isinstance(data, dict) else None
        entries = dict(sets) if isinstance(sets, dict) else {}
        for u in raised:
            entries[u.key] = {
                "version": u.version,
                "digest": u.digest,
                "recorded": utc_text_seconds(now),
            }
        return {"format": VERSIONS_FORMAT, "sets": dict(sorted(entries.items()))}


def set_ledger(home: Path) -> VersionLedger:
    """This kiosk's record of the highest version of each hash set used."""
    return VersionLedger(home / VERSIONS_FILE, SetLedgerLayout())
