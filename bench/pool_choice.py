"""Worker processes or worker threads for kiosk's scan engine: what each costs in speed and memory.

Why this exists
---------------
``kiosk/scan.py`` scans in a pool of worker *processes* (spawn context). Each worker opens the
evidence itself, gets the compiled YARA rules as bytes, and hashes, types and YARA-scans one file
at a time. We chose processes for crash isolation: a native crash in the Sleuth Kit then costs one
file, not the run. hashlib, yara-python and libmagic (through ctypes) all release the GIL, so a
pool of *threads* in one process could do the same work too. This script measures what the
isolation costs or gains in speed and memory on one fixed image. ``bench/README.md`` records the
numbers and the decision.

What it measures
----------------
Each run scans a generated 512 MiB ext4 image (5,000 files, 422 MB of content) with a generated
pack of 150 YARA rules:

  procs-2    ``kiosk.engine.scan.scan_tasks`` with ``workers=2`` (kiosk's default)
  procs-1    ``kiosk.engine.scan.scan_tasks`` with ``workers=1``
  inline     ``kiosk.engine.scan.scan_tasks`` with ``workers=0`` (no pool: the main thread scans)
  threads-2  a thread pool written here, not in kiosk: 2 threads, each with its own
             ``kiosk.engine.scan.Scanner``, take FileTasks from a queue; results are put
             back in walk order. The per-file work is the same and nothing in ``kiosk/`` changes.
  threads-1  the same with 1 thread. It separates "scanning off the main thread" from "two
             cores".

Every run times the whole scan: open the image, walk it, start the pool, scan every file, stop
the pool. It runs in a fresh Python process (``--one``), so ``ru_maxrss`` of that process and of
its reaped children belongs to that run alone. A sampler thread also adds up the PSS of the
process and its live children every 0.05 s, because ``ru_maxrss`` gives the largest single
process, not the sum. The variants alternate within each round, and the order rotates from one
round to the next. Before each run the script waits (up to 45 s) until the machine is idle. It
records the CPU time that other processes used during the run ("foreign load", as a share of
all CPUs), and the part of it that competed with the run: what falls beyond the CPUs the
variant leaves idle, as a share of the CPUs it needs (one per worker, one inline). A run is
clean when that competing load stayed at or below 15 %. The rounds go on until every variant has 3
clean runs or the time budget (8 min) is spent. Then the least noisy runs fill the gaps, and the
table says how many runs were clean. On a shared machine whose other sessions never go idle,
``--nice -15`` (root) starts each run in its own session and raises that session's scheduler
weight, so that the others get little CPU while it runs (their share is still measured and
shown). The image is read once beforehand, so every run works from a warm page cache (the
workload is CPU-bound).
Every run's (path, SHA-256, rule matches) set must be the same, and SHA-256s and planted markers
are checked against the generator's manifest.

Run it with the repository's venv: ``.venv/bin/python bench/pool_choice.py`` (``--help``). The
image, its manifest and the rule pack are cached under ``${TMPDIR:-/tmp}/kiosk-bench/``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import queue
import random
import re
import resource
import shutil
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SEED = 20261127
BUILD_VERSION = "1"  # bump when the image or rule generator changes: invalidates the cache
MARKER = b"KIOSK-DEMO-MARKER-3f9c1b7e"
KIB, MIB = 1 << 10, 1 << 20
N_SMALL, N_MEDIUM = 4958, 40  # + 2 large = 5,000 files
VARIANTS = ("procs-2", "procs-1", "inline", "threads-2", "threads-1")
PACK = "benchsynth"


def cache_dir() -> Path:
    return Path(os.environ.get("TMPDIR") or tempfile.gettempdir()) / "kiosk-bench"


# --------------------------------------------------------------------------- the image


@dataclass(frozen=True, slots=True)
class Planned:
    path: str  # relative to the filesystem root, "/"-joined
    size: int
    kind: str  # text | binary | mixed | zeros | pe
    marker: str  # "" | "ascii" | "wide"
    bait: int  # index into BAITS, or -1


# Strings planted in some files, each matched by one rule of the pack (bench_bait_N).
BAITS = tuple(
    f"KBENCH-BAIT-{i:02d}-{w}"
    for i, w in enumerate(
        ["lantern", "orchid", "pylon", "quartz", "saffron", "tundra", "velvet", "zephyr"]
    )
)
PE_BAIT_TIMESTAMP = 0x5F5E0FF  # PE files with this timestamp match bench_pe_bait

# fmt: off
_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "den", "bar", "qui", "pex", "ol",
              "an", "tre", "mu", "sal", "ior", "fen", "gra", "hu", "ly", "zo", "ce")
# fmt: on
_DIR_ROOTS = (
    "Users/alice/Documents",
    "Users/alice/AppData/Local/Temp",
    "Users/alice/Downloads",
    "Users/bob/Desktop",
    "Users/bob/AppData/Roaming",
    "Windows/System32",
    "Windows/Temp",
    "Program Files/Common",
    "ProgramData/cache",
    "var/log",
    "home/carol/projects",
    "srv/share",
)
_EXT = {
    "text": ("txt", "log", "csv", "json", "xml", "html", "ps1", "py"),
    "binary": ("bin", "dat", "jpg", "zip", "png", "gz"),
    "mixed": ("db", "doc", "pst", "sqlite"),
    "zeros": ("img", "vhd", "raw"),
    "pe": ("exe", "dll"),
}


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))


def plan_tree(rng: random.Random) -> list[Planned]:
    """The files of the image: paths, sizes, kinds and what is planted where."""
    dirs = list(_DIR_ROOTS)
    while len(dirs) < 160:
        parent = rng.choice(dirs)
        if parent.count("/") < 7:
            dirs.append(f"{parent}/{_word(rng)}")
    kinds = ("text", "binary", "mixed", "zeros", "pe")
    files: list[Planned] = []

    def add(size: int, kind: str, name: str | None = None) -> None:
        i = len(files)
        fname = name or f"{_word(rng)}_{i:05d}.{rng.choice(_EXT[kind])}"
        files.append(Planned(f"{rng.choice(dirs)}/{fname}", size, kind, "", -1))

    for _ in range(N_SMALL):  # 1-64 KiB, log-uniform
        add(round(2 ** rng.uniform(10, 16)), rng.choices(kinds, (40, 25, 20, 5, 10))[0])
    for _ in range(N_MEDIUM):  # 1-10 MiB
        add(rng.randint(1 * MIB, 10 * MIB), rng.choices(kinds, (15, 30, 35, 10, 10))[0])
    # two large ones: one under kiosk's 64 MiB YARA cap (scanned), one over (hashed only)
    add(rng.randint(50 * MIB, 62 * MIB), "mixed", "MEMORY.DMP")
    add(rng.randint(70 * MIB, 100 * MIB), "zeros", "pagefile.sys")
    # plant: 6 ASCII markers and 1 UTF-16LE marker in text files; baits in 2 % of text/pe files
    texts = [i for i, f in enumerate(files) if f.kind == "text" and f.size >= 4 * KIB]
    for n, i in enumerate(rng.sample(texts, 7)):
        f = files[i]
        files[i] = Planned(f.path, f.size, f.kind, "wide" if n == 6 else "ascii", -1)
    for i, f in enumerate(files):
        if f.kind in ("text", "pe") and not f.marker and f.size >= 4 * KIB and rng.random() < 0.02:
            files[i] = Planned(f.path, f.size, f.kind, "", rng.randrange(len(BAITS)))
    return files


class Pools:
    """Content pools: files are built from slices of them, so generation is fast."""

    def __init__(self, rng: random.Random) -> None:
        self.random = rng.randbytes(32 * MIB)
        lines: list[str] = []
        n = 0
        while n < 6 * MIB:
            line = (
                f"2026-11-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
                f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z host{rng.randint(1, 40)} "
                f"{_word(rng)}[{rng.randint(100, 99999)}]: "
                + " ".join(_word(rng) for _ in range(rng.randint(3, 14)))
                + "\n"
            )
            lines.append(line)
            n += len(line)
        self.text = "".join(lines).encode()
        self.zeros = bytes(4 * MIB)


_MIX = {  # kind -> weights of (random, text, zeros) segments
    "text": (0, 1, 0),
    "binary": (1, 0, 0),
    "mixed": (5, 3, 2),
    "zeros": (1, 0, 6),
    "pe": (5, 1, 3),
}


def _pe_header(rng: random.Random, timestamp: int) -> bytes:
    """A small, well-formed PE32 header (DOS stub, COFF, optional header, 4 sections)."""
    nsec = 4
    dos = bytearray(0x80)
    dos[0:2] = b"MZ"
    dos[0x3C:0x40] = struct.pack("<I", 0x80)
    coff = b"PE\0\0" + struct.pack("<HHIIIHH", 0x14C, nsec, timestamp, 0, 0, 0xE0, 0x0102)
    opt = bytearray(0xE0)
    struct.pack_into("<HBBIII", opt, 0, 0x10B, 14, 0, 0x1000, 0x1000, 0)
    struct.pack_into("<IIIII", opt, 16, 0x1000, 0x1000, 0x2000, 0x400000, 0x1000)
    struct.pack_into("<I", opt, 36, 0x200)  # FileAlignment
    struct.pack_into("<II", opt, 56, 0x6000, 0x400)  # SizeOfImage, SizeOfHeaders
    struct.pack_into("<H", opt, 68, rng.choice((2, 3)))  # Subsystem: GUI or CUI
    struct.pack_into("<I", opt, 92, 16)  # NumberOfRvaAndSizes
    secs = b""
    for k, name in enumerate((b".text", b".rdata", b".data", b".rsrc")):
        secs += struct.pack(
            "<8sIIIIIIHHI",
            name,
            0x1000,
            0x1000 * (k + 1),
            0x200,
            0x400 + 0x200 * k,
            0,
            0,
            0,
            0,
            0x60000020 if k == 0 else 0x40000040,
        )
    return bytes(dos) + coff + bytes(opt) + secs


def make_content(rng: random.Random, f: Planned, pools: Pools, index: int) -> bytes:
    out = bytearray()
    if f.kind == "pe":
        ts = PE_BAIT_TIMESTAMP if f.bait >= 0 else rng.randint(0x50000000, 0x68000000)
        out += _pe_header(rng, ts)
    elif f.kind in ("text", "mixed"):
        out += f"# kiosk-bench file {index}\n".encode()
    w = _MIX[f.kind]
    while len(out) < f.size:
        src = rng.choices((pools.random, pools.text, pools.zeros), w)[0]
        n = min(f.size - len(out), rng.randint(4 * KIB, 256 * KIB), len(src))
        off = rng.randrange(len(src) - n + 1)
        out += src[off : off + n]
    del out[f.size :]
    plant = b""
    if f.marker == "ascii":
        plant = b"\n" + MARKER + b"\n"
    elif f.marker == "wide":
        plant = MARKER.decode().encode("utf-16-le")
    elif f.bait >= 0:
        plant = b"\n" + BAITS[f.bait].encode() + b"\n"
    if plant:
        at = rng.randrange(len(out) // 2, len(out) - len(plant))
        out[at : at + len(plant)] = plant
    return bytes(out)


def build_image(cache: Path, rebuild: bool) -> tuple[Path, dict[str, Any]]:
    """The ext4 image (built once, without mounting: mke2fs -d) and its manifest."""
    img, man_path = cache / "ext4.img", cache / "manifest.json"
    if not rebuild and img.exists() and man_path.exists():
        manifest = json.loads(man_path.read_text(encoding="utf-8"))
        if manifest.get("version") == BUILD_VERSION and img.stat().st_size == manifest["image"]:
            return img, manifest
    mke2fs = shutil.which("mke2fs") or "/usr/sbin/mke2fs"
    t0 = time.monotonic()
    rng = random.Random(SEED)
    plan = plan_tree(rng)
    pools = Pools(rng)
    tree = cache / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    entries = []
    blocks = 0
    for i, f in enumerate(plan):
        data = make_content(rng, f, pools, i)
        p = tree / f.path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        blocks += -(-len(data) // 4096)
        entries.append(
            {
                "path": f.path,
                "size": len(data),
                "kind": f.kind,
                "marker": f.marker,
                "bait": BAITS[f.bait] if f.bait >= 0 else "",
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    size_mib = math.ceil((blocks * 4096 * 1.12 + 48 * MIB) / (16 * MIB)) * 16
    img.unlink(missing_ok=True)
    subprocess.run(
        [
            mke2fs,
            "-q",
            "-t",
            "ext4",
            "-L",
            "kbench",
            "-U",
            "5a1e0000-0000-4000-8000-000020261127",
            "-E",
            "root_owner=0:0",
            "-d",
            str(tree),
            "-F",
            str(img),
            f"{size_mib}M",
        ],
        check=True,
        env={**os.environ, "E2FSPROGS_FAKE_TIME": "1795000000"},
    )
    shutil.rmtree(tree)
    manifest = {
        "version": BUILD_VERSION,
        "seed": SEED,
        "image": img.stat().st_size,
        "files": len(entries),
        "bytes": sum(e["size"] for e in entries),
        "entries": entries,
    }
    man_path.write_text(json.dumps(manifest), encoding="utf-8")
    print(
        f"built {img} ({size_mib} MiB, {len(entries)} files, {manifest['bytes'] / 1e6:.1f} MB "
        f"of content) in {time.monotonic() - t0:.1f} s",
        file=sys.stderr,
    )
    return img, manifest


# --------------------------------------------------------------------------- the rule pack


def _meta(rng: random.Random, what: str) -> str:
    sev = rng.choice(("low", "medium", "high", "critical"))
    return (
        "    meta:\n"
        f'        category = "synthetic_{what}"\n'
        f'        severity = "{sev}"\n'
        f'        description = "synthetic {what} rule generated by bench/pool_choice.py"\n'
    )


def _token(rng: random.Random) -> str:
    return (
        _word(rng).capitalize()
        + rng.choice(("_", "-", ".", ""))
        + _word(rng)
        + str(rng.randint(10, 9999))
    )


def _hexbytes(rng: random.Random, n: int) -> str:
    return " ".join(f"{rng.randint(1, 254):02X}" for _ in range(n))


def generate_rules(rng: random.Random) -> str:
    """150 rules: 70 text, 40 hex, 20 regex (each with a literal atom), 10 pe, 8 bait, 2 marker."""
    out = ['import "pe"\n']

    def rule(name: str, what: str, strings: list[str], cond: str) -> None:
        body = "".join(f"        ${chr(97 + k)} = {s}\n" for k, s in enumerate(strings))
        out.append(
            f"rule {name}\n{{\n{_meta(rng, what)}"
            + (f"    strings:\n{body}" if strings else "")
            + f"    condition:\n        {cond}\n}}\n"
        )

    mods = ("ascii", "wide", "nocase", "ascii wide", "ascii wide nocase", "fullword")
    for i in range(70):
        ss = [f'"{_token(rng)}" {rng.choice(mods)}' for _ in range(rng.randint(2, 5))]
        rule(f"bench_text_{i:03d}", "text", ss, rng.choice(("any of them", "2 of them")))
    for i in range(40):
        ss = []
        for _ in range(rng.randint(1, 3)):
            mid = rng.choice(
                (
                    "?? ??",
                    "[2-6]",
                    f"( {_hexbytes(rng, 2)} | {_hexbytes(rng, 2)} )",
                    "?? [1-4] ??",
                )
            )
            ss.append(f"{{ {_hexbytes(rng, 4)} {mid} {_hexbytes(rng, rng.randint(2, 4))} }}")
        rule(f"bench_hex_{i:03d}", "hex", ss, "any of them")
    for i in range(20):
        lit = _word(rng) + _word(rng)
        rx = rng.choice(
            (
                rf"/{lit}[_\-][a-z0-9]{{3,12}}\.(exe|dll|ps1)/ nocase",
                rf"/https?:\/\/{lit}\.[a-z]{{2,6}}\/[a-z0-9]{{2,16}}/",
                rf"/{lit}=[A-Za-z0-9+\/]{{8,40}}/",
                rf"/HKLM\\\\Software\\\\{lit}\\\\[A-Za-z]{{3,20}}/ nocase",
            )
        )
        rule(f"bench_regex_{i:03d}", "regex", [rx], "any of them")
    for i in range(9):
        ts = rng.randrange(10**9)
        cond = rng.choice(
            (
                f"pe.is_pe and pe.number_of_sections > 6 and pe.timestamp == {ts}",
                f'pe.is_pe and pe.exports("{_token(rng)}")',
                f'pe.is_pe and pe.imports("{_word(rng)}.dll", "{_token(rng)}")',
                f'pe.is_pe and for any s in pe.sections : (s.name == ".{_word(rng)[:6]}")',
            )
        )
        rule(f"bench_pe_{i:03d}", "pe", [], cond)
    rule(
        "bench_pe_bait",
        "pe",
        [],
        f"pe.is_pe and pe.timestamp == {PE_BAIT_TIMESTAMP:#x} and pe.number_of_sections == 4",
    )
    for i, b in enumerate(BAITS):
        rule(f"bench_bait_{i:02d}", "bait", [f'"{b}"'], "any of them")
    # kiosk's demo marker rules (rules/demo), so the planted markers are findings
    rule("kiosk_demo_marker", "marker", [f'"{MARKER.decode()}"'], "$a")
    rule(
        "kiosk_demo_marker_utf16",
        "marker",
        [f'"{MARKER.decode()}" wide'],
        "$a and not uint16(0) == 0x5A4D",
    )
    return "\n".join(out)


def write_pack(cache: Path) -> Path:
    """The rule pack under ``cache/rules/benchsynth`` (regenerated: it is deterministic)."""
    import yara

    src = generate_rules(random.Random(f"{SEED}-rules"))
    yara.compile(source=src, externals={"filename": ""}, error_on_warning=True)  # no slow strings
    rules_dir = cache / "rules"
    pack = rules_dir / PACK
    pack.mkdir(parents=True, exist_ok=True)
    # pack.toml as kiosk's schema requires it (maintainer, externals, modules, categories)
    categories = sorted(set(re.findall(r'category = "([^"]+)"', src)))
    modules = sorted(set(re.findall(r'^import "([^"]+)"', src, re.MULTILINE)))
    (pack / "pack.toml").write_text(
        f'name = "{PACK}"\nversion = "{BUILD_VERSION}.0.0"\n'
        'description = "Synthetic rules for bench/pool_choice.py"\n'
        'maintainer = "kiosk bench"\nexternals = ["filename"]\n'
        f"modules = {json.dumps(modules)}\ncategories = {json.dumps(categories)}\n"
        '[meta_defaults]\nauthor = "bench/pool_choice.py"\ndate = "2026-11-27"\n',
        encoding="utf-8",
    )
    (pack / "synthetic.yar").write_text(src, encoding="utf-8")
    return rules_dir


# --------------------------------------------------------------------------- the thread pool


def scan_threads(tasks: Iterable[Any], cfg: Any, n: int) -> Iterator[Any]:
    """kiosk's per-file work in ``n`` threads of this process, results in walk order.

    Each thread builds its own ``kiosk.engine.scan.Scanner`` (its own evidence handle, YARA
    rules and libmagic handle) and takes FileTasks from a bounded queue that a feeder thread
    fills from the walk. No crash isolation and no per-file time limit: this is the alternative
    being measured.
    """
    from kiosk.engine.scan import Scanner

    inq: queue.Queue[Any] = queue.Queue(maxsize=256)
    outq: queue.Queue[Any] = queue.Queue()
    first_seq: list[int] = []
    stop = threading.Event()

    def worker() -> None:
        try:
            scanner = Scanner(cfg)
        except BaseException as e:
            outq.put(e)
            return
        try:
            while (t := inq.get()) is not None:
                outq.put(scanner.scan(t))
        finally:
            scanner.close()
            outq.put(None)

    def feeder() -> None:
        try:
            for t in tasks:
                if not first_seq:
                    first_seq.append(t.seq)
                while not stop.is_set():
                    try:
                        inq.put(t, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
        finally:
            for _ in range(n):
                inq.put(None)

    threads = [threading.Thread(target=worker, name=f"scan-{k}") for k in range(n)]
    threads.append(threading.Thread(target=feeder, name="walk"))
    for th in threads:
        th.start()
    held: dict[int, Any] = {}
    next_seq: int | None = None
    running = n
    try:
        while running:
            item = outq.get()
            if item is None:
                running -= 1
                continue
            if isinstance(item, BaseException):
                raise item
            held[item.task.seq] = item
            if next_seq is None:
                next_seq = first_seq[0]
            while next_seq in held:
                yield held.pop(next_seq)
                next_seq += 1
        for seq in sorted(held):
            yield held.pop(seq)
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                inq.get_nowait()
        for th in threads:
            th.join()


# --------------------------------------------------------------------------- one measured run


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(f) - f[3] - f[4], sum(f)


def _rusage_cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def _pss_kib(pid: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class PssSampler(threading.Thread):
    """Peak of (PSS of this process + PSS of its live children), sampled every 0.05 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="pss-sampler")
        self.peak_kib = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        me = str(os.getpid())
        while not self._stop_event.wait(0.05):
            kids: set[str] = set()
            for task in Path(f"/proc/{me}/task").iterdir():
                with contextlib.suppress(OSError):
                    kids.update((task / "children").read_text().split())
            total = _pss_kib(me) + sum(_pss_kib(k) for k in kids)
            self.peak_kib = max(self.peak_kib, total)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak_kib


def run_one(variant: str, image: Path, rules_dir: Path, results_out: Path) -> dict[str, Any]:
    """Scan the image once with one variant; returns the figures (in this fresh process)."""
    from kiosk.engine.scan import ScanConfig, scan_tasks
    from kiosk.evidence.image import Evidence
    from kiosk.evidence.resolve import resolve
    from kiosk.packs.load import compile_packs

    compiled = compile_packs(rules_dir, dev=True)  # unsigned bench pack; matching is the same
    kind, _, count = variant.partition("-")
    workers = int(count) if kind in ("procs", "threads") else 0
    ref = resolve([image])
    cfg = ScanConfig(
        evidence=ref,
        rules_blob=compiled.to_bytes(),
        rule_meta=dict(compiled.meta),
        hashsets=(),
        workers=workers if kind == "procs" else 0,
    )

    def scan(tasks: Iterable[Any]) -> Iterator[Any]:
        if kind == "threads":
            return scan_threads(tasks, cfg, workers)
        return scan_tasks(tasks, cfg)

    sampler = PssSampler()
    sampler.start()
    busy0, total0 = _cpu_jiffies()
    self0, kids0 = _rusage_cpu(resource.RUSAGE_SELF), _rusage_cpu(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    lines: list[str] = []
    statuses: Counter[str] = Counter()
    nbytes = 0
    with Evidence(ref) as ev:
        for r in scan(ev.walk(ev.volumes())):
            statuses[str(r.status)] += 1
            nbytes += r.bytes_read
            rules = ",".join(f"{m.pack}:{m.rule}" for m in r.rule_matches)
            lines.append(f"{r.task.path}\t{r.sha256}\t{rules}")
    wall = time.perf_counter() - t0
    cpu_self = _rusage_cpu(resource.RUSAGE_SELF) - self0
    cpu_kids = _rusage_cpu(resource.RUSAGE_CHILDREN) - kids0
    busy1, total1 = _cpu_jiffies()
    pss_peak = sampler.stop()
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # foreign load: the machine's busy CPU time during the run minus our own, per core
    ncpu = os.cpu_count() or 1
    machine_busy = (busy1 - busy0) / (total1 - total0) * ncpu * wall if total1 > total0 else 0.0
    foreign = max(0.0, machine_busy - cpu_self - cpu_kids) / (ncpu * wall)
    # competing load: the part of it that fell on the CPUs this variant needs (one per worker,
    # one inline), as a share of those CPUs; another session using the core an inline scan
    # leaves idle does not slow that scan down
    demand = min(ncpu, max(1, workers))
    competing = max(0.0, foreign * ncpu - (ncpu - demand)) / demand
    # fixed cost of starting and stopping the pool: scan nothing
    t1 = time.perf_counter()
    for _ in scan(iter(())):
        pass
    startup = time.perf_counter() - t1
    lines.sort()
    text = "\n".join(lines) + "\n"
    results_out.write_text(text, encoding="utf-8")
    return {
        "variant": variant,
        "files": len(lines),
        "bytes": nbytes,
        "wall": wall,
        "cpu_self": cpu_self,
        "cpu_children": cpu_kids,
        "maxrss_self_kib": rss_self,
        "maxrss_children_kib": rss_kids,
        "pss_peak_kib": pss_peak,
        "startup": startup,
        "foreign": foreign,
        "competing": competing,
        "statuses": dict(sorted(statuses.items())),
        "digest": hashlib.sha256(text.encode()).hexdigest(),
    }


# --------------------------------------------------------------------------- orchestration


def wait_idle(limit: float = 0.10, max_wait: float = 20.0) -> float:
    """Wait until the machine is below ``limit`` busy (share of all CPUs); returns the last load."""
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = _cpu_jiffies()
        time.sleep(0.5)
        b1, t1 = _cpu_jiffies()
        load = (b1 - b0) / max(1, t1 - t0)
        if load < limit or time.monotonic() > deadline:
            return load


def versions() -> dict[str, str]:
    import magic
    import pytsk3
    import yara

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mv = magic.version() if hasattr(magic, "version") else 0
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
        "yara-python": yara.__version__,
        "libyara": yara.YARA_VERSION,
        "pytsk3": f"{pytsk3.get_version()} (TSK {pytsk3.TSK_VERSION_STR})",
        "libmagic": f"{mv // 100}.{mv % 100:02d}" if mv else "unknown",
        "kernel": platform.release(),
    }


def _fmt_range(xs: list[float], fmt: str) -> str:
    med = statistics.median(xs)
    if len(xs) == 1:
        return format(med, fmt)
    return f"{format(med, fmt)} ({format(min(xs), fmt)}-{format(max(xs), fmt)})"


def table(runs: list[dict[str, Any]], variants: list[str]) -> str:
    head = (
        "| variant | wall s, median (min-max) | files/s | MB/s | CPU s user+sys | CPU/wall "
        "| peak RSS parent MiB | peak RSS per worker MiB | peak PSS total MiB | pool start+stop s "
        "| foreign load, median (max) | competing load, max | runs (clean) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    labels = {
        "procs-2": "**processes, workers=2** (kiosk)",
        "procs-1": "processes, workers=1",
        "inline": "inline, workers=0",
        "threads-2": "**threads, 2** (bench)",
        "threads-1": "threads, 1 (bench)",
    }
    for v in variants:
        rs = [r for r in runs if r["variant"] == v]
        if not rs:
            continue
        wall = [r["wall"] for r in rs]
        cpu = [r["cpu_self"] + r["cpu_children"] for r in rs]
        fps = [r["files"] / r["wall"] for r in rs]
        mbs = [r["bytes"] / 1e6 / r["wall"] for r in rs]
        ratio = [c / w for c, w in zip(cpu, wall, strict=True)]
        rss_p = [r["maxrss_self_kib"] / 1024 for r in rs]
        rss_c = [r["maxrss_children_kib"] / 1024 for r in rs]
        pss = [r["pss_peak_kib"] / 1024 for r in rs]
        start = [r["startup"] for r in rs]
        foreign = [100 * r["foreign"] for r in rs]
        worker_rss = f"{statistics.median(rss_c):.0f}" if v.startswith("procs") else "-"
        rows.append(
            f"| {labels.get(v, v)} | {_fmt_range(wall, '.2f')} | {_fmt_range(fps, ',.0f')} "
            f"| {_fmt_range(mbs, '.1f')} | {_fmt_range(cpu, '.2f')} "
            f"| {statistics.median(ratio):.2f} | {statistics.median(rss_p):.0f} | {worker_rss} "
            f"| {statistics.median(pss):.0f} | {_fmt_range(start, '.2f')} "
            f"| {statistics.median(foreign):.0f} % ({max(foreign):.0f} %) "
            f"| {max(100 * r['competing'] for r in rs):.0f} % "
            f"| {len(rs)} ({sum(1 for r in rs if r['clean'])}) |"
        )
    return head + "\n".join(rows) + "\n"


def check(runs: list[dict[str, Any]], manifest: dict[str, Any], cache: Path) -> list[str]:
    """Do all runs agree, and do they agree with the manifest? Returns report lines."""
    notes = []
    digests = {r["digest"] for r in runs}
    by_variant = {r["variant"]: r["digest"] for r in runs}
    if len(digests) == 1:
        notes.append(
            f"All {len(runs)} runs agree: the same (path, SHA-256, rule matches) set "
            f"(digest {next(iter(digests))[:16]}…)."
        )
    else:
        notes.append(
            "**Runs DISAGREE**: " + ", ".join(f"{v}={d[:12]}" for v, d in by_variant.items())
        )
    want = {"/" + e["path"]: e for e in manifest["entries"]}
    got = {}
    for line in (cache / f"results-{runs[0]['variant']}.tsv").read_text().splitlines():
        path, sha, rules = line.split("\t")
        got[path] = (sha, rules)
    sha_ok = sum(1 for p, e in want.items() if got.get(p, ("", ""))[0] == e["sha256"])
    marker_ok = sum(
        1
        for p, e in want.items()
        if e["marker"]
        and ("kiosk_demo_marker" if e["marker"] == "ascii" else "kiosk_demo_marker_utf16")
        in got.get(p, ("", ""))[1]
    )
    bait_ok = sum(
        1 for p, e in want.items() if e["bait"] and "bench_bait" in got.get(p, ("", ""))[1]
    )
    n_marker = sum(1 for e in want.values() if e["marker"])
    n_bait = sum(1 for e in want.values() if e["bait"])
    matched = sum(1 for s, rules in got.values() if rules)
    notes.append(
        f"Against the manifest: {sha_ok}/{len(want)} SHA-256 match, {len(got)} files reported; "
        f"markers found {marker_ok}/{n_marker}, baits found {bait_ok}/{n_bait}; "
        f"{matched} files with rule matches; statuses {runs[0]['statuses']}."
    )
    return notes


def ratios(med: dict[str, float]) -> list[str]:
    """The comparisons the README quotes, from median wall times."""
    pairs = (
        ("procs-1", "procs-2", "workers=2 processes vs workers=1: {:.2f}x the speed"),
        ("threads-2", "procs-2", "workers=2 processes vs 2 threads: {:.2f}x the speed"),
        ("inline", "procs-2", "workers=2 processes vs inline: {:.2f}x the speed"),
        ("inline", "threads-2", "2 threads vs inline: {:.2f}x the speed"),
        ("inline", "threads-1", "1 thread vs inline (main thread): {:.2f}x the speed"),
        ("procs-1", "threads-1", "1 thread vs 1 process: {:.2f}x the speed"),
    )
    return [text.format(med[a] / med[b]) for a, b, text in pairs if a in med and b in med]


def set_priority(nice: int) -> None:
    """Give this run (and kiosk's workers, which inherit it) scheduling weight ``nice``.

    With autogroup scheduling (``/proc/sys/kernel/sched_autogroup_enabled``) the CPU is shared
    fairly between sessions first, so a process's own niceness only matters inside its session:
    the run is started in a session of its own and the niceness is set on that autogroup.
    Raising priority (negative values) needs root or CAP_SYS_NICE.
    """
    with contextlib.suppress(OSError):
        Path("/proc/self/autogroup").write_text(str(nice))
    os.setpriority(os.PRIO_PROCESS, 0, nice)


def measure(variant: str, nice: int, timeout: float | None) -> dict[str, Any] | None:
    """One run in a fresh interpreter (``--one``), so its peak RSS is its own; None if killed."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", variant, "--nice", str(nice)]
    try:
        proc = subprocess.run(
            cmd,
            check=True,
            stdout=subprocess.PIPE,
            text=True,
            timeout=timeout,
            start_new_session=bool(nice),  # its own session: its own scheduler autogroup
        )
    except subprocess.TimeoutExpired:
        return None
    res: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return res


def collect(
    variants: list[str], want: int, budget: float, max_foreign: float, nice: int
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """Run the variants in rotating rounds until each has ``want`` clean runs or time is up.

    A run is clean when the competing load during it stayed at or below ``max_foreign``. A run that
    takes more than twice the variant's best time (plus 10 s) is killed as noisy. Rounds skip
    variants that already have enough clean runs. Returns (clean, noisy) runs per variant.
    """
    clean: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    noisy: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    best: dict[str, float] = {}
    deadline = time.monotonic() + budget
    rnd = 0
    while True:
        need = [v for v in variants if len(clean[v]) < want]
        if not need or time.monotonic() >= deadline:
            break
        k = rnd % len(need)
        rnd += 1
        for v in need[k:] + need[:k]:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            load = wait_idle(max_wait=min(5.0 if nice < 0 else 45.0, left))
            limit = 2 * best[v] + 10 if v in best else None
            r = measure(v, nice, limit)
            if r is None:
                print(f"round {rnd:2d} {v:9s} killed after {limit:.0f} s (noisy)", file=sys.stderr)
                continue
            r["round"], r["idle_before"] = rnd, load
            ok = r["clean"] = r["competing"] <= max_foreign
            (clean if ok else noisy)[v].append(r)
            best[v] = min(best.get(v, math.inf), r["wall"])
            print(
                f"round {rnd:2d} {v:9s} wall {r['wall']:6.2f} s  cpu "
                f"{r['cpu_self'] + r['cpu_children']:6.2f} s  foreign {100 * r['foreign']:3.0f} % "
                f"competing {100 * r['competing']:3.0f} %"
                f"{'' if ok else '  (noisy)'}  [{len(clean[v])}/{want} clean]",
                file=sys.stderr,
            )
    return clean, noisy


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    ap.add_argument(
        "--rounds", type=int, default=3, help="clean runs wanted per variant (default 3)"
    )
    ap.add_argument(
        "--budget",
        type=float,
        default=480,
        help="seconds to spend measuring at most (default 480); then noisy runs fill the gaps",
    )
    ap.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness of the measured runs, set on their own scheduler autogroup; negative "
        "values shield them from other sessions on a shared machine and need root (default 0)",
    )
    ap.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated, from {', '.join(VARIANTS)}",
    )
    ap.add_argument("--rebuild", action="store_true", help="rebuild the cached image")
    ap.add_argument(
        "--max-foreign",
        type=float,
        default=0.15,
        help="a run is clean when the competing load (the share of the CPUs the variant needs "
        "that other processes took) stays "
        "at or below this (default 0.15)",
    )
    ap.add_argument("--json", type=Path, help="also write every run's figures here")
    ap.add_argument("--one", choices=VARIANTS, help=argparse.SUPPRESS)  # internal: one run
    args = ap.parse_args(argv)
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    if args.one:  # child mode: the orchestrator below runs each measurement in a fresh process
        if args.nice:
            set_priority(args.nice)
        res = run_one(
            args.one, cache / "ext4.img", cache / "rules", cache / f"results-{args.one}.tsv"
        )
        print(json.dumps(res))
        return 0
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        ap.error(f"unknown variant(s) {bad}")
    image, manifest = build_image(cache, args.rebuild)
    rules_dir = write_pack(cache)
    info = versions()
    print("machine: " + "; ".join(f"{k} {v}" for k, v in info.items()), file=sys.stderr)
    print(
        f"image: {image} ({image.stat().st_size / MIB:.0f} MiB, {manifest['files']} files, "
        f"{manifest['bytes'] / 1e6:.1f} MB of content); rules: {rules_dir / PACK}",
        file=sys.stderr,
    )
    with image.open("rb") as f:  # warm the page cache: every run reads from memory
        while f.read(8 * MIB):
            pass
    t_all = time.monotonic()
    clean, noisy = collect(variants, args.rounds, args.budget, args.max_foreign, args.nice)
    runs: list[dict[str, Any]] = []
    n_noisy = 0
    for v in variants:  # clean runs first; if time ran out, the least noisy of the others
        kept = clean[v][: args.rounds]
        fill = sorted(noisy[v], key=lambda r: r["competing"])[: args.rounds - len(kept)]
        n_noisy += len(fill)
        runs += kept + fill
    print(f"all runs: {time.monotonic() - t_all:.0f} s", file=sys.stderr)
    variants = [v for v in variants if any(r["variant"] == v for r in runs)]
    every = [r for v in clean for r in clean[v] + noisy[v]]
    print()
    print(
        f"{manifest['files']:,} files, {runs[0]['bytes'] / 1e6:,.1f} MB read per run; "
        f"{args.rounds} runs per variant wanted, variants alternating; median (min-max). "
        f"{len(runs) - n_noisy} clean runs (competing load <= {100 * args.max_foreign:.0f} %), "
        f"{n_noisy} noisy runs kept because time ran out, "
        f"{len(every) - len(runs)} noisy or surplus runs left out."
    )
    print()
    print(table(runs, variants))
    for note in check(every, manifest, cache):
        print(note)
    med = {v: statistics.median(r["wall"] for r in runs if r["variant"] == v) for v in variants}
    for line in ratios(med):
        print(line)
    cpu = {
        v: statistics.median(r["cpu_self"] + r["cpu_children"] for r in runs if r["variant"] == v)
        for v in variants
    }
    if "procs-2" in cpu and "threads-2" in cpu:
        d = cpu["procs-2"] - cpu["threads-2"]
        print(
            f"CPU time, 2 processes vs 2 threads: {d:+.2f} s ({100 * d / cpu['threads-2']:+.0f} %)"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"machine": info, "kept": runs, "clean": clean, "noisy": noisy}, indent=1)
            + "\n",
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
