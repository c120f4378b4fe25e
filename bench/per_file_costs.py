"""CPU per file of each fixed cost: libmagic, the three hashes, YARA per engine, gated or not.

Why: issue 19's independent bench found that on a tree of ~8,000 small files the per-file fixed
costs, not the bytes, are most of the work. This measures them on the ``independent`` image
(``make_bench_image.py --shape independent``): 2,000 of its small files read into memory once,
then each cost alone in one process, best of 3 (CPU time, so other sessions matter less than
for wall time, though shared caches still inflate it).

Usage: ``.venv/bin/python bench/per_file_costs.py [--dir DIR] [--files 2000]``
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import magic

from kiosk.evidence.image import Evidence
from kiosk.evidence.resolve import resolve
from kiosk.packs.load import Matcher, compile_packs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_bench_image import default_dir


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", type=Path, default=default_dir("independent"))
    ap.add_argument("--files", type=int, default=2000)
    a = ap.parse_args()
    with Evidence(resolve([a.dir / "ext4.img"])) as ev:
        tasks = [t for t in ev.walk(ev.volumes()) if t.size < (1 << 20)][: a.files]
        datas = [b"".join(ev.chunks(t)) for t in tasks]

    def cpu(fn: Callable[[], object]) -> int:
        best = float("inf")
        for _ in range(3):
            c = time.process_time()
            fn()
            best = min(best, (time.process_time() - c) / len(datas) * 1e6)
        return round(best)

    m = magic.Magic(mime=True)
    print("| work per file | µs |\n|---|---|")
    print(
        f"| libmagic on the 8 KiB head | {cpu(lambda: [m.from_buffer(d[:8192]) for d in datas])} |"
    )
    hashes = cpu(lambda: [(hashlib.md5(d), hashlib.sha1(d), hashlib.sha256(d)) for d in datas])  # noqa: S324
    print(f"| MD5 + SHA-1 + SHA-256 | {hashes} |")
    home = Path(tempfile.mkdtemp(prefix="kiosk-costs-"))
    for eng in ("libyara", "yara-x"):
        r = compile_packs(a.dir / "rules", dev=True, home=home, yara_engine=eng)
        full = Matcher(r.to_bytes(), dict(r.meta), 60)
        now = Matcher(
            r.to_bytes(), dict(r.meta), 60, r.gate_bytes(), r.gate_prefixes, externals=r.externals
        )
        for label, matcher in (("every external, no gate", full), ("gate, externals read", now)):
            us = cpu(lambda mt=matcher: [mt.match(d, "a", "/a") for d in datas])
            print(f"| {eng}, {label} | {us} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
