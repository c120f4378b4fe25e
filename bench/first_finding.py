"""Time to the first and the last finding, with user areas first and in plain walk order.

Why: issue 19 asks that on an image of an operating system and its users' data the first
finding reach the app within 10 % of the full scan time, without the walk leaving anything
out. This runs the same triage the app runs (``run_triage`` with an ``on_finding`` hook, in a
fresh interpreter per run, timed from the call of ``run_triage``, as the officer waits from
pressing Run) on the ``realistic`` image from ``make_bench_image.py --shape
realistic``: variant ``areas`` takes the bench pack's ``priority_areas`` (Users, home, DCIM,
WhatsApp/Media), variant ``walk`` passes none; ``areas-app`` runs as the app does, its helpers'
server started before Run, and ``areas-standby`` as the app now does, the scan's workers also
started with the rules loaded before Run (``kiosk.engine.standby``: the app does it when the case
form opens; here one second before Run, where an officer takes minutes). ``base-standby`` is
``areas-standby`` from another kiosk source tree (``--base DIR``, e.g. a ``git archive`` of
main): before and after in the same run. Rounds alternate; the table shows medians, and with
``base-standby`` the per-round ratios of the scan's total and of the first finding.

Usage: ``.venv/bin/python bench/first_finding.py [--dir DIR] [--rounds 3] [--workers 2]
[--variants areas-standby,areas-app,areas,walk] [--base DIR]`` (the known-good set is imported
and signed as in ``triage_bench.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_bench_image import default_dir  # noqa: E402 - bench scripts are not a package

CHILD = r"""
import json, sys, time
from pathlib import Path
t_import = time.monotonic()
from kiosk.engine.triage import Hooks, TriageRequest, run_triage
from kiosk.model import CaseRecord, LegalBasis
from kiosk.trust.signing import load_signer
imports = time.monotonic() - t_import
image, rules, sets, out, workers, areas, mode = sys.argv[1:8]
standby = None
if __name__ == "__main__" and mode in ("app", "standby"):  # as the app: server started at launch
    import os
    from kiosk.processes import helper_context, warm_up
    warm_up()
    p = helper_context().Process(target=os.getpid)  # returns once the server has forked
    p.start()
    p.join()
    if mode == "standby":  # as the app does when the officer opens a new case
        from kiosk.engine.standby import prepare_standby
        standby = prepare_standby(Path(rules), int(workers), dev=True)
        time.sleep(1.0)  # the officer's seconds on the case and evidence screens (far more)
stamps = []
case = CaseRecord("B-1", "E-1", "PC-1", "DS-2", LegalBasis.CONSENT, "bench")
req = TriageRequest(case=case, image=(Path(image),), rules_dir=Path(rules),
                    hashsets_dir=Path(sets), out_dir=Path(out), workers=int(workers), dev=True,
                    priority_areas=None if areas == "packs" else ())
hooks = Hooks(on_finding=lambda f: stamps.append((time.monotonic() - t0, f.path)),
              signer=load_signer(), standby=standby)
t0 = time.monotonic()  # the officer presses Run: the app has long imported kiosk
result = run_triage(req, hooks)
total = time.monotonic() - t0
print(json.dumps({"imports": imports, "first": stamps[0][0] if stamps else None,
                  "last": stamps[-1][0] if stamps else None, "total": total,
                  "findings": sorted(p for _, p in stamps),
                  "first_path": stamps[0][1] if stamps else None}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", type=Path, default=default_dir("realistic"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--variants", default="areas-standby,areas-app,areas,walk")
    ap.add_argument("--base", type=Path, help="another kiosk source tree, for base-standby")
    a = ap.parse_args()
    from triage_bench import Bench  # sets up KIOSK_HOME, a key and the signed known-good set

    bench = Bench(
        argparse.Namespace(dir=a.dir, image="ext4", rules="bench", base=None, shape="realistic")
    )
    subprocess.run(["cat", str(bench.image)], stdout=subprocess.DEVNULL, check=True)
    # areas / walk: a fresh process, as ``kiosk scan``; areas-app: as the app, whose helpers'
    # server started when the app did (kiosk.processes.warm_up in make_app)
    variants = a.variants.split(",")
    runs: dict[str, list[dict[str, object]]] = {v: [] for v in variants}
    # one untimed run first: it compiles the packs into the kiosk's cache, as an officer's
    # first scan with a pack version does (untimed, the first round's first variant paid it)
    cmd = [sys.executable, "-c", CHILD, str(bench.image), str(bench.rules_dir)]
    cmd += [str(bench.work / "hashsets"), str(bench.work / "ff-warm"), str(a.workers)]
    subprocess.run([*cmd, "packs", "cold"], env=bench.env, capture_output=True, check=True)
    for rnd in range(a.rounds):
        for v in variants[rnd % len(variants) :] + variants[: rnd % len(variants)]:
            out = bench.work / f"ff-{v}-{rnd}"
            cmd = [sys.executable, "-c", CHILD, str(bench.image), str(bench.rules_dir)]
            cmd += [str(bench.work / "hashsets"), str(out), str(a.workers)]
            mode = {"areas-app": "app", "areas-standby": "standby", "base-standby": "standby"}
            cmd += ["none" if v == "walk" else "packs", mode.get(v, "cold")]
            env, cwd = bench.env, None
            if v == "base-standby":  # the other tree, from outside this one (-c puts cwd first)
                env, cwd = {**bench.env, "PYTHONPATH": str(a.base)}, bench.work
            t = time.monotonic()
            run = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=True)
            r = json.loads(run.stdout)
            r["wall"] = time.monotonic() - t
            runs[v].append(r)
            print(
                f"round {rnd + 1} {v}: first {r['first']:.2f} s ({r['first_path']}), "
                f"last {r['last']:.2f} s, total {r['total']:.2f} s",
                file=sys.stderr,
            )
    print(f"\nimage {bench.image}, {a.rounds} rounds, workers {a.workers}, {os.cpu_count()} CPUs\n")
    print(
        "Times from the call of run_triage (the officer pressing Run; the app imported kiosk "
        "when it started, shown apart as 'imports').\n"
    )
    print(
        "| variant | imports s | first finding s | last finding s | scan total s | first / total |"
    )
    print("|---|---|---|---|---|---|")
    for v, rs in runs.items():
        imp = statistics.median(float(r["imports"]) for r in rs)  # type: ignore[arg-type]
        first = statistics.median(float(r["first"]) for r in rs)  # type: ignore[arg-type]
        last = statistics.median(float(r["last"]) for r in rs)  # type: ignore[arg-type]
        total = statistics.median(float(r["total"]) for r in rs)  # type: ignore[arg-type]
        print(f"| {v} | {imp:.2f} | {first:.2f} | {last:.2f} | {total:.2f} | {first / total:.0%} |")
    ref = next(iter(runs.values()))[0]["findings"]
    same = all(r["findings"] == ref for rs in runs.values() for r in rs)
    print(f"\n- the same findings in every run: {same} ({len(ref)})")  # type: ignore[arg-type]
    if "base-standby" in runs and "areas-standby" in runs:
        for key in ("total", "first"):
            per = [
                float(n[key]) / float(b[key])  # type: ignore[arg-type]
                for n, b in zip(runs["areas-standby"], runs["base-standby"], strict=True)
            ]
            print(
                f"- areas-standby / base-standby, {key}: per round median "
                f"{statistics.median(per):.2f} ({min(per):.2f}-{max(per):.2f})"
            )
    for v, rs in runs.items():
        per = sorted(float(r["first"]) / float(r["total"]) for r in rs)  # type: ignore[arg-type]
        print(
            f"- {v}: first / total per round median {statistics.median(per):.1%} "
            f"({per[0]:.1%}-{per[-1]:.1%}, {sum(p > 0.10 for p in per)} of {len(per)} over 10 %)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
