"""The cost of expanding archives: the same files scanned loose and inside archives, same run.

Why: an archive found in the evidence is scanned as a file, then read again and each member
streamed out of it through the same pipeline (``kiosk.engine.archives``). What that costs is a
ratio to the same content scanned as loose files, measured side by side on a shared machine:
every variant runs in every round, in rotating order, and the table gives medians (min-max).

Images (ext4 by ``mke2fs -d``, built once into ``DIR``): ``N`` files of 1-64 KiB (log-uniform;
text, random bytes and zeros, ``random.Random(20261206)``):
  loose     the files as they are
  zip       the files in 8 zips (deflate)
  targz     the files in 8 tar.gz
  7z        the files in 8 7-Zip archives (libarchive's writer)
  nested    the 8 zips inside one zip (two layers)

Variants: ``kiosk scan --workers 2 --dev`` with the bundled packs of each image, and the zip
image again with ``--archive-depth 0`` (archives scanned as files only). Checks: every variant
reports the same SHA-256 set for the files' content (loose paths, or members).

Usage: ``.venv/bin/python bench/archive_bench.py [--dir DIR] [--files 4000] [--rounds 3]
[--json out.json]``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import libarchive

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
IMAGES = ("loose", "zip", "targz", "7z", "nested")
VARIANTS = (*IMAGES, "zip-depth0")
GROUPS = 8


def _content(n: int) -> dict[str, bytes]:
    rng = random.Random(20261206)
    words = b"login session user token error warning ok fail connect ".split()
    out = {}
    for i in range(n):
        size = int(2 ** rng.uniform(10, 16))
        kind = rng.random()
        if kind < 0.5:
            data = b" ".join(rng.choice(words) for _ in range(size // 6 + 1))[:size]
        elif kind < 0.85:
            data = rng.randbytes(size)
        else:
            data = bytes(size)
        out[f"d{i % 40:02d}/f{i:05d}.bin"] = data
    return out


def _groups(files: dict[str, bytes]) -> list[dict[str, bytes]]:
    names = sorted(files)
    return [{n: files[n] for n in names[g::GROUPS]} for g in range(GROUPS)]


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in files.items():
            z.writestr(n, d)
    return out.getvalue()


def _targz(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as t:
        for n, d in files.items():
            info = tarfile.TarInfo(n)
            info.size = len(d)
            t.addfile(info, io.BytesIO(d))
    return out.getvalue()


def _7z(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with libarchive.custom_writer(out.write, "7zip") as w:
        for n, d in files.items():
            w.add_file_from_memory(n, len(d), d)
    return out.getvalue()


def build(dir_: Path, n: int) -> dict[str, Path]:
    files = _content(n)
    images = {}
    for kind in IMAGES:
        img = dir_ / f"{kind}-{n}.dd"
        images[kind] = img
        if img.exists():
            continue
        src = dir_ / f"src-{kind}"
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        if kind == "loose":
            for name, data in files.items():
                (src / name).parent.mkdir(parents=True, exist_ok=True)
                (src / name).write_bytes(data)
        elif kind == "nested":
            inner = {f"part{g}.zip": _zip(grp) for g, grp in enumerate(_groups(files))}
            (src / "all.zip").write_bytes(_zip(inner))
        else:
            make = {"zip": _zip, "targz": _targz, "7z": _7z}[kind]
            ext = {"zip": "zip", "targz": "tar.gz", "7z": "7z"}[kind]
            for g, grp in enumerate(_groups(files)):
                (src / f"part{g}.{ext}").write_bytes(make(grp))
        size = f"{sum(len(d) for d in files.values()) * 3 // 2 // (1 << 20) + 16}M"
        subprocess.run(
            ["mke2fs", "-q", "-t", "ext4", "-d", str(src), "-F", str(img), size],
            check=True,
            capture_output=True,
        )
        shutil.rmtree(src)
    return images


def run(img: Path, work: Path, env: dict[str, str], extra: list[str]) -> dict[str, Any]:
    out = work / "reports"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [
        *(PY, "-m", "kiosk", "scan", str(img)),
        *("--case", "B", "--exhibit", "E", "--officer", "PC-1", "--authorised-by", "DS-2"),
        *("--legal-basis", "consent", "--legal-ref", "bench", "--rules", str(REPO / "rules")),
        *("--hashsets", str(work / "hashsets"), "--out", str(out), "--workers", "2", "--dev"),
        "--inventory",
        *extra,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=work)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    (report_dir,) = [p for p in out.iterdir() if not p.name.startswith(".")]
    lines = [json.loads(x) for x in (report_dir / "files.jsonl").read_text().splitlines()]
    return {"wall": wall, "cpu": cpu, "lines": lines}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "kiosk-arc-bench")
    p.add_argument("--files", type=int, default=4000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    a.dir.mkdir(parents=True, exist_ok=True)
    images = build(a.dir, a.files)
    work = a.dir / "work"
    shutil.rmtree(work, ignore_errors=True)
    (work / "hashsets").mkdir(parents=True)
    env = {**os.environ, "KIOSK_HOME": str(work / "home"), "PYTHONPATH": str(REPO)}
    subprocess.run([PY, "-m", "kiosk", "keys", "init"], env=env, check=True, capture_output=True)
    times: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    digests: dict[str, set[str]] = {}
    for r in range(a.rounds):
        order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
        for v in order:
            img = images["zip" if v == "zip-depth0" else v]
            extra = ["--archive-depth", "0"] if v == "zip-depth0" else []
            res = run(img, work, env, extra)
            times[v].append((res["wall"], res["cpu"]))
            loose = {x["sha256"] for x in res["lines"] if x["path"].endswith(".bin")}
            digests.setdefault(v, loose)
    expected = digests["loose"]
    for v in IMAGES:
        assert digests[v] == expected, f"{v}: members differ from the loose files"
    assert not digests["zip-depth0"], "depth 0 expanded something"
    base = statistics.median(w for w, _ in times["loose"])
    base_cpu = statistics.median(c for _, c in times["loose"])
    rows = []
    print(f"{a.files} files, {a.rounds} rounds, medians (min-max); ratio to loose")
    print(f"{'variant':12} {'wall s':>18} {'cpu s':>8} {'wall x':>7} {'cpu x':>7}")
    for v in VARIANTS:
        ws, cs = [w for w, _ in times[v]], [c for _, c in times[v]]
        w, c = statistics.median(ws), statistics.median(cs)
        rows.append({"variant": v, "wall": w, "cpu": c, "wall_x": w / base, "cpu_x": c / base_cpu})
        print(
            f"{v:12} {w:7.2f} ({min(ws):.2f}-{max(ws):.2f}) {c:8.2f} {w / base:7.2f} "
            f"{c / base_cpu:7.2f}"
        )
    if a.json:
        a.json.write_text(json.dumps({"files": a.files, "rounds": a.rounds, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
