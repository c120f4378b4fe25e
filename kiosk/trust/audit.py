"""The kiosk's append-only, hash-chained audit log.

Every action — key creation, pack and hash-set loading, scan start/finish/cancel, report written,
verified, reviewed — is one JSON line ``{seq, time, prev, event, hash}``, where ``hash`` is
SHA-256 over ``b"kiosk-audit-v1\\0" + JCS(entry without hash)`` and ``prev`` is the previous
entry's hash (64 zeros for the first). The chain alone shows an edited entry; a dropped tail or a
re-written chain shows only against a checkpoint ``{size, head}`` held elsewhere, which is why
every signed report embeds one (shared/reference/governance-and-signing.md §4.8).

The log records who, what authority, which exhibit, and what was decided — never file content
and never file names from the evidence. Every text in an event goes through the one ``visible()``
(``kiosk.visible``) first: case fields and names are typed by people and may hold terminal escapes
or direction marks, and the log is read with ``cat`` and ``less``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk.canonical import canonical, utc_text
from kiosk.errors import AuditError
from kiosk.visible import visible

GENESIS = "0" * 64
_DOMAIN = b"kiosk-audit-v1\0"
_TAIL = 64 * 1024


def entry_hash(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(_DOMAIN + canonical(body)).hexdigest()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """How long the log was and what its last hash was, at one moment."""

    size: int
    head: str

    def as_dict(self) -> dict[str, Any]:
        return {"size": self.size, "head": self.head}


class AuditLog:
    """Appends entries under an exclusive lock, so two kiosk processes never fork the chain."""

    def __init__(self, path: Path, clock: Callable[[], datetime] | None = None) -> None:
        self.path = path
        self._clock = clock or (lambda: datetime.now(UTC))

    def append(self, kind: str, **fields: Any) -> Checkpoint:
        """Add one event; returns the checkpoint just after it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as e:
            raise AuditError(f"cannot open the audit log {self.path}: {e.strerror or e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last = _last_entry(fd, self.path)
            seq = last["seq"] + 1 if last else 1
            prev = last["hash"] if last else GENESIS
            entry: dict[str, Any] = {
                "seq": seq,
                "time": utc_text(self._clock()),
                "prev": prev,
                "event": {"kind": kind, **{k: _shown(v) for k, v in fields.items()}},
            }
            entry["hash"] = entry_hash(entry)
            os.write(fd, canonical(entry) + b"\n")
            os.fsync(fd)
            return Checkpoint(seq, entry["hash"])
        except OSError as e:
            raise AuditError(
                f"cannot append to the audit log {self.path}: {e.strerror or e}"
            ) from e
        finally:
            os.close(fd)


def _shown(value: Any) -> Any:
    """``value`` with every text in it made visible (lists and objects too)."""
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, list | tuple):
        return [_shown(v) for v in value]
    if isinstance(value, dict):
        return {visible(str(k)): _shown(v) for k, v in value.items()}
    return value


def events_of(path: Path, kind: str, **match: str) -> list[dict[str, Any]]:
    """The events of ``kind`` whose fields equal ``match``, in log order ([] with no log).

    A reader, not a verifier: ``verify_log`` judges the chain. A report verified on this kiosk
    uses it to find what this kiosk recorded about the report (its reviews), so that a review
    deleted from the report's folder is noticed where the log saw it written.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise AuditError(f"cannot read the audit log {path}: {e.strerror or e}") from e
    out: list[dict[str, Any]] = []
    for line in raw.splitlines():
        try:
            event = json.loads(line).get("event")
        except (ValueError, AttributeError):
            continue  # a damaged line is 'kiosk audit verify''s to report, not this reader's
        if (
            isinstance(event, dict)
            and event.get("kind") == kind
            and all(event.get(k) == v for k, v in match.items())
        ):
            out.append(event)
    return out


def _last_entry(fd: int, path: Path) -> dict[str, Any] | None:
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    start = max(0, size - _TAIL)
    tail = os.pread(fd, size - start, start)
    if not tail.endswith(b"\n"):
        raise AuditError(f"the audit log {path} ends in a partial line: run 'kiosk audit verify'")
    line = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    try:
        entry = json.loads(line)
        _ = entry["seq"], entry["hash"]
    except (ValueError, KeyError, TypeError) as e:
        raise AuditError(f"the last entry of the audit log {path} is damaged") from e
    if not isinstance(entry, dict):
        raise AuditError(f"the last entry of the audit log {path} is damaged")
    return entry


@dataclass(frozen=True, slots=True)
class AuditReport:
    entries: int
    head: str
    checkpoints_checked: int


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Read a JSON object, refusing a key given twice (readers disagree on which value counts)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise AuditError(f"the key {key!r} appears twice")
        out[key] = value
    return out


def _is_canonical(entry: object, raw: bytes) -> bool:
    """One meaning, one spelling: the line must be exactly the RFC 8785 form of what it says,
    so no two different lines (spacing, key order, escapes, a key twice) verify as one entry."""
    try:
        return canonical(entry) == raw
    except (ValueError, TypeError, OverflowError):
        return False


def verify_log(path: Path, checkpoints: list[Checkpoint] | None = None) -> AuditReport:
    """Check the whole chain, then each checkpoint against it; raises AuditError with the reason."""
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError as e:
        raise AuditError(f"cannot read the audit log {path}: {e.strerror or e}") from e
    if lines and lines[-1] == b"":
        lines.pop()
    else:
        raise AuditError(f"audit log {path}: the last line is incomplete")
    hashes: list[str] = []
    prev = GENESIS
    for n, raw in enumerate(lines, 1):
        try:
            entry = json.loads(raw, object_pairs_hook=_no_duplicate_keys)
        except AuditError as e:
            raise AuditError(f"audit log entry {n}: {e} (edited)") from e
        except ValueError as e:
            raise AuditError(f"audit log entry {n}: not JSON (damaged or edited)") from e
        if not _is_canonical(entry, raw):
            raise AuditError(f"audit log entry {n}: not in canonical form (edited)")
        if not isinstance(entry, dict) or entry.get("seq") != n:
            raise AuditError(
                f"audit log entry {n}: wrong sequence number (entries removed or reordered)"
            )
        if entry.get("prev") != prev:
            raise AuditError(f"audit log entry {n}: does not follow entry {n - 1} (chain broken)")
        if entry.get("hash") != entry_hash(entry):
            raise AuditError(f"audit log entry {n}: its hash does not match its content (edited)")
        prev = entry["hash"]
        hashes.append(prev)
    for cp in checkpoints or []:
        if cp.size > len(hashes):
            raise AuditError(
                f"audit log has {len(hashes)} entries but a checkpoint says it had {cp.size}: "
                "entries were removed from the end"
            )
        if cp.size > 0 and hashes[cp.size - 1] != cp.head:
            raise AuditError(
                f"audit log entry {cp.size} differs from the checkpoint taken then: "
                "the log was rewritten"
            )
    return AuditReport(len(hashes), prev, len(checkpoints or []))
