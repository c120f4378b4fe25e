"""Logical evidence through the whole triage: zip, tar, folders, iTunes and Android backups.

Every kind is built in the test with the tool that makes the real thing (``tests/phones.py``)
and the report's inventory is compared with what that tool's own reader lists (zipfile,
tarfile, os.walk, the files written into the backup): every member once, by its path, with
its size and SHA-256, and the members without content listed with the reason.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from kiosk.engine.triage import TriageRequest, TriageResult, run_triage
from kiosk.errors import ImageError
from kiosk.evidence.resolve import resolve
from kiosk.evidence.walker import Walker
from kiosk.model import FileStatus, Outcome
from kiosk.reports.attestation import verify_report_dir
from kiosk.reports.html import render_html
from kiosk.reports.text import render_text
from kiosk.trust.signing import TrustStore, kiosk_home
from tests import phones
from tests.conftest import (
    CASE,
    CLI_CASE_ARGS,
    HASHSETS,
    MANIFEST,
    RULES,
    SAMPLES,
    TEST_CAP,
    check_written_report,
    fixed_hooks,
)

PASSWORD = b"correct horse 42"


def _scan(
    tmp_path: Path, evidence: Path, written: list[Path], *, workers: int = 0, **kw: Any
) -> TriageResult:
    req: dict[str, Any] = {
        "case": CASE,
        "image": (evidence,),
        "rules_dir": None,
        "hashsets_dir": None,
        "out_dir": tmp_path / f"reports-{workers}",
        "inventory": True,
        "workers": workers,
        "yara": False,
    }
    req.update(kw)
    result = run_triage(TriageRequest(**req), fixed_hooks())
    check_written_report(result)
    written.append(result.report_dir)
    return result


def _inventory(result: TriageResult) -> list[dict[str, Any]]:
    lines = (result.report_dir / "files.jsonl").read_bytes().splitlines()
    return [json.loads(x) for x in lines]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _content(inv: list[dict[str, Any]]) -> list[tuple[str, int, str | None]]:
    return sorted((f["path"], f["size"], f["sha256"]) for f in inv if f["sha256"] is not None)


def _shown(name: str) -> str:
    return name if name.startswith("/") else "/" + name


# --------------------------------------------------------------------------- zip


HOSTILE_NAMES = {
    "../../etc/passwd": b"zip-slip",
    "/etc/shadow": b"absolute",
    "a/./b/../c.txt": b"dots",
    "dup.txt": b"first",
}


def test_zip_inventory_is_what_zipfile_lists_hostile_names_stay_inert(
    tmp_path: Path, written_reports: list[Path]
) -> None:
    z = tmp_path / "ffs.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in {**phones.ios_tree(), **HOSTILE_NAMES}.items():
            zf.writestr(name, data)
        with pytest.warns(UserWarning, match="Duplicate name"):  # real archives do this
            zf.writestr("dup.txt", b"second, same name")
        zf.writestr("private/var/empty/", b"")  # a directory entry
        with zf.open("big/zip64.bin", "w", force_zip64=True) as f:
            f.write(b"z" * 70_000)
    before = _sha(z.read_bytes())
    result = _scan(tmp_path, z, written_reports)
    report = result.report
    assert report.outcome.status is Outcome.COMPLETE
    assert report.image.format == "zip"
    assert report.image.sha256 == before == _sha(z.read_bytes())  # the signed subject, unchanged
    assert report.coverage.volumes[0].description == "iOS full-file-system extraction (zip)"
    with zipfile.ZipFile(z) as zf:
        want = sorted(
            (_shown(i.filename), i.file_size, _sha(zf.read(i)))
            for i in zf.infolist()
            if not i.is_dir()
        )
    inv = _inventory(result)
    assert _content(inv) == want
    assert len(inv) == len(want) == report.coverage.files.found
    assert {"/../../etc/passwd", "/etc/shadow"} <= {f["path"] for f in inv}
    assert [f["path"] for f in inv].count("/dup.txt") == 2
    assert not (tmp_path / "etc").exists()
    unexamined = [n.reason for n in report.not_examined]
    assert any("logical extraction" in r for r in unexamined)


def test_split_zip_reads_as_the_joined_archive(tmp_path: Path, written_reports: list[Path]) -> None:
    if shutil.which("zip") is None:
        pytest.skip("zip (Info-ZIP) is not installed")
    src = tmp_path / "src"
    rnd = __import__("random").Random(7)
    files = {f"data/data/com.example/f{i}.bin": rnd.randbytes(40_000) for i in range(6)}
    for name, data in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    subprocess.run(
        ["zip", "-q", "-r", "-s", "64k", str(tmp_path / "split.zip"), "data"], cwd=src, check=True
    )
    parts = sorted(p.name for p in tmp_path.glob("split.z*"))
    assert len(parts) > 2, parts  # .z01 … and .zip
    result = _scan(tmp_path, tmp_path / "split.zip", written_reports)
    assert result.report.outcome.status is Outcome.COMPLETE
    assert list(result.report.image.segments) == sorted(parts, key=lambda n: (n == "split.zip", n))
    assert result.report.coverage.volumes[0].description == "Android full-file-system (zip)"
    # the oracle: Info-ZIP joins the parts itself, zipfile lists the joined archive
    subprocess.run(
        ["zip", "-q", "-s", "0", "split.zip", "--out", "joined.zip"], cwd=tmp_path, check=True
    )
    with zipfile.ZipFile(tmp_path / "joined.zip") as zf:
        want = sorted(
            (_shown(i.filename), i.file_size, _sha(zf.read(i)))
            for i in zf.infolist()
            if not i.is_dir()
        )
    assert _content(_inventory(result)) == want
    assert {p for p, _, _ in want} == {"/" + n for n in files}


def test_encrypted_zip_member_is_listed_not_examined(
    tmp_path: Path, written_reports: list[Path]
) -> None:
    if shutil.which("zip") is None:
        pytest.skip("zip (Info-ZIP) is not installed")
    (tmp_path / "secret.txt").write_bytes(b"hidden")
    subprocess.run(["zip", "-q", "-P", "pw", "enc.zip", "secret.txt"], cwd=tmp_path, check=True)
    result = _scan(tmp_path, tmp_path / "enc.zip", written_reports)
    (line,) = _inventory(result)
    assert line["path"] == "/secret.txt"
    assert line["status"] == FileStatus.UNRECOVERABLE.value
    assert "encrypted zip member" in line["reason"]
    assert any("encrypted zip member" in n.reason for n in result.report.not_examined)


# --------------------------------------------------------------------------- tar


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_tar_inventory_is_what_tarfile_lists(
    tmp_path: Path, written_reports: list[Path], mode: str
) -> None:
    t = tmp_path / ("ffs.tar" + ("." + mode[2:] if ":" in mode else ""))
    tree = {**phones.ios_tree(), **HOSTILE_NAMES}
    with tarfile.open(t, mode) as tf:
        for name, data in tree.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        again = tarfile.TarInfo("dup.txt")
        again.size = 6
        tf.addfile(again, io.BytesIO(b"second"))
        for kind, name in ((tarfile.FIFOTYPE, "dev/fifo"), (tarfile.CHRTYPE, "dev/null")):
            special = tarfile.TarInfo(name)
            special.type = kind
            tf.addfile(special)
        link = tarfile.TarInfo("private/var/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
        hard = tarfile.TarInfo("private/var/hard")
        hard.type, hard.linkname = tarfile.LNKTYPE, "dup.txt"
        tf.addfile(hard)
    result = _scan(tmp_path, t, written_reports)
    report = result.report
    assert report.outcome.status is Outcome.COMPLETE
    assert report.image.format == ("tar" if mode == "w" else "tar." + mode[2:])
    assert report.coverage.volumes[0].description.startswith("iOS full-file-system extraction")
    with tarfile.open(t) as tf:
        members = [m for m in tf.getmembers() if not m.isdir()]
        want = sorted(
            (_shown(m.name), m.size, _sha(tf.extractfile(m).read()))  # type: ignore[union-attr]
            for m in members
            if m.isreg()
        )
    inv = _inventory(result)
    assert _content(inv) == want
    assert len(inv) == len(members) == report.coverage.files.found  # specials too, once each
    reasons = {f["path"]: f["reason"] for f in inv if f["sha256"] is None}
    assert set(reasons) == {"/dev/fifo", "/dev/null", "/private/var/link", "/private/var/hard"}
    assert "FIFO" in reasons["/dev/fifo"]
    assert "device" in reasons["/dev/null"]
    assert "not followed" in reasons["/private/var/link"]
    assert any("4 member(s) had no content to read" in r for r in report.recommendation.reasons)
    assert not any("deleted entries" in r for r in report.recommendation.reasons)


def test_truncated_tar_says_where_the_listing_stopped(
    tmp_path: Path, written_reports: list[Path]
) -> None:
    whole = phones.tar_bytes({f"data/data/app/f{i}": bytes([i]) * 3000 for i in range(5)})
    t = tmp_path / "cut.tar"
    t.write_bytes(whole[: len(whole) // 2 + 100])
    result = _scan(tmp_path, t, written_reports)
    report = result.report
    # what was listed is reported; the cut member is an error; the rest is named as not listed
    inv = _inventory(result)
    assert inv
    assert inv[0]["sha256"] is not None
    assert any(f["status"] == "error" for f in inv) or any(
        "archive" in n.reason for n in report.not_examined
    )
    assert report.recommendation.result.value != "no_matches_in_scope"


# --------------------------------------------------------------------------- folder


def test_folder_is_walked_without_following_links_or_opening_fifos(
    tmp_path: Path, written_reports: list[Path]
) -> None:
    root = tmp_path / "copy"
    for name, data in phones.ios_tree().items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "host-secret.txt").write_bytes(b"not evidence")
    (root / "escape").symlink_to(outside)
    (root / "passwd").symlink_to("/etc/passwd")
    os.mkfifo(root / "private" / "pipe")
    result = _scan(tmp_path, root, written_reports)
    report = result.report
    assert report.outcome.status is Outcome.COMPLETE
    assert report.image.format == "folder"
    want = []
    for dirpath, _dirs, names in os.walk(root):  # os.walk does not follow links either
        for n in names:
            p = Path(dirpath) / n
            if p.is_file() and not p.is_symlink():
                want.append(
                    ("/" + str(p.relative_to(root)), p.stat().st_size, _sha(p.read_bytes()))
                )
    inv = _inventory(result)
    assert _content(inv) == sorted(want)
    assert not any("host-secret" in f["path"] for f in inv)
    reasons = {f["path"]: f["reason"] for f in inv if f["sha256"] is None}
    assert set(reasons) == {"/escape", "/passwd", "/private/pipe"}
    # the folder's own digest: stable, and any change to a file moves it
    again = _scan(tmp_path / "again", root, written_reports)
    assert again.report.image.sha256 == report.image.sha256
    (root / "private/var/mobile/Library/Notes/note.txt").write_bytes(b"changed")
    moved = _scan(tmp_path / "moved", root, written_reports)
    assert moved.report.image.sha256 != report.image.sha256


# --------------------------------------------------------------------------- iTunes


def _backup_oracle() -> list[tuple[str, int, str]]:
    return sorted((f"/{d}/{r}", len(b), _sha(b)) for (d, r), b in phones.IOS_FILES.items())


def test_itunes_backup_shows_domain_paths_and_the_device(
    tmp_path: Path, written_reports: list[Path]
) -> None:
    backup = phones.itunes_backup(tmp_path / "00008030-0011")
    result = _scan(tmp_path, backup, written_reports)
    report = result.report
    assert report.outcome.status is Outcome.COMPLETE
    assert report.image.format == "itunes"
    assert report.coverage.volumes[0].description == "iTunes backup, iPhone 12, iOS 17.4"
    device = report.image.device
    assert device is not None
    assert device.name == "Sam's iPhone"
    assert device.model == "iPhone 12 (iPhone13,2)"
    assert device.os_version == "iOS 17.4"
    assert (device.serial, device.imei) == ("F17ABCDEFGH", "356789012345678")
    line = "Phone Sam's iPhone · iPhone 12 (iPhone13,2) · iOS 17.4 · serial F17ABCDEFGH · IMEI"
    assert line in render_text(report)
    verified = verify_report_dir(result.report_dir, TrustStore.load(kiosk_home() / "trust.json"))
    assert "iPhone 12 (iPhone13,2) · iOS 17.4" in render_html(verified)
    inv = _inventory(result)
    assert _content(inv) == _backup_oracle()
    # the hashed name each file is stored under is kept beside its Domain/path
    for f in inv:
        domain, rel = f["path"][1:].split("/", 1)
        name = hashlib.sha1(f"{domain}-{rel}".encode()).hexdigest()  # noqa: S324 (its name)
        assert f["stored_name"] == f"{name[:2]}/{name}"
        assert (backup / f["stored_name"]).is_file()


def test_encrypted_itunes_backup_opens_with_its_password_only(
    tmp_path: Path, written_reports: list[Path]
) -> None:
    backup = phones.itunes_backup(tmp_path / "enc", password=PASSWORD)
    result = _scan(tmp_path / "with", backup, written_reports, secret=PASSWORD)
    report = result.report
    assert report.outcome.status is Outcome.COMPLETE
    assert report.coverage.volumes[0].description == "iTunes backup, encrypted, iPhone 12, iOS 17.4"
    assert _content(_inventory(result)) == _backup_oracle()
    # the password is nowhere in what was written
    for p in result.report_dir.iterdir():
        assert PASSWORD not in p.read_bytes()
    assert PASSWORD not in (Path(os.environ["KIOSK_HOME"]) / "audit.jsonl").read_bytes()
    # without it: the device details, and one area not examined with the reason
    locked = _scan(tmp_path / "without", backup, written_reports)
    assert locked.report.image.device is not None
    assert locked.report.coverage.files.found == 0
    assert any(n.reason == "encrypted backup: password needed" for n in locked.report.not_examined)
    assert locked.report.recommendation.result.value == "inconclusive"
    # a wrong one: refused in one line before anything is read
    with pytest.raises(ImageError, match="password is wrong"):
        _scan(tmp_path / "wrong", backup, written_reports, secret=b"nope")


def test_crafted_manifest_cannot_point_outside_the_backup(
    tmp_path: Path, written_reports: list[Path]
) -> None:
    import sqlite3

    backup = phones.itunes_backup(tmp_path / "b")
    raw = (backup / "Manifest.db").read_bytes()
    db = sqlite3.connect(":memory:")
    db.deserialize(raw)
    db.execute(
        "UPDATE Files SET fileID = '../../../../etc/passwd' WHERE relativePath LIKE '%sms.db'"
    )
    db.commit()
    (backup / "Manifest.db").write_bytes(db.serialize())
    result = _scan(tmp_path, backup, written_reports)
    line = next(f for f in _inventory(result) if f["path"].endswith("sms.db"))
    assert line["status"] == "unrecoverable"
    assert "not followed" in line["reason"]


# --------------------------------------------------------------------------- ADB


@pytest.mark.parametrize("password", [None, PASSWORD])
def test_adb_backup_lists_the_tar_inside(
    tmp_path: Path, written_reports: list[Path], password: bytes | None
) -> None:
    inner = phones.tar_bytes(phones.ANDROID_FILES)
    ab = phones.adb_backup(tmp_path / "phone.ab", inner, password)
    result = _scan(tmp_path, ab, written_reports, secret=password)
    assert result.report.outcome.status is Outcome.COMPLETE
    assert result.report.image.format == "adb"
    kind = "Android backup (ADB)" + (", encrypted" if password else "")
    assert result.report.coverage.volumes[0].description == kind
    with tarfile.open(fileobj=io.BytesIO(inner)) as tf:
        want = sorted(
            (_shown(m.name), m.size, _sha(tf.extractfile(m).read()))  # type: ignore[union-attr]
            for m in tf.getmembers()
        )
    assert _content(_inventory(result)) == want


def test_encrypted_adb_backup_without_or_with_a_wrong_password(
    tmp_path: Path, written_reports: list[Path]
) -> None:
    ab = phones.adb_backup(tmp_path / "enc.ab", phones.tar_bytes(phones.ANDROID_FILES), PASSWORD)
    locked = _scan(tmp_path / "without", ab, written_reports)
    assert any(n.reason == "encrypted backup: password needed" for n in locked.report.not_examined)
    assert locked.report.recommendation.result.value == "inconclusive"
    with pytest.raises(ImageError, match="password is wrong"):
        _scan(tmp_path / "wrong", ab, written_reports, secret=b"not it")


# --------------------------------------------------------------------------- whole runs


def test_worker_count_never_changes_a_logical_inventory(
    tmp_path: Path, written_reports: list[Path]
) -> None:
    t = phones.ffs_tar(tmp_path / "ffs.tar.gz", "w:gz")
    one = _scan(tmp_path, t, written_reports, workers=0)
    two = _scan(tmp_path, t, written_reports, workers=2)
    assert (one.report_dir / "files.jsonl").read_bytes() == (
        two.report_dir / "files.jsonl"
    ).read_bytes()


def test_cli_reads_the_backup_password_from_a_file_never_argv(
    tmp_path: Path, signed_rules: Path
) -> None:
    backup = phones.itunes_backup(tmp_path / "enc", password=PASSWORD)
    pw = tmp_path / "pw.txt"
    pw.write_bytes(PASSWORD + b"\n")
    out = tmp_path / "reports"
    cmd = [sys.executable, "-m", "kiosk", "scan", str(backup), *CLI_CASE_ARGS]
    cmd += ["--rules", str(signed_rules), "--hashsets", str(HASHSETS), "--out", str(out)]
    run = subprocess.run(
        [*cmd, "--password-file", str(pw)], capture_output=True, timeout=300, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report_dir = Path(run.stdout.decode().strip().splitlines()[-1])
    report = json.loads((report_dir / "report.json").read_bytes())
    assert report["coverage"]["files"]["found"] == len(phones.IOS_FILES)
    assert report["findings"], "the planted marker in the backup is found"
    assert PASSWORD not in run.stdout + run.stderr
    # from standard input, the same
    run = subprocess.run(
        [*cmd, "--password-file", "-"],
        input=PASSWORD + b"\n",
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert RULES.is_dir()


# --------------------------------------------------------------------------- the sample phone


def test_the_sample_phone_extraction_gives_the_findings_its_manifest_promises(
    tmp_path: Path, written_reports: list[Path]
) -> None:
    (sample,) = MANIFEST["logical"]
    path = SAMPLES / sample["name"]
    result = _scan(
        tmp_path,
        path,
        written_reports,
        rules_dir=RULES,
        hashsets_dir=HASHSETS,
        yara=True,
        max_yara_bytes=TEST_CAP,
    )
    report = result.report
    assert report.outcome.status is Outcome.COMPLETE
    assert report.image.sha256 == sample["sha256"] == _sha(path.read_bytes())
    assert report.coverage.volumes[0].description == sample["kind"]
    inv = {f["path"]: f for f in _inventory(result)}
    assert sorted(inv) == sorted(f["path"] for f in sample["files"])
    for f in sample["files"]:
        assert inv[f["path"]]["sha256"] == f["sha256"]
    want = {f["path"] for f in sample["files"] if f["kind"] in ("marker", "known_bad")}
    assert {f.path for f in report.findings} == want
    assert report.recommendation.result.value == "submit_for_examination"


def test_the_password_reaches_the_walker_without_its_command_line(tmp_path: Path) -> None:
    ab = phones.adb_backup(tmp_path / "enc.ab", phones.tar_bytes(phones.ANDROID_FILES), PASSWORD)
    ref = resolve([ab], secret=PASSWORD)
    assert PASSWORD.decode() not in repr(ref)
    with Walker(ref) as walker:
        cmdline = Path(f"/proc/{walker.pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{walker.pid}/environ").read_bytes()
        walker.survey()
        found = list(walker.tasks([]))  # it opened the backup: the password did arrive
    assert PASSWORD not in cmdline
    assert PASSWORD not in environ
    assert len(found) == walker.files_found == len(phones.ANDROID_FILES)


def test_cli_wrong_password_is_one_line_and_never_echoed(tmp_path: Path) -> None:
    backup = phones.itunes_backup(tmp_path / "enc", password=PASSWORD)
    pw = tmp_path / "pw.txt"
    pw.write_bytes(b"wrong guess\n")
    cmd = [sys.executable, "-m", "kiosk", "scan", str(backup), *CLI_CASE_ARGS, "--no-yara"]
    cmd += ["--hashsets", str(HASHSETS), "--out", str(tmp_path / "r"), "--password-file", str(pw)]
    run = subprocess.run(cmd, capture_output=True, timeout=300, check=False)
    assert run.returncode == 1
    err = run.stderr.decode()
    assert err.startswith("kiosk: error: ")
    assert "password is wrong" in err
    assert len(err.strip().splitlines()) == 1
    assert b"wrong guess" not in run.stdout + run.stderr
    assert not (tmp_path / "r").exists() or list((tmp_path / "r").iterdir()) == []


def test_gnu_tar_long_names_and_sparse_files_read_as_gnu_tar_wrote_them(
    tmp_path: Path, written_reports: list[Path]
) -> None:
    if shutil.which("tar") is None:
        pytest.skip("GNU tar is not installed")
    src = tmp_path / "src"
    deep = src / "data/data/com.example.app/" / ("d" * 90) / ("e" * 90)
    deep.mkdir(parents=True)
    (deep / ("long-name-" * 12 + ".db")).write_bytes(b"long " * 1000)
    with (src / "sparse.img").open("wb") as f:
        f.seek(3 << 20)
        f.write(b"end of a sparse file")
    out = tmp_path / "gnu.tar"
    subprocess.run(
        ["tar", "--format=gnu", "--sparse", "-cf", str(out), "-C", str(src), "."], check=True
    )
    result = _scan(tmp_path, out, written_reports)
    # the oracle: GNU tar's own extraction to stdout, member by member
    listed = subprocess.run(
        ["tar", "-tf", str(out)], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    want = []
    for name in listed:
        if name.endswith("/"):
            continue
        data = subprocess.run(["tar", "-xOf", str(out), name], check=True, capture_output=True)
        want.append((_shown(name), len(data.stdout), _sha(data.stdout)))
    assert _content(_inventory(result)) == sorted(want)
    assert any(len(p) > 200 for p, _, _ in want)
