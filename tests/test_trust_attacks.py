"""Issue 13's attacks on what a signed report promises, tried as an attacker would, through
``kiosk report verify`` on a kiosk home laid out as ``make demo`` lays it out (the demo publisher
key trusted for publishing only). Each one verified as valid before the fix. The hash-set swap
during a scan is in test_hashsets.py; a revoked publisher's backdated pack or set in
test_policy.py. The table in tests/README.md lists them all."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.canonical import canonical, utc_text
from kiosk.engine.triage import TriageResult
from kiosk.errors import SigningError, VerificationError
from kiosk.reports.attestation import (
    REVIEW_PREDICATE,
    VerifiedReport,
    sign_report,
    verify_report_dir,
    write_review,
)
from kiosk.trust.signing import (
    INTOTO_STATEMENT,
    REPORT_SIGNING,
    REVIEWING,
    Signer,
    TrustStore,
    key_id,
    load_signer,
    new_key,
)
from tests.conftest import DEMO_PUBLISHER, SUPERVISOR_PASSPHRASE, supervisor, supervisor_key

Triage = Callable[..., TriageResult]


def _demo_publisher() -> Signer:
    """The committed demo publisher key: public, so anyone holds it."""
    pem = DEMO_PUBLISHER.with_suffix(".key").read_bytes()
    private = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private, Ed25519PrivateKey)
    return Signer(private, key_id(private.public_key()))


def _verify(directory: Path, *extra: str) -> tuple[int, str]:
    run = subprocess.run(
        [sys.executable, "-m", "kiosk", "report", "verify", str(directory), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "error"},
        check=False,
    )
    return run.returncode, run.stdout.strip()


def _resign(genuine: Path, to: Path, signer: Signer, finished: str | None = None) -> Path:
    """A copy of a report saying "no matches" where the kiosk found some, signed again by
    ``signer`` (the inventory kept, so only the signature can tell). The copy's folder keeps
    the report id as its name, so the folder check passes and the signature is what is judged."""
    to = to / genuine.name
    shutil.copytree(genuine, to)
    report = json.loads((to / "report.json").read_bytes())
    assert report["recommendation"]["result"] == "submit_for_examination"
    report["recommendation"]["result"] = "no_matches_in_scope"
    if finished:
        report["finished"] = finished
    report_bytes, envelope = sign_report(report, signer)
    (to / "report.json").write_bytes(report_bytes)
    (to / "report.dsse.json").write_bytes(envelope)
    return to


@pytest.fixture
def genuine(triage: Triage) -> Path:
    return triage("fat16.dd").report_dir


def test_the_demo_publisher_key_cannot_forge_a_report(genuine: Path, tmp_path: Path) -> None:
    publisher = _demo_publisher()
    forged = _resign(genuine, tmp_path / "forged", publisher)
    code, out = _verify(forged)
    assert (code, out) == (
        1,
        f"invalid: report.dsse.json: key {publisher.keyid[:16]}… is trusted for publishing "
        "packs and sets, not for signing reports",
    )


def _forge_review(v: VerifiedReport, signer: Signer, reviewer: str) -> Path:
    """A review signed elsewhere than ``write_review`` (which would refuse it): what an attacker
    with a key drops into the report's folder."""
    statement = {
        "_type": INTOTO_STATEMENT,
        "subject": [{"name": "report.dsse.json", "digest": {"sha256": v.envelope_sha256}}],
        "predicateType": REVIEW_PREDICATE,
        "predicate": {
            "report_id": v.report["report_id"],
            "decision": "return",
            "reviewer": reviewer,
            "reason": "nothing to see",
            "time": utc_text(datetime.now(UTC)),
        },
    }
    (v.directory / "reviews").mkdir(exist_ok=True)
    n = len(list((v.directory / "reviews").iterdir())) + 1
    path = v.directory / "reviews" / f"{n:03d}.dsse.json"
    path.write_bytes(canonical(signer.envelope(canonical(statement))))
    return path


def _home_store() -> TrustStore:
    return TrustStore.load(Path(os.environ["KIOSK_HOME"]) / "trust.json")


def test_the_demo_publisher_key_cannot_forge_a_return_review(genuine: Path) -> None:
    publisher = _demo_publisher()
    v = verify_report_dir(genuine, _home_store())
    with pytest.raises(SigningError, match="not trusted here for reviewing reports"):
        write_review(v, "return", "no further action", publisher, datetime.now(UTC), _home_store())
    _forge_review(v, publisher, "DS-9999")
    code, out = _verify(genuine)
    assert (code, out) == (
        1,
        f"invalid: review 001.dsse.json: key {publisher.keyid[:16]}… is trusted for publishing "
        "packs and sets, not for reviewing reports",
    )


def test_a_revoked_kiosk_key_cannot_sign_a_backdated_report(genuine: Path, tmp_path: Path) -> None:
    """A stolen kiosk key, revoked, signs a report dated before the revocation."""
    home = Path(os.environ["KIOSK_HOME"])
    stolen = load_signer(home / "keys" / "kiosk.key")
    forged = _resign(genuine, tmp_path / "forged", stolen)
    store = TrustStore.load(home / "trust.json")
    store.revoke(stolen.keyid, datetime(2026, 11, 28, tzinfo=UTC))  # after its 'finished'
    store.save(tmp_path / "trust.json")
    code, out = _verify(forged, "--trust", str(tmp_path / "trust.json"))
    assert (code, out) == (
        1,
        "invalid: report.dsse.json: signed by a revoked key; signing time not proven "
        f"(key {stolen.keyid[:16]}… revoked at 2026-11-28T00:00:00Z)",
    )


def test_a_report_finished_in_2099_is_refused(genuine: Path, tmp_path: Path) -> None:
    home = Path(os.environ["KIOSK_HOME"])
    forged = _resign(
        genuine,
        tmp_path / "future",
        load_signer(home / "keys" / "kiosk.key"),
        finished="2099-01-01T00:00:00.000000Z",
    )
    code, out = _verify(forged)
    assert code == 1
    assert out.startswith(
        "invalid: report.dsse.json: its signing time 2099-01-01T00:00:00Z is in the future "
        "(more than 5 minutes ahead of this machine's clock, "
    )


def _kiosk(home: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk", *args],
        input=stdin.decode() + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KIOSK_HOME": str(home), "PYTHONWARNINGS": "error"},
        check=False,
    )


def test_keys_are_trusted_for_named_purposes_and_an_old_store_is_told_once(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    init = _kiosk(home, "keys", "init")
    assert "trusted here for signing reports\n" in init.stdout
    pub = str(DEMO_PUBLISHER)
    publisher = _demo_publisher().keyid
    trust = _kiosk(home, "keys", "trust", pub, "--label", "demo")
    assert trust.stdout == f"trusted: {publisher} for publishing packs and sets\n"
    again = _kiosk(home, "keys", "trust", pub, "--purpose", "publish", "--purpose", "review")
    assert again.stdout == (
        f"trusted: {publisher} for publishing packs and sets and reviewing reports\n"
    )
    bad = _kiosk(home, "keys", "trust", pub, "--purpose", "everything")
    assert bad.returncode == 2
    assert "invalid choice: 'everything'" in bad.stderr
    data = json.loads((home / "trust.json").read_text())
    for entry in data["keys"]:
        del entry["purposes"]  # a store written before purposes existed
    (home / "trust.json").write_text(json.dumps(data))
    first = _kiosk(home, "report", "verify", str(tmp_path / "none"))
    assert first.returncode == 3
    assert f"key {publisher[:16]}… (demo) is now trusted for publishing packs and sets only" in (
        first.stderr
    )
    assert "is now trusted for signing reports only" in first.stderr
    second = _kiosk(home, "report", "verify", str(tmp_path / "none"))
    assert second.stderr == ""


@pytest.mark.parametrize("alias", ["PC\u200b-1234", "\uff30\uff23-1234", " pc-1234\u2060"])
def test_the_officer_cannot_review_their_own_report_under_a_lookalike_id(
    genuine: Path, alias: str, tmp_path: Path
) -> None:
    """The officer's own key, trusted for reviews under a look-alike of their id: refused when
    the review is written, and, for one signed elsewhere, when it is verified."""
    store = _home_store()
    v = verify_report_dir(genuine, store)
    assert v.report["case"]["officer"] == "PC-1234"
    officer = new_key(tmp_path / "officer.key", b"")
    store.add(officer.public, label=alias, purposes=(REVIEWING,))
    with pytest.raises(VerificationError, match="someone other than the officer"):
        write_review(v, "submit", "fine", officer, datetime.now(UTC), store)
    _forge_review(v, officer, alias)
    store.save(tmp_path / "trust.json")
    assert _verify(genuine, "--trust", str(tmp_path / "trust.json")) == (
        1,
        "invalid: review 001.dsse.json: the reviewer is the officer who ran the scan",
    )


def test_a_review_names_the_person_its_key_is_trusted_for_not_who_it_claims(
    genuine: Path,
) -> None:
    """A supervisor's key signing a review in another supervisor's name."""
    v = verify_report_dir(genuine, _home_store())
    _forge_review(v, supervisor("INSP-2"), "SGT-9")
    assert _verify(genuine) == (
        1,
        "invalid: review 001.dsse.json: it names the reviewer SGT-9 but is signed by the key of "
        "INSP-2",
    )


def test_the_kiosk_key_cannot_review_its_own_report(genuine: Path, tmp_path: Path) -> None:
    """Even where the kiosk's key is (wrongly) trusted for reviews too."""
    home = Path(os.environ["KIOSK_HOME"])
    own = load_signer(home / "keys" / "kiosk.key")
    store = _home_store()
    store.keys[own.keyid].purposes = frozenset({REPORT_SIGNING, REVIEWING})
    store.keys[own.keyid].label = "SGT-1"
    v = verify_report_dir(genuine, store)
    with pytest.raises(VerificationError, match="the key that signed the report cannot review"):
        write_review(v, "submit", "mine", own, datetime.now(UTC), store)
    _forge_review(v, own, "SGT-1")
    store.save(tmp_path / "trust.json")
    assert _verify(genuine, "--trust", str(tmp_path / "trust.json")) == (
        1,
        "invalid: review 001.dsse.json: signed by the key that signed the report",
    )


def test_a_deleted_review_is_noticed_where_the_audit_log_recorded_it(
    genuine: Path, own_home: Path
) -> None:
    home = own_home
    key = ("--key", str(supervisor_key(home)))
    decide = ("--decision", "submit", "--reason", "marker files")
    rv = _kiosk(home, "review", str(genuine), *decide, *key, stdin=SUPERVISOR_PASSPHRASE)
    assert rv.returncode == 0, rv.stderr
    assert rv.stdout.startswith("review by SGT-9: ")
    assert _verify(genuine)[0] == 0
    review = genuine / "reviews" / "001.dsse.json"
    kept = review.read_bytes()
    shutil.rmtree(genuine / "reviews")
    assert _verify(genuine) == (
        1,
        "invalid: review 001.dsse.json recorded in this kiosk's audit log is missing from the "
        "report folder (deleted)",
    )
    (genuine / "reviews").mkdir()
    review.write_bytes(kept)
    assert _verify(genuine)[0] == 0
    wrong = _kiosk(home, "review", str(genuine), *decide, *key, stdin=b"not the passphrase")
    assert (wrong.returncode, wrong.stderr) == (
        1,
        f"kiosk: error: the passphrase does not open the key file {supervisor_key(home)}\n",
    )
