"""kiosk against the naive baseline and the Sleuth Kit CLI pipeline, side by side, same run.

Why: the performance issue sets targets as *ratios* measured in one run on a shared 2-core
machine (full triage >= 2.0x naive and >= 1.5x the CLI pipeline; 2 workers >= 1.7x 1 worker;
hash-only >= 650 MB/s; peak RSS <= 400 MiB). Ratios from different moments of a shared machine
mean little, so every variant runs in every round, the order rotates, and the table shows
medians with min-max and the foreign CPU load (other processes' share of both CPUs) per variant.

Variants (each a fresh process tree; wall time, CPU of the tree, peak of the *summed* RSS of the
tree sampled every 20 ms):
  kiosk-2      ``kiosk scan --workers 2`` (the product as an officer runs it: report signed and
               written; each kiosk variant runs once more, untimed, with ``--inventory`` for
               the checks below)
  kiosk-2-inv  the same timed with ``--inventory`` (one more line per file: as timed before)
  kiosk-1      the same with ``--workers 1``
  kiosk-noyara ``kiosk scan --workers 2 --no-yara`` (hash-only mode)
  naive        ``bench/naive_triage.py`` (one process: walk, read whole file, hash, magic, YARA)
  base-2       ``kiosk scan --workers 2`` of another kiosk source tree (``--base DIR``, e.g. a
               ``git archive`` of main), run with this venv: before/after in the same run
  cli          ``tsk_recover -a`` to /dev/shm, then ``hashdeep -c md5,sha1,sha256 -r``,
               ``file -b`` (xargs -P 2) and ``yara -r``, as users script it

Ratios: of the medians, and per round (the pair that ran in the same round, minutes apart at
most): the VM's speed drifts by up to a quarter over a run, so the per-round median is the
steadier figure.

Checks: kiosk's (path, pack, rule) findings must equal naive's, and every SHA-256 kiosk reports
for a manifest path must equal the manifest's. Packs load with ``--dev`` (the bench pack is not
signed; dev mode skips only signature and version checks, compilation and matching are the same).

Usage: ``.venv/bin/python bench/triage_bench.py [--dir DIR] [--image ext4|fat32|ntfs|ext4-huge]
[--rules bench|core] [--rounds 3] [--variants kiosk-2,naive,cli] [--json out.json]``. Build the
images first with ``bench/make_bench_image.py`` (``--fs ntfs`` for ``ntfs.img``). Bench init
empties ``DIR/work``: two runs on one DIR at once spoil each other.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from make_bench_image import default_dir  # noqa: E402 - bench scripts are not a package

PY = sys.executable
KIOSK = str(Path(PY).parent / "kiosk")
SHM = Path("/dev/shm/kiosk-triage-peers")  # noqa: S108 - tmpfs scratch, as users script it
VARIANTS = ("kiosk-2", "kiosk-1", "kiosk-noyara", "naive", "cli")  # + base-2 with --base
# kiosk-2 runs the default YARA engine (YARA-X); kiosk-2-libyara the reference engine
ENGINE_VARIANTS = {"kiosk-2-libyara": "libyara", "kiosk-2-yarax": "yara-x"}
# kiosk-2-files: the default without unallocated space and slack (--no-unallocated), the closest
# to what naive does (naive never reads free space; files over the cap still get their windows)
EXTRA_ARGS = {"kiosk-2-files": ["--no-unallocated"], "kiosk-2-inv": ["--inventory"]}
PERF = shutil.which("perf")


def _busy_jiffies() -> int:
    with Path("/proc/stat").open(encoding="ascii") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    return sum(parts) - parts[3] - parts[4]  # minus idle, iowait


def _tree_rss(pid: int) -> int:
    total, stack = 0, [pid]
    page = os.sysconf("SC_PAGE_SIZE")
    while stack:
        p = stack.pop()
        try:
            total += int(Path(f"/proc/{p}/statm").read_text("ascii").split()[1]) * page
            for t in Path(f"/proc/{p}/task").iterdir():
                stack.extend(int(c) for c in (t / "children").read_text("ascii").split())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def timed(
    cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> dict[str, float]:
    """Run ``cmd``; wall, CPU of its tree, peak summed RSS, foreign load as a share of all CPUs.

    CPU is counted by ``perf stat`` (task-clock, inherited by every descendant) when perf is
    installed: kiosk's helpers are forked by a forkserver that kiosk never waits for, so the
    children's rusage misses them; without perf it falls back to rusage (an undercount then)."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    stat = Path(tempfile.mkstemp(prefix="kiosk-bench-", suffix=".perf")[1])
    if PERF:
        cmd = [PERF, "stat", "-e", "task-clock", "-x,", "-o", str(stat), "--", *cmd]
    j0, t0 = _busy_jiffies(), time.monotonic()
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], _tree_rss(proc.pid))

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, err = proc.communicate()
    wall = time.monotonic() - t0
    done.set()
    th.join()
    j1 = _busy_jiffies()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):  # kiosk exits 1 when it recommends submission
        raise RuntimeError(f"{cmd[:3]} failed ({proc.returncode}): {err.decode()[-2000:]}")
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    for line in stat.read_text("utf-8").splitlines() if PERF else ():
        if ",task-clock," in line:
            cpu = float(line.split(",")[0]) / 1000
    stat.unlink()
    busy = (j1 - j0) / os.sysconf("SC_CLK_TCK")
    ncpu = os.cpu_count() or 1
    return {
        "wall": wall,
        "cpu": cpu,
        "peak_rss_mib": peak[0] / 2**20,
        "foreign": max(0.0, (busy - cpu) / (wall * ncpu)),
    }


class Bench:
    def __init__(self, a: argparse.Namespace) -> None:
        self.dir: Path = a.dir
        self.image = a.dir / f"{a.image}.img"
        self.manifest = json.loads((a.dir / "manifest.json").read_text("utf-8"))
        self.work = a.dir / "work"
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir()
        if a.rules == "bench":
            self.rules_dir = a.dir / "rules"
            self.yara_args = [str(a.dir / "synthetic.yar")]
        else:
            self.rules_dir = self.work / "rules-core"
            shutil.copytree(REPO / "rules" / "kiosk-core", self.rules_dir / "kiosk-core")
            self.yara_args = [
                f"kiosk-core:{p}" for p in sorted((REPO / "rules/kiosk-core").glob("*.yar"))
            ]
        self.home = self.work / "home"
        self.env = {**os.environ, "KIOSK_HOME": str(self.home)}
        subprocess.run([KIOSK, "keys", "init"], env=self.env, check=True, capture_output=True)
        (self.work / "hashsets").mkdir()
        self.known = a.dir / "known_good.hashdeep"  # the realistic shape's known-good list
        if self.known.is_file():
            self._known_good_set()
        self.checked: dict[str, Any] = {}
        self.base: Path | None = a.base

    def _known_good_set(self) -> None:
        """Import and sign the known-good list as a force would (a key trusted to publish)."""
        store = str(self.work / "hashsets")
        key = str(self.home / "keys" / "kiosk.key")
        for cmd in (
            ["keys", "trust", str(self.home / "keys" / "kiosk.pub"), "--purpose", "publish"],
            [
                *("hashsets", "import", "bench-known-good", str(self.known)),
                *("--format", "hashdeep", "--disposition", "known_good"),
                *("--hashsets", store, "--version", "1"),
            ],
            ["hashsets", "sign", "bench-known-good", "--hashsets", store, "--key", key],
        ):
            run = subprocess.run([KIOSK, *cmd], env=self.env, capture_output=True, text=True)
            if run.returncode:
                print(f"kiosk {cmd[0]} {cmd[1]}: {run.stderr.strip()}", file=sys.stderr)

    def kiosk(
        self,
        workers: int,
        yara: bool = True,
        base: bool = False,
        engine: str | None = None,
        extra: list[str] | None = None,
        inventory: bool = False,
    ) -> tuple[list[str], Path]:
        extra = extra or []
        out = self.work / f"reports-{workers}-{yara}-{base}-{engine}-{len(extra)}"
        shutil.rmtree(out, ignore_errors=True)
        cmd = [
            *([PY, "-m", "kiosk"] if base else [KIOSK]),
            "scan",
            str(self.image),
            "--case",
            "B-1",
            "--exhibit",
            "E-1",
            "--officer",
            "PC-1",
            "--authorised-by",
            "DS-2",
            "--legal-basis",
            "consent",
            "--legal-ref",
            "bench",
            "--rules",
            str(self.rules_dir),
            "--hashsets",
            str(self.work / "hashsets"),
            "--out",
            str(out),
            "--workers",
            str(workers),
            "--dev",
            *(["--inventory"] if inventory else []),
        ]
        if not yara:
            cmd.append("--no-yara")
        if engine:
            cmd += ["--yara-engine", engine]
        return cmd + extra, out

    def run(self, variant: str) -> dict[str, float]:
        if variant.startswith(("kiosk", "base")):
            workers = 1 if variant == "kiosk-1" else 2
            base = variant == "base-2"
            args = (workers, variant != "kiosk-noyara", base, ENGINE_VARIANTS.get(variant))
            env = {**self.env, "PYTHONPATH": str(self.base)} if base else self.env
            # python -m puts the cwd first on sys.path: run the base tree from outside this one
            cwd = self.work if base else None
            if variant not in self.checked:  # once, untimed: the inventory, for the checks
                cmd, out = self.kiosk(*args, EXTRA_ARGS.get(variant), inventory=True)
                subprocess.run(cmd, env=env, cwd=cwd, check=True, capture_output=True)
                self.checked[variant] = self._kiosk_result(out)
            # timed: the command as an officer runs it (no optional inventory)
            cmd, out = self.kiosk(*args, EXTRA_ARGS.get(variant))
            return timed(cmd, env, cwd)
        if variant == "naive":
            out = self.work / "naive.json"
            r = timed(
                [
                    PY,
                    str(HERE / "naive_triage.py"),
                    str(self.image),
                    "--rules",
                    str(self.rules_dir),
                    "--out",
                    str(out),
                ]
            )
            if variant not in self.checked:
                self.checked[variant] = json.loads(out.read_text("utf-8"))
            return r
        shutil.rmtree(SHM, ignore_errors=True)
        if variant == "cli-kg":  # known-good first: hashdeep negative matching, then file, yara
            script = (
                'tsk_recover -a "$1" "$2" >/dev/null'
                ' && (cd "$2" && hashdeep -c md5,sha256 -r -l -x -k "$4" . > "$3.unknown")'
                ' && (cd "$2" && tr "\\n" "\\0" < "$3.unknown"'
                " | xargs -0 -n 500 -P 2 file -b >/dev/null)"
                f' && (cd "$2" && yara -w {" ".join(self.yara_args)} --scan-list "$3.unknown"'
                ' > "$3")'
            )
            r = timed(
                [
                    *("sh", "-c", script, "sh", str(self.image), str(SHM)),
                    *(str(self.work / "cli.txt"), str(self.known)),
                ]
            )
            shutil.rmtree(SHM, ignore_errors=True)
            return r
        script = (
            f'tsk_recover -a "$1" "$2" >/dev/null && hashdeep -c md5,sha1,sha256 -r "$2" >/dev/null'
            ' && find "$2" -type f -print0 | xargs -0 -n 500 -P 2 file -b >/dev/null'
            f' && yara -w -r {" ".join(self.yara_args)} "$2" > "$3"'
        )
        r = timed(["sh", "-c", script, "sh", str(self.image), str(SHM), str(self.work / "cli.txt")])
        shutil.rmtree(SHM, ignore_errors=True)
        return r

    def _kiosk_result(self, out: Path) -> dict[str, Any]:
        (rep,) = list(out.iterdir())
        report = json.loads((rep / "report.json").read_text("utf-8"))
        findings = sorted(
            [f["path"], m["pack"], m["rule"]]
            for f in report["findings"]
            for m in f["matches"]
            if m["type"] == "yara"
        )
        sha = {}
        statuses: dict[str, int] = {}
        with (rep / "files.jsonl").open(encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                sha[r["path"]] = r["sha256"]
                statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        shutil.rmtree(out)
        return {
            "findings": findings,
            "sha256": sha,
            "statuses": statuses,
            "recommendation": report["recommendation"],
            "settings": report["settings"],
        }

    def check(self) -> list[str]:
        notes = []
        want = {"/" + e["path"]: e["sha256"] for e in self.manifest["entries"]}
        for v, res in self.checked.items():
            bad = sum(1 for p, h in want.items() if res["sha256"].get(p) != h)
            notes.append(
                f"{v}: {len(res['sha256'])} files, {bad} manifest SHA-256 mismatches"
                + (f", statuses {res['statuses']}" if "statuses" in res else "")
                + (f", {len(res['findings'])} findings" if "findings" in res else "")
            )

        def packs(v: str) -> set[tuple[str, ...]]:
            """The bench packs' findings: kiosk's built-in content checks (pack "kiosk":
            wallets, disguised files) have no counterpart in naive."""
            return {tuple(x) for x in self.checked[v]["findings"] if x[1] != "kiosk"}

        if "naive" in self.checked and "kiosk-2" in self.checked:
            a, b = packs("kiosk-2"), packs("naive")
            builtin = len(self.checked["kiosk-2"]["findings"]) - len(a)
            notes.append(
                f"findings kiosk-2 == naive: {a == b} ({len(a)} vs {len(b)}, and {builtin} of "
                f"kiosk's built-in checks; only kiosk {sorted(a - b)[:5]}, "
                f"only naive {sorted(b - a)[:5]})"
            )
        for k in (*ENGINE_VARIANTS, *EXTRA_ARGS):
            if k in self.checked and "naive" in self.checked:
                notes.append(f"findings {k} == naive: {packs(k) == packs('naive')}")
        if "base-2" in self.checked and "kiosk-2" in self.checked:
            same = self.checked["base-2"]["findings"] == self.checked["kiosk-2"]["findings"]
            notes.append(f"findings base-2 == kiosk-2: {same}")
        if "kiosk-1" in self.checked and "kiosk-2" in self.checked:
            same = self.checked["kiosk-1"]["findings"] == self.checked["kiosk-2"]["findings"]
            notes.append(f"findings kiosk-1 == kiosk-2: {same}")
        if "kiosk-noyara" in self.checked:
            res = self.checked["kiosk-noyara"]
            notes.append(f"kiosk-noyara recommendation: {res['recommendation']}")
        return notes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", type=Path, help="default: make_bench_image.py's for --shape")
    ap.add_argument("--shape", default="standard", help="standard or independent (issue 19)")
    ap.add_argument("--image", default="ext4")
    ap.add_argument("--rules", choices=("bench", "core"), default="bench")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--base", type=Path, help="another kiosk source tree, for variant base-2")
    a = ap.parse_args()
    a.dir = a.dir or default_dir(a.shape)
    b = Bench(a)
    variants = a.variants.split(",")
    # Bytecode compiled first, as a wheel install has it: under PYTHONDONTWRITEBYTECODE an
    # editable tree would compile every module in every process of every run.
    for tree in {REPO, *([a.base] if a.base else [])}:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run([PY, "-m", "compileall", "-q", str(tree / "kiosk")], env=env, check=True)
    subprocess.run(["cat", str(b.image)], stdout=subprocess.DEVNULL, check=True)  # warm cache
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    for rnd in range(a.rounds):
        order = variants[rnd % len(variants) :] + variants[: rnd % len(variants)]
        for v in order:
            r = b.run(v)
            runs[v].append(r)
            print(
                f"round {rnd + 1} {v}: {r['wall']:.2f} s, cpu {r['cpu']:.1f} s, "
                f"rss {r['peak_rss_mib']:.0f} MiB, foreign {r['foreign']:.0%}",
                file=sys.stderr,
            )
    nbytes, nfiles = b.manifest["bytes"], b.manifest["files"]
    med = {v: statistics.median(r["wall"] for r in rs) for v, rs in runs.items()}
    print(
        f"\nimage {a.image}.img, rules {a.rules}, {nfiles} files, {nbytes / 1e6:.0f} MB; "
        f"{a.rounds} rounds; {platform.node()} {os.cpu_count()} CPUs; "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC\n"
    )
    print(
        "| variant | wall s median (min-max) | files/s | MB/s | CPU s | peak RSS MiB (summed tree) "
        "| foreign load median (max) |"
    )
    print("|---|---|---|---|---|---|---|")
    for v, rs in runs.items():
        w = [r["wall"] for r in rs]
        print(
            f"| {v} | {med[v]:.2f} ({min(w):.2f}-{max(w):.2f}) | {nfiles / med[v]:,.0f} "
            f"| {nbytes / 1e6 / med[v]:,.0f} | {statistics.median(r['cpu'] for r in rs):.1f} "
            f"| {max(r['peak_rss_mib'] for r in rs):.0f} "
            f"| {statistics.median(r['foreign'] for r in rs):.0%} "
            f"({max(r['foreign'] for r in rs):.0%}) |"
        )
    print()
    for base in ("naive", "cli", "cli-kg", "kiosk-1", "base-2"):
        for k in ("kiosk-2", *ENGINE_VARIANTS, *EXTRA_ARGS):
            if base in med and k in med:
                # also per round: both ran minutes apart at most, while this VM's speed drifts
                # by a quarter over a run (bench/README.md), so the paired ratios say more
                pair = [rb["wall"] / rk["wall"] for rb, rk in zip(runs[base], runs[k], strict=True)]
                print(
                    f"- {k} vs {base}: {med[base] / med[k]:.2f}x; per round median "
                    f"{statistics.median(pair):.2f}x ({min(pair):.2f}-{max(pair):.2f})"
                )
    for note in b.check():
        print(f"- {note}")
    if a.json:
        a.json.write_text(json.dumps({"runs": runs, "checks": b.check()}, indent=1), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
