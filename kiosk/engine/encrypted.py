"""Encrypted data: content the kiosk cannot look into without a password or a key.

Why it matters to triage: rules and hash sets see only ciphertext there, so "no matches" would
say less than it seems. Each file found here becomes an ``encrypted_data`` finding with what it
is ("ZIP archive with encrypted entries"), and the recommendation takes it into account
(``kiosk.reports.report.recommend``: encrypted data alone makes the result inconclusive,
"password needed").

What is recognised, from the file's first and last bytes the scan already holds (``head``,
``tail``: at most 64 KiB each, never more of the file):

- archives: ZIP entries with the encryption flag (ZipCrypto and AES), 7-Zip archives whose
  header names the AES coder (visible when the header is stored plain or itself encrypted; a
  large archive whose header is only compressed is not recognised), RAR 4 and RAR 5 encrypted
  headers or files;
- documents: PDF with an ``/Encrypt`` dictionary, Office files saved with a password (an OLE
  compound file holding ``EncryptionInfo``);
- OpenPGP messages (binary and armoured: the first packet is an encrypted session key),
  age files, ``openssl enc`` output (``Salted__``);
- password databases: KeePass 1.x and KDBX, Password Safe v3;
- wallets: Bitcoin Core ``wallet.dat`` (Berkeley DB or SQLite), Ethereum keystore JSON,
  Electrum encrypted wallets;
- containers (a *heuristic*, said so in the reason): no header libmagic knows, at least 1 MiB,
  a size that is a multiple of 512, and sampled entropy of at least 7.99 bits per byte — what a
  VeraCrypt or TrueCrypt volume looks like, and also what any file of random bytes looks like.
"""

from __future__ import annotations

import base64
import binascii
import math
import re

from kiosk.model import BUILTIN_PACK, ENCRYPTED_DATA, RuleMatch

SEVERITY = "medium"
CONTAINER_MIN = 1 << 20
CONTAINER_ENTROPY = 7.99  # bits per byte; random data sampled over 128 KiB gives about 7.998
NEEDED = "password needed"


def _match(rule: str, what: str) -> RuleMatch:
    return RuleMatch(BUILTIN_PACK, rule, ENCRYPTED_DATA, SEVERITY, f"{what}: {NEEDED}")


def entropy(data: bytes) -> float:
    """Shannon entropy of the byte values, in bits per byte (0 for no data)."""
    if not data:
        return 0.0
    import numpy as np  # only for the rare candidate container: not at every worker's start

    n = len(data)
    counts = np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)
    return -sum(int(c) / n * math.log2(int(c) / n) for c in counts if c)


# --------------------------------------------------------------------------- archives


def _zip(head: bytes, tail: bytes) -> bool:
    """A local file header or a central directory entry with bit 0 (encrypted) set."""
    if head.startswith(b"PK\x03\x04") and len(head) >= 8 and head[6] & 1:
        return True
    pos = tail.find(b"PK\x01\x02")
    while pos >= 0 and pos + 10 <= len(tail):
        if tail[pos + 8] & 1:
            return True
        pos = tail.find(b"PK\x01\x02", pos + 4)
    return False


SEVEN_ZIP = b"7z\xbc\xaf\x27\x1c"
SEVEN_ZIP_AES = b"\x24\x06\xf1\x07\x01"  # coder flags (4-byte id, with properties), id 06F10701


def _seven_zip(head: bytes, tail: bytes) -> bool:
    return head.startswith(SEVEN_ZIP) and SEVEN_ZIP_AES in tail


RAR4 = b"Rar!\x1a\x07\x00"
RAR5 = b"Rar!\x1a\x07\x01\x00"


def _vint(b: bytes, pos: int) -> tuple[int, int]:
    """RAR 5's variable-length integer: (value, position after it)."""
    value, shift = 0, 0
    while pos < len(b) and shift < 64:
        byte = b[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise ValueError("truncated")


def _rar5(head: bytes) -> bool:
    """An archive encryption header (type 4), or a file header whose extra area encrypts it."""
    pos = len(RAR5)
    for _ in range(8):  # the first few blocks: encryption header, main header, first files
        try:
            size, body = _vint(head, pos + 4)  # after the header CRC32
            end = body + size
            htype, p = _vint(head, body)
            if htype == 4:
                return True
            flags, p = _vint(head, p)
            extra = _vint(head, p)[0] if flags & 1 else 0
            if flags & 1:
                p = _vint(head, p)[1]
            data = _vint(head, p)[0] if flags & 2 else 0
            if htype == 2 and extra and end <= len(head):
                q = end - extra
                while q < end:
                    rsize, r = _vint(head, q)
                    if _vint(head, r)[0] == 1:  # extra record 1: file encryption
                        return True
                    q = r + rsize
        except (ValueError, IndexError):
            return False
        pos = end + data
        if pos >= len(head):
            return False
    return False


def _rar4(head: bytes) -> bool:
    """The main header's MHD_PASSWORD flag (headers encrypted), or a file's LHD_PASSWORD."""
    pos = len(RAR4)
    for _ in range(8):
        if pos + 7 > len(head):
            return False
        htype, flags, hsize = (
            head[pos + 2],
            int.from_bytes(head[pos + 3 : pos + 5], "little"),
            (int.from_bytes(head[pos + 5 : pos + 7], "little")),
        )
        if hsize < 7:
            return False
        if (htype == 0x73 and flags & 0x0080) or (htype == 0x74 and flags & 0x0004):
            return True
        add = 0
        if htype == 0x74 or flags & 0x8000:  # a file header's packed size follows
            if pos + 11 > len(head):
                return False
            add = int.from_bytes(head[pos + 7 : pos + 11], "little")
        pos += hsize + add
    return False


# --------------------------------------------------------------------------- documents

OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ENCRYPTION_INFO = "EncryptionInfo".encode("utf-16-le")
PDF_ENCRYPT = re.compile(rb"/Encrypt\s*(\d+\s+\d+\s+R|<<)")


def _pdf(head: bytes, tail: bytes) -> bool:
    return b"%PDF-" in head[:1024] and bool(PDF_ENCRYPT.search(tail) or PDF_ENCRYPT.search(head))


def _office(head: bytes, tail: bytes) -> bool:
    return head.startswith(OLE) and (ENCRYPTION_INFO in head or ENCRYPTION_INFO in tail)


# --------------------------------------------------------------------------- messages

PGP_ARMOUR = b"-----BEGIN PGP MESSAGE-----"


def _pgp_packet(b: bytes) -> bool:
    """The first OpenPGP packet is a public-key or symmetric-key encrypted session key, or the
    encrypted data itself; its version byte must fit, so random bytes rarely pass."""
    if len(b) < 4 or not b[0] & 0x80:
        return False
    if b[0] & 0x40:  # new format: tag in the low six bits, then a 1, 2 or 5-byte length
        tag = b[0] & 0x3F
        first = b[1]
        body = 2 if first < 192 else 3 if first < 224 else 6 if first == 255 else 2
    else:  # old format: tag in bits 2-5, length type in bits 0-1
        tag = (b[0] >> 2) & 0x0F
        body = 1 + {0: 1, 1: 2, 2: 4, 3: 0}[b[0] & 3]
    if body >= len(b):
        return False
    version = b[body]
    if tag == 1:
        return version in (3, 6)
    if tag == 3:
        return version in (4, 5, 6) and body + 1 < len(b) and 1 <= b[body + 1] <= 13
    if tag in (18, 20):
        return version in (1, 2)
    return False


def _pgp(head: bytes) -> str | None:
    if _pgp_packet(head):
        return "OpenPGP encrypted message"
    if not head[:256].lstrip().startswith(PGP_ARMOUR):
        return None
    text = head.lstrip()
    body = text.split(b"\n\n", 1)[1] if b"\n\n" in text else text.split(b"\r\n\r\n", 1)[-1]
    b64 = b"".join(body.split()[:4])[:64]
    try:
        first = base64.b64decode(b64[: len(b64) // 4 * 4])
    except (binascii.Error, ValueError):
        return None
    return "OpenPGP encrypted message (ASCII armoured)" if _pgp_packet(first) else None


# --------------------------------------------------------------------------- wallets, vaults

KEEPASS_KDBX = bytes.fromhex("03d9a29a67fb4bb5")
KEEPASS_1 = bytes.fromhex("03d9a29a65fb4bb5")
BDB_BTREE = (b"\x62\x31\x05\x00", b"\x00\x05\x31\x62")  # Berkeley DB btree magic at offset 12
ETH_KEYSTORE = (b'"ciphertext"', b'"kdf"')


def _wallet(head: bytes, filename: str) -> str | None:
    name = filename.lower()
    if name == "wallet.dat" and (
        head[12:16] in BDB_BTREE or head.startswith(b"SQLite format 3\x00")
    ):
        return "Bitcoin Core wallet (wallet.dat)"
    stripped = head[:256].lstrip()
    if (
        stripped.startswith(b"{")
        and len(head) < 65536
        and all(k in head for k in ETH_KEYSTORE)
        and (b'"crypto"' in head or b'"Crypto"' in head)
    ):
        return "Ethereum keystore (encrypted private key)"
    if stripped.startswith(b"QklFMQ"):  # base64 of "BIE1"
        return "Electrum encrypted wallet"
    return None


def encrypted(
    head: bytes, tail: bytes, size: int, mime: str | None, filename: str
) -> RuleMatch | None:
    """What encrypted content this file holds, as a finding; None when nothing says so."""
    if head.startswith(b"PK\x03\x04") and _zip(head, tail):
        return _match("encrypted_archive", "ZIP archive with encrypted entries")
    if _seven_zip(head, tail):
        return _match("encrypted_archive", "7-Zip archive encrypted with AES")
    if (head.startswith(RAR5) and _rar5(head)) or (head.startswith(RAR4) and _rar4(head)):
        return _match("encrypted_archive", "RAR archive with encrypted headers or files")
    if _pdf(head, tail):
        return _match("encrypted_document", "PDF document encrypted (/Encrypt)")
    if _office(head, tail):
        return _match("encrypted_document", "Office document saved with a password")
    if head.startswith(b"age-encryption.org/v1\n") or head.startswith(
        b"-----BEGIN AGE ENCRYPTED FILE-----"
    ):
        return _match("encrypted_file", "age encrypted file")
    if head.startswith(b"Salted__") and size >= 32:
        return _match("encrypted_file", "OpenSSL enc encrypted file (salted)")
    pgp = _pgp(head)
    if pgp:
        return _match("encrypted_file", pgp)
    if head.startswith(KEEPASS_KDBX) or head.startswith(KEEPASS_1):
        return _match("password_database", "KeePass password database")
    if head.startswith(b"PWS3"):
        return _match("password_database", "Password Safe v3 database")
    wallet = _wallet(head, filename)
    if wallet:
        return _match("wallet", wallet)
    return _container(head, tail, size, mime)


def _container(head: bytes, tail: bytes, size: int, mime: str | None) -> RuleMatch | None:
    if size < CONTAINER_MIN or size % 512 or (mime or "") != "application/octet-stream":
        return None
    bits = entropy(head + tail)
    if bits < CONTAINER_ENTROPY:
        return None
    return _match(
        "possible_container",
        f"no known file header, {size} bytes (a multiple of 512), sampled entropy {bits:.3f} "
        "bits/byte: possibly an encrypted container such as VeraCrypt or TrueCrypt (heuristic)",
    )
