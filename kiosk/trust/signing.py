"""Keys, the trust store, and DSSE envelopes: how a report proves who made it and that it is whole.

Design (shared/reference/governance-and-signing.md §4): Ed25519 over the DSSE pre-authentication
encoding (PAE) of the exact payload bytes; the payload is an in-toto Statement v1 in RFC 8785
canonical form. The envelope's ``keyid`` is only a hint: what a key may sign, and when, comes from
the trust store, never from the envelope. A key id is the SHA-256 of the raw public key.

Files under ``$KIOSK_HOME`` (default: the per-user data directory):
``keys/kiosk.key`` (PKCS#8 PEM, mode 0600 — a key readable by others is refused),
``keys/kiosk.pub`` and ``trust.json`` (trusted public keys with validity windows, revocation and
purposes).

**Purposes.** A trusted key may sign only what it is trusted for: ``report`` (a kiosk signing its
triage reports), ``publish`` (the lab publishing rule packs and hash sets), ``review`` (a
supervisor's review of a report). ``verify_envelope`` refuses a signature for one purpose by a key
trusted only for others, by name, so a publisher's key (the demo one is public) cannot forge a
report or a review. A store written before purposes existed has none per entry: the kiosk's own
key (``keys/kiosk.pub`` beside the store) is then taken as ``report``, every other key as
``publish`` (``TrustStore.assumed`` lists these, so the command line can say so once and write
them down).

**Reviews are bound to people.** A kiosk's own key signs its reports only. Each supervisor has a
key of their own (``kiosk keys new``: a key file, encrypted with a passphrase, that can live on a
removable token), trusted for ``review`` under a label that names the person; that label, not
text typed at review time, is the reviewer's identity.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from kiosk.canonical import parse_time_text, utc_text_seconds
from kiosk.errors import SigningError, TimeTextError, VerificationError

INTOTO_STATEMENT = "https://in-toto.io/Statement/v1"
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
TRUST_FORMAT = "kiosk.trust-store/1"

REPORT_SIGNING = "report"
PUBLISHING = "publish"
REVIEWING = "review"
PURPOSES = {  # what each purpose lets a key sign, as messages say it
    REPORT_SIGNING: "signing reports",
    PUBLISHING: "publishing packs and sets",
    REVIEWING: "reviewing reports",
}
OWN_KEY_PURPOSES = (REPORT_SIGNING,)  # `kiosk keys init`, and the own key of an old store
TRUSTED_KEY_PURPOSES = (PUBLISHING,)  # `kiosk keys trust` without --purpose; others in an old store


def check_purposes(purposes: object, where: str) -> frozenset[str]:
    """A non-empty set of known purposes, or SigningError naming the known ones."""
    if not isinstance(purposes, list | tuple | frozenset | set) or not purposes:
        raise SigningError(f"{where}: purposes must be a non-empty list")
    unknown = sorted(str(p) for p in purposes if p not in PURPOSES)
    if unknown:
        raise SigningError(
            f"{where}: unknown purpose {unknown[0]!r} (known: {', '.join(PURPOSES)})"
        )
    return frozenset(str(p) for p in purposes)


def purposes_text(purposes: frozenset[str]) -> str:
    return " and ".join(PURPOSES[p] for p in PURPOSES if p in purposes)


def kiosk_home() -> Path:
    """Where the kiosk keeps its key, trust store and audit log."""
    env = os.environ.get("KIOSK_HOME")
    return Path(env) if env else Path(platformdirs.user_data_dir("kiosk"))


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_b64(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: binds the payload type to the payload bytes."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass(frozen=True, slots=True)
class Signer:
    """A loaded private key and its id."""

    private: Ed25519PrivateKey
    keyid: str

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def envelope(self, payload: bytes, payload_type: str = INTOTO_PAYLOAD_TYPE) -> dict[str, Any]:
        """A DSSE envelope over ``payload`` with one signature by this key."""
        sig = self.private.sign(pae(payload_type, payload))
        return {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": payload_type,
            "signatures": [{"keyid": self.keyid, "sig": base64.b64encode(sig).decode()}],
        }


def init_key(
    home: Path | None = None,
    name: str = "kiosk",
    not_before: datetime | None = None,
    purposes: tuple[str, ...] = OWN_KEY_PURPOSES,
) -> Signer:
    """Create a key pair (refusing to overwrite one) and trust it in this kiosk's own store.

    The key is trusted from ``not_before`` (default: now): a key cannot sign before it existed;
    and for ``purposes`` (default: its reports and reviews made at this kiosk).
    """
    check_purposes(purposes, "keys init")
    home = home or kiosk_home()
    keys = home / "keys"
    key_path = keys / f"{name}.key"
    if key_path.exists():
        raise SigningError(f"a key already exists at {key_path}; it is never overwritten")
    try:
        keys.mkdir(parents=True, exist_ok=True, mode=0o700)
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        pub_pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        (keys / f"{name}.pub").write_bytes(pub_pem)
    except OSError as e:
        raise SigningError(f"cannot create the key in {keys}: {e.strerror or e}") from e
    signer = Signer(private, key_id(private.public_key()))
    store = TrustStore.load(home / "trust.json", missing_ok=True)
    store.add(
        signer.public,
        label=name,
        not_before=not_before or datetime.now(UTC),
        purposes=purposes,
    )
    store.save(home / "trust.json")
    return signer


def load_signer(path: Path | None = None, passphrase: Callable[[], bytes] | None = None) -> Signer:
    """Load a private key, refusing one that anyone but its owner can read.

    An encrypted key file (a supervisor's, from ``kiosk keys new``) is opened with the bytes
    ``passphrase()`` returns, asked for only when the file needs them; the passphrase is never
    kept.
    """
    path = path or kiosk_home() / "keys" / "kiosk.key"
    own = path.name == "kiosk.key"  # a kiosk's own key: say how to make one
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as e:
        if own:
            raise SigningError(f"no signing key at {path}: run 'kiosk keys init' first") from e
        raise SigningError(f"no key file at {path}") from e
    except OSError as e:
        raise SigningError(f"cannot read the key file {path}: {e.strerror or e}") from e
    if not stat.S_ISREG(mode):
        raise SigningError(f"the key file {path} is not a regular file")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningError(
            f"refusing the key {path}: it is readable by others (mode {stat.S_IMODE(mode):o}); "
            "it must be 0600"
        )
    try:
        pem = path.read_bytes()
    except OSError as e:
        raise SigningError(f"cannot read the key file {path}: {e.strerror or e}") from e
    private = _private_from_pem(pem, path, passphrase)
    if not isinstance(private, Ed25519PrivateKey):
        raise SigningError(f"the key file {path} is not an Ed25519 key")
    return Signer(private, key_id(private.public_key()))


def _private_from_pem(
    pem: bytes, path: Path, passphrase: Callable[[], bytes] | None
) -> PrivateKeyTypes:
    encrypted = b"ENCRYPTED PRIVATE KEY" in pem
    if encrypted and passphrase is None:
        raise SigningError(f"the key file {path} is protected by a passphrase; none was given")
    try:
        return serialization.load_pem_private_key(
            pem, password=passphrase() if encrypted and passphrase else None
        )
    except (ValueError, TypeError) as e:
        if encrypted:
            raise SigningError(f"the passphrase does not open the key file {path}") from e
        raise SigningError(f"the key file {path} cannot be read as a private key") from e


def new_key(path: Path, passphrase: bytes) -> Signer:
    """A new key pair for a person (a supervisor): the private key at ``path`` (mode 0600,
    encrypted with ``passphrase`` when it is not empty, never overwriting a file) and the public
    key beside it as ``<path>.pub``, to be trusted by the kiosks that should accept its
    signatures. Nothing is added to any trust store: trusting is the kiosk owner's act."""
    private = Ed25519PrivateKey.generate()
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    pub_path = path.with_name(path.name + ".pub")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise SigningError(f"a file already exists at {path}; it is never overwritten") from e
    except OSError as e:
        raise SigningError(f"cannot create the key file {path}: {e.strerror or e}") from e
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    pub_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        fd = os.open(pub_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as e:
        raise SigningError(
            f"cannot create the public key file {pub_path}: {e.strerror or e}"
        ) from e
    with os.fdopen(fd, "wb") as f:
        f.write(pub_pem)
    return Signer(private, key_id(private.public_key()))


def load_public(text: str) -> Ed25519PublicKey:
    """A public key from PEM text or base64 of the 32 raw bytes."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error) as e:
        raise SigningError("not an Ed25519 public key (PEM or base64 of 32 bytes)") from e
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError("not an Ed25519 public key")
    return key


def _parse_time(value: object, what: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SigningError(f"trust store: {what} is not a time")
    try:
        return parse_time_text(value)
    except TimeTextError as e:
        raise SigningError(f"trust store: {what} is not an ISO 8601 time with a time zone") from e


def _time_text(t: datetime | None) -> str | None:
    return utc_text_seconds(t) if t else None


@dataclass(slots=True)
class TrustedKey:
    keyid: str
    public: Ed25519PublicKey
    label: str
    not_before: datetime | None
    not_after: datetime | None
    revoked_at: datetime | None
    purposes: frozenset[str] = frozenset()

    def purpose_problem(self, purpose: str) -> str | None:
        """Why this key may not sign for ``purpose``, by name; None if it may."""
        if purpose in self.purposes:
            return None
        return (
            f"key {self.keyid[:16]}… is trusted for {purposes_text(self.purposes)}, "
            f"not for {PURPOSES[purpose]}"
        )

    def problem_at(self, when: datetime) -> str | None:
        """Why this key may not have signed at ``when``, or None if it may."""
        if self.revoked_at is not None and when >= self.revoked_at:
            return f"key {self.keyid[:16]}… was revoked at {_time_text(self.revoked_at)}"
        if self.not_before is not None and when < self.not_before:
            return f"key {self.keyid[:16]}… was not yet valid at {_time_text(when)}"
        if self.not_after is not None and when > self.not_after:
            return f"key {self.keyid[:16]}… had expired at {_time_text(when)}"
        return None


class TrustStore:
    """The public keys this verifier trusts, each with a validity window and revocation."""

    def __init__(self, keys: list[TrustedKey], assumed: tuple[str, ...] = ()) -> None:
        self.keys = {k.keyid: k for k in keys}
        self.assumed = assumed  # key ids whose purposes an old store lacked (module docstring)

    @classmethod
    def load(cls, path: Path, missing_ok: bool = False) -> TrustStore:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            if missing_ok:
                return cls([])
            raise SigningError(f"no trust store at {path}") from e
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SigningError(f"the trust store {path} is not readable JSON") from e
        if (
            not isinstance(data, dict)
            or data.get("format") != TRUST_FORMAT
            or not isinstance(data.get("keys"), list)
        ):
            raise SigningError(f"the trust store {path} is not a kiosk trust store")
        keys, assumed = [], []
        own = _own_keyid(path.parent)
        for i, k in enumerate(data["keys"]):
            if not isinstance(k, dict):
                raise SigningError(f"trust store {path}: entry {i} is not an object")
            public = load_public(str(k.get("public_key", "")))
            if key_id(public) != k.get("keyid"):
                raise SigningError(f"trust store {path}: entry {i} key id does not match its key")
            if "purposes" in k:
                purposes = check_purposes(k["purposes"], f"trust store {path}: entry {i}")
            else:
                own_key = key_id(public) == own
                purposes = frozenset(OWN_KEY_PURPOSES if own_key else TRUSTED_KEY_PURPOSES)
                assumed.append(key_id(public))
            keys.append(
                TrustedKey(
                    keyid=key_id(public),
                    public=public,
                    label=str(k.get("label", "")),
                    not_before=_parse_time(k.get("not_before"), f"entry {i} not_before"),
                    not_after=_parse_time(k.get("not_after"), f"entry {i} not_after"),
                    revoked_at=_parse_time(k.get("revoked_at"), f"entry {i} revoked_at"),
                    purposes=purposes,
                )
            )
        return cls(keys, tuple(assumed))

    def add(
        self,
        public: Ed25519PublicKey,
        label: str = "",
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        purposes: tuple[str, ...] = TRUSTED_KEY_PURPOSES,
    ) -> TrustedKey:
        """Trust a key for ``purposes`` (default: publishing, the usual reason to trust one).

        A key trusted for reviews needs a label: it is the reviewer's name on every review.
        """
        if REVIEWING in purposes and not label.strip():
            raise SigningError(
                "a key trusted for reviewing reports needs --label: the reviewer's name, "
                "shown on every review it signs"
            )
        k = TrustedKey(
            key_id(public),
            public,
            label,
            not_before,
            not_after,
            None,
            check_purposes(purposes, "trust"),
        )
        existing = self.keys.get(k.keyid)
        if existing is not None:
            raise SigningError(f"key {k.keyid} is already in the trust store")
        self.keys[k.keyid] = k
        return k

    def revoke(self, keyid: str, when: datetime) -> TrustedKey:
        matches = (
            [k for k in self.keys.values() if k.keyid.startswith(keyid.lower())] if keyid else []
        )
        if len(matches) != 1:
            raise SigningError(f"no single key in the trust store has id {keyid!r}")
        matches[0].revoked_at = when
        return matches[0]

    def save(self, path: Path) -> None:
        data = {
            "format": TRUST_FORMAT,
            "keys": [
                {
                    "keyid": k.keyid,
                    "public_key": public_b64(k.public),
                    "label": k.label,
                    "not_before": _time_text(k.not_before),
                    "not_after": _time_text(k.not_after),
                    "revoked_at": _time_text(k.revoked_at),
                    "purposes": [p for p in PURPOSES if p in k.purposes],
                }
                for k in sorted(self.keys.values(), key=lambda k: k.keyid)
            ],
        }
        tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            tmp.replace(path)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise SigningError(f"cannot write the trust store {path}: {e.strerror or e}") from e


def _own_keyid(home: Path) -> str | None:
    """The id of the kiosk key in ``home`` (``keys/kiosk.pub``), if there is one."""
    try:
        key = serialization.load_pem_public_key((home / "keys" / "kiosk.pub").read_bytes())
    except (OSError, ValueError):
        return None
    return key_id(key) if isinstance(key, Ed25519PublicKey) else None


def open_envelope(raw: bytes, what: str) -> tuple[dict[str, Any], bytes, str, bytes]:
    """Parse a DSSE envelope: (envelope, payload bytes, key id hint, signature bytes)."""
    try:
        env = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VerificationError(f"{what}: malformed envelope (not JSON)") from e
    if not isinstance(env, dict):
        raise VerificationError(f"{what}: malformed envelope (not an object)")
    sigs = env.get("signatures")
    if not isinstance(env.get("payload"), str) or not isinstance(env.get("payloadType"), str):
        raise VerificationError(f"{what}: malformed envelope (payload or payloadType missing)")
    if not isinstance(sigs, list) or len(sigs) != 1 or not isinstance(sigs[0], dict):
        raise VerificationError(f"{what}: malformed envelope (expected exactly one signature)")
    try:
        payload = base64.b64decode(env["payload"], validate=True)
        sig = base64.b64decode(str(sigs[0].get("sig", "")), validate=True)
    except binascii.Error as e:
        raise VerificationError(f"{what}: malformed envelope (bad base64)") from e
    return env, payload, str(sigs[0].get("keyid", "")), sig


def verify_envelope(
    raw: bytes,
    trust: TrustStore,
    what: str,
    payload_type: str = INTOTO_PAYLOAD_TYPE,
    *,
    purpose: str,
) -> tuple[TrustedKey, bytes]:
    """Check the signature against the trust store, and that its key is trusted for
    ``purpose``; returns the key and the signed payload.

    Whether the key was valid *when it signed* is ``kiosk.trust.policy``'s decision (the time
    is in the payload).
    """
    env, payload, hint, sig = open_envelope(raw, what)
    if env["payloadType"] != payload_type:
        raise VerificationError(f"{what}: unexpected payload type {env['payloadType']!r}")
    key = trust.keys.get(hint)
    if key is None:
        raise VerificationError(f"{what}: signed by an unknown key {hint[:16] or '(none)'}…")
    try:
        key.public.verify(sig, pae(env["payloadType"], payload))
    except InvalidSignature as e:
        raise VerificationError(
            f"{what}: the signature does not match the payload (tampered)"
        ) from e
    problem = key.purpose_problem(purpose)
    if problem:
        raise VerificationError(f"{what}: {problem}")
    return key, payload
