"""Hash-set store benchmark: import rate, lookup rate and scanner memory for a generated set.

    .venv/bin/python bench/hashset_bench.py [--count 50000000] [--small 1000000] [--workdir DIR]

Generates ``--count`` random SHA-256 digests as a plain one-a-line list (the shape of a large
known-good list), imports it with ``kiosk.hashsets.store.import_set``, signs it, loads it as the
scanner does (full verification in the parent, ``verified=`` in workers), and prints:

- import: wall and CPU time, digests/s, source MB/s, peak RSS of the importing process;
- load: time to verify the signature and hash every file (done by the parent once per scan);
- lookups: warm ``pack.contains`` (one digest) and ``HashIndex.lookup`` (a file's MD5, SHA-1
  and SHA-256), half of them hits, as wall-clock and as CPU-time rates — the CPU-time rate is
  what one process gets when the machine is not shared;
- memory: RssAnon/RssFile of a fresh worker-like process after 200 k lookups, for a small set
  and for the big one: anonymous memory must not grow with the set, only the page cache does.

Needs about 5 GB of scratch space for 50 M. Not run in CI; figures go to bench/hashsets.md.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kiosk.hashsets.build import ImportRequest
from kiosk.hashsets.index import HashIndex, HashSet
from kiosk.hashsets.store import import_set, sign_set
from kiosk.trust.signing import Signer, init_key

HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)

WORKER = r"""
import json, pickle, sys, time
from pathlib import Path
from kiosk.hashsets.index import HashIndex, HashSet
sets, qfile = pickle.loads(Path(sys.argv[1]).read_bytes()), sys.argv[2]
q = Path(qfile).read_bytes()
queries = [q[i:i+32] for i in range(0, len(q), 32)]
def status():
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "RssAnon", "RssFile"):
            out[k] = int(v.split()[0])
    return out
before = status()
t = time.perf_counter()
idx = HashIndex.load(None, verified=sets)
load_s = time.perf_counter() - t
t = time.perf_counter()
hits = sum(1 for d in queries if idx.lookup({"sha256": d}))
rate = len(queries) / (time.perf_counter() - t)
print(json.dumps({"before": before, "after": status(), "rate": rate, "hits": hits,
                  "load_s": load_s}))
"""


def generate(path: Path, count: int, seed: int = 1) -> None:
    """``count`` random SHA-256 digests, one lower-case hex line each (numpy, in blocks)."""
    rng = np.random.default_rng(seed)
    with path.open("wb") as f:
        for start in range(0, count, 1_000_000):
            n = min(1_000_000, count - start)
            raw = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
            lines = np.empty((n, 65), dtype=np.uint8)
            lines[:, 0:64:2] = HEX[raw >> 4]
            lines[:, 1:64:2] = HEX[raw & 15]
            lines[:, 64] = ord("\n")
            f.write(lines.tobytes())


def sample_lines(path: Path, k: int, count: int) -> list[bytes]:
    """``k`` digests that are in the list, read at random line offsets."""
    rnd = random.Random(7)
    out = []
    with path.open("rb") as f:
        for i in rnd.sample(range(count), k):
            f.seek(i * 65)
            out.append(bytes.fromhex(f.read(64).decode()))
    return out


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def worker_memory(sets: tuple[HashSet, ...], queries: list[bytes], tmp: Path) -> dict[str, object]:
    """A worker's load (the parent's records, checked by file identity) and lookups."""
    qfile = tmp / "queries.bin"
    qfile.write_bytes(b"".join(queries))
    sfile = tmp / "sets.pickle"
    sfile.write_bytes(pickle.dumps(sets))
    run = subprocess.run(
        [sys.executable, "-c", WORKER, str(sfile), str(qfile)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(run.stdout))


def build(tmp: Path, name: str, count: int, signer: Signer) -> tuple[Path, float, float, float]:
    """(source, generate s, import wall s, import CPU s); the set is imported and signed."""
    src = tmp / f"{name}.txt"
    gen_s, _ = timed(lambda: generate(src, count))
    store = tmp / "store"
    req = ImportRequest(name, (src,), "known_good", format="plain", version="1")
    wall, cpu = timed(lambda: import_set(store, req))
    sign_set(store, name, signer)
    return src, gen_s, wall, cpu


def load_avg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=50_000_000)
    ap.add_argument("--small", type=int, default=1_000_000, help="the set RSS is compared with")
    ap.add_argument("--workdir", type=Path, help="scratch space (default: a temp dir)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kiosk-hsbench-", dir=args.workdir))
    os.environ["KIOSK_HOME"] = str(tmp / "home")
    try:
        signer = init_key(tmp / "home")
        print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, numpy {np.__version__}")
        print(f"load average at start: {load_avg()}")
        n = args.count
        src, gen_s, wall, cpu = build(tmp, "big", n, signer)
        size = src.stat().st_size
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"generated {n:,} SHA-256 lines ({size / 1e9:.2f} GB) in {gen_s:.1f} s")
        print(
            f"import: {wall:.1f} s wall ({cpu:.1f} s CPU) = {n / wall / 1e3:,.0f} k digests/s, "
            f"{size / wall / 1e6:.0f} MB/s of source; peak RSS so far {peak:,.0f} MiB"
        )
        store = tmp / "store"
        hpk = store / "big" / "1" / "sha256.hpk"
        hpk_size = hpk.stat().st_size
        print(f"pack: {hpk_size / 2**20:,.0f} MiB = {hpk_size / n:.2f} B/digest")
        holder: list[HashIndex] = []
        wall, _ = timed(lambda: holder.append(HashIndex.load(store)))
        index = holder[0]
        print(f"load with full verification (parent, once per scan): {wall:.1f} s")

        hits = sample_lines(src, 500_000, n)
        queries = hits + [os.urandom(32) for _ in range(500_000)]
        random.Random(3).shuffle(queries)
        contains = index._loaded[0].packs[0][1].contains
        for d in queries[:200_000]:  # warm: pages touched once
            contains(d)
        wall, cpu = timed(lambda: [contains(d) for d in queries])
        print(
            f"warm pack.contains, 50 % hits: {len(queries) / wall:,.0f}/s wall, "
            f"{len(queries) / cpu:,.0f}/s CPU"
        )
        found: list[int] = []

        def per_file() -> None:
            for d in queries:
                found.append(bool(index.lookup({"md5": d[:16], "sha1": d[:20], "sha256": d})))

        wall, cpu = timed(per_file)
        print(
            f"warm HashIndex.lookup of a file's md5+sha1+sha256: {len(queries) / wall:,.0f}/s "
            f"wall, {len(queries) / cpu:,.0f}/s CPU"
        )
        assert sum(found) == len(hits)
        sets = index.sets
        index.close()
        big = worker_memory(sets, queries[:200_000], tmp)
        print(f"worker load of the verified set (file identity, no re-hash): {big['load_s']:.4f} s")
        shutil.rmtree(store)
        src.unlink()
        build(tmp, "small", args.small, signer)
        with HashIndex.load(store) as small_index:
            small_sets = small_index.sets
        small = worker_memory(small_sets, queries[:200_000], tmp)
        for label, mem in ((f"{args.small:,}", small), (f"{n:,}", big)):
            after = mem["after"]
            assert isinstance(after, dict)
            print(
                f"worker, {label} set, after 200 k lookups: "
                f"RssAnon {after['RssAnon'] / 1024:.1f} MiB, RssFile {after['RssFile'] / 1024:.1f}"
                f" MiB ({mem['rate']:,.0f} lookups/s, pages touched for the first time)"
            )
        print(f"load average at end: {load_avg()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
