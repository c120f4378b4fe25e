"""Android ADB backups (``adb backup``: ``.ab``), with or without the backup password.

The format, as Android's BackupManagerService writes it: four text lines -- ``ANDROID BACKUP``,
the format version, ``1`` if the rest is zlib-compressed, and ``none`` or ``AES-256`` -- then,
when encrypted, five more: the user-key salt, the checksum salt, the PBKDF2 round count, the IV
and the master-key blob (hex). The user key is PBKDF2-HMAC-SHA1(password, salt, rounds, 256
bits); it decrypts the blob (AES-256-CBC) into the master IV, the master key and a checksum of
the master key, which tells a wrong password from a right one. The master key decrypts the
rest (AES-256-CBC), which inflates (zlib) to a tar of the apps' files.

Everything is decoded in memory, forward, as the tar reader asks for it (``DecodedStream``):
nothing is written. The password comes from the EvidenceRef (memory only, never argv); without
it, an encrypted backup is one area not examined: "encrypted backup: password needed".
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from kiosk.errors import ImageError
from kiosk.evidence.headers import ADB_MAGIC
from kiosk.evidence.logical.stream import DecodedStream
from kiosk.evidence.media.raw import RawMedia

MAGIC = ADB_MAGIC
MAX_HEADER = 4096  # nine short lines; more is not an ADB header
PIECE = 1 << 20


@dataclass(frozen=True, slots=True)
class AdbHeader:
    version: int
    compressed: bool
    encryption: str  # "none" or "AES-256"
    data_at: int  # where the (encrypted / compressed) payload starts
    fields: tuple[bytes, ...] = ()  # the five encryption lines, when encrypted


def read_header(head: bytes, name: str) -> AdbHeader:
    """The header lines of an ADB backup from its first bytes; ImageError if damaged."""
    if not head.startswith(MAGIC):
        raise ImageError(f"{name}: not an Android backup")
    lines = head[:MAX_HEADER].split(b"\n")
    try:
        version, compressed, encryption = int(lines[1]), lines[2] == b"1", lines[3].decode()
    except (IndexError, ValueError, UnicodeDecodeError) as e:
        raise ImageError(f"{name}: Android backup header is damaged") from e
    count = 4
    if encryption == "AES-256":
        count = 9
    elif encryption != "none":
        raise ImageError(f"{name}: Android backup encrypted with {encryption!r}: not supported")
    if len(lines) <= count:
        raise ImageError(f"{name}: Android backup header is damaged (ends early)")
    data_at = sum(len(x) + 1 for x in lines[:count])
    return AdbHeader(version, compressed, encryption, data_at, tuple(lines[4:count]))


def _java_chars_utf8(key: bytes) -> bytes:
    """The master key as Android hashes it for its checksum (format version 2 and later):
    each byte widened to a Java ``char`` with its sign, then UTF-8 encoded."""
    return "".join(chr(b if b < 0x80 else 0xFF00 | b) for b in key).encode("utf-8")


def master_key(header: AdbHeader, password: bytes, name: str) -> tuple[bytes, bytes]:
    """(key, iv) of the payload, from the password; ImageError if the password is wrong."""
    try:
        user_salt, ck_salt, rounds_text, user_iv, blob = (
            bytes.fromhex(header.fields[0].decode()),
            bytes.fromhex(header.fields[1].decode()),
            header.fields[2],
            bytes.fromhex(header.fields[3].decode()),
            bytes.fromhex(header.fields[4].decode()),
        )
        rounds = int(rounds_text)
    except (ValueError, UnicodeDecodeError, IndexError) as e:
        raise ImageError(f"{name}: Android backup encryption header is damaged") from e
    if not 0 < rounds <= 10_000_000 or len(user_iv) != 16:
        raise ImageError(f"{name}: Android backup encryption header is damaged")
    user_key = hashlib.pbkdf2_hmac("sha1", password, user_salt, rounds, 32)
    wrong = ImageError(f"{name}: the backup password is wrong (the backup does not open with it)")
    try:
        dec = Cipher(algorithms.AES(user_key), modes.CBC(user_iv)).decryptor()
        unpad = padding.PKCS7(128).unpadder()
        plain = unpad.update(dec.update(blob) + dec.finalize()) + unpad.finalize()
    except ValueError as e:
        raise wrong from e
    parts, at = [], 0
    for _ in range(3):
        if at >= len(plain):
            raise wrong
        n = plain[at]
        parts.append(plain[at + 1 : at + 1 + n])
        at += 1 + n
    iv, key, checksum = parts
    mk = _java_chars_utf8(key) if header.version >= 2 else key
    if (
        len(key) != 32
        or len(iv) != 16
        or (hashlib.pbkdf2_hmac("sha1", mk, ck_salt, rounds, 32) != checksum)
    ):
        raise wrong
    return key, iv


def tar_stream(
    media: RawMedia, header: AdbHeader, keys: tuple[bytes, bytes] | None
) -> DecodedStream:
    """The backup's tar, decoded forward from the payload on each (re)start."""

    def pieces() -> Iterator[bytes]:
        dec = Cipher(algorithms.AES(keys[0]), modes.CBC(keys[1])).decryptor() if keys else None
        unpad = padding.PKCS7(128).unpadder() if keys else None
        inflate = zlib.decompressobj() if header.compressed else None
        off = header.data_at
        while True:
            raw = media.pread(off, PIECE)
            off += len(raw)
            last = not raw
            data = raw
            try:
                if dec is not None and unpad is not None:
                    data = (
                        unpad.update(dec.update(raw))
                        if raw
                        else unpad.update(dec.finalize()) + unpad.finalize()
                    )
                if inflate is not None:
                    data = (
                        inflate.decompress(data)
                        if not last
                        else inflate.decompress(data) + inflate.flush()
                    )
            except (ValueError, zlib.error) as e:
                raise OSError(f"the backup's data is damaged near byte {off}: {e}") from e
            if data:
                yield data
            if last:
                return

    return DecodedStream(pieces)
