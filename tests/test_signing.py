"""Keys and the trust store, on real files with real Ed25519 keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kiosk.errors import SigningError, VerificationError
from kiosk.trust.signing import (
    PUBLISHING,
    REPORT_SIGNING,
    REVIEWING,
    TrustStore,
    init_key,
    key_id,
    load_public,
    load_signer,
    new_key,
    pae,
    public_b64,
    verify_envelope,
)


def test_init_creates_a_0600_key_trusts_it_and_never_overwrites(tmp_path: Path) -> None:
    signer = init_key(tmp_path)
    key = tmp_path / "keys" / "kiosk.key"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert load_signer(key).keyid == signer.keyid
    assert len(signer.keyid) == 64
    store = TrustStore.load(tmp_path / "trust.json")
    assert list(store.keys) == [signer.keyid]
    with pytest.raises(SigningError, match="never overwritten"):
        init_key(tmp_path)


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    init_key(tmp_path)
    key = tmp_path / "keys" / "kiosk.key"
    key.chmod(0o644)
    with pytest.raises(SigningError, match="readable by others"):
        load_signer(key)


def test_missing_and_garbage_keys_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="kiosk keys init"):
        load_signer(tmp_path / "keys" / "kiosk.key")  # a kiosk's own key: how to make one
    with pytest.raises(SigningError, match=r"^no key file at .*none\.key$"):
        load_signer(tmp_path / "none.key")  # a person's key file, named by them
    bad = tmp_path / "bad.key"
    bad.write_bytes(b"not a key")
    bad.chmod(0o600)
    with pytest.raises(SigningError, match="cannot be read as a private key"):
        load_signer(bad)


def test_pae_matches_the_dsse_spec_example() -> None:
    # DSSE v1 protocol document: PAE("http://example.com/HelloWorld", "hello world")
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_envelope_verifies_and_tampering_is_named(tmp_path: Path) -> None:
    signer = init_key(tmp_path)
    store = TrustStore.load(tmp_path / "trust.json")
    env = signer.envelope(b'{"a":1}')
    import json

    raw = json.dumps(env).encode()
    key, payload = verify_envelope(raw, store, "env", purpose=REPORT_SIGNING)
    assert (key.keyid, payload) == (signer.keyid, b'{"a":1}')
    env["payload"] = "eyJhIjoyfQ=="  # {"a":2}
    with pytest.raises(VerificationError, match="tampered"):
        verify_envelope(json.dumps(env).encode(), store, "env", purpose=REPORT_SIGNING)
    with pytest.raises(VerificationError, match="unknown key"):
        verify_envelope(raw, TrustStore([]), "env", purpose=REPORT_SIGNING)
    with pytest.raises(VerificationError, match="malformed"):
        verify_envelope(raw[:-5], store, "env", purpose=REPORT_SIGNING)


def test_trust_revoke_and_validity_windows(tmp_path: Path) -> None:
    a = init_key(tmp_path / "a")
    path = tmp_path / "trust.json"
    store = TrustStore.load(path, missing_ok=True)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    store.add(
        load_public(public_b64(a.public)),
        label="kiosk A",
        not_before=t0,
        not_after=t0 + timedelta(days=365),
    )
    store.save(path)
    again = TrustStore.load(path)
    k = again.keys[a.keyid]
    assert k.problem_at(t0 + timedelta(days=1)) is None
    assert "not yet valid" in (k.problem_at(t0 - timedelta(days=1)) or "")
    assert "expired" in (k.problem_at(t0 + timedelta(days=400)) or "")
    again.revoke(a.keyid[:12], t0 + timedelta(days=10))
    again.save(path)
    k = TrustStore.load(path).keys[a.keyid]
    assert k.problem_at(t0 + timedelta(days=5)) is None  # signed before revocation: still valid
    assert "revoked" in (k.problem_at(t0 + timedelta(days=11)) or "")


def test_corrupt_trust_store_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    path.write_text("{not json")
    with pytest.raises(SigningError, match="not readable JSON"):
        TrustStore.load(path)
    path.write_text(
        '{"format": "kiosk.trust-store/1", "keys": [{"keyid": "00", "public_key": "AAAA"}]}'
    )
    with pytest.raises(SigningError, match="not an Ed25519 public key"):
        TrustStore.load(path)


def test_a_key_signs_only_what_it_is_trusted_for_and_is_refused_by_name(tmp_path: Path) -> None:
    signer = init_key(tmp_path)  # the kiosk's own key: its reports only (reviews are people's)
    store = TrustStore.load(tmp_path / "trust.json")
    assert store.keys[signer.keyid].purposes == {REPORT_SIGNING}
    raw = json.dumps(signer.envelope(b"{}")).encode()
    verify_envelope(raw, store, "env", purpose=REPORT_SIGNING)
    for purpose, what in (
        (PUBLISHING, "publishing packs and sets"),
        (REVIEWING, "reviewing reports"),
    ):
        with pytest.raises(
            VerificationError,
            match=f"^env: key {signer.keyid[:16]}… is trusted for signing reports, not for {what}$",
        ):
            verify_envelope(raw, store, "env", purpose=purpose)
    saved = json.loads((tmp_path / "trust.json").read_text())
    assert saved["keys"][0]["purposes"] == ["report"]


def test_an_old_store_without_purposes_trusts_the_own_key_for_reports_and_others_to_publish(
    tmp_path: Path,
) -> None:
    own = init_key(tmp_path)
    other = init_key(tmp_path / "lab")
    store = TrustStore.load(tmp_path / "trust.json")
    store.add(other.public, label="lab")
    store.save(tmp_path / "trust.json")
    data = json.loads((tmp_path / "trust.json").read_text())
    for entry in data["keys"]:
        del entry["purposes"]  # as written before purposes existed
    (tmp_path / "trust.json").write_text(json.dumps(data))
    old = TrustStore.load(tmp_path / "trust.json")
    assert set(old.assumed) == {own.keyid, other.keyid}
    assert old.keys[own.keyid].purposes == {REPORT_SIGNING}
    assert old.keys[other.keyid].purposes == {PUBLISHING}
    old.save(tmp_path / "trust.json")
    assert TrustStore.load(tmp_path / "trust.json").assumed == ()
    data["keys"][0]["purposes"] = ["everything"]
    (tmp_path / "trust.json").write_text(json.dumps(data))
    with pytest.raises(SigningError, match="unknown purpose 'everything'"):
        TrustStore.load(tmp_path / "trust.json")


def test_a_person_key_is_encrypted_and_opens_only_with_its_passphrase(tmp_path: Path) -> None:
    """A supervisor's key (``kiosk keys new``): never in the clear on disk, never overwritten,
    and a key trusted for reviews must carry the person's name."""
    path = tmp_path / "ds-5678.key"
    made = new_key(path, b"correct horse battery")
    assert path.stat().st_mode & 0o777 == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    assert load_signer(path, lambda: b"correct horse battery").keyid == made.keyid
    with pytest.raises(SigningError, match="the passphrase does not open the key file"):
        load_signer(path, lambda: b"wrong")
    with pytest.raises(SigningError, match="protected by a passphrase; none was given"):
        load_signer(path)
    with pytest.raises(SigningError, match="never overwritten"):
        new_key(path, b"another passphrase")
    public = load_public((tmp_path / "ds-5678.key.pub").read_text())
    assert key_id(public) == made.keyid
    store = TrustStore([])
    with pytest.raises(SigningError, match="needs --label: the reviewer's name"):
        store.add(public, purposes=(REVIEWING,))
    assert store.add(public, label="DS-5678", purposes=(REVIEWING,)).label == "DS-5678"
