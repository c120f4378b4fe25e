"""libmagic: how head size and check flags change its cost, and whether they change any MIME type.

Why: a py-spy profile of a kiosk worker on the triage bench image put a third of its CPU in
``magic_buffer`` (mostly soft-magic regexes over the 8 KiB head of text files). A smaller head or
fewer checks is only acceptable if every MIME type on the corpus stays the same, so this script
reports both: time per call and the files whose type would change, against kiosk's reference
(8 KiB head, default flags).

Usage: ``.venv/bin/python bench/magic_head.py IMAGE [--files 4000]`` (an image from
``make_bench_image.py``; heads are read with pytsk3).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import magic
import pytsk3

_CHEAP = (
    magic.MAGIC_NO_CHECK_COMPRESS
    | magic.MAGIC_NO_CHECK_TAR
    | magic.MAGIC_NO_CHECK_ELF
    | magic.MAGIC_NO_CHECK_APPTYPE
)
FLAG_SETS = {
    "default": 0,
    "no compress,tar,elf,apptype": _CHEAP,
    "+ no tokens": _CHEAP | magic.MAGIC_NO_CHECK_TOKENS,
    "+ no cdf": _CHEAP | magic.MAGIC_NO_CHECK_CDF,
    "+ no json,csv": _CHEAP | 0x0400000 | 0x0800000,  # MAGIC_NO_CHECK_JSON, _CSV (5.35+)
    "+ no encoding": _CHEAP | magic.MAGIC_NO_CHECK_ENCODING,
}


SIZES = [8192]


def heads(image: Path, n: int, size: int) -> list[bytes]:
    fs = pytsk3.FS_Info(pytsk3.Img_Info(str(image)))
    out: list[bytes] = []

    def walk(d: pytsk3.Directory) -> None:
        for e in d:
            name = e.info.name.name
            if name in (b".", b"..") or e.info.meta is None:
                continue
            if int(e.info.meta.type) == int(pytsk3.TSK_FS_META_TYPE_DIR):
                walk(e.as_directory())
            elif int(e.info.meta.type) == int(pytsk3.TSK_FS_META_TYPE_REG) and e.info.meta.size:
                out.append(e.read_random(0, min(size, int(e.info.meta.size))))

    walk(fs.open_dir(path="/"))
    random.Random(1).shuffle(out)
    return out[:n]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("image", type=Path)
    ap.add_argument("--files", type=int, default=4000)
    ap.add_argument("--sizes", default="8192,4096,2048")
    a = ap.parse_args()
    global SIZES
    SIZES = [int(x) for x in a.sizes.split(",")]
    hs = heads(a.image, a.files, 8192)
    ref_m = magic.Magic(mime=True)
    ref = [ref_m.from_buffer(h) for h in hs]
    print(f"{len(hs)} heads; reference: 8192-byte head, default flags")
    print("| head | flags | us/call | MIME types changed |")
    print("|---|---|---|---|")
    for size in SIZES:
        for label, flags in FLAG_SETS.items():
            m = magic.Magic(mime=True)
            if flags:
                magic.magic_setflags(m.cookie, magic.MAGIC_MIME_TYPE | flags)  # type: ignore[attr-defined]
            cut = [h[:size] for h in hs]
            t0 = time.perf_counter()
            got = [m.from_buffer(h) for h in cut]
            us = (time.perf_counter() - t0) / len(cut) * 1e6
            diff = [(r, g) for r, g in zip(ref, got, strict=True) if r != g]
            example = f" e.g. {diff[0][0]} -> {diff[0][1]}" if diff else ""
            print(f"| {size} | {label} | {us:.0f} | {len(diff)}{example} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
