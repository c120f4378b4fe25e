"""Resource bounds on an image with many files: memory and open descriptors stay flat.

The run happens in a child interpreter that reports its own peak RSS, its workers' peak RSS and
its open descriptors, so the numbers are not mixed with the test runner's. The CI run uses
``KIOSK_MANY_FILES`` files (10 000 by default); tests/README.md records the 100 000-file run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HASHSETS, RULES

COUNT = int(os.environ.get("KIOSK_MANY_FILES", "10000"))

PROBE = r"""
import json, multiprocessing, os, sys, threading, time
from pathlib import Path
from kiosk.trust.audit import AuditLog
from kiosk.model import CaseRecord, LegalBasis
from kiosk.trust.signing import load_signer, kiosk_home
from kiosk.engine.triage import Hooks, TriageRequest, run_triage
from kiosk.reports.encode import file_counts_json

def hwm(pid="self"):
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork+exec
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(next(x for x in f if x.startswith("VmHWM")).split()[1])
    except (OSError, StopIteration):
        return 0

workers_peak = 0
done = threading.Event()
def watch():
    global workers_peak
    while not done.is_set():
        for child in multiprocessing.active_children():
            workers_peak = max(workers_peak, hwm(child.pid))
        time.sleep(0.1)
watcher = threading.Thread(target=watch, daemon=True)
watcher.start()
# Opened once per process, before any file, and kept: the helpers' server (its alive pipe) and
# the shared-memory heap the workers' "now scanning" records live in. What must stay flat is
# what a file or a worker costs.
from kiosk.processes import helper_context, warm_up
warm_up()
helper_context().RawArray("d", 2)
fds_before = len(os.listdir("/proc/self/fd"))
case = CaseRecord("C", "E", "PC-1", "DS-2", LegalBasis.WARRANT, "W")
req = TriageRequest(case=case, image=(Path(sys.argv[1]),), rules_dir=Path(sys.argv[2]),
                    hashsets_dir=Path(sys.argv[3]), out_dir=Path(sys.argv[4]), inventory=True)
hooks = Hooks(signer=load_signer(), audit=AuditLog(kiosk_home() / "audit.jsonl"))
result = run_triage(req, hooks)
done.set()
watcher.join()
print(json.dumps({
    "fds_before": fds_before, "fds_after": len(os.listdir("/proc/self/fd")),
    "rss_self_kib": hwm(), "rss_worker_peak_kib": workers_peak,
    "files": file_counts_json(result.report.coverage.files),
}))
"""


@pytest.fixture(scope="module")
def many_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("many")
    src = root / "src"
    for i in range(COUNT):
        d = src / f"dir{i // 1000:03d}"
        if i % 1000 == 0:
            d.mkdir(parents=True)
        (d / f"f{i:06d}.txt").write_bytes(b"x" * (i % 700))
    img = root / "many.dd"
    size_mib = 64 + COUNT // 150
    subprocess.run(
        [
            "mke2fs",
            "-q",
            "-t",
            "ext4",
            "-N",
            str(COUNT + 2000),
            "-d",
            str(src),
            "-F",
            str(img),
            f"{size_mib}M",
        ],
        check=True,
        env={**os.environ, "E2FSPROGS_FAKE_TIME": "1700000000"},
    )
    return img


def test_many_files_keep_memory_and_descriptors_flat(many_files: Path, tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            str(many_files),
            str(RULES),
            str(HASHSETS),
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    stats = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"resources for {COUNT} files: {stats}")  # noqa: T201 - recorded in tests/README.md
    files = stats["files"]
    assert files["found"] >= COUNT
    assert files["scanned"] + files["known_good"] >= COUNT
    assert files["error"] == 0
    assert stats["fds_after"] <= stats["fds_before"] + 2
    assert stats["rss_self_kib"] < 300 * 1024
    assert 0 < stats["rss_worker_peak_kib"] < 200 * 1024
