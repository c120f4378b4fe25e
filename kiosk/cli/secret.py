"""The backup password of an encrypted phone backup, read the way a secret must be.

Never from the command line (argv is visible to every user of the machine and kept in shell
history): ``--password-file PATH`` reads the first line of a file, ``--password-file -`` the
first line of standard input, and otherwise, when the evidence is an encrypted backup and a
person is at the terminal, ``getpass`` asks without echo. Without any of them the scan goes on
and the report lists the backup as "encrypted backup: password needed". The password is kept
in memory only, as bytes, and handed to the scan inside the resolved evidence record.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from kiosk.errors import KioskError
from kiosk.evidence.logical.sniff import needs_password

MAX_PASSWORD_FILE = 4096


def backup_password(evidence: Path, password_file: Path | None) -> bytes | None:
    """The password for ``evidence`` if one is needed and given or typed; None otherwise."""
    if password_file is not None:
        try:
            if str(password_file) == "-":
                text = sys.stdin.buffer.readline(MAX_PASSWORD_FILE)
            else:
                with password_file.open("rb") as f:
                    text = f.readline(MAX_PASSWORD_FILE)
        except OSError as e:
            raise KioskError(f"the password file cannot be read: {e.strerror}") from e
        password = text.rstrip(b"\r\n")
        if not password:
            raise KioskError("the password file is empty")
        return password
    if not needs_password(evidence) or not sys.stdin.isatty():
        return None
    typed = getpass.getpass(f"Backup password for {evidence.name} (empty: skip): ")
    return typed.encode("utf-8") if typed else None
