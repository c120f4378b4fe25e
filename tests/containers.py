"""Builders for the container tests: virtual disks made by qemu-img from the sample images.

Nothing here is committed as a binary: every variant is made in a session's temporary folder
by ``qemu-img convert`` (and ``qemu-io`` for a write into a differencing child), and its
oracle is qemu-img's own raw conversion of it. qemu-img cannot make a differencing VHD, so
``vhd_child`` writes one by the VHD specification (footer, dynamic header naming the parent by
name and unique id, a block allocation table and one block whose sector bitmap marks only the
sectors written); its oracle is the parent's raw bytes with those sectors replaced.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import MARKER, SAMPLES

SOURCE = "mbr-fat16-ext4.dd"  # MBR, FAT16 and ext4: two filesystems, deleted files, Unicode names
SECOND = "ntfs.dd"  # NTFS, for the VHDX variants
WRITE = b"\xab" * 512  # what each differencing child holds over its parent


@dataclass(frozen=True)
class Variant:
    """One container of a sample disk: what the officer picks, and the oracle."""

    name: str
    image: Path  # the file the officer chooses
    format: str  # the format kiosk must report
    files: tuple[str, ...]  # every file the evidence consists of, as resolve must list them
    raw: Path  # the same disk as raw: qemu-img's conversion (or, for the VHD child, built)


def run(*cmd: str | Path) -> None:
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True, timeout=120)


def qemu_raw(image: Path, fmt: str, out: Path) -> Path:
    """qemu-img's raw conversion of ``image``: the oracle (``-f`` always: a fixed VHD would
    otherwise be probed as raw, footer and all)."""
    run("qemu-img", "convert", "-f", fmt, "-O", "raw", image, out)
    return out


def marker_sector(raw: Path) -> int:
    """The offset of the sector holding the first sample marker: a write there changes a file."""
    data = raw.read_bytes()
    at = data.find(MARKER)
    assert at > 0, "the sample image holds no marker"
    return at // 512 * 512


def build_variants(root: Path) -> dict[str, Variant]:
    """Every container variant of the sample disks, with its oracle raw."""
    src, second = root / SOURCE, root / SECOND
    shutil.copyfile(SAMPLES / SOURCE, src)
    shutil.copyfile(SAMPLES / SECOND, second)
    out: dict[str, Variant] = {}

    def convert(name: str, fmt: str, kiosk_fmt: str, opts: list[str], source: Path = src) -> Path:
        folder = root / name
        folder.mkdir()
        image = folder / f"disk.{ {'vpc': 'vhd'}.get(fmt, fmt) }"
        run("qemu-img", "convert", "-f", "raw", "-O", fmt, *opts, source, image)
        files = tuple(sorted(p.name for p in folder.iterdir()))
        desc = (image.name, *[f for f in files if f != image.name])
        raw = qemu_raw(image, fmt, root / f"{name}.raw")
        out[name] = Variant(name, image, kiosk_fmt, desc, raw)
        return image

    convert("vmdk-monolithic-sparse", "vmdk", "vmdk", ["-o", "subformat=monolithicSparse"])
    convert("vmdk-stream-optimized", "vmdk", "vmdk", ["-o", "subformat=streamOptimized"])
    convert("vmdk-split-sparse", "vmdk", "vmdk", ["-o", "subformat=twoGbMaxExtentSparse"])
    convert("vmdk-split-flat", "vmdk", "vmdk", ["-o", "subformat=twoGbMaxExtentFlat"])
    convert("vhd-dynamic", "vpc", "vhd", ["-o", "subformat=dynamic"])
    convert("vhd-fixed", "vpc", "vhd", ["-o", "subformat=fixed"])
    convert("vhdx-dynamic", "vhdx", "vhdx", ["-o", "subformat=dynamic"], second)
    convert("vhdx-fixed", "vhdx", "vhdx", ["-o", "subformat=fixed"])
    convert("qcow2-compressed", "qcow2", "qcow2", ["-c"])
    convert("qcow2-v2", "qcow2", "qcow2", ["-o", "compat=0.10"])
    convert("qcow-v1", "qcow", "qcow", [])
    out["vmdk-two-extents"] = _vmdk_two_extents(root, src)
    out["qcow2-child"] = _qemu_child(root, src, "qcow2", "qcow2")
    out["vmdk-snapshot"] = _qemu_child(root, src, "vmdk", "vmdk")
    out["vhd-child"] = _vhd_child_variant(root, src)
    return out


def _vmdk_two_extents(root: Path, src: Path) -> Variant:
    """A descriptor naming two sparse extents, each a half of the disk (VMDK 1.1 descriptor)."""
    folder = root / "vmdk-two-extents"
    folder.mkdir()
    data = src.read_bytes()
    half = len(data) // 2 // 512 * 512
    for i, part in enumerate((data[:half], data[half:])):
        (root / f"half{i}.raw").write_bytes(part)
        run(
            "qemu-img",
            "convert",
            "-f",
            "raw",
            "-O",
            "vmdk",
            root / f"half{i}.raw",
            folder / f"disk-s00{i + 1}.vmdk",
        )
    sectors = (half // 512, (len(data) - half) // 512)
    (folder / "disk.vmdk").write_text(
        "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n"
        'createType="twoGbMaxExtentSparse"\n\n# Extent description\n'
        f'RW {sectors[0]} SPARSE "disk-s001.vmdk"\nRW {sectors[1]} SPARSE "disk-s002.vmdk"\n\n'
        '# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = "4"\nddb.adapterType = "ide"\n'
    )
    raw = qemu_raw(folder / "disk.vmdk", "vmdk", root / "vmdk-two-extents.raw")
    files = ("disk.vmdk", "disk-s001.vmdk", "disk-s002.vmdk")
    return Variant("vmdk-two-extents", folder / "disk.vmdk", "vmdk", files, raw)


def _qemu_child(root: Path, src: Path, fmt: str, kiosk_fmt: str) -> Variant:
    """A parent made by qemu-img convert, a child by ``qemu-img create -b``, one sector written
    into the child by ``qemu-io`` over the first sample marker."""
    name = f"{fmt}-child" if fmt != "vmdk" else "vmdk-snapshot"
    folder = root / name
    folder.mkdir()
    parent, child = folder / f"base.{fmt}", folder / f"child.{fmt}"
    run("qemu-img", "convert", "-f", "raw", "-O", fmt, src, parent)
    run("qemu-img", "create", "-f", fmt, "-b", parent.name, "-F", fmt, child)
    at = marker_sector(src)
    run("qemu-io", "-f", fmt, "-c", f"write -P 0xab {at} 512", child)
    raw = qemu_raw(child, fmt, root / f"{name}.raw")
    return Variant(name, child, kiosk_fmt, (child.name, parent.name), raw)


def _vhd_child_variant(root: Path, src: Path) -> Variant:
    folder = root / "vhd-child"
    folder.mkdir()
    parent = folder / "base.vhd"
    run("qemu-img", "convert", "-f", "raw", "-O", "vpc", src, parent)
    parent_raw = qemu_raw(parent, "vpc", root / "vhd-child-parent.raw")
    # whole bitmap bytes (8 sectors, as a 4 KiB cluster write marks them): libvhdi 20260901
    # misreads the sectors after a marked one within a partly marked byte (test_containers)
    at = marker_sector(parent_raw) // 4096 * 4096
    child = folder / "child.vhd"
    child.write_bytes(vhd_child(parent.read_bytes(), "base.vhd", at, WRITE * 8))
    expected = bytearray(parent_raw.read_bytes())
    expected[at : at + len(WRITE) * 8] = WRITE * 8
    raw = root / "vhd-child.raw"
    raw.write_bytes(bytes(expected))
    return Variant("vhd-child", child, "vhd", ("child.vhd", "base.vhd"), raw)


def _vhd_checksum(block: bytes | bytearray) -> int:
    """VHD spec: one's complement of the byte sum (the checksum field itself counted as 0)."""
    return (~sum(block)) & 0xFFFFFFFF


def vhd_child(
    parent: bytes, parent_name: str, at: int, data: bytes, parent_id: bytes | None = None
) -> bytes:
    """A differencing VHD over ``parent`` (the parent file's bytes) holding ``data`` at ``at``.

    Layout (VHD spec 1.0): footer copy @0, dynamic header @512, BAT @1536, one 2 MiB block
    (512-byte sector bitmap + data) for the sectors written, footer at the end. Disk type 4;
    the header names the parent by UTF-16 BE file name and by its footer's unique id.
    """
    pf = parent[-512:]
    size = struct.unpack_from(">Q", pf, 48)[0]
    block = 2 << 20
    nblocks = -(-size // block)
    bat_bytes = -(-nblocks * 4 // 512) * 512
    first = 1536 + bat_bytes
    index, inner = divmod(at, block)
    bat = [0xFFFFFFFF] * nblocks
    bat[index] = first // 512
    bitmap = bytearray(512)
    payload = bytearray(block)
    for i in range(len(data) // 512):
        s = inner // 512 + i
        bitmap[s // 8] |= 0x80 >> (s % 8)
    payload[inner : inner + len(data)] = data
    footer = bytearray(512)
    footer[:8] = b"conectix"
    struct.pack_into(
        ">IIQI4sI4sQQ", footer, 8, 2, 0x10000, 512, 0, b"test", 0x10000, b"Wi2k", size, size
    )
    footer[56:60] = pf[56:60]  # the parent's geometry
    struct.pack_into(">I", footer, 60, 4)  # differencing
    footer[68:84] = uuid.uuid4().bytes
    struct.pack_into(">I", footer, 64, _vhd_checksum(footer))
    header = bytearray(1024)
    header[:8] = b"cxsparse"
    struct.pack_into(">QQIII", header, 8, 2**64 - 1, 1536, 0x10000, nblocks, block)
    header[40:56] = parent_id if parent_id is not None else pf[68:84]
    header[56:60] = pf[24:28]  # the parent's time stamp
    name = parent_name.encode("utf-16-be")
    header[64 : 64 + len(name)] = name
    struct.pack_into(">I", header, 36, _vhd_checksum(header))
    table = struct.pack(f">{nblocks}I", *bat).ljust(bat_bytes, b"\xff")
    return bytes(footer + header) + table + bytes(bitmap + payload) + bytes(footer)
