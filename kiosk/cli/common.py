"""Small pieces every command-line group shares: the audit log, time arguments, output files."""

from __future__ import annotations

import getpass
import sys
from datetime import datetime
from pathlib import Path

from kiosk.canonical import parse_time_text
from kiosk.errors import KioskError, TimeTextError
from kiosk.reports.folder import write_file
from kiosk.reports.text import visible
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

    Often into a report folder, which is data: a link planted under the name is replaced, never
    written through (``kiosk.reports.folder.write_file``).
    """
    write_file(path, data)


def say(text: str, *, err: bool = False) -> None:
    """Print one line that may quote names, paths or fields from evidence, packs or users:
    through ``visible()``, so none of it can drive the terminal or fake a line."""
    print(visible(text), file=sys.stderr if err else sys.stdout)


def read_secret(prompt: str) -> bytes:
    """A secret (a key's passphrase) from the person at the terminal, never from argv.

    At a terminal it is asked for without echo; otherwise the first line of standard input is
    taken (a script or a test pipes it in). It is returned, never printed, logged or audited.
    """
    text = getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
    return text.encode()
