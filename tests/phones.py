"""Builders of logical evidence for the tests: phone extractions, backups and archives.

Each kind is made with the tool or the published scheme that makes the real thing -- zipfile,
tarfile, ``zip -s`` for split sets, sqlite3 and plistlib for iTunes backups, the key-bag scheme
with ``cryptography`` for encrypted ones, Android's ADB layout (zlib + AES-256-CBC, PBKDF2) --
so kiosk's readers are checked against bytes they did not write themselves.
"""

from __future__ import annotations

import hashlib
import io
import os
import plistlib
import sqlite3
import struct
import tarfile
import zlib
from pathlib import Path

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.keywrap import aes_key_wrap

MARKER = b"KIOSK-DEMO-MARKER-3f9c1b7e"  # the demo pack's rule matches it

# a small iOS tree: what an FFS extraction or a backup holds (domain, relative path, content)
IOS_FILES: dict[tuple[str, str], bytes] = {
    ("HomeDomain", "Library/SMS/sms.db"): b"SQLite format 3\x00" + bytes(200),
    ("HomeDomain", "Library/Notes/note.txt"): b"meet at the docks " + MARKER,
    ("CameraRollDomain", "Media/DCIM/100APPLE/IMG_0001.JPG"): b"\xff\xd8\xff\xe0" + bytes(3000),
    ("AppDomain-com.example.chat", "Documents/chat.log"): b"hello\n" * 50,
    ("HomeDomain", "Library/Preferences/empty.plist"): b"",
}


def _pad(data: bytes) -> bytes:
    p = padding.PKCS7(128).padder()
    return p.update(data) + p.finalize()


def _cbc(key: bytes, iv: bytes, data: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


# --------------------------------------------------------------------------- iTunes backups


def _mbfile(size: int, wrapped_key: bytes | None) -> bytes:
    """An ``MBFile`` record archived as NSKeyedArchiver does (the fields kiosk reads)."""
    root: dict[str, object] = {
        "Size": size,
        "ProtectionClass": 3,
        "$class": plistlib.UID(3 if wrapped_key is None else 4),
    }
    objects: list[object] = ["$null", root]
    if wrapped_key is not None:
        root["EncryptionKey"] = plistlib.UID(2)
        objects.append({"NS.data": wrapped_key, "$class": plistlib.UID(3)})
        objects.append({"$classname": "NSMutableData", "$classes": ["NSMutableData", "NSData"]})
    objects.append({"$classname": "MBFile", "$classes": ["MBFile", "NSObject"]})
    return plistlib.dumps(
        {
            "$version": 100000,
            "$archiver": "NSKeyedArchiver",
            "$top": {"root": plistlib.UID(1)},
            "$objects": objects,
        },
        fmt=plistlib.FMT_BINARY,
    )


def _keybag(password: bytes, class_keys: dict[int, bytes]) -> bytes:
    """A backup key bag (Apple's TLV layout) wrapping ``class_keys`` with the password."""
    salt, dpsl = b"S" * 20, b"D" * 20
    iters, dpic = 10, 10  # small round counts: the scheme, not the cost, is under test
    key = hashlib.pbkdf2_hmac("sha256", password, dpsl, dpic, 32)
    key = hashlib.pbkdf2_hmac("sha1", key, salt, iters, 32)

    def tlv(tag: bytes, value: bytes) -> bytes:
        return tag + struct.pack(">I", len(value)) + value

    out = tlv(b"VERS", struct.pack(">I", 4)) + tlv(b"TYPE", struct.pack(">I", 1))
    out += tlv(b"UUID", b"u" * 16) + tlv(b"HMCK", bytes(40)) + tlv(b"WRAP", struct.pack(">I", 0))
    out += tlv(b"SALT", salt) + tlv(b"ITER", struct.pack(">I", iters))
    out += tlv(b"DPWT", struct.pack(">I", 1)) + tlv(b"DPIC", struct.pack(">I", dpic))
    out += tlv(b"DPSL", dpsl)
    for cls, ck in class_keys.items():
        out += tlv(b"UUID", bytes([cls]) * 16) + tlv(b"CLAS", struct.pack(">I", cls))
        out += tlv(b"WRAP", struct.pack(">I", 3)) + tlv(b"KTYP", struct.pack(">I", 0))
        out += tlv(b"WPKY", aes_key_wrap(key, ck))
    return out


def itunes_backup(
    folder: Path,
    files: dict[tuple[str, str], bytes] | None = None,
    password: bytes | None = None,
    product: str = "iPhone13,2",
    version: str = "17.4",
) -> Path:
    """An iTunes/Finder backup of ``files``; encrypted with ``password`` when given."""
    files = IOS_FILES if files is None else files
    folder.mkdir(parents=True)
    class_key = hashlib.sha256(b"class 3").digest()
    manifest_key = hashlib.sha256(b"manifest key").digest()
    db_path = folder.parent / (folder.name + "-Manifest.db.tmp")
    db = sqlite3.connect(db_path)
    db.execute(
        "CREATE TABLE Files (fileID TEXT PRIMARY KEY, domain TEXT, relativePath TEXT, "
        "flags INTEGER, file BLOB)"
    )
    for (domain, rel), data in files.items():
        file_id = hashlib.sha1(f"{domain}-{rel}".encode()).hexdigest()  # noqa: S324 (its name)
        (folder / file_id[:2]).mkdir(exist_ok=True)
        wrapped = None
        stored = data
        if password is not None:
            fkey = hashlib.sha256(b"file " + file_id.encode()).digest()
            wrapped = struct.pack("<I", 3) + aes_key_wrap(class_key, fkey)
            stored = _cbc(fkey, bytes(16), _pad(data))
        (folder / file_id[:2] / file_id).write_bytes(stored)
        db.execute(
            "INSERT INTO Files VALUES (?, ?, ?, 1, ?)",
            (file_id, domain, rel, _mbfile(len(data), wrapped)),
        )
        parent = rel.rsplit("/", 1)[0]
        did = hashlib.sha1(f"{domain}-{parent}".encode()).hexdigest()  # noqa: S324
        db.execute("INSERT OR IGNORE INTO Files VALUES (?, ?, ?, 2, NULL)", (did, domain, parent))
    db.commit()
    db.close()
    raw = db_path.read_bytes()
    db_path.unlink()
    manifest: dict[str, object] = {
        "IsEncrypted": password is not None,
        "Version": "10.0",
        "Lockdown": {"ProductType": product, "ProductVersion": version, "DeviceName": "Sam"},
    }
    if password is not None:
        manifest["BackupKeyBag"] = _keybag(password, {3: class_key})
        manifest["ManifestKey"] = struct.pack("<I", 3) + aes_key_wrap(class_key, manifest_key)
        raw = _cbc(manifest_key, bytes(16), _pad(raw))
    (folder / "Manifest.db").write_bytes(raw)
    (folder / "Manifest.plist").write_bytes(plistlib.dumps(manifest, fmt=plistlib.FMT_BINARY))
    (folder / "Info.plist").write_bytes(
        plistlib.dumps(
            {
                "Device Name": "Sam's iPhone",
                "Product Type": product,
                "Product Version": version,
                "Serial Number": "F17ABCDEFGH",
                "IMEI": "356789012345678",
            }
        )
    )
    (folder / "Status.plist").write_bytes(plistlib.dumps({"IsFullBackup": False}))
    return folder


# --------------------------------------------------------------------------- FFS archives


def ffs_tar(path: Path, mode: str = "w", files: dict[str, bytes] | None = None) -> Path:
    """An iOS full-file-system extraction as a tar (``mode``: w, w:gz, w:bz2, w:xz)."""
    files = files if files is not None else ios_tree()
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as t:
        for name in sorted({n.rsplit("/", 1)[0] for n in files if "/" in n}):
            d = tarfile.TarInfo(name)
            d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
            t.addfile(d)
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 1_700_000_000
            t.addfile(ti, io.BytesIO(data))
    return path


def ios_tree() -> dict[str, bytes]:
    return {
        "private/var/mobile/" + rel: data
        for (domain, rel), data in IOS_FILES.items()
        if domain != "AppDomain-com.example.chat"
    } | {"private/var/mobile/Containers/Data/Application/chat.log": b"hello\n" * 50}


# --------------------------------------------------------------------------- ADB backups


def adb_backup(
    path: Path, tar_bytes: bytes, password: bytes | None = None, version: int = 5
) -> Path:
    """An Android backup of ``tar_bytes`` as ``adb backup`` writes it (zlib; AES if a password)."""
    body = zlib.compress(tar_bytes, 9)
    if password is None:
        path.write_bytes(b"ANDROID BACKUP\n%d\n1\nnone\n" % version + body)
        return path
    user_salt, ck_salt, rounds = os.urandom(64), os.urandom(64), 1000
    user_iv, mk_iv, mk = os.urandom(16), os.urandom(16), os.urandom(32)
    user_key = hashlib.pbkdf2_hmac("sha1", password, user_salt, rounds, 32)
    wide = "".join(chr(b if b < 0x80 else 0xFF00 | b) for b in mk).encode("utf-8")
    checksum = hashlib.pbkdf2_hmac("sha1", wide, ck_salt, rounds, 32)
    blob = bytes([16]) + mk_iv + bytes([32]) + mk + bytes([32]) + checksum
    enc_blob = _cbc(user_key, user_iv, _pad(blob))
    header = b"ANDROID BACKUP\n%d\n1\nAES-256\n" % version
    header += (
        b"\n".join(x.hex().upper().encode() for x in (user_salt, ck_salt)) + b"\n%d\n" % rounds
    )
    header += user_iv.hex().upper().encode() + b"\n" + enc_blob.hex().upper().encode() + b"\n"
    path.write_bytes(header + _cbc(mk, mk_iv, _pad(body)))
    return path


def tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime = len(data), 1_700_000_000
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


ANDROID_FILES = {
    "apps/com.example.chat/db/msgstore.db": b"SQLite format 3\x00" + bytes(300),
    "apps/com.example.chat/f/notes.txt": b"meet at the docks " + MARKER,
    "apps/com.example.chat/_manifest": b"1\ncom.example.chat\n",
}
