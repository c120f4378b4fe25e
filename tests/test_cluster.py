"""The scan on a real Dask cluster: ``dask scheduler`` and two ``dask worker`` processes on
127.0.0.1 over mutual TLS (certificates made here), against this machine's own worker pool.

Oracle: the local pool (itself checked against the Sleuth Kit in test_scan/test_image). The
inventory bytes and the report, but for the fields the report names as describing the run, must
be identical; a worker killed mid-file must cost nothing; a file that kills every worker that
reads it must be an error for that file only; a lost scheduler must end in a signed failed report.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from kiosk.canonical import canonical
from kiosk.engine.batch import Exhibit, read_manifest, run_batch
from kiosk.engine.cluster import RUN_FIELDS, ClusterExecutor
from kiosk.engine.cluster_spec import ClusterSpec
from kiosk.engine.scan import ScanConfig, scan_tasks
from kiosk.engine.triage import CLUSTER_ENGINE, TriageRequest, TriageResult
from kiosk.errors import ClusterError
from kiosk.model import FileStatus, Outcome
from kiosk.reports.encode import file_json
from kiosk.reports.report import file_record
from kiosk.reports.summary import INSECURE_CLUSTER
from kiosk.reports.text import render_text
from kiosk.trust.signing import load_signer
from tests.conftest import HASHSETS, MANIFEST, RULES, SAMPLES, TEST_CAP, fixed_hooks, scan_cmd
from tests.dask_cluster import DaskCluster, make_certs
from tests.dask_cluster import dask_cluster as start_cluster
from tests.test_scan import _config as _any_config
from tests.test_scan import _tasks

pytestmark = pytest.mark.timeout(900)  # a real cluster starts in seconds, on a busy CI in minutes

POISON_PATH = "/Documents/report.csv"  # in ext4.dd: the file that kills its reader
HANG_PATH = "/Documents/settings.json"  # in ext4.dd: the file a worker is killed on


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaskCluster, Path]]:
    """A TLS cluster of two workers; copies of ext4.dd named for the faults the workers inject."""
    base = tmp_path_factory.mktemp("lab")
    images = base / "images"
    images.mkdir()
    for name in ("poison.dd", "hang.dd"):
        shutil.copyfile(SAMPLES / "ext4.dd", images / name)
    env = {
        "KIOSK_TEST_POISON": f"poison.dd:{POISON_PATH}",
        "KIOSK_TEST_HANG": f"hang.dd:{HANG_PATH}={base / 'hung.pid'}",
    }
    with start_cluster(base / "cluster", certs=make_certs(base / "certs"), env=env) as c:
        yield c, images


@pytest.fixture(scope="module")
def executor(lab: tuple[DaskCluster, Path]) -> Iterator[ClusterExecutor]:
    with ClusterExecutor(lab[0].spec()) as ex:
        ex.client.wait_for_workers(2, timeout=60)
        yield ex


def _lines(results: list[Any]) -> list[bytes]:
    return [canonical(file_json(file_record(r))) for r in results]


def _without_run_fields(report_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((report_dir / "report.json").read_bytes())
    for dotted in RUN_FIELDS:
        *parents, last = dotted.split(".")
        node = data
        for p in parents:
            node = node[p]
        node.pop(last, None)
    return data


def test_a_remote_scheduler_needs_tls_unless_insecure_is_asked_for(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match=r"plain tcp: a remote scheduler needs TLS"):
        ClusterSpec("tcp://10.0.0.5:8786").check()
    ClusterSpec("tcp://10.0.0.5:8786", insecure=True).check()
    assert ClusterSpec("tcp://10.0.0.5:8786", insecure=True).transport == "insecure"
    bare = ClusterSpec("10.0.0.5:8786")
    assert (bare.url, bare.transport) == ("tls://10.0.0.5:8786", "tls")
    with pytest.raises(ClusterError, match=r"give --tls-ca, --tls-cert, --tls-key"):
        bare.check()
    with pytest.raises(ClusterError, match=r"--tls-ca .*: not a readable file"):
        ClusterSpec(
            "tls://10.0.0.5:8786",
            tls_ca=tmp_path,  # a folder, not a file
            tls_cert=tmp_path,
            tls_key=tmp_path / "none.key",
        ).check()
    with pytest.raises(ClusterError, match=r"not ws://"):
        ClusterSpec("ws://10.0.0.5:8786").check()


def _config(image: Path, workers: int) -> ScanConfig:
    """A scan's configuration as a cluster run makes it: libyara (``triage.engine_for``)."""
    return _any_config(image, workers, engine=CLUSTER_ENGINE)


def test_cluster_inventory_and_report_equal_the_local_pool(
    executor: ClusterExecutor, triage: Callable[..., TriageResult], tmp_path: Path
) -> None:
    for name in ("mbr-fat16-ext4.dd",):  # two filesystems; the batch test covers the rest
        local = triage(name, out_dir=tmp_path / name / "local", yara_engine=CLUSTER_ENGINE)
        remote = triage(
            name, out_dir=tmp_path / name / "cluster", hooks=fixed_hooks(executor=executor)
        )
        inv = (remote.report_dir / "files.jsonl").read_bytes()
        assert inv == (local.report_dir / "files.jsonl").read_bytes()
        assert inv.count(b"\n") > 10
        assert remote.report.outcome.status is Outcome.COMPLETE
        assert remote.report.findings  # the sample images carry findings: not an empty match
        cluster = remote.report.settings.cluster
        assert cluster is not None
        assert (cluster.transport, cluster.workers) == ("tls", 2)
        assert cluster.scheduler.startswith("tls://127.0.0.1:")
        assert local.report.settings.cluster is None
        assert _without_run_fields(remote.report_dir) == _without_run_fields(local.report_dir)


def test_a_worker_killed_mid_file_costs_nothing(
    executor: ClusterExecutor, lab: tuple[DaskCluster, Path], tmp_path: Path
) -> None:
    image = lab[1] / "hang.dd"
    marker = lab[1].parent / "hung.pid"
    tasks = _tasks(image)
    reference = list(scan_tasks(tasks, _config(image, workers=0)))
    killed: list[int] = []

    def kill_the_hung_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if marker.exists() and marker.read_text():
                pid = int(marker.read_text())
                os.kill(pid, signal.SIGKILL)  # the worker is inside HANG_PATH: mid-file
                killed.append(pid)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_the_hung_worker)
    killer.start()
    got = list(executor.scan(tasks, _config(image, workers=2)))
    killer.join()
    assert killed
    assert [r.task.seq for r in got] == [t.seq for t in tasks]  # none lost, none twice
    assert _lines(got) == _lines(reference)
    assert not [r for r in got if r.status is FileStatus.ERROR]
    executor.client.wait_for_workers(2, timeout=60)  # the nanny brought it back


def test_a_file_that_kills_every_worker_is_an_error_for_that_file_only(
    executor: ClusterExecutor, lab: tuple[DaskCluster, Path]
) -> None:
    image = lab[1] / "poison.dd"
    tasks = _tasks(image)
    reference = {r.task.seq: r for r in scan_tasks(tasks, _config(image, workers=0))}
    got = list(executor.scan(tasks, _config(image, workers=2)))
    assert [r.task.seq for r in got] == [t.seq for t in tasks]
    bad = [r for r in got if r.status is FileStatus.ERROR]
    assert [r.task.path for r in bad] == [POISON_PATH]
    assert "died each time it was tried on its own" in bad[0].reason
    for r in got:
        if r.task.path != POISON_PATH:
            assert _lines([r]) == _lines([reference[r.task.seq]])
    executor.client.wait_for_workers(2, timeout=60)


def test_nothing_secret_leaves_the_coordinator(kiosk_home: Path) -> None:
    """What every worker receives is the ScanConfig: the evidence's paths, the rules, the sets'
    paths and digests. The signing key is not in it, in any encoding."""
    image = SAMPLES / "ext4.dd"
    sent = pickle.dumps(_config(image, workers=2))
    private = load_signer(kiosk_home / "keys" / "kiosk.key").private
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    body = b"".join(pem.splitlines()[1:-1])  # the key's base64 (the rules may name "PRIVATE KEY")
    assert raw not in sent
    assert raw.hex().encode() not in sent
    assert body not in sent
    assert str(kiosk_home).encode() not in sent


def test_a_lost_scheduler_ends_the_run_failed_with_a_signed_report(
    tmp_path: Path, triage: Callable[..., TriageResult]
) -> None:
    """Plain tcp, accepted with --insecure (and recorded); the scheduler killed mid-scan."""
    marker = tmp_path / "hung.pid"
    env = {"KIOSK_TEST_HANG": f"ntfs.dd:/Documents/settings.json={marker}"}
    with start_cluster(tmp_path / "c", workers=1, env=env) as c:
        ex = ClusterExecutor(c.spec())

        def kill_scheduler_once_a_worker_is_mid_file() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (marker.exists() and marker.read_text()):
                time.sleep(0.02)
            c.kill_scheduler()

        killer = threading.Thread(target=kill_scheduler_once_a_worker_is_mid_file)
        killer.start()
        try:
            result = triage("ntfs.dd", hooks=fixed_hooks(executor=ex))
        finally:
            killer.join()
            ex.close()
    report = result.report
    assert report.outcome.status is Outcome.FAILED
    assert "lost the Dask scheduler" in (report.outcome.reason or "")
    assert report.coverage.files.not_reached > 0
    assert report.settings.cluster is not None
    assert report.settings.cluster.transport == "insecure"
    assert INSECURE_CLUSTER in render_text(report)  # banner_notes: report show, HTML, the app
    assert (result.report_dir / "report.dsse.json").is_file()


def test_a_batch_of_every_sample_image_with_one_broken_row_on_the_cluster(
    executor: ClusterExecutor, tmp_path: Path, written_reports: list[Path]
) -> None:
    """Every sample image as one exhibit through the cluster, plus a row whose evidence is a
    file but no image: that exhibit ends in error, every other one completes and is signed."""
    broken = tmp_path / "broken.E01"
    broken.write_bytes((SAMPLES / "ewf.E01").read_bytes()[:4096])
    rows = [(im["segments"][0], f"EX-{i}") for i, im in enumerate(MANIFEST["images"], 1)]
    rows.insert(2, (str(broken), "EX-BROKEN"))
    (tmp_path / "m.csv").write_text(
        "evidence,case,exhibit,officer,authorised_by,legal_basis,legal_ref\n"
        + "".join(f"{SAMPLES / ev},CASE-9,{ex},PC-1,DS-2,warrant,W-9\n" for ev, ex in rows)
    )
    exhibits = read_manifest(tmp_path / "m.csv")
    assert len(exhibits) == len(MANIFEST["images"]) + 1
    out = tmp_path / "reports"

    def request(ex: Exhibit) -> TriageRequest:
        return TriageRequest(
            case=ex.case,
            image=ex.evidence,
            rules_dir=RULES,
            hashsets_dir=HASHSETS,
            out_dir=out / ex.case.exhibit_ref,  # the fixed hooks give every report the id "r1"
            inventory=True,
            max_yara_bytes=TEST_CAP,
        )

    done: list[str] = []
    outcomes = run_batch(
        exhibits,
        request,
        lambda _ex: fixed_hooks(executor=executor),
        threading.Event(),
        on_done=lambda _i, o: done.append(o.exhibit.case.exhibit_ref),
    )
    assert done == [ex.case.exhibit_ref for ex in exhibits]  # progress, per exhibit, in order
    status = {o.exhibit.case.exhibit_ref: o for o in outcomes}
    assert status["EX-BROKEN"].status == "error"
    assert status["EX-BROKEN"].report_dir is None
    assert status["EX-BROKEN"].reason
    for ref, o in status.items():
        if ref == "EX-BROKEN":
            continue
        assert o.status == "complete", (ref, o.reason)
        assert o.findings > 0  # every sample image carries the marker
        assert o.report_dir is not None
        assert (o.report_dir / "report.dsse.json").is_file()
        report = json.loads((o.report_dir / "report.json").read_bytes())
        assert report["settings"]["cluster"]["transport"] == "tls"
        written_reports.append(o.report_dir)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--scheduler", "tcp://127.0.0.1:9"], "is plain tcp: a remote scheduler needs TLS"),
        (["--scheduler", "127.0.0.1:9"], "is TLS: give --tls-ca, --tls-cert, --tls-key"),
    ],
)
def test_kiosk_scan_refuses_an_unprotected_scheduler_in_one_line(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    cmd = [*scan_cmd(SAMPLES / "fat16.dd", tmp_path / "out"), *flags]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1
    assert message in run.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_an_embedded_local_cluster_scans_as_the_local_pool() -> None:
    """``--scheduler local``: a LocalCluster started inside the run, recorded as such."""
    image = SAMPLES / "gpt.dd"
    tasks = _tasks(image)
    reference = list(scan_tasks(tasks, _config(image, workers=0)))
    with ClusterExecutor(ClusterSpec("local", local_workers=1)) as ex:
        got = list(ex.scan(tasks, _config(image, workers=1)))
        record = ex.record()
    assert _lines(got) == _lines(reference)
    assert len(got) > 10
    assert (record.scheduler, record.transport, record.workers) == ("local", "local", 1)
