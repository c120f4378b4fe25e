"""Hostile logical evidence through the whole CLI scan: one clear line or a report, never more.

Like ``test_fuzz.py``: each case runs ``python -m kiosk scan`` in its own process and must end
with exit 0 and a signed report, or exit 1 and one line starting ``kiosk:`` -- never a
traceback, a signal, a hang or a half-written report; and nothing found may go missing: every
member the archive's own reader can still list is in the inventory. Member names that try to
leave the archive (``../``, absolute, NUL) must leave nothing on the host.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import phones
from tests.conftest import HASHSETS

CASE_ARGS = [
    *("--case", "H-1", "--exhibit", "EX-H", "--officer", "PC-1", "--authorised-by", "DS-2"),
    *("--legal-basis", "warrant", "--legal-ref", "W-H"),
]


def _scan(evidence: Path, out: Path) -> tuple[subprocess.CompletedProcess[str], list[dict]]:
    cmd = [sys.executable, "-m", "kiosk", "scan", str(evidence), *CASE_ARGS, "--no-yara"]
    cmd += ["--hashsets", str(HASHSETS), "--out", str(out), "--inventory"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode in (0, 1), f"exit {run.returncode}: {run.stderr[-2000:]}"
    assert "Traceback" not in run.stderr + run.stdout
    assert not list(out.glob(".partial-*")) if out.exists() else True
    if run.returncode == 1:
        assert run.stderr.startswith("kiosk: ")
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr
        return run, []
    report_dir = Path(run.stdout.strip().splitlines()[-1])
    assert (report_dir / "report.dsse.json").is_file()
    lines = (report_dir / "files.jsonl").read_text().splitlines()
    return run, [json.loads(x) for x in lines]


def _zip_slip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("../../../../tmp/kiosk-zip-slip", b"escape")
        z.writestr("/etc/kiosk-absolute", b"absolute")
        z.writestr("safe/aXb.txt", b"nul name")
        z.writestr("..\\..\\windows-slip", b"backslashes")
    data = path.read_bytes().replace(b"safe/aXb.txt", b"safe/a\x00b.txt")
    path.write_bytes(data)
    return path


def _truncated_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(20):
            z.writestr(f"data/data/app/f{i}", bytes([i]) * 5000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 300])  # the central directory is cut
    return path


def _truncated_targz(path: Path) -> Path:
    phones.ffs_tar(path, "w:gz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def _special_tar(path: Path) -> Path:
    with tarfile.open(path, "w") as t:
        for kind, name in (
            (tarfile.FIFOTYPE, "private/var/fifo"),
            (tarfile.CHRTYPE, "dev/tty0"),
            (tarfile.BLKTYPE, "dev/sda"),
        ):
            ti = tarfile.TarInfo(name)
            ti.type = kind
            t.addfile(ti)
        ti = tarfile.TarInfo("../../tmp/kiosk-tar-slip")
        ti.size = 4
        t.addfile(ti, io.BytesIO(b"slip"))
    return path


def _garbage_after_tar(path: Path) -> Path:
    path.write_bytes(phones.tar_bytes({"a.txt": b"a" * 700})[:1536] + b"\x01" * 2000)
    return path


def _cut_adb(path: Path) -> Path:
    phones.adb_backup(path, phones.tar_bytes(phones.ANDROID_FILES))
    path.write_bytes(path.read_bytes()[:60])
    return path


def _adb_bad_header(path: Path) -> Path:
    path.write_bytes(b"ANDROID BACKUP\nfive\n1\nnone\n" + b"\x00" * 100)
    return path


def _itunes_bad_db(path: Path) -> Path:
    phones.itunes_backup(path)
    (path / "Manifest.db").write_bytes(b"not sqlite at all" * 100)
    return path


def _itunes_bad_keybag(path: Path) -> Path:
    phones.itunes_backup(path, password=b"pw")
    import plistlib

    m = plistlib.loads((path / "Manifest.plist").read_bytes())
    m["BackupKeyBag"] = b"SALT\xff\xff\xff\xff"
    (path / "Manifest.plist").write_bytes(plistlib.dumps(m))
    return path


# each case and how it must end: 0 a report (what could be read, the rest named), 1 one line
CASES: dict[str, tuple[Callable[[Path], Path], int]] = {
    "zip-slip.zip": (_zip_slip, 0),
    "truncated.zip": (_truncated_zip, 1),
    "truncated.tar.gz": (_truncated_targz, 0),
    "specials.tar": (_special_tar, 0),
    "garbage.tar": (_garbage_after_tar, 0),
    "cut.ab": (_cut_adb, 1),
    "badheader.ab": (_adb_bad_header, 1),
    "bad-db-backup": (_itunes_bad_db, 1),
    "bad-keybag-backup": (_itunes_bad_keybag, 0),  # without a password the bag is not read
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_logical_evidence_ends_cleanly(tmp_path: Path, name: str) -> None:
    build, ends = CASES[name]
    evidence = build(tmp_path / name)
    before = {p: p.read_bytes() for p in [evidence] if p.is_file()}
    run, inventory = _scan(evidence, tmp_path / "reports")
    assert run.returncode == ends, run.stderr
    assert {p: p.read_bytes() for p in before} == before  # the evidence is never written
    for slip in ("/tmp/kiosk-zip-slip", "/etc/kiosk-absolute", "/tmp/kiosk-tar-slip"):
        assert not Path(slip).exists()
    if name == "zip-slip.zip":
        paths = {f["path"] for f in inventory}
        assert "/../../../../tmp/kiosk-zip-slip" in paths
        assert "/safe/a\\x00b.txt" in paths
        assert len(inventory) == 4
    if name == "specials.tar":
        assert len(inventory) == 4
        assert sum(1 for f in inventory if f["sha256"] is None) == 3
    if name == "garbage.tar":
        assert run.returncode == 0
        report = json.loads((Path(run.stdout.strip().splitlines()[-1]) / "report.json").read_text())
        assert any("not a valid tar header" in n["reason"] for n in report["not_examined"])
    if name == "truncated.tar.gz":
        assert any(f["status"] == "error" for f in inventory)
        report = json.loads((Path(run.stdout.strip().splitlines()[-1]) / "report.json").read_text())
        assert report["recommendation"]["result"] != "no_matches_in_scope"
