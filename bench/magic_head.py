"""libmagic: how head size and check flags change its cost, and whether they change any MIME type.

Why: a py-spy profile of a kiosk worker on the triage bench image put a third of its CPU in
``magic_buffer`` (mostly soft-magic regexes over the 8 KiB head of text files). A smaller head or
fewer checks is only acceptable if every MIME type on the corpus stays the same, so this script
reports both: time per call and the files whose type would change, against kiosk's reference
(8 KiB head, default flags).

Usage: ``.venv/bin/python bench/magic_head.py IMAGE [--files 4000]`` (an image from
``make_bench_image.py``; heads are read with pytsk3).

``--corpus DIR [DIR ...]`` measures on real files instead (e.g. ``/usr/share /usr/lib /etc``: text,
scripts, JSON, XML, HTML, ELF, gzip, images, locale data). The generated bench corpus has few
text subtypes, so the head-size question is answered there: every head size is compared with
libmagic on the *whole* file (what ``file`` reports), as well as with kiosk's 8 KiB head.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import time
from collections import Counter
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


def corpus(dirs: list[Path], n: int) -> list[bytes]:
    """Up to ``n`` regular files under ``dirs`` (below 4 MiB), whole, in a fixed random order."""
    paths: list[Path] = []
    for d in dirs:
        for dp, _, names in os.walk(d):
            for name in names:
                p = Path(dp) / name
                with contextlib.suppress(OSError):
                    if p.is_file() and not p.is_symlink() and 0 < p.stat().st_size < (4 << 20):
                        paths.append(p)
    paths.sort()
    random.Random(7).shuffle(paths)
    out: list[bytes] = []
    for p in paths[:n]:
        with contextlib.suppress(OSError):
            out.append(p.read_bytes())
    return out


def compare_to_whole(data: list[bytes], sizes: list[int]) -> None:
    m = magic.Magic(mime=True)
    whole = [m.from_buffer(b) for b in data]
    ref8 = [m.from_buffer(b[:8192]) for b in data]
    print(f"{len(data)} files; reference: libmagic on the whole file (as `file` sees it)")
    print("| head | us/call | types != whole file | types != 8 KiB head | most common changes |")
    print("|---|---|---|---|---|")
    for size in sizes:
        cut = [b[:size] for b in data]
        t0 = time.perf_counter()
        got = [m.from_buffer(b) for b in cut]
        us = (time.perf_counter() - t0) / len(cut) * 1e6
        vs_whole = Counter((w, g) for w, g in zip(whole, got, strict=True) if w != g)
        vs_8k = sum(r != g for r, g in zip(ref8, got, strict=True))
        top = ", ".join(f"{a} -> {b} ({k})" for (a, b), k in vs_whole.most_common(3))
        print(f"| {size} | {us:.0f} | {sum(vs_whole.values())} | {vs_8k} | {top} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("image", type=Path, nargs="?")
    ap.add_argument("--corpus", type=Path, nargs="+", help="real files instead of an image")
    ap.add_argument("--files", type=int, default=4000)
    ap.add_argument("--sizes", default="8192,4096,2048")
    a = ap.parse_args()
    global SIZES
    SIZES = [int(x) for x in a.sizes.split(",")]
    if a.corpus:
        compare_to_whole(corpus(a.corpus, a.files), SIZES)
        return 0
    if a.image is None:
        ap.error("give an IMAGE or --corpus DIR")
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
