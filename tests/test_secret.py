"""The backup password on the command line's side: read from a file, stdin or a prompt only."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from kiosk.cli import secret
from kiosk.errors import KioskError
from tests import phones


def test_a_password_file_gives_its_first_line(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_bytes(b"p\xc3\xa4ss word\r\nsecond line\n")
    assert secret.backup_password(tmp_path / "any", pw) == "päss word".encode()
    pw.write_bytes(b"\n")
    with pytest.raises(KioskError, match="password file is empty"):
        secret.backup_password(tmp_path / "any", pw)
    with pytest.raises(KioskError, match="cannot be read"):
        secret.backup_password(tmp_path / "any", tmp_path / "missing")


def test_dash_reads_standard_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"from stdin\n")))
    assert secret.backup_password(tmp_path / "any", Path("-")) == b"from stdin"


def test_only_an_encrypted_backup_at_a_terminal_is_prompted_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def fake_getpass(prompt: str) -> str:
        asked.append(prompt)
        return "typed"

    monkeypatch.setattr(secret.getpass, "getpass", fake_getpass)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    plain = phones.itunes_backup(tmp_path / "plain")
    locked = phones.itunes_backup(tmp_path / "locked", password=b"typed")
    ab = phones.adb_backup(tmp_path / "x.ab", phones.tar_bytes({"a": b"a"}), b"typed")
    assert secret.backup_password(plain, None) is None
    assert asked == []
    assert secret.backup_password(locked, None) == b"typed"
    assert secret.backup_password(ab, None) == b"typed"
    assert len(asked) == 2
    assert all("typed" not in a for a in asked)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)  # a script: no prompt, no password
    assert secret.backup_password(locked, None) is None
    assert len(asked) == 2
