"""LVM2: the logical volumes of a physical volume, each read as a region of its own.

libvslvm reads the volume group's metadata from the physical volume (through a ``RegionFile``
over our read-only media) and maps each logical volume's extents, so a logical volume whose
extents are not laid end to end still reads in order. Only the physical volume inside this
image is given to it: a logical volume with extents on another disk of the group cannot be
read, and is listed with the reason rather than left out. libvslvm 20260901 also refuses a
logical volume made of several segments on the same physical volume (one extended after
another was made): listed the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyvslvm

from kiosk.evidence.media.view import RegionFile, VolumeMedia


@dataclass(frozen=True, slots=True)
class LogicalVolume:
    """One logical volume: ``vg/lv``, and its bytes (None, with ``reason``, if unreadable)."""

    name: str
    media: VolumeMedia | None
    reason: str = ""


def logical_volumes(region: RegionFile) -> list[LogicalVolume]:
    """Every logical volume of the group on this physical volume, in metadata order.

    Raises OSError when the volume group's metadata cannot be read.
    """
    handle = pyvslvm.handle()
    handle.open_file_object(region)
    handle.open_physical_volume_files_as_file_objects([region])
    group = handle.get_volume_group()
    vg = str(group.name)
    found: list[LogicalVolume] = []
    for i in range(int(group.number_of_logical_volumes)):
        try:
            lv = group.get_logical_volume(i)
        except OSError:
            found.append(
                LogicalVolume(
                    f"{vg}/#{i}",
                    None,
                    f"LVM2 logical volume {i} of volume group {vg}: its extents cannot be "
                    "mapped (on another disk, or a layout libvslvm does not read): not examined",
                )
            )
            continue
        found.append(
            LogicalVolume(f"{vg}/{lv.name}", VolumeMedia(lv, keep=(handle, group, region)))
        )
    return found
