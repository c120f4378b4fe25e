"""``kiosk scan --unlock``: secrets for encrypted volumes, never taken from the command line.

``--unlock password`` asks on the terminal (no echo); ``--unlock password:FILE`` reads the
passphrase from FILE (its first line), ``--unlock password:-`` from standard input. The command
line names only the kind and where to read it: a passphrase in argv would be visible to every
user of the machine (``ps``) and kept in shell history. What is read becomes a ``VolumeKeys``,
whose ``repr`` withholds it; no message here repeats it.
"""

from __future__ import annotations

import argparse
import getpass
import os
import stat
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from kiosk.errors import UsageError
from kiosk.evidence.keys import VolumeKeys

KINDS = ("password",)
MAX_SECRET_FILE = 64 * 1024


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--unlock",
        action="append",
        default=[],
        metavar="KIND[:FILE]",
        help="a secret for encrypted volumes (LUKS1, LUKS2), repeatable; KIND: password. Without "
        "FILE it is asked on the terminal; FILE '-' reads standard input. Never give the "
        "secret itself on the command line",
    )


def read_keys(
    specs: Sequence[str],
    stdin: TextIO | None = None,
    prompt: Callable[[str], str] = getpass.getpass,
) -> VolumeKeys:
    """The secrets the ``--unlock`` options name; UsageError (one line) if one cannot be read."""
    passwords: list[str] = []
    for spec in specs:
        kind, _, where = spec.partition(":")
        if kind not in KINDS:
            raise UsageError(f"--unlock: unknown kind {kind!r} (known: {', '.join(KINDS)})")
        if not where:
            secret = prompt("Passphrase for encrypted volumes (not shown): ")
        elif where == "-":
            secret = (stdin or sys.stdin).readline()
        else:
            secret = _from_file(Path(where))
        secret = secret.rstrip("\r\n")
        if not secret:
            raise UsageError(f"--unlock {kind}: the {kind} read is empty")
        passwords.append(secret)
    return VolumeKeys(passwords=tuple(passwords))


def _from_file(path: Path) -> str:
    """The first line of a small regular file (never a FIFO or a device that could block)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as e:
        raise UsageError(f"--unlock: cannot open the key file {path}: {e.strerror}") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_SECRET_FILE:
            raise UsageError(f"--unlock: {path} is not a small regular file")
        data = os.read(fd, MAX_SECRET_FILE)
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8").split("\n", 1)[0]
    except UnicodeDecodeError as e:
        raise UsageError(f"--unlock: the key file {path} is not UTF-8 text") from e
