"""Encrypted volumes: named for what they are, and unlocked where a tested reader exists.

An encrypted region is never "unknown or damaged": ``layers.identify`` names it by signature
and the report says which encryption it is and what would be needed to read it. Unlocking runs
through the libyal reader made for the format, on a ``RegionFile`` over media we opened
read-only; the unlocked volume comes back as ``Media`` and is examined like any disk region.

Unlocked here: LUKS1, with a passphrase (libluksde), and LUKS2, with a passphrase (our own
reader, ``luks2.py``: libluksde reads LUKS1 only); both tested against volumes made by
``cryptsetup luksFormat``. Named only, with the reason: BitLocker and BitLocker To Go,
FileVault 2 / CoreStorage -- libbde and libfvde could unlock those, but no test volume of
either can be made with free tools, so that code is kept out until one can be tested (see
``kiosk.evidence.keys``).

The secrets never reach a message: a wrong passphrase is "none of the N passphrases given
unlocks it", the library's own error text goes only to the exception's cause.
"""

from __future__ import annotations

import re

import pyluksde

from kiosk.errors import ImageError
from kiosk.evidence import luks2
from kiosk.evidence.keys import KIND_NAMES, VolumeKeys
from kiosk.evidence.layers import Layer
from kiosk.evidence.media import Media
from kiosk.evidence.media.view import RegionFile, VolumeMedia

_NEEDS = {
    "bitlocker": "a recovery key or password is needed, and this kiosk cannot unlock BitLocker "
    "yet (unlock it with BitLocker's own tools and image the unlocked volume)",
    "corestorage": "a password or recovery key is needed, and this kiosk cannot unlock "
    "FileVault yet (unlock it on a Mac and image the unlocked volume)",
}


class Locked:
    """Why an encrypted region stays closed: the sentence the report shows."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class Unlocked:
    """An unlocked volume: its plaintext as Media, and how it was opened (no secret in it)."""

    __slots__ = ("how", "media")

    def __init__(self, media: Media, how: str) -> None:
        self.media, self.how = media, how


def wants_passphrase(reason: str) -> bool:
    """True when a region's reason (or an image's error naming it) says a passphrase would open
    it, none or a wrong one having been given: the app then offers its passphrase field."""
    return bool(
        re.search(
            r"LUKS[12] volume: encrypted; (its passphrase is needed|none of the \d+ passphrases? "
            r"given unlocks it)",
            reason,
        )
    )


def unlock(layer: Layer, region: RegionFile, keys: VolumeKeys) -> Unlocked | Locked:
    """Open the encrypted ``region`` with one of ``keys``, or say why it stays closed."""
    if layer.kind == "luks1":
        return _luks1(layer, region, keys)
    if layer.kind == "luks2" and layer.name == "LUKS2 volume":
        return _luks2(layer, region, keys)
    need = _NEEDS.get(layer.kind, "a key is needed")
    return Locked(f"{layer.name}: encrypted; {need}: not examined")


def _needed(layer: Layer) -> Locked:
    return Locked(
        f"{layer.name}: encrypted; its passphrase is needed (kiosk scan --unlock password): "
        "not examined"
    )


def _none_opens(layer: Layer, n: int) -> Locked:
    return Locked(
        f"{layer.name}: encrypted; none of the {n} passphrase{'s' if n > 1 else ''} given "
        "unlocks it: not examined"
    )


def _luks2(layer: Layer, region: RegionFile, keys: VolumeKeys) -> Unlocked | Locked:
    if not keys.passwords:
        return _needed(layer)
    try:
        meta = luks2.read_metadata(region)
        for password in keys.passwords:
            try:
                key, segment = luks2.volume_key(region, meta, password)
            except LookupError:
                continue
            return Unlocked(luks2.Luks2Media(region, meta, key, segment), KIND_NAMES["password"])
    except ImageError as e:  # luks2.py's reasons, one line each
        return Locked(f"{layer.name}: {e}: not examined")
    except (ValueError, OverflowError, MemoryError):  # cryptography refusing crafted parameters
        return Locked(f"{layer.name}: its header cannot be read (damaged?): not examined")
    return _none_opens(layer, len(keys.passwords))


def _luks1(layer: Layer, region: RegionFile, keys: VolumeKeys) -> Unlocked | Locked:
    if not keys.passwords:
        return _needed(layer)
    for password in keys.passwords:
        volume = pyluksde.volume()
        try:
            volume.open_file_object(region)
            volume.set_password(password)
            if volume.unlock():
                return Unlocked(VolumeMedia(volume, keep=(region,)), KIND_NAMES["password"])
        except OSError:
            return Locked(f"{layer.name}: its header cannot be read (damaged?): not examined")
        volume.close()
        region.seek(0)
    return _none_opens(layer, len(keys.passwords))
