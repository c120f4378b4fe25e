"""Encrypted data (kiosk.engine.encrypted): what the kiosk cannot look into says so.

Samples are made by the real tools (``zip -P``, ``7z -p``, ``gpg -c``, ``openssl enc``, ``age``,
``qpdf --encrypt``) next to the same content left plain by the same tools, placed in a real ext4
(``mke2fs -d``) and scanned through ``run_triage``: every encrypted sample is an
``encrypted_data`` finding with its reason, no plain one is, and a device holding only encrypted
data is INCONCLUSIVE ("password needed"), not "no matches". Formats no Debian tool writes
(KeePass, RAR, wallets) are checked on headers built here from their published layouts.
The passwords are test values; the kiosk never sees them.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.engine.encrypted import CONTAINER_ENTROPY, encrypted, entropy
from kiosk.engine.triage import TriageResult
from kiosk.model import BUILTIN_PACK, ENCRYPTED_DATA, Recommendation
from kiosk.reports.attestation import verify_report_dir
from kiosk.reports.case import case_bundle
from kiosk.reports.html import render_html
from kiosk.reports.report import ENCRYPTED_REASON
from kiosk.reports.text import render_text
from kiosk.trust.signing import TrustStore, kiosk_home

Triage = Callable[..., TriageResult]
TOOLS = ("mke2fs", "zip", "7z", "gpg", "openssl", "age", "age-keygen", "qpdf")
pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS), reason=f"needs {', '.join(TOOLS)}"
)
SECRET = b"the content nobody may read without the password\n" * 40


def _run(args: list[str], cwd: Path, stdin: bytes | None = None) -> None:
    env = {**os.environ, "GNUPGHOME": str(cwd / ".gnupg")}
    subprocess.run(args, cwd=cwd, input=stdin, check=True, capture_output=True, env=env)


def _gone_is_fine(func: object, path: str, exc: tuple[type[BaseException], object, object]) -> None:
    if not issubclass(exc[0], FileNotFoundError):
        raise exc[1]  # type: ignore[misc]


def _samples(d: Path) -> dict[str, str | None]:
    """Make every sample in ``d``; returns name -> the rule expected (None: not encrypted)."""
    (d / ".gnupg").mkdir(mode=0o700)
    (d / "secret.txt").write_bytes(SECRET)
    _run(["zip", "-q", "-P", "pw", "enc.zip", "secret.txt"], d)
    _run(["zip", "-q", "plain.zip", "secret.txt"], d)
    _run(["7z", "a", "-ppw", "-mhe=on", "enc-headers.7z", "secret.txt"], d)
    _run(["7z", "a", "-ppw", "enc-files.7z", "secret.txt"], d)
    _run(["7z", "a", "plain.7z", "secret.txt"], d)
    gpg = ["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase-fd", "0"]
    _run([*gpg, "-c", "-o", "sym.gpg", "secret.txt"], d, b"pw\n")
    _run([*gpg, "-c", "-a", "-o", "sym.asc", "secret.txt"], d, b"pw\n")
    _run(["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-pass", "stdin", "-in", "secret.txt",
          "-out", "salted.bin"], d, b"pw\n")  # fmt: skip
    _run(["age-keygen", "-o", "age.key"], d)
    recipient = next(
        ln.split(": ", 1)[1]
        for ln in (d / "age.key").read_text().splitlines()
        if ln.startswith("# public key")
    )
    _run(["age", "-r", recipient, "-o", "file.age", "secret.txt"], d)
    _run(["age", "-a", "-r", recipient, "-o", "armoured.age", "secret.txt"], d)
    (d / "age.key").unlink()  # a private key is not what this test is about
    _run(["qpdf", "--empty", "plain.pdf"], d)
    _run(["qpdf", "--encrypt", "u", "o", "256", "--", "plain.pdf", "enc.pdf"], d)
    rnd = os.urandom(2 << 20)
    (d / "volume.hc").write_bytes(rnd)  # 2 MiB of noise: what a VeraCrypt volume looks like
    (d / "noise-odd.bin").write_bytes(rnd[: (2 << 20) - 100])  # not a multiple of 512
    (d / "zeros.img").write_bytes(bytes(2 << 20))  # a multiple of 512, no entropy
    # gpg left an agent behind, which removes its own sockets as it goes: stop it first, and
    # let a socket it removed meanwhile not fail the clean-up (a race seen once in CI)
    _run(["gpgconf", "--kill", "all"], d)
    shutil.rmtree(d / ".gnupg", onerror=_gone_is_fine)
    return {
        "secret.txt": None,
        "enc.zip": "encrypted_archive",
        "plain.zip": None,
        "enc-headers.7z": "encrypted_archive",
        "enc-files.7z": "encrypted_archive",
        "plain.7z": None,
        "sym.gpg": "encrypted_file",
        "sym.asc": "encrypted_file",
        "salted.bin": "encrypted_file",
        "file.age": "encrypted_file",
        "armoured.age": "encrypted_file",
        "plain.pdf": None,
        "enc.pdf": "encrypted_document",
        "volume.hc": "possible_container",
        "noise-odd.bin": None,
        "zeros.img": None,
    }


def _image(tmp_path: Path) -> tuple[Path, dict[str, str | None]]:
    tree = tmp_path / "tree"
    tree.mkdir()
    expected = _samples(tree)
    img = tmp_path / "enc.img"
    subprocess.run(["mke2fs", "-q", "-t", "ext4", "-d", str(tree), str(img), "16M"], check=True)
    return img, expected


def test_encrypted_samples_are_findings_and_plain_ones_are_not(
    triage: Triage, tmp_path: Path
) -> None:
    img, expected = _image(tmp_path)
    result = triage("ext4.dd", image=(img,))
    report = result.report
    found = {
        f.path.lstrip("/"): m
        for f in report.findings
        for m in f.rule_matches
        if m.pack == BUILTIN_PACK and m.category == ENCRYPTED_DATA
    }
    assert {n: m.rule for n, m in found.items()} == {n: r for n, r in expected.items() if r}
    assert all(m.description.endswith("password needed") for m in found.values())
    assert "heuristic" in found["volume.hc"].description
    assert "7-Zip" in found["enc-files.7z"].description
    # nothing else matched: the device holds only encrypted data, which is not "no matches"
    assert {f.path.lstrip("/") for f in report.findings} == set(found)
    rec = report.recommendation
    assert rec.result is Recommendation.INCONCLUSIVE
    assert ENCRYPTED_REASON.format(n=len(found)) in rec.reasons
    assert report.findings_by_category == {ENCRYPTED_DATA: len(found)}
    text = render_text(report)
    assert "kiosk:encrypted_archive (ZIP archive with encrypted entries: password needed)" in text
    page, case = other_views(result)
    assert "ZIP archive with encrypted entries: password needed" in page
    assert "the kiosk's own check encrypted_archive (category encrypted_data" in case


def other_views(result: TriageResult) -> tuple[str, str]:
    """The HTML page's text and the CASE export of a written, verified report."""
    verified = verify_report_dir(result.report_dir, TrustStore.load(kiosk_home() / "trust.json"))
    page = " ".join(re.sub(r"<[^>]+>", " ", html.unescape(render_html(verified))).split())
    return page, json.dumps(case_bundle(verified))


def test_encrypted_data_beside_another_finding_still_submits(
    triage: Triage, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "holiday.jpg").write_bytes(b"MZ" + b"\0" * 58 + b"\x80\0\0\0" + b"\0" * 64 + b"PE\0\0"
                                       + b"\x4c\x01\x01\0" + b"\0" * 12 + b"\xe0\0\x02\x01\x0b\x01"
                                       + b"\0" * 300)  # fmt: skip
    (tree / "secret.txt").write_bytes(SECRET)
    _run(["zip", "-q", "-P", "pw", "enc.zip", "secret.txt"], tree)
    img = tmp_path / "mixed.img"
    subprocess.run(["mke2fs", "-q", "-t", "ext4", "-d", str(tree), str(img), "4M"], check=True)
    rec = triage("ext4.dd", image=(img,)).report.recommendation
    assert rec.result is Recommendation.SUBMIT
    assert ENCRYPTED_REASON.format(n=1) in rec.reasons
    assert any("disguised" in r for r in rec.reasons)


# --------------------------------------------------------------------------- hand-built headers


def _vint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


RAR5 = b"Rar!\x1a\x07\x01\x00"
# a compound file (OLE) header sector: signature, minor/major version 3, little-endian, 512-byte
# sectors; then directory entries of 128 bytes, each named in UTF-16LE
OLE_HEAD = bytes.fromhex("d0cf11e0a1b11ae1") + bytes(16) + b"\x3e\x00\x03\x00\xfe\xff\x09\x00"
OLE_HEAD = OLE_HEAD.ljust(512, b"\0")


def _dir_entry(name: str) -> bytes:
    raw = (name + "\0").encode("utf-16-le")
    return (raw.ljust(64, b"\0") + len(raw).to_bytes(2, "little") + b"\x02").ljust(128, b"\0")


ARCHIVE = "encrypted_archive"


def _rar5_block(htype: int, flags: int = 0, body: bytes = b"", extra: bytes = b"") -> bytes:
    fields = _vint(htype) + _vint(flags | (1 if extra else 0))
    if extra:
        fields += _vint(len(extra))
    fields += body + extra
    return b"\0\0\0\0" + _vint(len(fields)) + fields  # CRC32 not checked by the detector


@pytest.mark.parametrize(
    ("name", "data", "rule"),
    [
        ("db.kdbx", bytes.fromhex("03d9a29a67fb4bb5") + b"\x01\x00\x04\x00" + os.urandom(200),
         "password_database"),
        ("old.kdb", bytes.fromhex("03d9a29a65fb4bb5") + os.urandom(120), "password_database"),
        ("safe.psafe3", b"PWS3" + os.urandom(200), "password_database"),
        # RAR 5: the archive encryption header (type 4) comes first (rar -hp)
        ("hp.rar", RAR5 + _rar5_block(4, body=b"\x00\x00\x0f" + os.urandom(16)), ARCHIVE),
        # RAR 5: a main header, then a file header whose extra area has record 1 (encryption)
        ("p.rar", RAR5 + _rar5_block(1, body=b"\x00") + _rar5_block(
            2, body=b"\x00" * 6, extra=_vint(3) + _vint(1) + b"\0\0"), "encrypted_archive"),
        # RAR 4: main header with MHD_PASSWORD (0x0080)
        ("old.rar", b"Rar!\x1a\x07\x00" + b"\0\0\x73\x80\x00\x0d\x00" + b"\0" * 6, ARCHIVE),
        ("wallet.dat", b"\0" * 12 + b"\x62\x31\x05\x00" + os.urandom(100), "wallet"),
        ("UTC--2026-key.json", json.dumps({"version": 3, "crypto": {
            "cipher": "aes-128-ctr", "ciphertext": "00", "kdf": "scrypt"}}).encode(), "wallet"),
        ("default_wallet", b"QklFMQ" + b"A" * 200, "wallet"),
        # an Office file saved with a password is a compound file holding these two streams
        ("budget.xlsx", OLE_HEAD + _dir_entry("EncryptionInfo") + _dir_entry("EncryptedPackage"),
         "encrypted_document"),
    ],
)  # fmt: skip
def test_hand_built_headers_of_formats_without_a_debian_tool(
    name: str, data: bytes, rule: str
) -> None:
    found = encrypted(data[:65536], data[-65536:], len(data), "application/octet-stream", name)
    assert found is not None
    assert found.rule == rule


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("plain.rar", RAR5 + _rar5_block(1, body=b"\x00") + _rar5_block(2, body=b"\x00" * 6)),
        ("old.rar", b"Rar!\x1a\x07\x00" + b"\0\0\x73\x00\x00\x0d\x00" + b"\0" * 6),
        ("notes.dat", b"\0" * 12 + b"\x62\x31\x05\x00" + b"\0" * 100),  # BDB, not a wallet name
        ("config.json", b'{"kdf": "none", "ciphertext": "plain words"}'),
        ("random.bin", b"\x8c" + os.urandom(100)),  # an old-format tag 3 byte, then noise
        ("old.doc", OLE_HEAD + _dir_entry("WordDocument") + _dir_entry("1Table")),
    ],
)
def test_look_alikes_are_not_encrypted(name: str, data: bytes) -> None:
    head = data if name != "random.bin" else b"\x8c\x0d\x09" + data[3:]  # version 9: not PGP
    assert (
        encrypted(head[:65536], head[-65536:], len(head), "application/octet-stream", name) is None
    )


def test_entropy_of_noise_is_above_the_container_threshold_and_text_far_below() -> None:
    assert entropy(os.urandom(128 << 10)) >= CONTAINER_ENTROPY
    assert entropy(SECRET * 100) < 5
    assert entropy(b"") == 0.0
