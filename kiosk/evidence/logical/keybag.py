"""The key bag of an encrypted iTunes/Finder backup, unlocked with the backup password.

The scheme is Apple's, as its Platform Security guide and the iphone-dataprotection research
describe it: ``Manifest.plist`` holds ``BackupKeyBag``, a run of tag-length-value records
(4-byte tag, 4-byte big-endian length). Its header gives the salts and round counts; each
protection class then gives its wrapped key (``CLAS``, ``WRAP``, ``WPKY``). The password key is
PBKDF2-HMAC-SHA256(password, ``DPSL``, ``DPIC``) then PBKDF2-HMAC-SHA1(that, ``SALT``,
``ITER``), 32 bytes each; it unwraps (RFC 3394 AES key wrap) each class key whose ``WRAP`` has
bit 2. ``ManifestKey`` (4-byte little-endian class, then a wrapped key) opens ``Manifest.db``,
and each file's own ``EncryptionKey`` opens that file; both are AES-256-CBC with a zero IV.

Everything is done here in memory with ``cryptography``: unlike the ready-made library, which
writes the decrypted ``Manifest.db`` to a temporary file, nothing decrypted ever reaches a disk.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap

from kiosk.errors import ImageError

WRAP_PASSCODE = 2  # WRAP bit: the class key is wrapped with the password key
ZERO_IV = bytes(16)


def records(blob: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The tag-length-value records of a key bag, in order; ImageError if one overruns."""
    at = 0
    while at + 8 <= len(blob):
        tag, length = blob[at : at + 4], struct.unpack_from(">I", blob, at + 4)[0]
        if at + 8 + length > len(blob):
            raise ImageError("the backup's key bag is damaged (a record overruns it)")
        yield tag, blob[at + 8 : at + 8 + length]
        at += 8 + length


def _integer(value: bytes) -> int:
    return int.from_bytes(value, "big") if value else 0


def class_keys(blob: bytes, password: bytes) -> dict[int, bytes]:
    """Every protection class key the password unwraps; ImageError if the password is wrong."""
    head: dict[bytes, bytes] = {}
    classes: list[dict[bytes, bytes]] = []
    current: dict[bytes, bytes] | None = None
    for tag, value in records(blob):
        if tag == b"UUID" and b"UUID" in head:
            current = {}
            classes.append(current)
        target = current if current is not None else head
        target[tag] = value
    if b"SALT" not in head or b"ITER" not in head:
        raise ImageError("the backup's key bag is damaged (no salt or round count)")
    iterations, dp_rounds = _integer(head[b"ITER"]), _integer(head.get(b"DPIC", b""))
    if not 0 < iterations <= 100_000_000 or dp_rounds > 100_000_000:
        raise ImageError("the backup's key bag is damaged (round counts out of range)")
    key = password
    if b"DPSL" in head and dp_rounds:
        key = hashlib.pbkdf2_hmac("sha256", key, head[b"DPSL"], dp_rounds, 32)
    key = hashlib.pbkdf2_hmac("sha1", key, head[b"SALT"], iterations, 32)
    keys: dict[int, bytes] = {}
    for c in classes:
        if (
            b"CLAS" not in c
            or b"WPKY" not in c
            or not _integer(c.get(b"WRAP", b"")) & WRAP_PASSCODE
        ):
            continue
        try:
            keys[_integer(c[b"CLAS"])] = aes_key_unwrap(key, c[b"WPKY"])
        except (InvalidUnwrap, ValueError) as e:
            raise ImageError(
                "the backup password is wrong (the backup does not open with it)"
            ) from e
    if not keys:
        raise ImageError("the backup's key bag holds no key the password can open")
    return keys


def unwrap(keys: dict[int, bytes], wrapped: bytes, what: str) -> bytes:
    """A key stored as 4-byte little-endian class + RFC 3394 wrapped key, unwrapped."""
    if len(wrapped) < 4 + 24:
        raise ImageError(f"the backup's {what} key is damaged")
    cls = struct.unpack_from("<I", wrapped)[0]
    if cls not in keys:
        raise ImageError(
            f"the backup's {what} key is of protection class {cls}, not in its key bag"
        )
    try:
        return aes_key_unwrap(keys[cls], wrapped[4:])
    except (InvalidUnwrap, ValueError) as e:
        raise ImageError(f"the backup's {what} key does not unwrap (damaged)") from e


def decrypt_all(key: bytes, data: bytes) -> bytes:
    """AES-256-CBC, zero IV, PKCS#7 padding removed when present (``Manifest.db``)."""
    if len(data) % 16:
        raise ImageError("encrypted data is not a whole number of AES blocks (damaged)")
    dec = Cipher(algorithms.AES(key), modes.CBC(ZERO_IV)).decryptor()
    plain = dec.update(data) + dec.finalize()
    try:
        unpad = padding.PKCS7(128).unpadder()
        return unpad.update(plain) + unpad.finalize()
    except ValueError:
        return plain


def decrypting(key: bytes, pieces: Iterator[bytes], size: int) -> Iterator[bytes]:
    """The first ``size`` plaintext bytes of a file encrypted AES-256-CBC with a zero IV."""
    dec = Cipher(algorithms.AES(key), modes.CBC(ZERO_IV)).decryptor()
    left, carry = size, b""
    for piece in pieces:
        carry += piece
        whole = len(carry) - len(carry) % 16
        if not whole:
            continue
        plain, carry = dec.update(carry[:whole]), carry[whole:]
        if plain and left > 0:
            out = plain[:left]
            left -= len(out)
            yield out
    if carry:
        raise OSError("the encrypted file is not a whole number of AES blocks (damaged)")
    if left > 0:
        raise OSError(f"the encrypted file ends {left} bytes short of its recorded size")
