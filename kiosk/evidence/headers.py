"""What a container's own header says: its kind, the other files it is made of, its parent.

``resolve`` asks these questions of each evidence file before anything opens it: which container
is this (by signature, never by file name), which extent files does a VMDK descriptor name,
which parent does a differencing image record and by which identifier. Only small fixed
structures at the start or the end of a file are read, parsed here in Python: the officer's app
resolves the evidence in its own process, where no native parser may touch it. The libyal
readers that later open the container (``media/``) run in the walker and worker processes.

Every offset below is from the format's published description, cited beside it: the VHD
specification (Microsoft, 2006), MS-VHDX (Microsoft Open Specifications), the QCOW2 and QCOW
specifications (qemu ``docs/interop/qcow2.txt``, ``qcow.c``), VMware's Virtual Disk Format 1.1,
and the libyal format notes for VMDK and EWF. Nothing here trusts a length without a bound.
"""

from __future__ import annotations

import re
import struct
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kiosk.errors import ImageError

HEAD = 1024  # bytes read from the start of a file to tell its kind
MAX_DESCRIPTOR = 1 << 20  # a VMDK descriptor is a few hundred bytes; more is not one

EWF_SIGNATURES = (b"EVF\x09\x0d\x0a\xff\x00", b"EVF2\x0d\x0a\x81\x00")  # E01/S01; Ex01
ADB_MAGIC = b"ANDROID BACKUP\n"  # an Android `adb backup` file (kiosk.evidence.logical.adb)
VMDK_SPARSE = b"KDMV"  # VMware Virtual Disk Format 1.1, "hosted sparse extent header": 'VMDK' LE
VMDK_COWD = b"COWD"  # ESX sparse (delta) extent: only ever an extent of a descriptor
VMDK_DESCRIPTOR = b"# Disk DescriptorFile"  # the descriptor's first line (VMDK 1.1, 4.1)
VHD_COOKIE = b"conectix"  # VHD spec: hard disk footer cookie, also the copy at offset 0
VHDX_SIGNATURE = b"vhdxfile"  # MS-VHDX 2.2.1: file type identifier at offset 0
QCOW_MAGIC = b"QFI\xfb"  # qcow2.txt: magic, then the version (1 = QCOW, 2 and 3 = QCOW2)

# Containers recognised but not read (yet): one line, never "no filesystem recognised".
UNSUPPORTED = "{what}: not supported; convert to raw"
PARALLELS = (b"WithoutFreeSpace", b"WithouFreSpacExt")  # qemu parallels.c: HEADER_MAGIC, _MAGIC2
VDI_SIGNATURE = 0xBEDA107F  # VirtualBox VDI: u32 LE at offset 64 (qemu vdi.c VDI_SIGNATURE)
QED_MAGIC = b"QED\x00"  # qemu enhanced disk (qemu docs/interop/qed_spec.txt)
AFF1_SIGNATURE = b"AFF10\r\n\x00"  # AFFLIB v3 (afflib aff_header "AFF10\r\n\0")
DMG_TRAILER = b"koly"  # Apple UDIF: the 512-byte resource trailer at the end starts 'koly'
ZIP_SIGNATURE = b"PK\x03\x04"  # AFF4 is a ZIP container holding information.turtle


@dataclass(frozen=True, slots=True)
class ParentLink:
    """The parent a differencing image records: the file name it gives and how it is identified.

    ``identity`` is what the parent must say about itself (VHD/VHDX: a GUID; VMDK: a content
    id); ``None`` where the format records none (QCOW names its backing file only).
    """

    name: str
    identity: str | None
    formats: tuple[str, ...]  # the containers the reader can stack this child on


def sniff(path: Path) -> str:
    """The container kind of ``path`` from its signature: ``ewf``, ``vmdk``, ``vhd``, ``vhdx``,
    ``qcow``, ``qcow2`` or ``raw``. A container we recognise but cannot read is an ImageError
    naming it; so is a VMDK extent chosen instead of its descriptor."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(HEAD)
        f.seek(max(0, size - 512))
        tail = f.read(512)
    if head[:8] in EWF_SIGNATURES:
        return "ewf"
    if head.startswith(VMDK_DESCRIPTOR):
        return "vmdk"
    if head.startswith(VMDK_SPARSE):
        if _u64le(head, 36) == 0:  # descriptorSize: no embedded descriptor -> an extent
            raise ImageError(f"{path.name} is one extent of a split VMDK: choose its descriptor")
        return "vmdk"
    if head.startswith(VMDK_COWD):
        raise ImageError(f"{path.name} is a VMDK delta extent: choose its descriptor file")
    if head.startswith(VHDX_SIGNATURE):
        return "vhdx"
    if _vhd_footer(head[:512]) is not None or _vhd_footer(tail) is not None:
        return "vhd"
    if head.startswith(QCOW_MAGIC):
        version = _u32be(head, 4)
        if version == 1:
            return "qcow"
        if version in (2, 3):
            return "qcow2"
        raise ImageError(f"{path.name}: QCOW version {version}: not supported; convert to raw")
    _refuse_unsupported(path, head, tail)
    return "raw"


def _refuse_unsupported(path: Path, head: bytes, tail: bytes) -> None:
    what = ""
    if head[:16] in PARALLELS:
        what = "Parallels disk image"
    elif len(head) >= 68 and struct.unpack_from("<I", head, 64)[0] == VDI_SIGNATURE:
        what = "VirtualBox VDI disk image"
    elif head.startswith(QED_MAGIC):
        what = "QED disk image"
    elif head.startswith(AFF1_SIGNATURE):
        what = "AFF disk image"
    elif tail.startswith(DMG_TRAILER) and len(tail) == 512:
        what = "Apple disk image (DMG)"
    elif head.startswith(ZIP_SIGNATURE) and _is_aff4(path):
        what = "AFF4 image"
    if what:
        raise ImageError(f"{path.name}: " + UNSUPPORTED.format(what=what))


def _is_aff4(path: Path) -> bool:
    """An AFF4 volume is a ZIP whose root holds ``information.turtle`` (AFF4 standard 1.0)."""
    try:
        with zipfile.ZipFile(path) as z:
            return "information.turtle" in z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


# --------------------------------------------------------------------------- VMDK


_EXTENT = re.compile(
    r"^(?P<access>RW|RDONLY|NOACCESS)\s+(?P<sectors>\d+)\s+(?P<type>[A-Z]+)"
    r'(?:\s+"(?P<name>[^"]*)"(?:\s+(?P<offset>\d+))?)?\s*$'
)
_VMDK_FILE_EXTENTS = ("FLAT", "SPARSE", "VMFS", "VMFSSPARSE")  # the kinds held in a file


@dataclass(frozen=True, slots=True)
class VmdkLayout:
    """A VMDK's descriptor, read: the extent file names in order, its CID and its parent."""

    extents: tuple[str, ...]  # file names beside the descriptor; () for a monolithic sparse
    cid: str
    parent: ParentLink | None


def vmdk_layout(path: Path) -> VmdkLayout:
    """The extents and parent a VMDK descriptor (a text file, or embedded in a sparse extent)
    names. A monolithic sparse file is its own only extent, whatever name its descriptor gives."""
    with path.open("rb") as f:
        head = f.read(HEAD)
        embedded = head.startswith(VMDK_SPARSE)
        if embedded:
            # VMDK 1.1 SparseExtentHeader (LE): descriptorOffset u64 @28, descriptorSize u64 @36,
            # both in 512-byte sectors
            offset, length = _u64le(head, 28) * 512, _u64le(head, 36) * 512
            if length > MAX_DESCRIPTOR or offset == 0:
                raise ImageError(f"{path.name}: VMDK header is damaged (descriptor out of range)")
            f.seek(offset)
            raw = f.read(length)
        else:
            f.seek(0)
            raw = f.read(MAX_DESCRIPTOR + 1)
            if len(raw) > MAX_DESCRIPTOR:
                raise ImageError(f"{path.name}: too large for a VMDK descriptor")
    text = raw.split(b"\x00", 1)[0].decode("utf-8", "replace")
    extents: list[str] = []
    fields: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        m = _EXTENT.match(line)
        if m:
            if m["type"] not in _VMDK_FILE_EXTENTS or m["name"] is None:
                raise ImageError(
                    f"{path.name}: VMDK extent of type {m['type']}: not supported; convert to raw"
                )
            extents.append(m["name"])
        elif "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            fields[key.strip()] = value.strip().strip('"')
    if not extents and embedded:  # an extent of a split VMDK may carry an empty descriptor
        raise ImageError(f"{path.name} is one extent of a split VMDK: choose its descriptor")
    if not extents:
        raise ImageError(f"{path.name}: VMDK descriptor names no extent (damaged?)")
    if embedded:
        if len(extents) != 1:
            raise ImageError(f"{path.name}: VMDK sparse file naming several extents: not supported")
        extents = []
    parent = None
    parent_cid = fields.get("parentCID", "ffffffff").lower()
    if parent_cid != "ffffffff":
        hint = fields.get("parentFileNameHint", "")
        if not hint:
            raise ImageError(f"{path.name}: VMDK snapshot that names no parent (damaged?)")
        parent = ParentLink(hint, parent_cid, ("vmdk",))
    return VmdkLayout(tuple(extents), fields.get("CID", "").lower(), parent)


# --------------------------------------------------------------------------- VHD


def _vhd_footer(block: bytes) -> bytes | None:
    """The 512-byte VHD footer if ``block`` is one: cookie and a checksum that adds up.

    VHD spec, "Hard Disk Footer Format": checksum (u32 BE @64) is the one's complement of the
    sum of every footer byte but its own four -- so a raw disk that merely ends in the word
    "conectix" is not taken for a fixed VHD.
    """
    if len(block) != 512 or not block.startswith(VHD_COOKIE):
        return None
    total = sum(block[:64]) + sum(block[68:])
    if (~total) & 0xFFFFFFFF != _u32be(block, 64):
        return None
    return block


def vhd_identity(path: Path) -> str:
    """A VHD's unique id (footer @68, 16 bytes): what its children record as their parent's."""
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - 512))
        footer = _vhd_footer(f.read(512))
    if footer is None:
        raise ImageError(f"{path.name}: VHD footer is damaged")
    return str(uuid.UUID(bytes=footer[68:84]))


def vhd_parent(path: Path) -> ParentLink | None:
    """The parent a differencing VHD records, or None for a fixed or dynamic one.

    VHD spec: footer disk type (u32 BE @60) 4 = differencing; its data offset (u64 BE @16)
    points to the dynamic disk header ("cxsparse"), which holds the parent's unique id
    (@40, 16 bytes) and the parent's file name (@64, 512 bytes of UTF-16 BE).
    """
    with path.open("rb") as f:
        footer = _vhd_footer(f.read(512))
        if footer is None or _u32be(footer, 60) != 4:
            return None
        f.seek(_u64be(footer, 16))
        header = f.read(1024)
    if len(header) < 576 or not header.startswith(b"cxsparse"):
        raise ImageError(f"{path.name}: differencing VHD whose dynamic header is damaged")
    name = header[64:576].decode("utf-16-be", "replace").split("\x00", 1)[0]
    if not name:
        raise ImageError(f"{path.name}: differencing VHD that names no parent (damaged?)")
    return ParentLink(name, str(uuid.UUID(bytes=header[40:56])), ("vhd",))


# --------------------------------------------------------------------------- VHDX

# MS-VHDX 2.2: the region table at 192 KiB ("regi", entry count u32 @8, 32-byte entries from
# @16: GUID, FileOffset u64, Length u32, Required u32).
_VHDX_REGIONS = 192 << 10
_METADATA_REGION = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
_FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")  # flags bit 1: HasParent


def _vhdx_block(f: BinaryIO, offset: int, length: int) -> bytes:
    f.seek(offset)
    return f.read(length)


def vhdx_differencing(path: Path) -> bool:
    """Whether a VHDX has a parent (MS-VHDX 2.6.2.1: File Parameters flags bit 1, HasParent).

    The metadata region (found in the region table) starts with a table ("metadata", entry
    count u16 @10, 32-byte entries from @32: item GUID, offset u32, length u32, flags u32).
    Differencing VHDX is recognised but not read yet: no tool here makes one to test against.
    """
    with path.open("rb") as f:
        regions = _vhdx_block(f, _VHDX_REGIONS, 64 << 10)
        if not regions.startswith(b"regi"):
            raise ImageError(f"{path.name}: VHDX region table is damaged")
        meta_at = None
        for i in range(min(struct.unpack_from("<I", regions, 8)[0], 2047)):
            e = 16 + 32 * i
            if uuid.UUID(bytes_le=regions[e : e + 16]) == _METADATA_REGION:
                meta_at = struct.unpack_from("<Q", regions, e + 16)[0]
        if meta_at is None:
            raise ImageError(f"{path.name}: VHDX has no metadata region (damaged?)")
        table = _vhdx_block(f, meta_at, 64 << 10)
        if not table.startswith(b"metadata"):
            raise ImageError(f"{path.name}: VHDX metadata table is damaged")
        for i in range(min(struct.unpack_from("<H", table, 10)[0], 2047)):
            e = 32 + 32 * i
            if uuid.UUID(bytes_le=table[e : e + 16]) == _FILE_PARAMETERS:
                off = struct.unpack_from("<I", table, e + 16)[0]
                params = _vhdx_block(f, meta_at + off, 8)
                return len(params) == 8 and bool(struct.unpack_from("<I", params, 4)[0] & 2)
    raise ImageError(f"{path.name}: VHDX has no file parameters (damaged?)")


# --------------------------------------------------------------------------- QCOW


def qcow_parent(path: Path) -> ParentLink | None:
    """The backing file a QCOW/QCOW2 image names (header: backing_file_offset u64 BE @8,
    backing_file_size u32 BE @16, the same in versions 1 to 3), or None.

    QCOW records no identifier of its backing file: a wrong file under the right name cannot
    be told from the right one, beyond its being a QCOW image at all (libqcow stacks only
    QCOW on QCOW; a raw backing file is refused by name).
    """
    with path.open("rb") as f:
        head = f.read(HEAD)
        offset, length = _u64be(head, 8), _u32be(head, 16)
        if offset == 0:
            return None
        if length == 0 or length > 1023:  # qemu refuses names over 1023 bytes
            raise ImageError(f"{path.name}: QCOW backing file name is damaged")
        f.seek(offset)
        name = f.read(length).decode("utf-8", "replace")
    return ParentLink(name, None, ("qcow", "qcow2"))


def qcow_encrypted(path: Path) -> bool:
    """crypt_method (u32 BE; 0 = none) sits @36 in QCOW version 1 and @32 in QCOW2."""
    with path.open("rb") as f:
        head = f.read(40)
    return _u32be(head, 36 if _u32be(head, 4) == 1 else 32) != 0


def _u32be(b: bytes, at: int) -> int:
    return int(struct.unpack_from(">I", b, at)[0]) if len(b) >= at + 4 else 0


def _u64be(b: bytes, at: int) -> int:
    return int(struct.unpack_from(">Q", b, at)[0]) if len(b) >= at + 8 else 0


def _u64le(b: bytes, at: int) -> int:
    return int(struct.unpack_from("<Q", b, at)[0]) if len(b) >= at + 8 else 0
