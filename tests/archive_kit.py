"""Archives for the tests, each made by the format's own writer, and a real ext4 to hold them.

The hostile ones (``hostile_archives``) are what an attacker or a damaged device hands a kiosk:
bombs by ratio, by count and by nesting, escaping names, truncation, encryption, an unsupported
method, and FIFOs and devices inside a tar.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import libarchive


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def zip_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def zip_stored(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def tar_of(files: dict[str, bytes], mode: str = "w") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as t:  # type: ignore[call-overload]
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


def libarchive_of(fmt: str, files: dict[str, bytes], **kw: Any) -> bytes:
    out = io.BytesIO()
    with libarchive.custom_writer(out.write, fmt, **kw) as w:
        for name, data in files.items():
            w.add_file_from_memory(name, len(data), data)
    return out.getvalue()


def iso_of(root: Path, files: dict[str, bytes]) -> bytes:
    src = root / "iso-src"
    src.mkdir()
    for name, data in files.items():
        (src / name).write_bytes(data)
    out = root / "disc.iso"
    subprocess.run(
        ["genisoimage", "-quiet", "-R", "-o", str(out), str(src)], check=True, capture_output=True
    )
    return out.read_bytes()


def mke2fs(root: Path, src: Path, size: str = "32M") -> Path:
    img = root / "evidence.dd"
    env = {**os.environ, "E2FSPROGS_FAKE_TIME": "1700000000"}
    subprocess.run(
        ["mke2fs", "-q", "-t", "ext4", "-b", "4096", "-d", str(src), "-F", str(img), size],
        check=True,
        env=env,
    )
    return img


def unsupported_method(files: dict[str, bytes], method: int = 97) -> bytes:
    """A stored zip whose every member claims compression ``method`` (97: WavPack), in the local
    headers and the central directory alike: a real zip no reader here can decompress."""
    data = bytearray()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for name, content in files.items():
            z.writestr(name, content)
    data = bytearray(out.getvalue())
    for sig, at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        pos = data.find(sig)
        while pos >= 0:
            data[pos + at : pos + at + 2] = method.to_bytes(2, "little")
            pos = data.find(sig, pos + 4)
    return bytes(data)


def special_tar() -> bytes:
    """A tar holding a FIFO, a character and a block device, a symlink and a hard link."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        body = b"the real file"
        info = tarfile.TarInfo("real.txt")
        info.size = len(body)
        t.addfile(info, io.BytesIO(body))
        for name, kind in (
            ("pipe", tarfile.FIFOTYPE),
            ("dev/tty0", tarfile.CHRTYPE),
            ("dev/sda", tarfile.BLKTYPE),
        ):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.devmajor, info.devminor = 8, 0
            t.addfile(info)
        info = tarfile.TarInfo("link-out")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/shadow"
        t.addfile(info)
        info = tarfile.TarInfo("hard")
        info.type, info.linkname = tarfile.LNKTYPE, "real.txt"
        t.addfile(info)
    return out.getvalue()


def nested_zip(depth: int, inner: bytes) -> bytes:
    """``inner.txt`` inside ``depth`` zips, each the only member of the next."""
    data = zip_of({"inner.txt": inner})
    for i in range(depth - 1):
        data = zip_of({f"level{depth - 1 - i}.zip": data})
    return data


# What each hostile archive is called in the evidence, made by hostile_archives()
HOSTILE = (
    "bomb.zip",
    "many.zip",
    "deep.zip",
    "slip.zip",
    "cut.zip",
    "cut.tar.gz",
    "secret.zip",
    "aes.zip",
    "wavpack.zip",
    "special.tar",
    "names.tar",
)
# member names as a hostile tar stores them (latin-1 bytes, an escape sequence) and as the
# inventory must record them: invalid UTF-8 as \xNN, the rest verbatim
ODD_NAMES = {"caf\xe9.txt": "caf\\xe9.txt", "\x1b[2Jred.txt": "\x1b[2Jred.txt"}
MANY = 10_001  # one more than the default member limit
SLIP_NAMES = ("../../etc/passwd", "/etc/shadow", "a/../../../b.txt", "dup.txt", "dup.txt")


def hostile_archives(src: Path) -> None:
    src.mkdir(parents=True, exist_ok=True)
    out = io.BytesIO()
    with (
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z,
        z.open("zeros.bin", "w", force_zip64=True) as f,
    ):
        block = bytes(1 << 20)
        for _ in range(100):  # 100 MiB of zeros, about 100 KB compressed
            f.write(block)
    (src / "bomb.zip").write_bytes(out.getvalue())
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for i in range(MANY):
            z.writestr(f"m{i:05d}", b"")
    (src / "many.zip").write_bytes(out.getvalue())
    (src / "deep.zip").write_bytes(nested_zip(50, b"fifty archives down"))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the duplicate name is the point
        for i, name in enumerate(SLIP_NAMES):
            z.writestr(zipfile.ZipInfo(name), f"slip {i}".encode())
    (src / "slip.zip").write_bytes(out.getvalue())
    whole = zip_of({f"f{i}.bin": os.urandom(20_000) for i in range(6)})
    (src / "cut.zip").write_bytes(whole[: len(whole) // 2])
    tgz = tar_of({f"f{i}.bin": os.urandom(20_000) for i in range(6)}, "w:gz")
    (src / "cut.tar.gz").write_bytes(tgz[: len(tgz) // 2])
    secret = {"secret.txt": b"the password is not here"}
    word = "pw"  # a test archive's, known to nobody the kiosk asks
    (src / "secret.zip").write_bytes(
        libarchive_of("zip", secret, options="zip:encryption=zipcrypt", passphrase=word)
    )
    (src / "aes.zip").write_bytes(
        libarchive_of("zip", secret, options="zip:encryption=aes256", passphrase=word)
    )
    (src / "wavpack.zip").write_bytes(unsupported_method({"sound.wv": b"not really sound"}))
    (src / "special.tar").write_bytes(special_tar())
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT, encoding="latin-1") as t:
        for name in ODD_NAMES:
            info = tarfile.TarInfo(name)
            info.size = 1
            t.addfile(info, io.BytesIO(b"x"))
    (src / "names.tar").write_bytes(out.getvalue())
