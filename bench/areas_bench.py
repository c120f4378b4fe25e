"""What searching unallocated space, slack and big files' tails costs (issue 17), side by side.

Variants, each ``kiosk scan --workers 2 --dev --inventory`` of the same image with the bundled
packs (``rules/``), rotated in every round so a shared machine's load spreads over all of them:

  areas      this tree, default settings: unallocated space, slack, outside partitions, and the
             window-safe rules over the tail of every file over the 64 MiB cap
  no-areas   this tree with ``--no-unallocated`` (big files' tails are still windowed)
  base       another kiosk source tree (``--base DIR``, e.g. ``git archive main``), run with this
             venv: files only, files over the cap hashed only -- before/after in the same run

The image (built once, cached in ``--dir``): ext4 of 512 MiB from ``mke2fs -d``: 300 files of
random bytes (4 KiB-512 KiB), ``big.bin`` (160 MiB of random bytes, over the cap) and
``deleted.bin`` (96 MiB of random bytes, removed with ``debugfs rm``: its blocks are unallocated
and hold data, as a used disk's do). The table gives median wall time (min-max), the area bytes
scanned from the report, and the extra time per area byte against ``no-areas``.

Usage: ``.venv/bin/python bench/areas_bench.py [--rounds 3] [--base DIR] [--dir DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
MiB = 1 << 20


def build(d: Path) -> Path:
    img = d / "areas.img"
    if img.exists():
        return img
    src = d / "src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    rng = random.Random(20261206)
    for i in range(300):
        (src / f"f{i:03}.bin").write_bytes(rng.randbytes(rng.randrange(4096, 512 * 1024)))
    (src / "big.bin").write_bytes(rng.randbytes(160 * MiB))
    (src / "deleted.bin").write_bytes(rng.randbytes(96 * MiB))
    subprocess.run(
        ["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(src), str(img), "512M"], check=True
    )
    subprocess.run(["debugfs", "-w", "-R", "rm /deleted.bin", str(img)], check=True)
    shutil.rmtree(src)
    return img


def scan(img: Path, work: Path, variant: str, base: Path | None) -> tuple[float, dict[str, Any]]:
    out = work / f"out-{variant}"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "KIOSK_HOME": str(work / "home")}
    if variant == "base" and base is not None:
        env["PYTHONPATH"] = str(base)
    cmd = [PY, "-m", "kiosk", "scan", str(img), "--case", "B-1", "--exhibit", "E-1"]
    cmd += ["--officer", "PC-1", "--authorised-by", "DS-2", "--legal-basis", "consent"]
    cmd += ["--legal-ref", "bench", "--rules", str(REPO / "rules"), "--out", str(out)]
    cmd += ["--workers", "2", "--dev", "--inventory"]
    if variant == "no-areas":
        cmd.append("--no-unallocated")
    t0 = time.monotonic()
    cwd = base if variant == "base" and base is not None else REPO
    subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=cwd)
    wall = time.monotonic() - t0
    (report,) = out.glob("*/report.json")
    data: dict[str, Any] = json.loads(report.read_text())
    inv = [json.loads(line) for line in (report.parent / "files.jsonl").read_text().splitlines()]
    data["_big"] = next(f for f in inv if f["path"] == "/big.bin")
    return wall, data


def micro(rounds: int) -> None:
    """In-process throughput, steadier than whole runs on a shared machine: the window-safe
    rules over random bytes and over zeros, and every rule over random bytes (the head)."""
    from kiosk.engine.windows import Hits, WindowMatcher
    from kiosk.packs.load import Matcher, compile_packs

    rules = compile_packs(REPO / "rules", dev=True, use_cache=False)
    assert rules.window is not None
    w = rules.window
    wm = WindowMatcher(w.engine.name, w.to_bytes(), dict(rules.meta), w.max_match, 60)
    full = Matcher(rules.to_bytes(), dict(rules.meta), 60)
    data = random.Random(7).randbytes(64 * MiB)
    zeros = bytes(64 * MiB)
    chunks = [data[i : i + MiB] for i in range(0, len(data), MiB)]
    zchunks = [zeros[i : i + MiB] for i in range(0, len(zeros), MiB)]
    runs: dict[str, list[float]] = {"window rules, random": [], "window rules, zeros": []}
    runs["every rule, random (head)"] = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        wm.scan(0, chunks, None, Hits())
        runs["window rules, random"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        wm.scan(0, zchunks, None, Hits())
        runs["window rules, zeros"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        full.match(data, "x.bin", "/x.bin")
        runs["every rule, random (head)"].append(time.perf_counter() - t0)
    print(f"{wm.rule_count} window-safe rules of {rules.rule_count}; overlap {wm.overlap}")
    print(f"| what | MB/s (median of {rounds}) |")
    print("|---|---|")
    for k, t in runs.items():
        print(f"| {k} | {64 * MiB / statistics.median(t) / 1e6:.0f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "kiosk-bench-areas")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--base", type=Path, help="another kiosk source tree (git archive of main)")
    ap.add_argument("--micro", action="store_true", help="in-process throughput only")
    a = ap.parse_args()
    if a.micro:
        micro(a.rounds)
        return 0
    a.dir.mkdir(parents=True, exist_ok=True)
    img = build(a.dir)
    work = a.dir / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    env = {**os.environ, "KIOSK_HOME": str(work / "home")}
    subprocess.run([PY, "-m", "kiosk", "keys", "init"], env=env, check=True, capture_output=True)
    variants = ["areas", "no-areas"] + (["base"] if a.base else [])
    times: dict[str, list[float]] = {v: [] for v in variants}
    last: dict[str, dict[str, Any]] = {}
    for r in range(a.rounds):
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        for v in order:
            wall, data = scan(img, work, v, a.base)
            times[v].append(wall)
            last[v] = data
    size = img.stat().st_size // MiB
    print(f"image {size} MiB; {a.rounds} round(s); wall seconds, median (min-max)")
    print("| variant | wall s | area bytes scanned | big.bin reach | findings |")
    print("|---|---|---|---|---|")
    for v in variants:
        d = last[v]
        area = sum(c["scanned"] for c in d.get("areas", {}).get("coverage", []))
        reach = d["_big"].get("yara_reach")
        t = times[v]
        print(
            f"| {v} | {statistics.median(t):.2f} ({min(t):.2f}-{max(t):.2f}) | {area:,} | "
            f"{reach or 'hashed only'} | {len(d['findings'])} |"
        )
    extra = statistics.median(times["areas"]) - statistics.median(times["no-areas"])
    area = sum(c["scanned"] for c in last["areas"]["areas"]["coverage"])
    if extra > 0 and area:
        print(f"areas cost {extra:.2f} s for {area / MiB:.0f} MiB: {area / MiB / extra:.0f} MiB/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
