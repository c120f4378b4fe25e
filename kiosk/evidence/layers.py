"""What lies in a region before any filesystem: encryption, LVM, an APFS container.

A region is told by its first bytes, *before* and regardless of filesystem detection: a
BitLocker To Go volume wears a FAT wrapper the Sleuth Kit would happily walk (finding only the
wrapper's reader program), and a LUKS or LVM header at the start of a partition is not a
damaged filesystem. Each signature here is the one its format's specification (and the libyal
reader) checks:

==========================  ==================================================================
BitLocker (and To Go)       ``-FVE-FS-`` at byte 3 (To Go: a FAT32 boot sector around it)
LUKS 1 / 2                  ``LUKS\\xba\\xbe`` at byte 0, then the version (big-endian 16 bit)
FileVault 2 / CoreStorage   ``CS`` at byte 88 of the physical volume header, version 1 at byte 4
APFS container              ``NXSB`` at byte 32 (the container superblock)
LVM2 physical volume        ``LABELONE`` at the start of one of the first four sectors, with
                            ``LVM2 001`` 24 bytes further
==========================  ==================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

PROBE_BYTES = 4096  # enough for every signature above


@dataclass(frozen=True, slots=True)
class Layer:
    """A recognised layer: ``kind`` for code, ``name`` for people."""

    kind: str  # bitlocker, luks1, luks2, corestorage, apfs, lvm2
    name: str

    @property
    def encrypted(self) -> bool:
        return self.kind in ("bitlocker", "luks1", "luks2", "corestorage")


def identify(head: bytes) -> Layer | None:
    """The layer whose signature starts ``head`` (a region's first bytes), or None."""
    if head[3:11] == b"-FVE-FS-":
        to_go = head[82:90] == b"FAT32   " or head[54:59] == b"FAT16"
        return Layer("bitlocker", "BitLocker To Go volume" if to_go else "BitLocker volume")
    if head[:6] == b"LUKS\xba\xbe":
        version = int.from_bytes(head[6:8], "big")
        if version == 1:
            return Layer("luks1", "LUKS1 volume")
        if version == 2:
            return Layer("luks2", "LUKS2 volume")
        return Layer("luks2", f"LUKS volume (version {version})")
    if head[88:90] == b"CS" and int.from_bytes(head[4:6], "little") == 1:
        return Layer("corestorage", "FileVault 2 / CoreStorage volume")
    if head[32:36] == b"NXSB":
        return Layer("apfs", "APFS container")
    for sector in range(4):
        at = sector * 512
        if head[at : at + 8] == b"LABELONE" and head[at + 24 : at + 32] == b"LVM2 001":
            return Layer("lvm2", "LVM2 physical volume")
    return None
