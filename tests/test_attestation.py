"""Signed reports as a supervisor checks them: verify, tamper, revoke, review, HTML, goldens."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.engine.triage import TriageResult
from kiosk.errors import VerificationError
from kiosk.reports.attestation import VerifiedReport, verify_report_dir, write_review
from kiosk.reports.html import render_html
from kiosk.trust.audit import AuditLog
from kiosk.trust.signing import (
    REPORT_SIGNING,
    REVIEWING,
    Signer,
    TrustStore,
    key_id,
    load_signer,
)
from tests.conftest import fixed_hooks

Triage = Callable[..., TriageResult]
GOLDEN = Path(__file__).parent / "golden"


def _trust() -> TrustStore:
    return TrustStore.load(Path(os.environ["KIOSK_HOME"]) / "trust.json")


def _flip(path: Path, offset: int = -10) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def signed(triage: Triage) -> Path:
    return triage("fat16.dd").report_dir


def test_a_fresh_report_verifies(signed: Path) -> None:
    v = verify_report_dir(signed, _trust())
    assert v.keyid == json.loads((signed / "report.json").read_bytes())["signing_key"]
    assert v.signed_at == "2026-11-27T12:00:00.000000Z"
    assert v.report["recommendation"]["result"] == "submit_for_examination"


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("report.json", "report.json differs from the signed report"),
        ("files.jsonl", "files.jsonl differs from the digest"),
    ],
)
def test_tampered_files_are_named(signed: Path, target: str, reason: str) -> None:
    _flip(signed / target)
    with pytest.raises(VerificationError, match=reason):
        verify_report_dir(signed, _trust())


def test_tampered_payload_and_signature_are_caught(signed: Path) -> None:
    env_path = signed / "report.dsse.json"
    original = env_path.read_bytes()
    env = json.loads(original)
    payload = bytearray(base64.b64decode(env["payload"]))
    payload[payload.index(b"submit_for_examination")] = ord("S")
    env["payload"] = base64.b64encode(bytes(payload)).decode()
    env_path.write_text(json.dumps(env))
    with pytest.raises(VerificationError, match="signature does not match"):
        verify_report_dir(signed, _trust())
    env = json.loads(original)
    sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
    sig[0] ^= 1
    env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    env_path.write_text(json.dumps(env))
    with pytest.raises(VerificationError, match="signature does not match"):
        verify_report_dir(signed, _trust())
    env_path.write_bytes(original[: len(original) // 2])
    with pytest.raises(VerificationError, match="malformed envelope"):
        verify_report_dir(signed, _trust())


def test_unknown_or_revoked_key_fails(signed: Path) -> None:
    with pytest.raises(VerificationError, match="unknown key"):
        verify_report_dir(signed, TrustStore([]))
    store = _trust()
    keyid = verify_report_dir(signed, store).keyid
    store.revoke(keyid, datetime(2026, 11, 27, 11, 0, tzinfo=UTC))  # before the report's time
    with pytest.raises(VerificationError, match="revoked"):
        verify_report_dir(signed, store)
    store = _trust()
    store.revoke(keyid, datetime(2026, 11, 28, tzinfo=UTC))  # after: its own date proves nothing
    with pytest.raises(
        VerificationError, match="signed by a revoked key; signing time not proven"
    ):
        verify_report_dir(signed, store)


def test_a_revoked_kiosk_key_counts_where_a_supervisor_countersigned_before_revocation(
    signed: Path,
) -> None:
    """The anchor: a review signed by another trusted key before the revocation proves the
    report existed then; a review by the revoked key itself proves nothing."""
    home = Path(os.environ["KIOSK_HOME"])
    v = verify_report_dir(signed, _trust())
    supervisor_key = Ed25519PrivateKey.generate()
    supervisor = Signer(supervisor_key, key_id(supervisor_key.public_key()))
    store = _trust()
    store.add(supervisor.public, label="SGT-9", purposes=(REVIEWING,))
    store.revoke(v.keyid, datetime(2026, 11, 28, tzinfo=UTC))
    own = load_signer(home / "keys" / "kiosk.key")
    day = datetime(2026, 11, 27, tzinfo=UTC)
    self_review = write_review(v, "submit", "SGT-9", "mine", own, day + timedelta(hours=13))
    with pytest.raises(VerificationError, match="signing time not proven"):
        verify_report_dir(signed, store)
    self_review.unlink()
    late = write_review(v, "submit", "SGT-9", "late", supervisor, day + timedelta(days=2))
    with pytest.raises(VerificationError, match="signing time not proven"):
        verify_report_dir(signed, store)  # countersigned only after the revocation
    late.unlink()
    write_review(v, "submit", "SGT-9", "seen", supervisor, day + timedelta(hours=14))
    assert verify_report_dir(signed, store).keyid == v.keyid


def test_review_is_signed_bound_and_verified(signed: Path) -> None:
    home = Path(os.environ["KIOSK_HOME"])
    v = verify_report_dir(signed, _trust())
    signer = load_signer(home / "keys" / "kiosk.key")
    when = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    with pytest.raises(VerificationError, match="someone other than the officer"):
        write_review(v, "submit", v.report["case"]["officer"], "looks bad", signer, when)
    path = write_review(v, "submit", "SGT-9", "marker files found", signer, when)
    assert path == signed / "reviews" / "001.dsse.json"
    again = verify_report_dir(signed, _trust())
    assert [(r.decision, r.reviewer, r.reason) for r in again.reviews] == [
        ("submit", "SGT-9", "marker files found")
    ]
    second = write_review(again, "return", "INSP-2", "second opinion", signer, when)
    assert second.name == "002.dsse.json"
    assert path.read_bytes() != second.read_bytes()
    # a review travels with its report only: against another report's envelope it fails
    _flip(signed / "report.json")
    with pytest.raises(VerificationError, match=r"report\.json differs"):
        verify_report_dir(signed, _trust())


def test_review_of_a_different_report_is_rejected(triage: Triage, tmp_path: Path) -> None:
    a = triage("fat16.dd", out_dir=tmp_path / "a").report_dir
    b = triage("ext4.dd", out_dir=tmp_path / "b").report_dir
    signer = load_signer(Path(os.environ["KIOSK_HOME"]) / "keys" / "kiosk.key")
    write_review(verify_report_dir(a, _trust()), "return", "SGT-9", "x", signer, datetime.now(UTC))
    (b / "reviews").mkdir()
    (a / "reviews" / "001.dsse.json").rename(b / "reviews" / "001.dsse.json")
    with pytest.raises(VerificationError, match="reviews a different report"):
        verify_report_dir(b, _trust())


def _hostile_ext4(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    names = [
        "<script>alert(1)<\\script>.txt",
        "<img src=x onerror=alert(1)>.txt",
        "\x1b[31mred[bold]\x07.txt",
        "a&b\"'.txt",
    ]
    for n in names:
        (src / n).write_bytes(b"KIOSK-DEMO-MARKER-3f9c1b7e\n")
    img = tmp_path / "hostile.dd"
    env = {**os.environ, "E2FSPROGS_FAKE_TIME": "1700000000"}
    subprocess.run(
        ["mke2fs", "-q", "-t", "ext4", "-d", str(src), "-F", str(img), "2M"], check=True, env=env
    )
    return img


def test_html_shows_hostile_names_as_text(triage: Triage, tmp_path: Path) -> None:
    img = _hostile_ext4(tmp_path)
    result = triage("ext4.dd", image=(img,))
    v = verify_report_dir(result.report_dir, _trust())
    paths = {f["path"] for f in v.report["findings"]}
    assert "/<img src=x onerror=alert(1)>.txt" in paths
    page = render_html(v)
    assert "<script>" not in page
    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;.txt" in page
    # the name's literal backslash is doubled, as visible() shows every backslash
    assert "&lt;script&gt;alert(1)&lt;\\\\script&gt;.txt" in page
    assert "a&amp;b&quot;&#x27;.txt" in page
    assert "\x1b" not in page
    assert "\\x1b[31mred[bold]\\x07.txt" in page
    assert "SUBMIT FOR EXAMINATION" in page
    assert v.keyid in page


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_verify_show_review_html(signed: Path) -> None:
    ok = _cli("report", "verify", str(signed))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("valid: signed by ")
    rv = _cli(
        "review", str(signed), "--decision", "more_info", "--reviewer", "SGT-9", "--reason", "check"
    )
    assert rv.returncode == 0, rv.stderr
    ok = _cli("report", "verify", str(signed))
    assert "review: more_info by SGT-9" in ok.stdout
    show = _cli("report", "show", str(signed))
    assert "Recommendation: SUBMIT FOR EXAMINATION" in show.stdout
    html = _cli("report", "html", str(signed))
    assert html.returncode == 0
    assert Path(html.stdout.strip()).read_text().startswith("<!DOCTYPE html>")
    _flip(signed / "report.json")
    bad = _cli("report", "verify", str(signed))
    assert bad.returncode == 1
    assert bad.stdout.startswith("invalid: report.json differs")
    assert "Traceback" not in bad.stdout + bad.stderr
    refused = _cli(
        "review", str(signed), "--decision", "submit", "--reviewer", "X", "--reason", "y"
    )
    assert refused.returncode == 1
    assert "report.json differs" in refused.stderr


def test_cli_verify_garbage_directory_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "report.dsse.json").write_bytes(b"\x00\xff garbage")
    run = _cli("report", "verify", str(tmp_path))
    assert (run.returncode, run.stdout.strip()) == (
        1,
        "invalid: report.dsse.json: malformed envelope (not JSON)",
    )
    run = _cli("report", "verify", str(tmp_path / "nope"))
    assert (run.returncode, run.stdout) == (3, f"cannot verify: {tmp_path / 'nope'}: not found\n")


def test_cli_without_a_trust_store_cannot_verify_rather_than_invalid(
    signed: Path, tmp_path: Path
) -> None:
    """Nothing is wrong with the report: the answer is "cannot verify" (exit 3), never "invalid"
    (exit 1), so a script tells a kiosk without its trust store from a tampered report."""
    env = {**os.environ, "KIOSK_HOME": str(tmp_path / "empty-home")}
    for command in ("verify", "show", "html"):
        run = subprocess.run(
            [sys.executable, "-m", "kiosk", "report", command, str(signed)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
        assert run.returncode == 3, run.stdout + run.stderr
        assert run.stdout == (
            f"cannot verify: no trust store at {tmp_path / 'empty-home' / 'trust.json'} (run "
            "'kiosk keys init' and 'kiosk keys trust KEY' to make one, set KIOSK_HOME to this "
            "kiosk's home, or give --trust FILE)\n"
        )
    garbled = tmp_path / "trust.json"
    garbled.write_text("{")
    run = _cli("report", "verify", str(signed), "--trust", str(garbled))
    assert (run.returncode, run.stdout) == (
        3,
        f"cannot verify: the trust store {garbled} is not readable JSON\n",
    )
    assert not (signed / "report.html").exists()
    _flip(signed / "report.json")  # the same report, tampered, with the trust store: invalid
    assert _cli("report", "verify", str(signed)).returncode == 1


# --------------------------------------------------------------------------- golden files

GOLDEN_KEY = Ed25519PrivateKey.from_private_bytes(
    bytes(range(32))
)  # fixed: signatures are deterministic


def test_report_and_envelope_bytes_match_the_goldens(triage: Triage, tmp_path: Path) -> None:
    signer = Signer(GOLDEN_KEY, key_id(GOLDEN_KEY.public_key()))
    audit = AuditLog(
        tmp_path / "audit.jsonl", clock=lambda: datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    )
    hooks = fixed_hooks(signer=signer, audit=audit)
    result = triage("ext4.dd", hooks=hooks, workers=0)
    got = {
        n: (result.report_dir / n).read_bytes()
        for n in ("report.json", "report.dsse.json", "files.jsonl")
    }
    if os.environ.get("KIOSK_REGEN_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        for n, data in got.items():
            (GOLDEN / f"ext4.{n}").write_bytes(data)
    for n, data in got.items():
        assert data == (GOLDEN / f"ext4.{n}").read_bytes(), f"{n} changed: regenerate on purpose"
    store = TrustStore([])
    store.add(
        signer.public,
        not_before=datetime(2026, 1, 1, tzinfo=UTC),
        not_after=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=3650),
        purposes=(REPORT_SIGNING,),
    )
    assert isinstance(verify_report_dir(result.report_dir, store), VerifiedReport)
