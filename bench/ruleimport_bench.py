"""Big imported packs stay fast: a generated 6,000-rule collection, imported, signed and scanned.

    .venv/bin/python bench/ruleimport_bench.py [--rounds 3] [--files 2000] [--workers 2]

The collection is generated here in the public collections' styles (no rule text copied):
signature-base style files under ``yara/`` with ``score`` meta and a third of the files
importing ``pe`` behind ``uint16(0) == 0x5a4d`` guards, YARA-Rules style category folders with
``*_index.yar`` include files and a shared file of private helpers, and a few rules that must be
quarantined (do not compile, need ``cuckoo``, atom-less regexes). It is imported with
``kiosk rules import``'s code (examine + the benchmark buffer), signed, and loaded as a scan
loads it: cold (compiled from source) and warm (the kiosk's own HMAC-checked cache).

Then an ext4 image (``mke2fs -d``, no mount) of ``--files`` small files (1-64 KiB: text,
random, zeros, 10 % PE) is scanned with ``kiosk.engine.scan.scan_tasks`` three ways, in
alternating rounds: the bundled kiosk-core pack alone (the baseline), the imported pack with
module gating, and the imported pack with gating off. Printed: import and load times, gated
rule count, files/s and MB/s of each scan (median of the rounds) and the ratios to the baseline.
Every scan's findings with the imported pack must be the same gated and ungated. Figures go to
bench/README.md.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261206
WORDS = (
    "relay",
    "beacon",
    "loader",
    "stager",
    "payload",
    "config",
    "vault",
    "ledger",
    "token",
    "cipher",
    "session",
    "quill",
    "ember",
    "brindle",
    "tessera",
    "cobweb",
    "harrow",
    "lantern",
    "mosaic",
    "nettle",
    "orchid",
    "pylon",
    "quartz",
    "rampart",
    "sable",
)


def _word(rng: random.Random) -> str:
    return rng.choice(WORDS)


def _strings(rng: random.Random, n: int) -> list[str]:
    out = []
    for k in range(n):
        kind = rng.random()
        if kind < 0.6:
            mod = rng.choice(["ascii", "ascii wide", "nocase", "ascii fullword"])
            out.append(f'$s{k} = "{_word(rng)}-{_word(rng)}-{rng.randrange(10**6):06d}" {mod}')
        elif kind < 0.85:
            hexes = " ".join(f"{rng.randrange(256):02X}" for _ in range(rng.randint(6, 12)))
            out.append(f"$h{k} = {{ {hexes} [1-4] {rng.randrange(256):02X} }}")
        else:
            out.append(f"$r{k} = /{_word(rng)}_[a-z]{{2,8}}\\.(exe|dll|ps1)/ nocase")
    return out


def _sigbase_rule(rng: random.Random, name: str, pe: bool) -> str:
    strings = _strings(rng, rng.randint(2, 5))
    cond = rng.choice(["all of them", "any of them", "1 of ($s*) and filesize < 2MB"])
    if cond.startswith("1 of") and not all(s.startswith("$s") for s in strings):
        cond = "any of them"  # an unreferenced $h or $r would not compile
    if pe:
        cond = f"uint16(0) == 0x5a4d and pe.number_of_sections > {rng.randint(1, 6)} and ({cond})"
    elif rng.random() < 0.05:
        cond = f'extension == ".{rng.choice(["ps1", "bat", "vbs"])}" and ({cond})'
    day = f"20{rng.randint(14, 25)}/{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}"
    return (
        f'rule {name} {{\n   meta:\n      description = "generated {name}"\n'
        f'      author = "bench"\n      date = "{day}"\n      score = {rng.randint(40, 100)}\n'
        f'      hash1 = "{rng.randbytes(32).hex()}"\n   strings:\n      '
        + "\n      ".join(strings)
        + f"\n   condition:\n      {cond}\n}}\n\n"
    )


def generate(root: Path, rng: random.Random) -> dict[str, int]:
    """~6,000 rules in 650 files; returns counts by kind."""
    shutil.rmtree(root, ignore_errors=True)
    (root / "yara").mkdir(parents=True)
    (root / "LICENSE").write_text("generated for kiosk's benchmark\n")
    counts = {"rules": 0, "pe_files": 0, "files": 0, "to_quarantine": 0}
    for i in range(500):  # signature-base style: 4,500 rules
        pe = i % 3 == 0
        text = 'import "pe"\n\n' if pe else ""
        text += "".join(_sigbase_rule(rng, f"SB_{i:03d}_{k}", pe) for k in range(9))
        (root / "yara" / f"gen_{i:03d}.yar").write_text(text)
        counts["rules"] += 9
        counts["pe_files"] += pe
    (root / "utils").mkdir()
    (root / "utils" / "helpers.yar").write_text(
        "".join(
            f'private rule Helper_{k} {{\n  strings:\n    $m = "helper-{k}-marker"\n'
            "  condition:\n    $m\n}\n"
            for k in range(10)
        )
    )
    for folder in ("malware", "webshells", "maldocs"):
        (root / folder).mkdir()
        includes = []
        for i in range(50):  # YARA-Rules style: 1,500 rules, some using the shared helpers
            name = f"{folder}/{folder[:4].upper()}_{i:02d}.yar"
            includes.append(f'include "./{name}"')
            head = 'include "../utils/helpers.yar"\n\n' if i % 5 == 0 else ""
            body = ""
            for k in range(10):
                helper = f"Helper_{k} and " if i % 5 == 0 and k < 2 else ""
                strings = _strings(rng, rng.randint(2, 4))
                body += (
                    f'rule {folder.upper()}_{i:02d}_{k}\n{{\n    meta:\n        author = "bench"\n'
                    f'        description = "generated"\n    strings:\n        '
                    + "\n        ".join(strings)
                    + f"\n    condition:\n        {helper}any of them\n}}\n\n"
                )
            (root / name).write_text(head + body)
            counts["rules"] += 10
        (root / f"{folder}_index.yar").write_text("\n".join(includes) + "\n")
    bad = (
        'import "cuckoo"\n'
        + "".join(
            f"rule Q_Cuckoo_{k} {{ condition: cuckoo.sync.mutex(/q{k}/) }}\n" for k in range(5)
        )
        + "".join(f"rule Q_Broken_{k} {{ condition: nothing_{k} }}\n" for k in range(10))
        + "".join(
            f"rule Q_Slow_{k} {{ strings: $r = /[a-f0-9]{{{40 + k}}}/ condition: $r }}\n"
            for k in range(5)
        )
    )
    (root / "yara" / "gen_quarantine_bait.yar").write_text(bad)
    counts["rules"] += 20
    counts["to_quarantine"] = 20
    counts["files"] = sum(1 for _ in root.rglob("*.yar"))
    return counts


def _pe(tail: bytes) -> bytes:
    dos = bytearray(0x80)
    dos[0:2] = b"MZ"
    dos[0x3C:0x40] = struct.pack("<I", 0x80)
    coff = b"PE\0\0" + struct.pack("<HHIIIHH", 0x14C, 2, 0x5F5E0FF, 0, 0, 0xE0, 0x0102)
    opt = bytearray(0xE0)
    struct.pack_into("<HBBIII", opt, 0, 0x10B, 14, 0, 0x1000, 0x1000, 0)
    return bytes(dos) + coff + bytes(opt) + b"\0" * 600 + tail


def build_image(work: Path, rng: random.Random, files: int) -> tuple[Path, int]:
    tree = work / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    total = 0
    text_pool = " ".join(rng.choice(WORDS) for _ in range(200_000)).encode()
    for i in range(files):
        size = int(1024 * 2 ** rng.uniform(0, 6))
        kind = rng.random()
        if kind < 0.1:
            data = _pe(rng.randbytes(size))
        elif kind < 0.6:
            at = rng.randrange(len(text_pool) - size)
            data = text_pool[at : at + size]
        elif kind < 0.9:
            data = rng.randbytes(size)
        else:
            data = bytes(size)
        d = tree / f"d{i % 40:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.{rng.choice(['txt', 'bin', 'exe', 'dat', 'log'])}").write_bytes(data)
        total += len(data)
    img = work / "corpus.img"
    img.unlink(missing_ok=True)
    size_mib = int(total * 1.3 / (1 << 20)) + 32
    mke2fs = shutil.which("mke2fs") or "/usr/sbin/mke2fs"
    subprocess.run(
        [mke2fs, "-q", "-t", "ext4", "-d", str(tree), "-F", str(img), f"{size_mib}M"], check=True
    )
    shutil.rmtree(tree)
    return img, total


def scan(img: Path, compiled: Any, workers: int, gated: bool) -> tuple[float, int, int, list[str]]:
    from kiosk.engine.scan import ScanConfig, scan_tasks
    from kiosk.evidence.image import Evidence
    from kiosk.evidence.resolve import resolve

    ref = resolve([img])
    cfg = ScanConfig(
        evidence=ref,
        rules_blob=compiled.to_bytes(),
        rule_meta=dict(compiled.meta),
        hashsets=(),
        workers=workers,
        gate_blob=compiled.gate_bytes() if gated else None,
        gate_prefixes=compiled.gate_prefixes if gated else (),
    )
    t0 = time.perf_counter()
    n = nbytes = 0
    found = []
    with Evidence(ref) as ev:
        for r in scan_tasks(ev.walk(ev.volumes()), cfg):
            n += 1
            nbytes += r.bytes_read
            found += [f"{r.task.path}:{m.rule}" for m in r.rule_matches]
    return time.perf_counter() - t0, n, nbytes, sorted(found)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)

    from kiosk.packs.check import read_pack
    from kiosk.packs.importer import ImportOptions, import_collection
    from kiosk.packs.load import RULEPACK, compile_packs
    from kiosk.packs.sign import build_manifest, write_manifest
    from kiosk.trust.signing import PUBLISHING, TrustStore, init_key, load_signer

    rng = random.Random(SEED)
    work = Path(tempfile.mkdtemp(prefix="kiosk-ruleimport-bench-"))
    try:
        counts = generate(work / "collection", rng)
        rules = work / "rules"
        rules.mkdir()
        t0 = time.perf_counter()
        res = import_collection(
            work / "collection", ImportOptions(pack="bigcoll", rules_dir=rules, date="2026-12-06")
        )
        t_import = time.perf_counter() - t0
        home = work / "home"
        init_key(home, purposes=(PUBLISHING,))
        signer = load_signer(home / "keys" / "kiosk.key")
        store = TrustStore.load(home / "trust.json")
        store.save(home / "trust.json")
        now = datetime.now(UTC)
        for pack in (res.pack_dir, ROOT / "rules" / "kiosk-core"):
            dest = rules / pack.name
            if pack != res.pack_dir:
                shutil.copytree(pack, dest, ignore=shutil.ignore_patterns("manifest.dsse.json"))
            version = read_pack(dest).version
            m = build_manifest(RULEPACK, dest.name, version, dest, now, now + timedelta(days=1))
            write_manifest(dest, m, signer)
        core_dir = work / "core"
        core_dir.mkdir()
        shutil.move(str(rules / "kiosk-core"), core_dir / "kiosk-core")
        t0 = time.perf_counter()
        cold = compile_packs(rules, home=home)
        t_cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm = compile_packs(rules, home=home)
        t_warm = time.perf_counter() - t0
        core = compile_packs(core_dir, home=home)
        (big,) = warm.packs
        assert warm.meta == cold.meta
        assert big.quarantined == cold.packs[0].quarantined
        gated = len(warm.gate.gated) if warm.gate else 0
        img, total = build_image(work, rng, args.files)
        runs: dict[str, list[tuple[float, int, int]]] = {"core": [], "gated": [], "ungated": []}
        seen: dict[str, list[str]] = {}
        for r in range(args.rounds):
            order = ["core", "gated", "ungated"]
            order = order[r % 3 :] + order[: r % 3]
            for v in order:
                compiled = core if v == "core" else warm
                wall, n, nb, found = scan(img, compiled, args.workers, v != "ungated")
                runs[v].append((wall, n, nb))
                if v != "core":
                    seen[v] = found
        assert seen["gated"] == seen["ungated"], "gating changed the findings"
        print(
            f"collection: {counts['files']} files, {counts['rules']} rules "
            f"({counts['pe_files']} files import pe; {counts['to_quarantine']} made to fail)"
        )
        print(
            f"import (examine + benchmark buffer): {t_import:.1f} s -> {res.active} active, "
            f"{res.quarantined} quarantined: {res.reasons}"
        )
        print(
            f"load for a scan: cold {t_cold:.2f} s, warm (cache) {t_warm:.2f} s; "
            f"{gated} rules gated behind MZ"
        )
        print(
            f"corpus: {args.files} files, {total / 1e6:.1f} MB; workers={args.workers}, "
            f"rounds={args.rounds}"
        )
        base = statistics.median(w for w, _, _ in runs["core"])
        for v, label in (
            ("core", "kiosk-core (19 rules)"),
            ("gated", "imported 6k, gated"),
            ("ungated", "imported 6k, no gate"),
        ):
            wall = statistics.median(w for w, _, _ in runs[v])
            n, nb = runs[v][0][1], runs[v][0][2]
            print(
                f"  {label:24s} {wall:6.2f} s  {n / wall:7.0f} files/s  {nb / wall / 1e6:6.1f} MB/s"
                f"  x{wall / base:.2f} of kiosk-core"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
