"""Volumes: every region of the media, examined or not; no region is left out silently.

A volume system (MBR, GPT, BSD disklabel, Sun VTOC, Apple partition map) is read by the Sleuth
Kit; without one the whole image is one region. Each region either holds a filesystem we can
walk, or is listed with the reason it cannot be examined: unallocated space, encryption
(BitLocker, LUKS, FileVault, or content that looks random), blank, unknown -- or lying beyond
the end of a truncated image.

Layers come before filesystems (``layers.identify``): an encrypted volume is unlocked when a key
given opens it (``encryption.py``), an LVM2 physical volume becomes its logical volumes
(``lvm.py``), an APFS container its volumes (``filesystems/apfs.py``); what is inside is
examined as a region of its own, and listed as a volume of its own in the report, its
description saying the way in (``MBR: Linux > LUKS1 volume unlocked with a passphrase``).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any

import pytsk3

from kiosk.errors import ImageError
from kiosk.evidence.encryption import Locked, unlock
from kiosk.evidence.filesystems import Filesystem
from kiosk.evidence.filesystems.apfs import ApfsFilesystem, open_container, volume_names
from kiosk.evidence.filesystems.tsk import TskImage, detect
from kiosk.evidence.keys import VolumeKeys
from kiosk.evidence.layers import PROBE_BYTES, Layer, identify
from kiosk.evidence.lvm import logical_volumes
from kiosk.evidence.media import Media
from kiosk.evidence.media.view import RegionFile
from kiosk.model import VolumeRecord

_SCHEMES = {
    int(pytsk3.TSK_VS_TYPE_DOS): "MBR",
    int(pytsk3.TSK_VS_TYPE_GPT): "GPT",
    int(pytsk3.TSK_VS_TYPE_BSD): "BSD disklabel",
    int(pytsk3.TSK_VS_TYPE_SUN): "Sun VTOC",
    int(pytsk3.TSK_VS_TYPE_MAC): "Apple partition map",
}

OUTSIDE_PARTITIONS = "unallocated disk space outside any partition: not searched"

# Filesystems found by ``list_volumes``, by volume index: the caller keeps them open.
Found = dict[int, Filesystem]

MAX_LAYERS = 4  # LVM in LUKS in a partition is three; deeper nesting is refused, and said so


@dataclass(slots=True)
class Listing:
    """What ``list_volumes`` found: every region, the filesystems, and what must stay open."""

    records: list[VolumeRecord] = field(default_factory=list)
    found: Found = field(default_factory=dict)
    opened: list[Any] = field(default_factory=list)  # unlocked volumes, LVs, containers
    layered: set[int] = field(default_factory=set)  # records inside a layer, not the image

    def add(self, record: VolumeRecord, fs: Filesystem | None = None, inner: bool = False) -> None:
        self.records.append(record)
        if fs is not None:
            self.found[record.index] = fs
        if inner:
            self.layered.add(record.index)

    def close(self) -> None:
        self.found.clear()
        for thing in reversed(self.opened):
            with contextlib.suppress(OSError, AttributeError):
                thing.close()
        self.opened.clear()


def list_volumes(media: Media, img: TskImage, name: str, keys: VolumeKeys | None = None) -> Listing:
    """Every region of the image and the filesystems found in them.

    Raises ImageError when no region holds a filesystem. A truncated image (a filesystem or a
    partition ending past the image's end) is examined as far as it goes: the missing range is
    listed as a region not examined, and each file that lies beyond it fails to read.
    """
    size = media.size
    out = Listing()
    keys = keys or VolumeKeys()
    try:
        vs = pytsk3.Volume_Info(img)
    except OSError:
        vs = None
    records = out.records
    if vs is None:
        whole = "whole image (no partition table)"
        _region(out, keys, media, img, 0, size, whole, 0, 0)
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
                    out.add(
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
            _region(out, keys, media, img, start, length, f"{scheme}: {desc}", start, 0)
        _overlapping_at_zero(out, img, scheme)
    for r in list(records):
        if r.index in out.layered:
            continue
        end = r.offset + r.length
        if r.examined:  # a filesystem's own size counts, even where its partition says less
            end = max(end, r.offset + out.found[r.index].claimed_size())
        if end <= size:
            continue
        what = f"the {r.fs_type} filesystem" if r.examined else "this part of the volume"
        records.append(
            VolumeRecord(
                len(records),
                size,
                end - size,
                f"end of volume {r.index} ({r.description})",
                None,
                False,
                f"the image is truncated: {what} ends at byte {end} but the image holds only "
                f"{size} bytes; what lies beyond the end cannot be read: not examined",
            )
        )
    if not any(r.examined for r in records):
        out.close()
        reasons = "; ".join(f"{r.description}: {r.reason}" for r in records) or "empty"
        raise ImageError(f"no filesystem found in {name} ({reasons})")
    return out


def _overlapping_at_zero(out: Listing, img: TskImage, scheme: str) -> None:
    """A filesystem at byte 0 although a partition table is there too, as ``fsstat -o 0`` finds.

    A FAT boot sector can carry an MBR partition table in its boot code (a floppy-style stick
    later partitioned; an isohybrid ISO 9660 image also starts its filesystem at byte 0): the
    partitions are listed, and the filesystem at 0 is examined as one more volume, listed last
    so the partitions keep their numbers.
    """
    if any(r.offset == 0 and r.examined for r in out.records):
        return
    try:
        fs = detect(img, 0)
    except OSError:
        return
    index = len(out.records)
    desc = f"{scheme}: filesystem at byte 0, overlapping the partition table"
    out.add(VolumeRecord(index, 0, fs.claimed_size(), desc, fs.fs_type, True), fs)


def _region(
    out: Listing,
    keys: VolumeKeys,
    media: Media,
    img: TskImage,
    offset: int,
    length: int,
    desc: str,
    at: int,
    depth: int,
) -> None:
    """Examine one region of ``media``: a layer first (encryption, LVM, APFS), else a filesystem.

    ``at`` is where the region lies in the image itself (what the report shows); inside a layer
    (``depth`` > 0) ``offset`` counts in the layer's own bytes.
    """
    index, inner = len(out.records), depth > 0
    head = media.pread(offset, 64 * 1024)
    layer = identify(head[:PROBE_BYTES])
    if layer is not None:
        if depth >= MAX_LAYERS:
            out.add(
                VolumeRecord(
                    index,
                    at,
                    length,
                    desc,
                    None,
                    False,
                    f"{layer.name} nested more than {MAX_LAYERS} layers deep: not examined",
                ),
                inner=inner,
            )
            return
        region = RegionFile(media, offset, length)
        if layer.encrypted:
            opened = unlock(layer, region, keys)
            if isinstance(opened, Locked):
                out.add(
                    VolumeRecord(index, at, length, desc, None, False, opened.reason), inner=inner
                )
                return
            out.opened.append(opened.media)
            inner_img = TskImage(opened.media)
            out.opened.append(inner_img)
            _region(
                out,
                keys,
                opened.media,
                inner_img,
                0,
                opened.media.size,
                f"{desc} > {layer.name} unlocked with {opened.how}",
                at,
                depth + 1,
            )
            return
        if layer.kind == "lvm2":
            _lvm(out, keys, region, layer, desc, at, depth)
            return
        _apfs(out, region, desc, at, length, inner)
        return
    try:
        fs = detect(img, offset)
    except OSError:
        out.add(VolumeRecord(index, at, length, desc, None, False, probe_reason(head)), inner=inner)
        return
    if inner and offset + fs.claimed_size() > media.size:
        out.add(
            VolumeRecord(
                index,
                at,
                length,
                desc,
                None,
                False,
                f"the {fs.fs_type} filesystem claims more bytes than its volume "
                "holds (damaged?): not examined",
            ),
            inner=inner,
        )
        return
    out.add(VolumeRecord(index, at, length, desc, fs.fs_type, True), fs, inner=inner)


def _lvm(
    out: Listing,
    keys: VolumeKeys,
    region: RegionFile,
    layer: Layer,
    desc: str,
    at: int,
    depth: int,
) -> None:
    try:
        lvs = logical_volumes(region)
    except OSError:
        out.add(
            VolumeRecord(
                len(out.records),
                at,
                region.get_size(),
                desc,
                None,
                False,
                f"{layer.name}: its volume group metadata cannot be read (damaged?): not examined",
            ),
            inner=depth > 0,
        )
        return
    for lv in lvs:
        if lv.media is None:
            out.add(
                VolumeRecord(
                    len(out.records), at, 0, f"{desc} > LVM2 {lv.name}", None, False, lv.reason
                ),
                inner=True,
            )
            continue
        out.opened.append(lv.media)
        lv_img = TskImage(lv.media)
        out.opened.append(lv_img)
        _region(
            out,
            keys,
            lv.media,
            lv_img,
            0,
            lv.media.size,
            f"{desc} > LVM2 logical volume {lv.name}",
            at,
            depth + 1,
        )


def _apfs(out: Listing, region: RegionFile, desc: str, at: int, length: int, inner: bool) -> None:
    try:
        container = open_container(region)
        volumes = volume_names(container)
    except OSError:
        out.add(
            VolumeRecord(
                len(out.records),
                at,
                length,
                desc,
                None,
                False,
                "APFS container: it cannot be read (damaged?): not examined",
            ),
            inner=inner,
        )
        return
    out.opened.append(container)
    for i, (vname, locked) in enumerate(volumes):
        label = f"{desc} > APFS volume {i} {vname!r}"
        index = len(out.records)
        if locked:
            out.add(
                VolumeRecord(
                    index,
                    at,
                    length,
                    label,
                    None,
                    False,
                    "encrypted APFS volume: key needed (this kiosk cannot unlock "
                    "APFS volumes yet): not examined",
                ),
                inner=True,
            )
            continue
        fs = ApfsFilesystem(container, i, region)
        out.add(VolumeRecord(index, at, length, label, "apfs", True), fs, inner=True)
    if not volumes:
        out.add(
            VolumeRecord(
                len(out.records),
                at,
                length,
                desc,
                None,
                False,
                "APFS container without volumes: nothing to examine",
            ),
            inner=inner,
        )
    claimed, held = int(container.size), region.get_size()
    if claimed > held:  # the container goes on past the end of the image
        out.add(
            VolumeRecord(
                len(out.records),
                at + held,
                claimed - held,
                f"end of {desc}",
                None,
                False,
                f"the image is truncated: the APFS container ends at byte {at + claimed} but the "
                f"image holds only {at + held} bytes of it; what lies beyond cannot be read: "
                "not examined",
            ),
            inner=True,
        )


def probe_reason(head: bytes) -> str:
    """Why a region without a recognised filesystem could not be examined, as best we can say."""
    if not head:
        return "no data: the region lies beyond the end of the image"
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
