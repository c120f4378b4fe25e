"""The Dask executor against kiosk's own pool on one machine, and the scheduler's dispatch capacity.

Part 1 (overhead): the same FileTasks (the sample images, repeated) scanned by
``kiosk.engine.scan.scan_tasks`` with ``workers=W`` and by ``ClusterExecutor`` on a LocalCluster
of W single-threaded worker processes: start-up and scan time, separately.

Part 2 (dispatch): how many batches per second one scheduler hands out and takes back, with N
simulated workers (a LocalCluster of N in-process workers, one thread each) running a task that
returns at once -- the scheduler's ceiling, whatever the workers' disks and cores could do. The
batches are real: ``BATCH_FILES`` real FileTasks each, sent and answered as the executor does
(a bounded window of 2N+2 batches in flight, results taken as they land). In-process workers
share this process's GIL with the scheduler and client, so the figure is a lower bound.

    .venv/bin/python bench/cluster_bench.py                       # about a minute
    .venv/bin/python bench/cluster_bench.py --rounds 3 --sim 2,8,32 --batches 3000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from distributed import Client, LocalCluster  # noqa: E402

from kiosk.engine.cluster import ClusterExecutor  # noqa: E402
from kiosk.engine.cluster_spec import ClusterSpec  # noqa: E402
from kiosk.engine.scan import BATCH_FILES, ScanConfig, WorkerPool, scan_tasks  # noqa: E402
from kiosk.evidence.image import Evidence  # noqa: E402
from kiosk.evidence.resolve import resolve  # noqa: E402
from kiosk.hashsets.index import HashIndex  # noqa: E402
from kiosk.model import FileTask  # noqa: E402
from kiosk.packs.load import compile_packs  # noqa: E402

SAMPLES = ROOT / "sample_images"


def _config(image: Path, workers: int) -> ScanConfig:
    rules = compile_packs(ROOT / "rules", dev=True)
    index = HashIndex.load(ROOT / "hashsets", dev=True)
    return ScanConfig(
        evidence=resolve([image]),
        rules_blob=rules.to_bytes(),
        rule_meta=dict(rules.meta),
        hashsets=index.sets,
        workers=workers,
        gate_blob=rules.gate_bytes(),
        gate_prefixes=rules.gate_prefixes,
    )


def _tasks(image: Path, repeat: int) -> list[FileTask]:
    with Evidence(resolve([image])) as ev:
        one = list(ev.walk(ev.volumes()))
    out: list[FileTask] = []
    for r in range(repeat):  # the same files again, numbered on: a longer walk of one image
        base = r * len(one)
        out += [
            FileTask(
                base + i,
                t.locator,
                t.path,
                t.allocated,
                t.size,
                t.readable,
                t.unreadable_reason,
            )
            for i, t in enumerate(one)
        ]
    return out


def overhead(workers: int, repeat: int, rounds: int) -> dict[str, Any]:
    image = (SAMPLES / "mbr-fat16-ext4.dd").absolute()
    tasks = _tasks(image, repeat)
    cfg = _config(image, workers)
    pool: list[float] = []
    pool_start: list[float] = []
    for _ in range(rounds):
        t = time.perf_counter()
        workers_pool = WorkerPool(cfg)
        workers_pool.ready()
        pool_start.append(time.perf_counter() - t)
        t = time.perf_counter()
        n = sum(1 for _ in scan_tasks(tasks, cfg, pool=workers_pool))
        pool.append(time.perf_counter() - t)
        assert n == len(tasks)
    t = time.perf_counter()
    ex = ClusterExecutor(ClusterSpec("local", local_workers=workers))
    start = time.perf_counter() - t
    dask_runs: list[float] = []
    try:
        for _ in range(rounds + 1):  # the first run builds each worker's Scanner: reported apart
            t = time.perf_counter()
            n = sum(1 for _ in ex.scan(tasks, cfg))
            dask_runs.append(time.perf_counter() - t)
            assert n == len(tasks)
    finally:
        ex.close()
    return {
        "files": len(tasks),
        "workers": workers,
        "pool_start_s": statistics.median(pool_start),
        "pool_s": statistics.median(pool),
        "localcluster_start_s": start,
        "localcluster_first_scan_s": dask_runs[0],
        "localcluster_s": statistics.median(dask_runs[1:]),
    }


def _answer(batch: tuple[FileTask, ...]) -> list[tuple[int, str]]:
    """What a worker returns, minus the work: one small tuple per file."""
    return [(t.seq, "scanned") for t in batch]


def dispatch(n_workers: int, batches: int) -> dict[str, Any]:
    image = (SAMPLES / "mbr-fat16-ext4.dd").absolute()
    tasks = _tasks(image, BATCH_FILES // 28 + 1)[:BATCH_FILES]
    batch = tuple(tasks)
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=False,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        window = 2 * n_workers + 2
        done: queue.SimpleQueue[Any] = queue.SimpleQueue()
        sent = landed = 0
        t = time.perf_counter()
        while landed < batches:
            while sent < batches and sent - landed < window:
                f = client.submit(_answer, batch, key=f"b-{sent}", pure=False)
                f.add_done_callback(done.put)
                sent += 1
            f = done.get()
            f.result()
            landed += 1
        elapsed = time.perf_counter() - t
    return {
        "workers": n_workers,
        "batches": batches,
        "batches_per_s": batches / elapsed,
        "files_per_s": batches * BATCH_FILES / elapsed,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="pool / LocalCluster size (part 1)")
    ap.add_argument("--repeat", type=int, default=20, help="walks of the sample image (part 1)")
    ap.add_argument("--sim", default="2,8", help="simulated worker counts (part 2)")
    ap.add_argument("--batches", type=int, default=1000, help="batches per count (part 2)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    out: dict[str, Any] = {"overhead": overhead(args.workers, args.repeat, args.rounds)}
    o = out["overhead"]
    print(
        f"part 1: {o['files']} files, {o['workers']} workers: own pool start "
        f"{o['pool_start_s']:.2f} s, scan {o['pool_s']:.2f} s; LocalCluster start "
        f"{o['localcluster_start_s']:.2f} s, first scan "
        f"{o['localcluster_first_scan_s']:.2f} s, then {o['localcluster_s']:.2f} s"
    )
    out["dispatch"] = [dispatch(int(n), args.batches) for n in args.sim.split(",")]
    for d in out["dispatch"]:
        print(
            f"part 2: {d['workers']:3d} simulated workers: {d['batches_per_s']:7.0f} batches/s, "
            f"{d['files_per_s']:8.0f} files/s ({BATCH_FILES} files a batch)"
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
