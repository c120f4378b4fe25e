"""What the deeper checks of issue 17 (items 2-4) cost, step by step, beside the work they join.

Each step is timed against the baseline it rides on, in the same process, alternating rounds:

- content checks (disguised + encrypted: ``ContentProbe`` fed the chunks, then ``finish``) on
  small files and on 1 MiB chunks, against the three digests the worker computes anyway;
- PDQ of one picture (decode with Pillow, reduce, ``pdqhash``) at common sizes and formats;
- the Hamming search of one PDQ hash over a perceptual set of 10 k, 100 k and 1 M hashes.

- a whole scan (``scan_tasks``, inline) of a real ext4 of 100 photos (1600x1200 JPEG) and 100
  text files, without and with a perceptual set of 100 k hashes loaded: the price of item 4 on a
  picture-heavy device, as a ratio of the same scan without it.

Usage: ``.venv/bin/python bench/deeper_bench.py [--rounds 5]`` (about a minute); prints Markdown
rows.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import mmap
import os
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image, ImageDraw

from kiosk.engine import pdq
from kiosk.engine.probe import ContentProbe
from kiosk.engine.scan import ScanConfig, scan_tasks
from kiosk.evidence.image import Evidence
from kiosk.evidence.resolve import resolve
from kiosk.hashsets.build import ImportRequest
from kiosk.hashsets.index import HashIndex
from kiosk.hashsets.perceptual import nearest
from kiosk.hashsets.store import import_set
from kiosk.locator import FsLoc, StreamLoc, VolumeLoc
from kiosk.model import FileResult, FileStatus, FileTask

pillow_heif.register_heif_opener()


def best(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def digests(chunks: list[bytes]) -> None:
    a, b, c = hashlib.md5(), hashlib.sha1(), hashlib.sha256()  # noqa: S324 - the baseline
    for ch in chunks:
        a.update(ch)
        b.update(ch)
        c.update(ch)


def probe_files(probe: ContentProbe, files: list[tuple[FileTask, list[bytes]]]) -> None:
    for task, chunks in files:
        probe.start(task)
        for ch in chunks:
            probe.feed(ch)
        probe.finish(FileResult(task, FileStatus.SCANNED, mime="application/octet-stream"))


def task(i: int, name: str, size: int) -> FileTask:
    return FileTask(i, StreamLoc(FsLoc(VolumeLoc(0, 0), "ext4"), i, 1, -1), f"/{name}", True, size)


def picture(w: int, h: int, fmt: str) -> bytes:
    rnd = random.Random(w * h)
    im = Image.new("RGB", (w, h), (90, 120, 150))
    d = ImageDraw.Draw(im)
    for _ in range(60):
        x, y = rnd.randrange(w), rnd.randrange(h)
        d.ellipse((x, y, x + w // 5, y + h // 5), fill=tuple(rnd.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    im.save(out, fmt, **({"quality": 85} if fmt in ("JPEG", "HEIF", "WEBP") else {}))
    return out.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    n = ap.parse_args().rounds
    probe = ContentProbe(HashIndex([]))
    small = [(task(i, f"f{i}.txt", 4096), [os.urandom(4096)]) for i in range(2000)]
    big_chunks = [os.urandom(1 << 20) for _ in range(64)]
    big = [(task(0, "big.bin", 64 << 20), big_chunks)]
    print("| step | baseline | step time | step / baseline |")
    print("|---|---|---|---|")
    for label, files in (("2000 files of 4 KiB", small), ("one 64 MiB file", big)):
        base = best(lambda f=files: [digests(c) for _, c in f], n)
        step = best(lambda f=files: probe_files(probe, f), n)
        print(
            f"| disguised + encrypted checks, {label} | digests {base * 1e3:.1f} ms | "
            f"{step * 1e3:.1f} ms | {step / base:.1%} |"
        )
    noise = os.urandom(2 << 20)  # the container heuristic's worst case: entropy of 128 KiB
    t = task(1, "v.hc", len(noise))
    base = best(lambda: digests([noise]), n)
    step = best(lambda: probe_files(probe, [(t, [noise[: 1 << 20], noise[1 << 20 :]])]), n)
    print(
        f"| container heuristic (2 MiB of noise, entropy sampled) | digests {base * 1e3:.1f} ms "
        f"| {step * 1e3:.1f} ms | {step / base:.1%} |"
    )
    for w, h, fmt in ((640, 480, "JPEG"), (1024, 768, "PNG"), (4000, 3000, "JPEG"),
                      (4032, 3024, "HEIF"), (1024, 768, "WEBP")):  # fmt: skip
        data = picture(w, h, fmt)
        base = best(lambda d=data: digests([d]), n)
        step = best(lambda d=data: pdq.pdq(d), n)
        print(
            f"| PDQ of one {w}x{h} {fmt} ({len(data) // 1024} KiB) | digests {base * 1e3:.2f} ms "
            f"| {step * 1e3:.1f} ms | {step / base:.0f}x |"
        )
    q = os.urandom(32)
    for count in (10_000, 100_000, 1_000_000):
        raw = os.urandom(32 * count)
        mm = mmap.mmap(-1, len(raw))
        mm.write(raw)
        step = best(lambda m=mm, c=count: nearest(m, 0, c, q, 31), n)
        print(
            f"| Hamming search, one picture, {count:,} PDQ hashes | - | {step * 1e3:.2f} ms | - |"
        )
        mm.close()
    _ = np  # numpy is what nearest() runs on; imported here so its load is not timed
    whole_scan(n)


def whole_scan(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["KIOSK_HOME"] = str(root / "home")  # dev-mode load: no trust store touched
        tree = root / "tree"
        tree.mkdir()
        for i in range(100):
            (tree / f"photo{i:03d}.jpg").write_bytes(picture(1600, 1200 + i, "JPEG"))
            (tree / f"note{i:03d}.txt").write_bytes(b"nothing here\n" * (50 + i))
        img = root / "pictures.img"
        subprocess.run(["mke2fs", "-q", "-t", "ext4", "-d", str(tree), str(img), "64M"], check=True)
        src = root / "set.csv"
        src.write_text("pdq_hex,category\n" + "".join(os.urandom(32).hex() + ",x\n"
                                                     for _ in range(100_000)))  # fmt: skip
        import_set(root / "sets", ImportRequest("bench", (src,), "known_bad", version="1"))
        with HashIndex.load(root / "sets", dev=True) as index:
            sets = index.sets
        ref = resolve([img])
        with Evidence(ref) as ev:
            tasks = list(ev.walk(ev.volumes()))
        plain = ScanConfig(ref, None, {}, (), workers=0)
        with_set = ScanConfig(ref, None, {}, sets, workers=0)
        saved = (ContentProbe.start, ContentProbe.feed, ContentProbe.finish)

        def probe_off() -> None:
            ContentProbe.start = ContentProbe.feed = lambda self, _: None  # type: ignore[method-assign]
            ContentProbe.finish = lambda self, r: r  # type: ignore[method-assign]

        def probe_on() -> None:
            ContentProbe.start, ContentProbe.feed, ContentProbe.finish = saved  # type: ignore[method-assign]

        times: dict[str, list[float]] = {"off": [], "on": [], "set": []}
        for _ in range(rounds):  # alternating, so a change of load hits every variant alike
            for variant, cfg in (("off", plain), ("on", plain), ("set", with_set)):
                (probe_off if variant == "off" else probe_on)()
                t = time.perf_counter()
                list(scan_tasks(tasks, cfg))
                times[variant].append(time.perf_counter() - t)
        probe_on()
        off, base, step = (statistics.median(times[v]) for v in ("off", "on", "set"))
        what = "whole scan (inline, no rules), 100 photos 1600x1200 + 100 texts"
        print(
            f"| {what}: disguised + encrypted checks | {off:.2f} s without | {base:.2f} s with | "
            f"{base / off:.2f}x |"
        )
        print(
            f"| {what}: PDQ with a perceptual set of 100 k | {base:.2f} s without | "
            f"{step:.2f} s with | {step / base:.2f}x |"
        )


if __name__ == "__main__":
    main()
