"""Volumes: every region of the media, examined or not; no region is left out silently.

A volume system (MBR, GPT, BSD disklabel, Sun VTOC, Apple partition map) is read by the Sleuth
Kit; without one the whole image is one region. Each region either holds a filesystem we can
walk, or is listed with the reason it cannot be examined: unallocated space, encryption
(BitLocker, LUKS, or content that looks random), blank, unknown -- or lying beyond the end of
a truncated image.
"""

from __future__ import annotations

import math

import pytsk3

from kiosk.errors import ImageError
from kiosk.evidence.filesystems import Filesystem
from kiosk.evidence.filesystems.tsk import TskImage, detect
from kiosk.evidence.media import Media
from kiosk.model import VolumeRecord

_SCHEMES = {
    int(pytsk3.TSK_VS_TYPE_DOS): "MBR",
    int(pytsk3.TSK_VS_TYPE_GPT): "GPT",
    int(pytsk3.TSK_VS_TYPE_BSD): "BSD disklabel",
    int(pytsk3.TSK_VS_TYPE_SUN): "Sun VTOC",
    int(pytsk3.TSK_VS_TYPE_MAC): "Apple partition map",
}

OUTSIDE_PARTITIONS = "unallocated disk space outside any partition: not searched"

# Filesystems found by ``list_volumes``, by (offset, type): the caller keeps them open.
Found = dict[tuple[int, str], Filesystem]


def list_volumes(media: Media, img: TskImage, name: str) -> tuple[list[VolumeRecord], Found]:
    """Every region of the image and the filesystems found in them.

    Raises ImageError when no region holds a filesystem, or when a filesystem claims more
    bytes than the image holds (a truncated image).
    """
    size = media.size
    found: Found = {}
    try:
        vs = pytsk3.Volume_Info(img)
    except OSError:
        vs = None
    records: list[VolumeRecord] = []
    if vs is None:
        whole = "whole image (no partition table)"
        records.append(_volume_at(media, img, found, 0, 0, size, whole))
    else:
        bsize = int(vs.info.block_size)
        scheme = _SCHEMES.get(int(vs.info.vstype), f"partition table type {int(vs.info.vstype)}")
        for part in vs:
            start, length = int(part.start) * bsize, int(part.len) * bsize
            desc = (
                part.desc.decode("utf-8", "replace")
                if isinstance(part.desc, bytes)
                else str(part.desc)
            )
            flags = int(part.flags)
            index = len(records)
            if flags & int(pytsk3.TSK_VS_PART_FLAG_META):
                continue  # partition-table structures themselves
            if flags & int(pytsk3.TSK_VS_PART_FLAG_UNALLOC):
                if length:
                    records.append(
                        VolumeRecord(
                            index,
                            start,
                            length,
                            f"{scheme}: {desc}",
                            None,
                            False,
                            OUTSIDE_PARTITIONS,
                        )
                    )
                continue
            records.append(_volume_at(media, img, found, index, start, length, f"{scheme}: {desc}"))
    for r in records:
        if not r.examined:
            continue  # a region without a filesystem past the end is listed below instead
        fs = found[(r.offset, r.fs_type or "")]
        need = max(r.offset + r.length, r.offset + fs.claimed_size())
        if need > size:
            raise ImageError(
                f"the image is truncated: the {r.fs_type} filesystem of {r.description} "
                f"ends at byte {need} but the image holds only {size} bytes"
            )
    for r in list(records):
        if r.offset + r.length > size:
            records.append(
                VolumeRecord(
                    len(records),
                    size,
                    r.offset + r.length - size,
                    f"end of volume {r.index}",
                    None,
                    False,
                    "this part of the volume lies beyond the end of the image "
                    "(truncated image?): not examined",
                )
            )
    if not any(r.examined for r in records):
        reasons = "; ".join(f"{r.description}: {r.reason}" for r in records) or "empty"
        raise ImageError(f"no filesystem found in {name} ({reasons})")
    return records, found


def _volume_at(
    media: Media, img: TskImage, found: Found, index: int, offset: int, length: int, desc: str
) -> VolumeRecord:
    try:
        fs = detect(img, offset)
    except OSError:
        head = media.pread(offset, 64 * 1024)
        return VolumeRecord(index, offset, length, desc, None, False, probe_reason(head))
    found[(offset, fs.fs_type)] = fs
    return VolumeRecord(index, offset, length, desc, fs.fs_type, True)


def probe_reason(head: bytes) -> str:
    """Why a region without a recognised filesystem could not be examined, as best we can say."""
    if not head:
        return "no data: the region lies beyond the end of the image"
    if head[3:11] == b"-FVE-FS-":
        return "BitLocker-encrypted volume: not examined"
    if head[:6] == b"LUKS\xba\xbe":
        return "LUKS-encrypted volume: not examined"
    if head.count(0) == len(head):
        return "no filesystem: the region is blank (all zero bytes)"
    counts = [0] * 256
    for b in head:
        counts[b] += 1
    entropy = -sum(c / len(head) * math.log2(c / len(head)) for c in counts if c)
    if entropy > 7.5:
        return (
            f"no filesystem recognised; content looks random (entropy {entropy:.2f} bits/byte): "
            "possibly encrypted: not examined"
        )
    return "no filesystem recognised (unknown or damaged): not examined"
