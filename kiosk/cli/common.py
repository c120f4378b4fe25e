"""Small pieces every command-line group shares: the audit log, time arguments, output files."""

from __future__ import annotations

import contextlib
import os
from datetime import datetime
from pathlib import Path

from kiosk.canonical import parse_time_text
from kiosk.errors import KioskError, ReportError, TimeTextError
from kiosk.trust.audit import AuditLog
from kiosk.trust.signing import kiosk_home


def audit_log() -> AuditLog:
    """This kiosk's audit log, where every command records what it did."""
    return AuditLog(kiosk_home() / "audit.jsonl")


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or time from the command line; naive values are taken as UTC."""
    try:
        return parse_time_text(text, naive_is_utc=True)
    except TimeTextError as e:
        raise KioskError(f"not an ISO 8601 date or time: {text!r}") from e


def write_output(path: Path, data: bytes) -> None:
    """Write a file the user asked for whole or not at all, or say in one line why it cannot be.

    Written beside its final name and renamed into place, so a full disk or a killed command
    never leaves half an HTML page that looks like the report.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            f.write(data)
        tmp.replace(path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if not path.parent.is_dir():
            raise ReportError(f"cannot write {path}: no folder {path.parent}") from e
        raise ReportError(f"cannot write {path}: {(e.strerror or str(e)).lower()}") from e
