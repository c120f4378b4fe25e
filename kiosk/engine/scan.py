"""The engine: a stream of FileTasks in, a stream of FileResults out, in walk order.

Why processes, not threads: hashlib and yara-python release the GIL, so threads would scale too,
but the Sleuth Kit parses hostile filesystems in native code, and one crash there must cost one
file, not the run. Each worker process opens the evidence itself (read-only, from the
EvidenceRef resolved once by the caller, and each file by its task's locator), gets the compiled
rules as bytes and the verified hash-set records, and streams each file in 1 MiB chunks through MD5,
SHA-1 and SHA-256, keeping a copy only up to the YARA cap. Measured trade-off: bench/README.md.

The parent sends small batches over a pipe per worker and gets one result per file back, so when a
worker dies or exceeds the per-file time limit we know exactly which file it was on: that file
becomes an error result, the rest of its batch goes back in the queue, and a new worker starts.
Results are re-ordered by sequence number through a bounded window, so the output does not depend
on the number of workers, and memory does not grow with the image.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import queue
import selectors
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import magic
import yara

from kiosk.config import (
    DEFAULT_MAX_YARA_BYTES,
    DEFAULT_WORKERS,
    DEFAULT_YARA_TIMEOUT_S,
    ArchiveLimits,
)
from kiosk.engine.archives import Expander
from kiosk.engine.dispatch import Dispatch
from kiosk.engine.memo import ContentMemo
from kiosk.engine.probe import ContentProbe
from kiosk.engine.windows import WINDOW_BYTES, Hits, WindowMatcher, over_cap, scan_area, scan_slack
from kiosk.errors import (
    KioskError,
    PageMismatch,
    RuleScanError,
    RuleTimeoutError,
    SparseStreamError,
    WorkerInitError,
)
from kiosk.evidence.image import Evidence
from kiosk.evidence.resolve import EvidenceRef
from kiosk.hashsets.index import SET_INTEGRITY, HashIndex, HashSet
from kiosk.model import FileResult, FileStatus, FileTask
from kiosk.packs.engines import LIBYARA, load_ahead
from kiosk.packs.load import Matcher, RuleMeta, engine_of_blob
from kiosk.processes import helper_context, tune_allocator

HEAD_BYTES = 8192  # libmagic sees the head only: one call per file, ~0.2 ms
BATCH_FILES = 32
BATCH_BYTES = 8 << 20
# A worker whose batch is down to this many files gets the next one already, so it never waits
# a round trip for work; attribution is unchanged (it answers files strictly in the order sent).
TOP_UP_FILES = 8
SEND_FILES = 8  # a worker's results travel in groups of up to this many (see _worker_main)
SEND_SECONDS = 0.05  # ... or as soon as this long has passed since its last group
REORDER_WINDOW = 8192
SPARSE_CHECK_MIN = 1 << 30  # streams at least this large are checked for holes before reading
DEFAULT_MAX_SPARSE_BYTES = 16 << 30  # results held for re-ordering at most; bounds parent memory


@dataclass(frozen=True, slots=True)
class ScanConfig:
    """Everything a worker needs to rebuild the scanner in its own process."""

    evidence: EvidenceRef  # resolved once by the caller: workers never look for segments
    rules_blob: bytes | None
    rule_meta: dict[tuple[str, str], RuleMeta]
    hashsets: tuple[HashSet, ...]  # what the parent verified; a worker opens exactly these files
    max_yara_bytes: int = DEFAULT_MAX_YARA_BYTES
    yara_timeout_s: int = DEFAULT_YARA_TIMEOUT_S
    file_timeout_s: float = 300.0  # plus size / FILE_TIMEOUT_RATE; only enforced with workers
    max_sparse_bytes: int = DEFAULT_MAX_SPARSE_BYTES
    workers: int = DEFAULT_WORKERS
    gate_blob: bytes | None = None  # reduced rule set for files no format-gated rule can match
    gate_prefixes: tuple[bytes, ...] = ()  # heads that need the full set (kiosk.packs.gate)
    yara_enabled: bool = True  # False: hash-only run (--no-yara); every file says so
    archives: ArchiveLimits = field(default_factory=ArchiveLimits)  # how far archives expand
    window_blob: bytes | None = None  # the window-safe rules (kiosk.packs.windowsafe)
    window_engine: str = LIBYARA  # the engine that compiled them
    window_rule_count: int = 0
    window_max_match: int = 1  # their longest match: the windows' overlap
    window_bytes: int = WINDOW_BYTES
    slack: bool = False  # scan each allocated file's slack (unallocated space is its own task)
    # no rule reads filename/filepath/extension: identical content is matched once (engine.memo)
    same_content_same_matches: bool = False
    rule_externals: frozenset[str] | None = None  # the externals the rules read; None: all


YARA_DISABLED = "YARA disabled for this run"
FILE_TIMEOUT_RATE = 20_000_000  # bytes/s assumed at worst when stretching the per-file limit


# Files at least this large have their MD5 computed on a second thread. MD5 has no hardware
# help here and takes half of the three hashes' time (745 MB/s against 1.9 and 1.8 GB/s for
# SHA-1/SHA-256 with SHA-NI), so one large file hashes about 1.8x faster when the other core has
# nothing else to do -- typically a pagefile or a video that is the last file of a scan. When
# both cores are busy it costs nothing measurable (one queue hand-off per 1 MiB chunk).
BESIDE_MD5_MIN = 16 << 20


class _BesideMd5:
    """MD5 fed from a bounded queue by the reading thread; hashlib drops the GIL per update."""

    def __init__(self) -> None:
        self._h = hashlib.md5()  # noqa: S324 - forensic identity, not security
        self._q: queue.Queue[bytes | None] = queue.Queue(maxsize=8)  # at most 8 chunks held
        self._t = threading.Thread(target=self._run, name="md5", daemon=True)
        self._t.start()

    def _run(self) -> None:
        while (chunk := self._q.get()) is not None:
            self._h.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._q.put(chunk)

    def finish(self) -> None:
        """Wait for every queued chunk; idempotent (the read may end early or fail)."""
        if self._t.is_alive():
            self._q.put(None)
            self._t.join()

    def digest(self) -> bytes:
        self.finish()
        return self._h.digest()

    def hexdigest(self) -> str:
        self.finish()
        return self._h.hexdigest()


class Scanner:
    """Per-process state: the evidence, the rules, the hash index and a libmagic handle."""

    def __init__(self, cfg: ScanConfig) -> None:
        self._ev = Evidence(cfg.evidence)
        self._cfg = cfg
        self._matcher = (
            Matcher(
                cfg.rules_blob,
                cfg.rule_meta,
                cfg.yara_timeout_s,
                cfg.gate_blob,
                cfg.gate_prefixes,
                cfg.rule_externals,
            )
            if cfg.rules_blob and cfg.yara_enabled
            else None
        )
        self._index = HashIndex.load(None, verified=cfg.hashsets)
        self._magic = _MAGIC_AHEAD.pop() if _MAGIC_AHEAD else magic.Magic(mime=True)
        self._archives = Expander(
            cfg.archives,
            cfg.max_yara_bytes,
            cfg.yara_enabled,
            cfg.yara_timeout_s,
            self._ev.chunks,
            self._matcher,
            self._index,
            self._mime,
        )
        self._windows = (  # unallocated space, slack, and files over the cap (engine.windows)
            WindowMatcher(
                cfg.window_engine,
                cfg.window_blob,
                cfg.rule_meta,
                cfg.window_max_match,
                cfg.yara_timeout_s,
                cfg.window_bytes,
                cfg.window_rule_count,
            )
            if cfg.window_blob and cfg.yara_enabled
            else None
        )
        self._probe = ContentProbe(self._index)  # disguised, encrypted, look-alike pictures
        self._memo = ContentMemo(cfg.same_content_same_matches)

    def close(self) -> None:
        self._ev.close()

    def scan(self, task: FileTask) -> FileResult:
        """One file: read once, hash, type, look up, YARA; every failure becomes the result."""
        if not task.readable:
            return FileResult(task, FileStatus.UNRECOVERABLE, task.unreadable_reason)
        try:
            if (loc := task.area) is not None:  # unallocated space, outside partitions
                return scan_area(self._ev, task, loc, self._windows)
            r = self._probe.finish(self._scan(task))  # disguised, encrypted, look-alikes
            r = self._archives.expand(task, r)  # an archive: its members too
            if self._cfg.slack and self._windows is not None and task.allocated:
                r = dataclasses.replace(r, areas=scan_slack(self._ev, task, self._windows))
            return r
        except PageMismatch as e:  # a set is not what was signed (a perceptual search, say)
            return FileResult(task, FileStatus.ERROR, f"{SET_INTEGRITY}{e}")
        except Exception as e:  # one file's failure must not end the run; it is recorded
            return FileResult(task, FileStatus.ERROR, f"internal error: {type(e).__name__}: {e}")

    def _scan(self, task: FileTask) -> FileResult:
        if task.size >= SPARSE_CHECK_MIN and task.size > self._cfg.max_sparse_bytes:
            stored = self._ev.stored_bytes(task)
            if stored is not None and stored * 4 < task.size:
                # a crafted or sparse file claiming terabytes: hashing the holes would take hours
                return FileResult(
                    task,
                    FileStatus.ERROR,
                    f"sparse file: claims {task.size} bytes but stores only {stored}; hashing "
                    f"more than {self._cfg.max_sparse_bytes} bytes of holes is beyond the limit, "
                    "not examined",
                )
        cap = self._cfg.max_yara_bytes
        keep = self._matcher is not None  # hash-only runs hold no content; others the head
        tail_hits = Hits()
        tail = (  # over the cap: the window-safe rules see the rest, in windows
            self._windows.stream(self._windows.head_windows(cap), None, tail_hits)
            if task.size > cap and keep and self._windows is not None
            else None
        )
        skip = tail.start if tail is not None else 0  # bytes the head's scan covers already
        # MD5 and SHA-1 are forensic identities here (hash sets use them), not security
        sha1, sha256 = hashlib.sha1(), hashlib.sha256()  # noqa: S324
        md5 = _BesideMd5() if task.size >= BESIDE_MD5_MIN else hashlib.md5()  # noqa: S324
        buf = bytearray()
        head = last = b""
        done = 0
        sparse_reason = ""
        self._probe.start(task)
        try:
            for chunk in self._ev.chunks(task):
                self._probe.feed(chunk)
                md5.update(chunk)
                sha1.update(chunk)
                sha256.update(chunk)
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                if keep and len(buf) < cap:
                    buf += chunk[: cap - len(buf)]
                if tail is not None and done + len(chunk) > skip:
                    if done <= skip:  # the windows start here: the byte before is their context
                        at = skip - done
                        tail.prime(chunk[at - 1 : at] if at else last)
                    tail.feed(chunk if done >= skip else chunk[skip - done :])
                last = chunk[-1:]
                done += len(chunk)
        except SparseStreamError as e:
            sparse_reason = str(e)
        except (OSError, KioskError) as e:
            return FileResult(
                task, FileStatus.ERROR, f"content could not be read: {e}", bytes_read=done
            )
        finally:
            if isinstance(md5, _BesideMd5):
                md5.finish()
        digests = {"md5": md5.digest(), "sha1": sha1.digest(), "sha256": sha256.digest()}
        try:
            hits = self._index.lookup(digests)
        except PageMismatch as e:  # the set is not what was signed: the run fails on this
            return FileResult(task, FileStatus.ERROR, f"{SET_INTEGRITY}{e}", bytes_read=done)
        good = [h.hashset for h in hits if h.disposition == "known_good"]
        known_good = bool(good) and not any(h.disposition == "known_bad" for h in hits)
        seen = self._memo.get(digests["sha256"])
        mime = None if known_good else (seen.mime if seen else self._mime(head))
        if mime is not None and seen is None:
            self._memo.mime(digests["sha256"], mime)
        base: dict[str, Any] = {
            "md5": md5.hexdigest(),
            "sha1": sha1.hexdigest(),
            "sha256": sha256.hexdigest(),
            "mime": mime,
            "bytes_read": done,
            "hash_matches": hits,
        }
        if known_good:
            return FileResult(
                task,
                FileStatus.KNOWN_GOOD,
                f"listed in known-good set {', '.join(good)}: not typed or YARA-scanned",
                **base,
            )
        if not self._cfg.yara_enabled:
            why = f"{YARA_DISABLED}; {sparse_reason}" if sparse_reason else YARA_DISABLED
            return FileResult(task, FileStatus.HASHED_ONLY, why, **base)
        if sparse_reason:
            return FileResult(task, FileStatus.SCANNED, sparse_reason, **base)
        if task.size > cap and self._matcher is None:
            return FileResult(
                task,
                FileStatus.HASHED_ONLY,
                f"larger than the YARA size cap ({cap} bytes): hashed and typed only",
                **base,
            )
        if self._matcher is None:
            return FileResult(
                task, FileStatus.HASHED_ONLY, "no rule packs loaded: hashed and typed only", **base
            )
        whole = task.size <= cap  # over the cap the tail is matched in windows: never memoised
        if whole and seen is not None and seen.matches is not None:
            return FileResult(task, FileStatus.SCANNED, "", rule_matches=seen.matches, **base)
        try:
            matches = self._matcher.match(buf, task.filename, task.path, base["md5"])
            if whole:
                self._memo.matches(digests["sha256"], matches)
        except (yara.TimeoutError, RuleTimeoutError):
            return FileResult(
                task,
                FileStatus.ERROR,
                f"YARA scan timed out after {self._cfg.yara_timeout_s} s",
                **base,
            )
        except (yara.Error, RuleScanError) as e:
            return FileResult(task, FileStatus.ERROR, f"YARA scan failed: {e}", **base)
        if task.size > cap:  # the head had every rule; the rest the window-safe ones
            return over_cap(task, base, matches, cap, tail, tail_hits, len(self._cfg.rule_meta))
        return FileResult(task, FileStatus.SCANNED, sparse_reason, rule_matches=matches, **base)

    def _mime(self, head: bytes) -> str:
        if not head:
            return "application/x-empty"
        try:
            return str(self._magic.from_buffer(head))
        except magic.MagicException as e:
            return f"unknown (libmagic: {e})"


# --------------------------------------------------------------------------- worker process


# A libmagic handle a standby worker opened and used once before its scan (``_standby``).
_MAGIC_AHEAD: list[magic.Magic] = []
_WARM_TEXT = b"#!/bin/sh\n# kiosk: libmagic's first text buffer compiles its patterns\necho ok\n"


def _standby(conn: Connection, ahead: tuple[bytes, ...]) -> ScanConfig | None:
    """A standby worker's wait: load the rules it was given, then wait for its scan's config.

    Why: started before Run is pressed (``kiosk.engine.standby``), it does now what every
    worker does first -- deserialise the rule sets, open libmagic and compile its patterns on a
    first buffer (9 ms) -- so the scan's first files are not kept waiting for it. A set that
    cannot be loaded here is left for the scan, which loads it again and reports why it fails.
    None: dismissed unused.
    """
    for blob in ahead:
        with contextlib.suppress(Exception):
            load_ahead(engine_of_blob(blob), blob)
    with contextlib.suppress(Exception):
        m = magic.Magic(mime=True)
        m.from_buffer(_WARM_TEXT)
        _MAGIC_AHEAD.append(m)
    try:
        msg = conn.recv()
    except (EOFError, OSError, KeyboardInterrupt):
        return None
    return msg if isinstance(msg, ScanConfig) else None


def _worker_main(
    conn: Connection, cfg: ScanConfig | None, now: Any, ahead: tuple[bytes, ...] = ()
) -> None:
    """Entry point of a worker process: build the scanner, then answer batches until None.

    A standby worker (``cfg`` None) first loads the rule sets ``ahead`` and waits for its
    scan's configuration (``_standby``); from there it is like any other.

    Results go back a few at a time (``SEND_FILES``, or ``SEND_SECONDS`` after the last send, at
    the end of each batch, and at once for a finding): one message and one wake-up of the parent
    per file was a tenth of a worker's time on a tree of small files (bench/README.md). Which
    file it is on, and since when, it writes to ``now`` (shared memory: the file's ``seq`` and
    its start on the monotonic clock) before each file, so that if it crashes or hangs the
    parent still blames exactly that file and sends the others, done but unsent, elsewhere.
    """
    tune_allocator()
    if cfg is None and (cfg := _standby(conn, ahead)) is None:
        return
    try:
        scanner = Scanner(cfg)
    except Exception as e:  # reported to the parent, which fails the run with this message
        conn.send(
            ("init_error", f"{type(e).__name__}: {e}" if not isinstance(e, KioskError) else str(e))
        )
        return
    try:
        conn.send(("ready", None))
    except (BrokenPipeError, OSError):  # the scan is gone (killed while we started): so are we
        scanner.close()
        return
    out: list[tuple[Any, ...]] = []
    sent = time.monotonic()
    try:
        while True:
            batch = conn.recv()
            if batch is None:
                break
            last = len(batch) - 1
            for i, task in enumerate(batch):
                now[0], now[1] = task.seq, time.monotonic()
                r = scanner.scan(task)
                out.append(_slim(r))
                t = time.monotonic()
                if i == last or len(out) >= SEND_FILES or t - sent >= SEND_SECONDS or r.is_finding:
                    now[0] = -1.0  # between files: nothing of this worker's can be blamed
                    conn.send(out)
                    out, sent = [], t
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass
    finally:
        scanner.close()


def _slim(r: FileResult) -> tuple[Any, ...]:
    """A result without its task, which the parent already holds: less to pickle both ways."""
    return (
        r.task.seq,
        r.status.value,
        r.reason,
        r.md5,
        r.sha1,
        r.sha256,
        r.mime,
        r.bytes_read,
        r.rule_matches,
        r.hash_matches,
        r.members,
        r.not_expanded,
        r.areas,
        r.reach,
    )


def _full(task: FileTask, t: tuple[Any, ...]) -> FileResult:
    if t[0] != task.seq:  # the worker answers files strictly in the order they were sent
        raise KioskError(f"a scan worker answered for file {t[0]} while on file {task.seq}")
    return FileResult(task, FileStatus(t[1]), *t[2:])


@dataclass(slots=True)
class WorkerSlot:
    """One worker process as the pool sees it: its pipe, what it was given and how far it is."""

    proc: Any
    conn: Connection
    now: Any  # shared with the worker: [seq of the file it is on (-1: none), its start]
    batch: list[FileTask] = field(default_factory=list)
    done: int = 0
    since: float = 0.0
    watched: bool = False  # registered with the pool's selector (only while it has work)

    @property
    def busy(self) -> bool:
        return self.done < len(self.batch)

    def current(self) -> FileTask:
        return self.batch[self.done]

    def at(self) -> int:
        """Where in ``batch`` the worker is now, by its own word (``done`` when it is between
        files, or its word does not fit: blame then falls where one-at-a-time results put it)."""
        seq = int(self.now[0])
        for i in range(self.done, len(self.batch)):
            if self.batch[i].seq == seq:
                return i
        return self.done

    def started(self) -> float:
        """When the worker began the file it is on (between files: when its last group came)."""
        return float(self.now[1]) if int(self.now[0]) >= 0 else self.since


class WorkerPool:
    """The scan's worker processes, spawned as soon as the scan's configuration is known.

    Each is forked from the helpers' server (``kiosk.processes``), so starting one costs its rule
    loading, not kiosk's imports; the caller starts the pool alongside the walker's preflight,
    so both happen at once, and the scan waits for the workers only when it has files for them.
    """

    def __init__(self, cfg: ScanConfig, standby: Iterable[WorkerSlot] = ()) -> None:
        """``standby``: workers started earlier without a scan (``kiosk.engine.standby``); as
        many as the scan has workers are given ``cfg`` and kept, the rest dismissed, and any
        that died meanwhile replaced by new ones."""
        self._cfg = cfg
        # One selector for the whole run: multiprocessing's wait() builds a new one per call,
        # which at two wake-ups per file was a measurable part of the parent's CPU.
        self.sel = selectors.DefaultSelector()
        self.slots: list[WorkerSlot] = []
        for slot in standby:
            if len(self.slots) < cfg.workers and _assign(slot, cfg):
                self.slots.append(slot)
            else:
                stop_worker(slot, graceful=True, wait_s=1.0)
        while len(self.slots) < cfg.workers:
            self.slots.append(self._spawn())
        self._ready = False
        self._closed = False

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(graceful=False)  # a no-op when the scan has closed it already

    def ready(self) -> None:
        """Wait until every worker has set itself up; raises WorkerInitError if one could not."""
        if not self._ready:
            for s in self.slots:
                self._await_ready(s)
            self._ready = True

    def _spawn(self) -> WorkerSlot:
        return start_worker(self._cfg)

    def _await_ready(self, slot: WorkerSlot) -> None:
        try:
            kind, msg = slot.conn.recv()
        except EOFError as e:
            raise WorkerInitError(
                f"a scan worker died while starting (exit code {slot.proc.exitcode})"
            ) from e
        if kind != "ready":
            raise WorkerInitError(f"a scan worker could not start: {msg}")

    def replace(self, slot: WorkerSlot) -> WorkerSlot:
        self._kill(slot)
        new = self._spawn()
        self._await_ready(new)
        self.slots[self.slots.index(slot)] = new
        return new

    def watch(self, slot: WorkerSlot) -> None:
        """Wake the scan loop for this worker's results or its death (while it has work)."""
        if not slot.watched:
            self.sel.register(slot.conn, selectors.EVENT_READ)
            self.sel.register(slot.proc.sentinel, selectors.EVENT_READ)
            slot.watched = True

    def unwatch(self, slot: WorkerSlot) -> None:
        """An idle worker sends nothing; a dead idle one must not keep waking the loop."""
        if slot.watched:
            self.sel.unregister(slot.conn)
            self.sel.unregister(slot.proc.sentinel)
            slot.watched = False

    def _kill(self, slot: WorkerSlot) -> None:
        self.unwatch(slot)
        stop_worker(slot, graceful=False)

    def close(self, graceful: bool) -> None:
        if self._closed:
            return
        self._closed = True
        for s in self.slots:
            self.unwatch(s)
            stop_worker(s, graceful)
        self.sel.close()


def start_worker(cfg: ScanConfig | None, ahead: tuple[bytes, ...] = ()) -> WorkerSlot:
    """One worker process, forked from the helpers' server; ``cfg`` None: a standby worker,
    which loads the rule sets ``ahead`` and waits for its configuration (``_standby``)."""
    ctx = helper_context()
    parent, child = ctx.Pipe()
    now = ctx.RawArray("d", [-1.0, 0.0])
    proc = ctx.Process(target=_worker_main, args=(child, cfg, now, ahead), daemon=True)
    proc.start()
    child.close()
    return WorkerSlot(proc, parent, now)


def _assign(slot: WorkerSlot, cfg: ScanConfig) -> bool:
    """Give a standby worker its scan; False if it is gone (then it is cleaned up)."""
    if slot.proc.is_alive():
        try:
            slot.conn.send(cfg)
            return True
        except (BrokenPipeError, OSError):
            pass
    stop_worker(slot, graceful=True)
    return False


def stop_worker(slot: WorkerSlot, graceful: bool, wait_s: float = 5.0) -> None:
    """End a worker: ``graceful``, told there is no more work and given ``wait_s`` to leave,
    then killed if it has not; otherwise killed at once (a hung or unwanted one)."""
    if graceful and slot.proc.is_alive():
        with contextlib.suppress(BrokenPipeError, OSError):
            slot.conn.send(None)
        slot.proc.join(wait_s)
    if slot.proc.is_alive():
        slot.proc.kill()
    slot.proc.join(5)
    slot.conn.close()


def _readable(conn: Connection) -> bool:
    try:
        return conn.poll()
    except OSError:  # closed under us: nothing more will come
        return False


MAX_FILE_SECONDS = 4 * 3600.0  # no single file may hold the kiosk longer, whatever it claims


def _file_deadline(cfg: ScanConfig, task: FileTask) -> float:
    return min(cfg.file_timeout_s + task.size / FILE_TIMEOUT_RATE, MAX_FILE_SECONDS)


def scan_tasks(
    tasks: Iterable[FileTask],
    cfg: ScanConfig,
    cancel: threading.Event | None = None,
    pool: WorkerPool | None = None,
    on_arrival: Callable[[FileResult], None] | None = None,
) -> Iterator[FileResult]:
    """Scan every task; results come out in ``seq`` order whatever the worker count.

    ``cfg.workers == 0`` scans inline in this process (no crash isolation, no per-file time
    limit), which the tests use as the reference for the pooled path. Stops early, without
    yielding the unfinished files, when ``cancel`` is set: the caller knows how many it got
    (the finished ones held for their turn still come out, in order with gaps between them).
    A ``pool`` started earlier from the same ``cfg`` is used and closed; otherwise one is made.
    ``on_arrival`` sees each worker's result the moment it comes, before its turn in the order
    (with workers; inline every result comes in its turn).
    """
    if cfg.workers <= 0:
        scanner = Scanner(cfg)
        try:
            for t in tasks:
                if cancel is not None and cancel.is_set():
                    return
                yield scanner.scan(t)
        finally:
            scanner.close()
        return
    yield from _scan_pooled(iter(tasks), cfg, cancel, pool or WorkerPool(cfg), on_arrival)


def _scan_pooled(
    tasks: Iterator[FileTask],
    cfg: ScanConfig,
    cancel: threading.Event | None,
    pool: WorkerPool,
    on_arrival: Callable[[FileResult], None] | None = None,
) -> Iterator[FileResult]:
    # copies of the same content to the same worker, whose memo then serves them (dispatch)
    work = Dispatch(tasks, len(pool.slots), cfg.max_yara_bytes, REORDER_WINDOW)
    held: dict[int, FileResult] = {}
    next_seq: int | None = None
    graceful = False

    def take(i: int) -> None:
        nonlocal next_seq
        slot = pool.slots[i]
        batch: list[FileTask] = []
        size = 0
        while len(batch) < BATCH_FILES and size < BATCH_BYTES:
            t = work.next_for(i, next_seq)
            if next_seq is None:
                next_seq = work.first_seq  # walk sequence numbers are contiguous from here
            if t is None:
                break
            batch.append(t)
            size += t.size
        if not batch:
            return
        if slot.busy:
            # topping up a working worker: it reads this batch when it finishes the current one
            try:
                slot.conn.send(batch)
            except OSError:  # it died: the crash path blames its current file; these go back
                work.give_back(batch)
                return
            slot.batch = slot.batch[slot.done :] + batch
            slot.done = 0
            return
        if not slot.proc.is_alive():  # died while idle: no file to blame, just replace it
            slot = pool.replace(slot)
        slot.batch, slot.done, slot.since = batch, 0, time.monotonic()
        try:
            slot.conn.send(batch)
        except OSError:  # died between the check and the send: same again, once
            slot = pool.replace(slot)
            slot.batch, slot.done, slot.since = batch, 0, time.monotonic()
            slot.conn.send(batch)
        pool.watch(slot)

    def finish(slot: WorkerSlot, result: FileResult) -> None:
        held[result.task.seq] = result
        slot.done += 1
        slot.since = time.monotonic()
        if on_arrival is not None:
            on_arrival(result)

    def fail_current(slot: WorkerSlot, reason: str) -> WorkerSlot:
        """Blame the file the worker was on; every other unanswered file goes to a worker
        again (those before it were done, but their results died with it)."""
        at = slot.at()
        task = slot.batch[at]
        held[task.seq] = FileResult(task, FileStatus.ERROR, reason)
        work.give_back(slot.batch[slot.done : at] + slot.batch[at + 1 :])
        slot.batch, slot.done = [], 0
        return pool.replace(slot)

    try:
        pool.ready()
        while True:
            if cancel is not None and cancel.is_set():
                break
            for i, slot in enumerate(pool.slots):
                if len(slot.batch) - slot.done <= TOP_UP_FILES:
                    take(i)
            busy = [s for s in pool.slots if s.busy]
            if not busy:
                break
            # One result per ready worker per wake-up: epoll on the run's selector is one cheap
            # system call, where Connection.poll() builds a selector of its own every time.
            ready = {key.fd for key, _ in pool.sel.select(timeout=0.25)}
            for slot in list(busy):
                crashed = False
                if slot.conn.fileno() in ready:
                    try:
                        for t in slot.conn.recv():
                            finish(slot, _full(slot.current(), t))
                    except (EOFError, OSError):
                        crashed = True
                # a dead worker's results still in the pipe are taken first, one per wake-up
                died = slot.proc.sentinel in ready and not _readable(slot.conn)
                if slot.busy and (crashed or died):
                    slot.proc.join(1)
                    code = slot.proc.exitcode
                    how = (
                        f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                    )
                    fail_current(
                        slot, f"the worker reading this file crashed ({how}); file not examined"
                    )
                elif slot.busy and time.monotonic() - slot.started() > _file_deadline(
                    cfg, slot.batch[slot.at()]
                ):
                    limit = _file_deadline(cfg, slot.batch[slot.at()])
                    fail_current(
                        slot,
                        f"reading and scanning this file exceeded the time limit ({limit:.0f} s)",
                    )
                elif not slot.busy:
                    pool.unwatch(slot)
            while next_seq is not None and next_seq in held:
                yield held.pop(next_seq)
                next_seq += 1
                if cancel is not None and cancel.is_set():
                    break  # with batches topped up, many results can be held: stop within them
        # every worker idle and nothing left: release what is held (seq gaps cannot remain);
        # cancelled: what is held was examined (and may have been shown), so it is reported
        for seq in sorted(held):
            yield held.pop(seq)
        graceful = cancel is None or not cancel.is_set()
    finally:
        pool.close(graceful)


def progress_ticker(interval_s: float) -> Callable[[], bool]:
    """A cheap gate for coalescing progress callbacks to at most one per interval."""
    last = [0.0]

    def due() -> bool:
        now = time.monotonic()
        if now - last[0] >= interval_s:
            last[0] = now
            return True
        return False

    return due
