"""NSRL-scale hash sets: RDSv3 import, set size per million rows, load and one cold lookup.

    .venv/bin/python bench/hashset_rds_bench.py [--rows 2000000] [--workdir DIR] [--keep]

Generates an RDSv3-shaped SQLite database of ``--rows`` rows (the FILE view over METADATA and
PACKAGE_OBJECT, as NIST publishes it: MD5, SHA-1, SHA-256, file name, size and package per row;
random digests, names of 8 to 40 characters), then, for a known-good set:

- imports it (digests only, the default for known-good) and, with ``--keep``, again keeping the
  per-hash properties (what every import did before): wall and CPU time, rows/s, bytes on disk
  per million rows, peak RSS;
- signs it;
- loads it as a scan's parent does (signature, manifest, page lists) — the scan's start-up cost;
- runs ``kiosk hashsets lookup HASH`` once in a fresh process, as forensic staff would (wall
  time, Python start-up included), and the same lookup in-process right after a load.

Not run in CI; figures go to bench/hashsets.md.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kiosk.hashsets.build import ImportRequest
from kiosk.hashsets.index import HashIndex
from kiosk.hashsets.store import import_set, sign_set
from kiosk.trust.signing import PUBLISHING, REPORT_SIGNING, init_key

ROOT = Path(__file__).resolve().parent.parent
BATCH = 100_000


def make_rds3(path: Path, rows: int, seed: int = 3) -> bytes:
    """The database; returns one SHA-256 in it (for the lookup)."""
    rng = random.Random(seed)
    db = sqlite3.connect(path)
    db.executescript(
        """
        PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;
        CREATE TABLE METADATA(metadata_id INTEGER PRIMARY KEY, object_id INTEGER,
            file_name TEXT, extension TEXT, bytes INTEGER, md5 TEXT, sha1 TEXT, sha256 TEXT);
        CREATE TABLE PACKAGE_OBJECT(package_object_id INTEGER PRIMARY KEY, package_id INTEGER,
            object_id INTEGER);
        CREATE TABLE APPLICATION(application_id INTEGER PRIMARY KEY, package_id INTEGER,
            name TEXT, version TEXT);
        CREATE TABLE VERSION(version TEXT, build_set TEXT, build_date TEXT, release_date TEXT,
            description TEXT);
        CREATE VIEW FILE AS SELECT UPPER(m.sha256) AS sha256, UPPER(m.sha1) AS sha1,
            UPPER(m.md5) AS md5, m.file_name || '.' || m.extension AS file_name,
            m.bytes AS file_size, po.package_id AS package_id
            FROM METADATA m JOIN PACKAGE_OBJECT po ON m.object_id = po.object_id;
        CREATE VIEW PKG AS SELECT package_id, name, version FROM APPLICATION;
        INSERT INTO VERSION VALUES ('2026.09.1', 'modern', '2026-09-01', '2026-09-15', 'bench');
        """
    )
    db.executemany(
        "INSERT INTO APPLICATION VALUES (?, ?, ?, ?)",
        [(i, i, f"Product {i}", "1.0") for i in range(1, 1001)],
    )
    letters = "abcdefghijklmnopqrstuvwxyz_0123456789"
    probe = b""
    for start in range(0, rows, BATCH):
        meta, objects = [], []
        for i in range(start, min(rows, start + BATCH)):
            sha256 = rng.randbytes(32)
            probe = probe or sha256
            name = "".join(rng.choices(letters, k=rng.randint(8, 40)))
            meta.append(
                (
                    i,
                    i,
                    name,
                    rng.choice(("dll", "exe", "sys", "txt", "png")),
                    rng.randint(0, 1 << 24),
                    rng.randbytes(16).hex(),
                    rng.randbytes(20).hex(),
                    sha256.hex(),
                )
            )
            objects.append((i, rng.randint(1, 1000), i))
        db.executemany("INSERT INTO METADATA VALUES (?, ?, ?, ?, ?, ?, ?, ?)", meta)
        db.executemany("INSERT INTO PACKAGE_OBJECT VALUES (?, ?, ?)", objects)
    db.commit()
    db.close()
    return probe


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _import(store: Path, src: Path, name: str, keep: bool) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    result = import_set(
        store, ImportRequest(name, (src,), "known_good", version="1", keep_properties=keep)
    )
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"wall": wall, "cpu": cpu, "bytes": _size(result.version_dir)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true", help="also import keeping properties")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rds-bench-", dir=args.workdir))
    try:
        home = work / "home"
        signer = init_key(home, purposes=(REPORT_SIGNING, PUBLISHING))
        os.environ["KIOSK_HOME"] = str(home)
        src = work / "rds.db"
        t = time.perf_counter()
        probe = make_rds3(src, args.rows)
        print(
            f"generated {args.rows:,} rows in {time.perf_counter() - t:.1f} s "
            f"({src.stat().st_size / 1e6:,.0f} MB)"
        )
        per_m = 1e6 / args.rows
        runs = [("digests only", "nsrl", False)] + (
            [("properties kept", "named", True)] if args.keep else []
        )
        store = work / "store"
        for what, name, keep in runs:
            r = _import(store, src, name, keep)
            print(
                f"import ({what}): {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU, "
                f"{args.rows / r['wall']:,.0f} rows/s; {r['bytes'] / 1e6:,.0f} MB on disk = "
                f"{r['bytes'] * per_m / 1e6:,.1f} MB per million rows"
            )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of the importing process: {peak:,.0f} MiB")
        t = time.perf_counter()
        sign_set(store, "nsrl", signer)
        print(f"sign (reads every file whole): {time.perf_counter() - t:.2f} s")
        if args.keep:
            sign_set(store, "named", signer)
        for name in ["nsrl", *(["named"] if args.keep else [])]:
            sub = work / f"only-{name}"
            sub.mkdir()
            (sub / name).symlink_to(store / name)
            t = time.perf_counter()
            with HashIndex.load(sub) as index:
                loaded = time.perf_counter() - t
                t = time.perf_counter()
                hits = index.lookup({"sha256": probe})
                first = time.perf_counter() - t
            assert hits, "the probe digest must be found"
            print(
                f"load {name} (a scan's start-up for this set): {loaded * 1000:.1f} ms; "
                f"first lookup {first * 1000:.2f} ms"
            )
            t = time.perf_counter()
            c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "kiosk",
                    "hashsets",
                    "lookup",
                    probe.hex(),
                    "--hashsets",
                    str(sub),
                ],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            wall = time.perf_counter() - t
            c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime
            assert probe.hex() in run.stdout
            print(
                f"kiosk hashsets lookup (new process, {name}): {wall * 1000:.0f} ms wall, "
                f"{cpu * 1000:.0f} ms CPU"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
