"""One image's files scanned on a Dask cluster: the same tasks in, the same results out, in order.

Why Dask ``distributed``: a lab that outgrows one machine already runs (or can start in two
commands) a scheduler and workers, with TLS, worker restarts and task re-runs built in; kiosk
needs none of its collections, only ``submit`` and futures.

The contract is ``scan_tasks``': the walk's FileTasks in, one FileResult per task out in ``seq``
order. The coordinator (this process) keeps the walk, the keys, the report and the audit log;
what leaves it is the ``ScanConfig`` (the evidence's paths and sizes, the compiled rules, the
verified hash sets' paths and digests -- no key, no secret) sent once to every worker, and
batches of FileTasks (locators only). A worker builds a ``Scanner`` from the config before its
first file of a run, which re-checks what the coordinator verified: the rules' digest, every
evidence file's size, every hash set's manifest digest. The evidence is opened read-only from
the path in the ref, so every worker must see the same paths (shared storage).

Faults. A batch returns its results only when it is complete, so a worker killed mid-batch
costs nothing: the scheduler re-runs the batch elsewhere and no file is counted twice. A batch
that kills workers until the scheduler gives up (``distributed.scheduler.allowed-failures``) has
its files tried again one at a time, with nothing else of the run in flight (the scheduler blames
every task a dying worker held, so only a file run alone is blamed exactly); a file that kills
its workers alone is an error result for that file, as in the local pool. A lost scheduler ends
the run with ``ClusterError``, so the report says failed, and why.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from distributed import Client, Future, LocalCluster
from distributed.scheduler import KilledWorker

from kiosk.engine.cluster_spec import LOCAL, ClusterSpec
from kiosk.engine.scan import (
    BATCH_BYTES,
    BATCH_FILES,
    REORDER_WINDOW,
    ScanConfig,
    Scanner,
    _file_deadline,
    _full,
    _slim,
)
from kiosk.errors import ClusterError, KioskError, WorkerInitError
from kiosk.model import FileResult, FileStatus, FileTask
from kiosk.reports.model import ClusterRecord

# The report fields that describe the run, not the evidence (named in the report itself).
RUN_FIELDS = (
    "report_id",
    "started",
    "finished",
    "settings.workers",
    "settings.cluster",
    "audit_checkpoint",
)
CONNECT_TIMEOUT_S = 20.0
WORKERS_TIMEOUT_S = 60.0
LOST_GRACE_S = 30.0  # the client's connection down this long: the scheduler is lost
POLL_S = 0.25  # how often the loop looks at cancel and the connection while waiting


# --------------------------------------------------------------------------- worker side


@dataclass(frozen=True, slots=True)
class _Expect:
    """What the coordinator verified, checked by each worker before its first file of a run."""

    rules_sha256: str
    gate_sha256: str

    @classmethod
    def of(cls, cfg: ScanConfig) -> _Expect:
        return cls(_sha256(cfg.rules_blob), _sha256(cfg.gate_blob))


def _sha256(blob: bytes | None) -> str:
    return hashlib.sha256(blob or b"").hexdigest()


# Per worker process: the Scanner of each (run, thread); a libmagic handle is not shared.
_SCANNERS: dict[tuple[str, int], Scanner] = {}
_SCANNERS_LOCK = threading.Lock()


def _scanner(run: str, cfg: ScanConfig, expect: _Expect) -> Scanner:
    me = threading.get_ident()
    with _SCANNERS_LOCK:
        scanner = _SCANNERS.get((run, me))
        old = [k for k in _SCANNERS if k[1] == me and k[0] != run]
        stale = [_SCANNERS.pop(k) for k in old]
    for s in stale:  # an earlier run's evidence and sets are let go before this one's
        s.close()
    if scanner is not None:
        return scanner
    if _Expect.of(cfg) != expect:
        raise WorkerInitError("the rules this worker received are not the ones verified")
    scanner = Scanner(cfg)  # checks every evidence file's size and every hash set's digest
    with _SCANNERS_LOCK:
        _SCANNERS[(run, me)] = scanner
    return scanner


def _scan_batch(
    run: str, cfg: ScanConfig, expect: _Expect, batch: tuple[FileTask, ...]
) -> list[tuple[Any, ...]]:
    """A Dask task: one batch, answered whole (a worker lost mid-batch costs no half results).

    Scanner.scan turns every file's failure into its result; what can raise here is setting up.
    That error goes back as a plain WorkerInitError with one line: an exception that does not
    pickle would never reach the coordinator (distributed cannot report it), and the run would
    wait for a batch that never comes.
    """
    try:
        scanner = _scanner(run, cfg, expect)
    except KioskError as e:
        raise WorkerInitError(str(e)) from None
    except Exception as e:  # translated at the process edge: the message must travel
        raise WorkerInitError(f"{type(e).__name__}: {e}") from None
    return [_slim(scanner.scan(t)) for t in batch]


def _config(cfg: ScanConfig) -> ScanConfig:
    """The run's configuration as a task result, which every batch of the run depends on."""
    return cfg


def _forget(run: str) -> int:
    """Let go of a finished run's evidence and hash-set maps on a worker; how many it held."""
    with _SCANNERS_LOCK:
        mine = [_SCANNERS.pop(k) for k in [k for k in _SCANNERS if k[0] == run]]
    for s in mine:
        s.close()
    return len(mine)


# --------------------------------------------------------------------------- coordinator side


class ClusterExecutor:
    """A connection to a Dask scheduler (or an in-process LocalCluster) that scans tasks.

    One executor serves any number of scans (``kiosk batch`` connects once for all exhibits).
    """

    def __init__(self, spec: ClusterSpec) -> None:
        spec.check()
        self._spec = spec
        self._cluster: LocalCluster | None = None
        self._client: Client | None = None
        self._workers = 0  # counted when connected and when each scan starts
        try:
            if spec.address == LOCAL:
                self._cluster = LocalCluster(
                    n_workers=spec.local_workers or None,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",  # any free port: never a clash on 8787
                    silence_logs=logging.ERROR,
                )
                self._client = Client(self._cluster, set_as_default=False)
            else:
                self._client = Client(
                    spec.url,
                    security=spec.security(),
                    timeout=CONNECT_TIMEOUT_S,
                    set_as_default=False,
                )
            self._client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
            self._workers = len(self._client.nthreads())
        except (OSError, TimeoutError, ValueError) as e:
            self.close()
            raise ClusterError(
                f"cannot use the Dask scheduler at {spec.url}: {type(e).__name__}: {e}"
            ) from e

    def __enter__(self) -> ClusterExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def client(self) -> Client:
        if self._client is None:
            raise ClusterError("the Dask client is closed")
        return self._client

    def threads(self) -> int:
        """Worker threads connected now (each scans one batch at a time)."""
        try:
            nthreads = self.client.nthreads()
        except (OSError, TimeoutError) as e:
            raise ClusterError(f"lost the Dask scheduler at {self._spec.url}: {e}") from e
        self._workers = len(nthreads)
        return sum(nthreads.values())

    def record(self) -> ClusterRecord:
        """Asks nothing of the scheduler: a report is written even when it was lost."""
        return ClusterRecord(
            scheduler=self._spec.url,
            transport=self._spec.transport,
            workers=self._workers,
            run_fields=RUN_FIELDS,
        )

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError, TimeoutError, RuntimeError):
                self._client.close(timeout=10)
            self._client = None
        if self._cluster is not None:
            with contextlib.suppress(OSError, TimeoutError, RuntimeError):
                self._cluster.close(timeout=10)
            self._cluster = None

    def scan(
        self, tasks: Iterable[FileTask], cfg: ScanConfig, cancel: threading.Event | None = None
    ) -> Iterator[FileResult]:
        """Every task scanned on the cluster; results in ``seq`` order (see the module doc)."""
        paths = [*cfg.evidence.paths, *(s.path for s in cfg.hashsets)]
        relative = [p for p in paths if not p.is_absolute()]
        if relative:  # a worker's working directory is not ours
            raise ClusterError(
                f"{relative[0]}: a relative path cannot be opened by the cluster's workers; "
                "give the evidence and hash sets by absolute paths on shared storage"
            )
        return _Run(self, self.client, cfg, cancel).results(iter(tasks))


class _Run:
    """One scan's batches in flight, the results held for re-ordering, and the retries."""

    def __init__(
        self,
        ex: ClusterExecutor,
        client: Client,
        cfg: ScanConfig,
        cancel: threading.Event | None,
    ) -> None:
        self._ex = ex
        self._client = client
        self._cfg = cfg
        self._cancel = cancel
        self._id = uuid.uuid4().hex
        self._expect = _Expect.of(cfg)
        self._done: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()  # from the client thread
        self._inflight: dict[str, tuple[Future[Any], tuple[FileTask, ...], bool]] = {}
        # files of a batch that killed its workers: each is tried again alone (nothing else of
        # this run in flight), so a worker's death can be blamed on exactly one file
        self._suspects: deque[FileTask] = deque()
        self._due: dict[str, float] = {}  # key -> when the batch is overdue (monotonic)
        self._cfg_future: Future[Any] | None = None
        self._lost_since: float | None = None

    def _where(self) -> str:
        return self._ex._spec.url

    def _submit(self, batch: tuple[FileTask, ...], alone: bool) -> None:
        key = f"kiosk-scan-{self._id}-{batch[0].seq}-{len(batch)}{'-alone' if alone else ''}"
        try:
            fut = self._client.submit(
                _scan_batch,
                self._id,
                self._cfg_future,
                self._expect,
                batch,
                key=key,
                pure=False,
                retries=0,  # a task that raises is not re-run; a worker's death is (scheduler)
            )
        except (OSError, TimeoutError, RuntimeError) as e:
            raise ClusterError(f"lost the Dask scheduler at {self._where()}: {e}") from e
        self._inflight[key] = (fut, batch, alone)
        # the local pool's per-file limits, doubled for time queued behind other batches
        limit = 2 * sum(_file_deadline(self._cfg, t) for t in batch) + 60
        self._due[key] = time.monotonic() + limit
        fut.add_done_callback(self._done.put)

    def _landed(self, fut: Future[Any], held: dict[int, FileResult]) -> None:
        entry = self._inflight.pop(fut.key, None)  # type: ignore[arg-type]
        self._due.pop(fut.key, None)  # type: ignore[arg-type]
        if entry is None:
            return
        _, batch, alone = entry
        if fut.status == "finished":
            for task, slim in zip(batch, fut.result(), strict=True):
                held[task.seq] = _full(task, slim)
            return
        if fut.status == "cancelled":
            raise ClusterError(
                f"lost the Dask scheduler at {self._where()}: {len(self._inflight) + 1} "
                "batch(es) of files in flight were not examined"
            )
        exc = fut.exception()
        if isinstance(exc, KilledWorker):
            if not alone:  # the scheduler blames every task a dying worker held: find the file
                self._suspects.extend(batch)
                return
            task = batch[0]
            held[task.seq] = FileResult(
                task,
                FileStatus.ERROR,
                "the cluster workers reading this file died each time it was tried on its "
                "own (the scheduler's allowed-failures limit); file not examined",
            )
            return
        if isinstance(exc, KioskError):  # a worker could not set itself up for this run
            raise WorkerInitError(f"a cluster worker could not start this scan: {exc}") from exc
        raise ClusterError(f"a cluster worker failed: {type(exc).__name__}: {exc}") from exc

    def _check_connection(self) -> None:
        """While nothing lands: the scheduler still there, and no batch far beyond its time."""
        late = [k for k, due in self._due.items() if time.monotonic() > due]
        if late:
            n = len(self._inflight[late[0]][1])
            raise ClusterError(
                f"a batch of {n} file(s) did not come back from the cluster within its time "
                "limit (a worker hung, or the scheduler cannot report its outcome)"
            )
        status = self._client.status
        if status == "running":
            self._lost_since = None
            return
        now = time.monotonic()
        if status in ("closed", "closing") or (
            self._lost_since is not None and now - self._lost_since > LOST_GRACE_S
        ):
            raise ClusterError(
                f"lost the Dask scheduler at {self._where()}: {len(self._inflight)} batch(es) "
                "of files in flight were not examined"
            )
        if self._lost_since is None:
            self._lost_since = now

    def results(self, tasks: Iterator[FileTask]) -> Iterator[FileResult]:
        held: dict[int, FileResult] = {}
        next_seq: int | None = None
        highest = -1
        exhausted = False
        try:
            try:
                # a task, not scattered data: a worker that dies holding it costs a recompute
                # from the spec the scheduler keeps, where scattered data would be lost for good
                # and every batch depending on it cancelled
                self._cfg_future = self._client.submit(
                    _config, self._cfg, key=f"kiosk-config-{self._id}", pure=False
                )
            except (OSError, TimeoutError, RuntimeError) as e:
                raise ClusterError(f"lost the Dask scheduler at {self._where()}: {e}") from e
            window = max(4, 2 * self._ex.threads() + 2)  # batches in flight
            while True:
                if self._cancel is not None and self._cancel.is_set():
                    return
                if self._suspects and not self._inflight:
                    self._submit((self._suspects.popleft(),), alone=True)
                while (
                    not self._suspects
                    and not exhausted
                    and len(self._inflight) < window
                    and (next_seq is None or highest - next_seq < REORDER_WINDOW)
                ):
                    batch = _next_batch(tasks)
                    if not batch:
                        exhausted = True
                        break
                    if next_seq is None:
                        next_seq = batch[0].seq  # walk sequence numbers are contiguous
                    highest = batch[-1].seq
                    self._submit(batch, alone=False)
                if not self._inflight:
                    break
                try:
                    fut = self._done.get(timeout=POLL_S)
                except queue.Empty:
                    self._check_connection()
                    continue
                self._landed(fut, held)
                while next_seq is not None and next_seq in held:
                    yield held.pop(next_seq)
                    next_seq += 1
            for seq in sorted(held):  # nothing in flight: no gap can remain
                yield held.pop(seq)
        finally:
            self._release()

    def _release(self) -> None:
        """Cancel what is still in flight and let the workers close this run's files."""
        if self._client.status != "running":
            return
        with contextlib.suppress(OSError, TimeoutError, RuntimeError):
            pending = [f for f, _, _ in self._inflight.values()]
            if pending:
                self._client.cancel(pending)
            if self._cfg_future is not None:
                self._client.cancel([self._cfg_future])
            self._client.run(_forget, self._id, on_error="ignore")
        self._inflight.clear()
        self._due.clear()


def _next_batch(tasks: Iterator[FileTask]) -> tuple[FileTask, ...]:
    batch: list[FileTask] = []
    size = 0
    while len(batch) < BATCH_FILES and size < BATCH_BYTES:
        t = next(tasks, None)
        if t is None:
            break
        batch.append(t)
        size += t.size
    return tuple(batch)
