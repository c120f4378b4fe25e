"""Builders for the layer tests: LUKS volumes and LVM2 disks made by their own tools.

LUKS (1 and 2): ``cryptsetup luksFormat`` writes the header and key slots into a plain file (no
device needed) with a volume key we chose; the payload -- an ext4 made by ``mke2fs -d`` -- is then
encrypted sector by sector with that key by ``cryptography``'s AES-XTS (plain64 IVs), which is
what dm-crypt would write through an opened mapping. This sandbox has no device-mapper, so
``cryptsetup open`` cannot be used; the oracle is the plaintext ext4 itself (``fls``/``icat``).

LVM2: ``pvcreate``/``vgcreate``/``lvcreate`` need a block device: a loop device over a plain
file. Activation is off (no device-mapper), so the logical volumes' contents are written
into their extents at the offsets ``lvs``/``pvs`` report -- again what the linear mapping would
do. Every LVM call gets its own configuration (``LVM_SYSTEM_DIR``): no backups or archives
written to the host, only this loop device seen.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

SECTOR = 512


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(c) for c in cmd], check=True, capture_output=True, text=True, timeout=120, env=env
    )
    return done.stdout


def ext4_with(folder: Path, files: dict[str, bytes], size: int, out: Path) -> Path:
    """An ext4 of ``size`` bytes holding ``files`` (relative paths), made by ``mke2fs -d``."""
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    run("mke2fs", "-q", "-F", "-t", "ext4", "-d", folder, out, f"{size // 1024}k")
    return out


def luks_volume(
    path: Path, passphrase: str, plain: Path | None, version: int = 1, kdf: str = "argon2id"
) -> int:
    """A LUKS volume in ``path`` (already sized); its payload the bytes of ``plain``.

    Returns the payload's byte offset. The passphrase goes to cryptsetup through a key file.
    LUKS2: 512-byte sectors, the payload at 2 MiB, one keyslot with ``kdf`` (argon2id with
    cheap settings, or pbkdf2); LUKS1: PBKDF2.
    """
    key = os.urandom(64)
    keyfile, passfile = path.with_suffix(".vk"), path.with_suffix(".pass")
    keyfile.write_bytes(key)
    passfile.write_text(passphrase)
    fmt = [
        "cryptsetup", "luksFormat", "--type", f"luks{version}", "--batch-mode",
        "--key-file", passfile, "--volume-key-file", keyfile, "--key-size", "512",
    ]  # fmt: skip
    if version == 1:
        fmt += ["--pbkdf-force-iterations", "1000"]
    else:
        fmt += ["--sector-size", "512", "--offset", "4096", "--pbkdf", kdf]
        fmt += ["--pbkdf-force-iterations", "1000" if kdf == "pbkdf2" else "4"]
        if kdf != "pbkdf2":
            fmt += ["--pbkdf-memory", "32", "--pbkdf-parallel", "1"]
    run(*fmt, path)
    dump = run("cryptsetup", "luksDump", path)
    if version == 1:
        line = next(x for x in dump.splitlines() if x.startswith("Payload offset"))
        offset = int(line.split()[-1]) * SECTOR
    else:
        segs = dump.split("Data segments:", 1)[1]
        offset = int(next(x for x in segs.splitlines() if "offset:" in x).split()[1])
    keyfile.unlink()
    passfile.unlink()
    if plain is not None:
        data = plain.read_bytes()
        assert offset + len(data) <= path.stat().st_size
        with path.open("r+b") as f:
            f.seek(offset)
            for i in range(0, len(data), SECTOR):
                iv = (i // SECTOR).to_bytes(16, "little")  # plain64: the sector number
                enc = Cipher(algorithms.AES(key), modes.XTS(iv)).encryptor()
                f.write(enc.update(data[i : i + SECTOR]) + enc.finalize())
    return offset


def loop_usable() -> str:
    """Why LVM disks cannot be built here ('' when they can): tools, root, a loop device."""
    for tool in ("losetup", "pvcreate", "vgcreate", "lvcreate", "lvs"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt-get install lvm2)"
    if os.geteuid() != 0:
        return "LVM physical volumes need root (a loop device)"
    probe = Path(f"/tmp/kiosk-loop-probe-{uuid.uuid4().hex}")
    probe.write_bytes(b"\0" * (1 << 20))
    try:
        dev = run("losetup", "-f", "--show", probe).strip()
        run("losetup", "-d", dev)
    except (subprocess.CalledProcessError, OSError) as e:
        return f"no loop device can be attached here ({e})"
    finally:
        probe.unlink()
    return ""


def lvm_disk(
    path: Path, size: int, volumes: list[tuple[str, int]], conf_dir: Path
) -> tuple[str, dict[str, list[tuple[int, int]]]]:
    """An LVM2 physical volume over all of ``path``, with logical volumes ``(name, bytes)``
    created in order; a name seen twice extends that volume (a second segment).

    Returns the volume group's name and, per logical volume, its extents as (byte offset in
    ``path``, length) in logical order.
    """
    conf_dir.mkdir(exist_ok=True)
    (conf_dir / "lvm.conf").write_text(
        "global { activation = 0 }\nbackup { backup = 0\narchive = 0 }\n"
        'devices { use_devicesfile = 0\nfilter = [ "a|^/dev/loop|", "r|.*|" ] }\n'
    )
    env = {**os.environ, "LVM_SYSTEM_DIR": str(conf_dir), "LVM_SUPPRESS_FD_WARNINGS": "1"}
    with path.open("wb") as f:
        f.truncate(size)
    vg = f"kiosktest{uuid.uuid4().hex[:12]}"
    dev = run("losetup", "-f", "--show", path).strip()
    try:
        run("pvcreate", "-q", dev, env=env)
        run("vgcreate", "-q", "-s", "1m", vg, dev, env=env)
        made: dict[str, int] = {}
        for name, n in volumes:
            if name in made:
                made[name] += n
                run("lvextend", "-q", "-L", f"{made[name]}b", f"{vg}/{name}", env=env)
            else:
                made[name] = n
                run("lvcreate", "-q", "-an", "-Zn", "-L", f"{n}b", "-n", name, vg, env=env)
        pe_start = int(
            run("pvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "pe_start", dev,
                env=env).split()[0]
        )  # fmt: skip
        rows = run("lvs", "--noheadings", "-o", "lv_name,seg_pe_ranges", vg, env=env)
        extents: dict[str, list[tuple[int, int]]] = {}
        for row in rows.splitlines():
            name, ranges = row.split()
            first, last = (int(x) for x in ranges.rsplit(":", 1)[1].split("-"))
            extents.setdefault(name, []).append(
                (pe_start + first * (1 << 20), (last - first + 1) * (1 << 20))
            )
        run("vgchange", "-q", "-an", vg, env=env)
    finally:
        run("losetup", "-d", dev)
    return vg, extents


def write_into(path: Path, extents: list[tuple[int, int]], data: bytes) -> None:
    """``data`` written across ``extents`` in order: what the linear mapping would do."""
    with path.open("r+b") as f:
        done = 0
        for offset, length in extents:
            piece = data[done : done + length]
            f.seek(offset)
            f.write(piece)
            done += len(piece)
    assert done == len(data), "the logical volume is smaller than the data"
