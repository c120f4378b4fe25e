"""PDQ hashes of pictures, for matching look-alikes against perceptual hash sets.

PDQ is Meta's open perceptual hash (256 bits; two pictures that look alike are a small Hamming
distance apart). The hashing itself is the reference C++ code through the maintained ``pdqhash``
bindings; this module only decodes the picture with Pillow (HEIC through pillow-heif) and hands
the RGB pixels over. Bit order: ``pdqhash`` returns the bits most significant first, so the 32
bytes packed here are the hash as the reference tools and ThreatExchange write it in hex.

Guards, because a picture is hostile input decoded in native code (inside a scan worker, whose
crash costs one file):

- the picture's bytes are given in memory, never written anywhere;
- its size in pixels is read from its header first, and a picture over ``MAX_PIXELS`` is refused
  before any pixel is decoded (the decompression-bomb guard; below Pillow's own warning limit);
- a large picture is reduced (JPEG by DCT scaling while decoding, others by box averaging) to at
  most ``WORK_SIDE`` pixels a side before hashing, so time and memory per picture are bounded by
  ``MAX_PIXELS``; a picture at or below ``WORK_SIDE`` is hashed as decoded, exactly as the
  reference implementation hashes it (a larger one lands within a few bits of its full-size
  hash: ``tests/test_pdq.py``). Only the first frame of an animation is hashed.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import pdqhash
import pillow_heif
from PIL import Image

MAX_PIXELS = 50_000_000  # a 48-megapixel phone photo passes; Pillow warns from 89 M
WORK_SIDE = 512  # PDQ's own first step shrinks to 64x64; the reference PHP hasher and common
# deployments downsample to about 512 first too, since that step is PDQ's most expensive
MAX_BYTES = 64 << 20  # pictures larger than this are not held for hashing
# Below this PDQ quality a picture has too little structure (a flat or nearly flat image): its
# hash is close to that of every other featureless picture, so matching it would only raise
# false alarms. 50 is the cut-off commonly used with PDQ (the quality scale runs 0-100).
MIN_QUALITY = 50

pillow_heif.register_heif_opener()


@dataclass(frozen=True, slots=True)
class PdqResult:
    """A picture's PDQ hash (32 bytes) and quality (0-100), or why it has none."""

    hash: bytes | None
    quality: int = 0
    reason: str = ""


_MAGIC = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"II*\x00",  # TIFF, little-endian
    b"MM\x00*",  # TIFF, big-endian
)
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif")


def is_picture(head: bytes) -> bool:
    """Whether the first bytes are those of a format we hash (JPEG, PNG, GIF, BMP, WebP, TIFF,
    HEIC/HEIF); decided before the content is held, so it is a signature check, not libmagic."""
    if head.startswith(_MAGIC):
        return True
    if head.startswith(b"BM") and len(head) >= 18 and head[6:10] == b"\0\0\0\0":
        return int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return True
    return head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS


def pdq(data: bytes) -> PdqResult:
    """Hash one picture given in memory; a picture that cannot be hashed says why."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # odd EXIF and the like: the hash does not need it
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    return PdqResult(
                        None,
                        reason=f"picture of {w}x{h} pixels is over the limit of {MAX_PIXELS} "
                        "pixels (decompression-bomb guard): not PDQ-hashed",
                    )
                if im.format == "JPEG" and max(w, h) > WORK_SIDE:
                    im.draft("RGB", (WORK_SIDE, WORK_SIDE))
                im.seek(0)
                rgb = im.convert("RGB")
        factor = -(-max(rgb.size) // WORK_SIDE)
        if factor > 1:
            rgb = rgb.reduce(factor)
        pixels = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
        bits, quality = pdqhash.compute(pixels)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own guard, hit while reading the header of a picture claiming billions of
        # pixels: the same refusal as ours, said the same way
        return PdqResult(
            None,
            reason=f"picture is over the limit of {MAX_PIXELS} pixels "
            "(decompression-bomb guard): not PDQ-hashed",
        )
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as e:
        return PdqResult(None, reason=f"picture could not be decoded for PDQ: {type(e).__name__}")
    return PdqResult(np.packbits(bits.astype(np.uint8)).tobytes(), int(quality))
