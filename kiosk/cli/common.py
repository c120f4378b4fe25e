"""Small pieces every command-line group shares: the kiosk's audit log and time arguments."""

from __future__ import annotations

from datetime import datetime

from kiosk.canonical import parse_time_text
from kiosk.errors import KioskError, TimeTextError
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
