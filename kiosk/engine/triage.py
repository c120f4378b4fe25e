"""``run_triage()``: the one use case both front ends call.

Order matters and is the product: the case and legal authority are checked first, then rule
packs and hash sets (a broken pack stops us before the evidence is touched), then the output
directory, and only then is the image opened — read-only. Progress and findings go back through
callbacks; the report is written into a hidden partial directory and renamed into place only
when complete, so ``reports/`` never holds a half-written report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import magic
import pytsk3
import yara

from kiosk import __version__
from kiosk.canonical import canonical, utc_text
from kiosk.config import (
    DEFAULT_MAX_YARA_BYTES,
    DEFAULT_WORKERS,
    DEFAULT_YARA_TIMEOUT_S,
    MAX_HASHED_ONLY_PERCENT,
    ArchiveLimits,
    check_max_yara_bytes,
    check_workers,
    check_yara_timeout,
)
from kiosk.engine.archives import with_members
from kiosk.engine.areas import AreaPlan, plan_areas
from kiosk.engine.executor import TaskExecutor
from kiosk.engine.mediahash import MediaHasher, pace_for
from kiosk.engine.priority import prioritise
from kiosk.engine.scan import ScanConfig, WorkerPool, progress_ticker, scan_tasks
from kiosk.engine.scope import Scope, ScopeFilter, check_scope
from kiosk.engine.standby import Standby
from kiosk.engine.windows import WINDOW_BYTES
from kiosk.errors import CaseError, KioskError, PageMismatch, ReportError, SigningError
from kiosk.evidence.keys import VolumeKeys
from kiosk.evidence.resolve import EvidenceRef, resolve
from kiosk.evidence.walker import Walker
from kiosk.hashsets.index import SET_INTEGRITY, HashIndex
from kiosk.model import CaseRecord, FileResult, FileStatus, Outcome, Progress, WalkProblem
from kiosk.packs.engines import DEFAULT_ENGINE, check_engine
from kiosk.packs.load import CompiledRules, compile_packs
from kiosk.processes import warm_up
from kiosk.reports.attestation import ENVELOPE, REPORT, sign_report
from kiosk.reports.encode import (
    case_json,
    file_counts_json,
    file_json,
    hashsets_json,
    packs_json,
    report_json,
    scope_json,
)
from kiosk.reports.model import (
    SCHEMA_VERSION,
    Engines,
    FileRecord,
    InventoryRecord,
    OutcomeRecord,
    RecommendationRecord,
    SettingsRecord,
    ToolRecord,
    TriageReport,
)
from kiosk.reports.report import (
    Tally,
    coverage,
    file_record,
    hashset_records,
    image_record,
    not_examined,
    pack_records,
    recommend,
)
from kiosk.trust.audit import AuditLog
from kiosk.trust.signing import Signer

PROGRESS_INTERVAL_S = 0.2


@dataclass(frozen=True, slots=True)
class TriageRequest:
    """What the officer asked for: who, under what authority, which image, which knowledge."""

    case: CaseRecord
    image: tuple[Path, ...]
    rules_dir: Path | None
    hashsets_dir: Path | None
    out_dir: Path
    inventory: bool = False
    workers: int = DEFAULT_WORKERS
    max_yara_bytes: int = DEFAULT_MAX_YARA_BYTES
    yara_timeout_s: int = DEFAULT_YARA_TIMEOUT_S
    allow_self_authorisation: bool = False  # kiosk policy (config.toml), recorded in the report
    dev: bool = False  # forensic staff only: unverified packs and sets load, logged and reported
    scope: Scope | None = None  # authorised categories; None: all the loaded packs and sets
    yara: bool = True  # False: hash-only run; no pack is loaded and the report says YARA was off
    parents: tuple[Path, ...] = ()  # a differencing image's parent (chain), if not beside it
    archives: ArchiveLimits = field(default_factory=ArchiveLimits)  # expanding archives found
    # an encrypted backup's password: memory only, never shown, logged or written
    secret: bytes | None = field(default=None, repr=False, compare=False)
    keys: VolumeKeys = field(default_factory=VolumeKeys)  # for encrypted volumes; repr withheld
    unallocated: bool = True  # search unallocated space, slack, areas outside partitions
    window_bytes: int = WINDOW_BYTES  # the windows those areas and big files' tails are cut in
    yara_engine: str = DEFAULT_ENGINE  # kiosk.packs.engines: libyara or yara-x
    # folders scanned first (kiosk.engine.priority); None: the packs' priority_areas
    priority_areas: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        """The run settings are checked as the front ends check them (``kiosk.config``)."""
        check_workers(self.workers)
        check_max_yara_bytes(self.max_yara_bytes)
        check_yara_timeout(self.yara_timeout_s)
        check_engine(self.yara_engine)


@dataclass(frozen=True, slots=True)
class TriageResult:
    report_dir: Path
    report: TriageReport


@dataclass(slots=True)
class Hooks:
    """Callbacks and injected effects; the defaults are the real clock and random ids."""

    on_progress: Callable[[Progress], None] | None = None
    on_finding: Callable[[FileRecord], None] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    new_id: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)
    signer: Signer | None = None  # every report is signed: run_triage refuses to start without
    audit: AuditLog | None = None  # where scan start/finish/report events are chained
    executor: TaskExecutor | None = None  # a Dask cluster (kiosk.engine.cluster); None: own pool
    # workers started before Run with the rules loaded (kiosk.engine.standby); taken by the scan
    standby: Standby | None = None


CLUSTER_ENGINE = "libyara"


def engine_for(asked: str, executor: TaskExecutor | None) -> str:
    """The YARA engine a run uses: the one asked for, except on a Dask cluster, which runs
    libyara. yara-x's scanner is bound to the thread that made it, and Dask runs each task on a
    worker thread of its choosing (dropping the scanner elsewhere aborts). The report names the
    engine that ran."""
    return CLUSTER_ENGINE if executor is not None else asked


def check_case(case: CaseRecord, allow_self_authorisation: bool = False) -> None:
    """No scan without a complete record of who asked and under what authority."""
    missing = [
        label
        for label, value in (
            ("case reference", case.case_ref),
            ("exhibit reference", case.exhibit_ref),
            ("officer", case.officer),
            ("authorising officer", case.authorised_by),
            ("legal basis reference", case.legal_ref),
        )
        if not value.strip()
    ]
    if missing:
        raise CaseError(f"cannot start: {', '.join(missing)} not recorded")
    same = case.officer.strip().casefold() == case.authorised_by.strip().casefold()
    if same and not allow_self_authorisation:
        raise CaseError(
            "cannot start: the authorising officer must be someone other than the officer"
        )


PARTIAL_PREFIX = ".partial-"


def _unwritable(out_dir: Path, e: OSError) -> ReportError:
    """The one line for any write into the reports folder that failed: which folder, and why."""
    reason = (e.strerror or str(e)).lower()
    return ReportError(f"cannot write the report to {str(out_dir).rstrip('/')}/: {reason}")


def _prepare_out(out_dir: Path, report_id: str) -> Path:
    """A hidden work directory named for this process; it becomes the report only when complete."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".probe-{os.getpid()}"
        probe.write_bytes(b"")  # fail now, before the evidence is opened, if we cannot write
        probe.unlink()
        partial = out_dir / f"{PARTIAL_PREFIX}{report_id}-{os.getpid()}"
        partial.mkdir()
    except OSError as e:
        raise _unwritable(out_dir, e) from e
    return partial


def remove_stale_partials(out_dir: Path) -> list[str]:
    """Remove work directories left by runs that were killed; returns their report ids.

    A partial directory never verifies (no envelope), but left alone it would look like clutter
    an officer might mistake for a report. Only directories whose process is gone are removed.
    """
    removed: list[str] = []
    if not out_dir.is_dir():
        return removed
    for p in out_dir.glob(f"{PARTIAL_PREFIX}*"):
        report_id, _, pid = p.name[len(PARTIAL_PREFIX) :].rpartition("-")
        if not pid.isdigit() or _alive(int(pid)):
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(report_id)
    return sorted(removed)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _engine_versions(rules: CompiledRules | None = None) -> Engines:
    return Engines(
        kiosk=__version__,
        sleuthkit=str(pytsk3.TSK_VERSION_STR),
        libyara=str(yara.__version__),
        libmagic=str(magic.version()),  # type: ignore[no-untyped-call]
        yara_engine=rules.engine.label if rules else None,
    )


def run_triage(req: TriageRequest, hooks: Hooks | None = None) -> TriageResult:
    """Run one triage end to end and return where the report was written.

    Raises ``KioskError`` subclasses for anything that stops a scan before it starts (nothing is
    written then). Once scanning has begun, failures end as a report marked failed.
    """
    hooks = hooks or Hooks()
    warm_up()  # the walker's and workers' server imports while rules and sets load
    check_case(req.case, req.allow_self_authorisation)
    signer = hooks.signer
    if signer is None:
        raise SigningError("no signing key loaded: every report must be signed ('kiosk keys init')")
    with contextlib.ExitStack() as stack:  # the walker is stopped however it ends
        return _triage(req, hooks, signer, _early_walk(req, stack))


def _evidence(req: TriageRequest) -> EvidenceRef:
    """The evidence as every helper opens it: files found once, secret and keys inside."""
    ref = resolve(req.image, req.parents)
    if req.secret is not None:  # an encrypted backup's password travels inside the record
        ref = replace(ref, secret=req.secret)
    return dataclasses.replace(ref, keys=req.keys)  # the walker and workers unlock for themselves


def _early_walk(
    req: TriageRequest, stack: contextlib.ExitStack
) -> tuple[EvidenceRef, Walker] | None:
    """The walker, started before the rules and sets load so its preflight runs meanwhile.

    The child reads only metadata (volumes, names, sizes), and its answers are read only after
    the start is audited; if the rules or sets are refused it is stopped and nothing it found is
    kept. None when the evidence cannot even be found: the scan then fails where it always did
    (after the knowledge is checked and the start is audited), with the same message."""
    try:
        ref = _evidence(req)
    except (KioskError, OSError):
        return None
    return ref, stack.enter_context(Walker(ref))


def _areas(req: TriageRequest, rules: CompiledRules | None) -> tuple[str, ...]:
    """The user areas scanned first: the officer's, or else the packs'."""
    if req.priority_areas is not None:
        return req.priority_areas
    return rules.priority_areas if rules else ()


def _show_early(
    on_finding: Callable[[FileRecord], None],
    scope: ScopeFilter,
    shown: set[tuple[int, str]],
    first: Callable[[], None],
) -> Callable[[FileResult], None]:
    """Show each finding the moment a worker reports it, not at its turn in the report's order.

    Why: results are reported in walk order, so a finding waits for every file before it --
    one large file in a user folder held the first finding back by 0.15 s of its 0.48
    (bench/README.md, round 5). The record shown is the one the report will hold (the scope
    applied, without counting: ``ScopeFilter.peek``); the ordered pass does not show it again,
    and a cancelled scan still reports every file it had results for, so nothing shown is
    missing from the report. ``first`` is told of each (the image's hash waits for the first)."""

    def arrived(raw: FileResult) -> None:
        if not raw.members and not raw.is_finding:  # most results: nothing to look at
            return
        for r in with_members((raw,)):
            if r.task.area is None and (kept := scope.peek(r)).is_finding:
                shown.add((r.task.seq, r.task.path))
                first()
                on_finding(file_record(kept))

    return arrived


def _triage(
    req: TriageRequest, hooks: Hooks, signer: Signer, early: tuple[EvidenceRef, Walker] | None
) -> TriageResult:
    audit = hooks.audit
    if req.dev and audit:
        audit.append("dev_mode", officer=req.case.officer, rules_dir=str(req.rules_dir))
    try:
        rules: CompiledRules | None = (
            compile_packs(
                req.rules_dir,
                dev=req.dev,
                audit=audit,
                clock=hooks.clock,
                yara_engine=engine_for(req.yara_engine, hooks.executor),
            )
            if req.rules_dir and req.yara
            else None
        )
        index = HashIndex.load(req.hashsets_dir, dev=req.dev, audit=audit)
    except KioskError as e:
        if audit:
            audit.append("knowledge_refused", reason=str(e))
        raise
    if early is not None:  # the walker may start: user areas' folders first (Evidence.walk)
        early[1].order(_areas(req, rules))
    scope = check_scope(req.scope, rules, index)
    report_id = hooks.new_id()
    if audit:
        audit.append(
            "scan_started",
            report_id=report_id,
            **case_json(req.case),
            rule_packs=packs_json(pack_records(rules.packs) if rules else ()),
            hash_sets=hashsets_json(hashset_records(index.sets)),
            scope=scope_json(scope.record()),
        )
    for stale in remove_stale_partials(req.out_dir):
        if audit:
            audit.append("interrupted_run_cleaned", report_id=stale)
    try:
        partial = _prepare_out(req.out_dir, report_id)
    except KioskError as e:
        if audit:
            audit.append("scan_failed", report_id=report_id, reason=str(e))
        raise
    try:
        result = _run(req, hooks, signer, rules, index, scope, report_id, partial, early)
    except KioskError as e:
        if audit:
            detail = {"detail": e.detail} if e.detail else {}
            audit.append("scan_failed", report_id=report_id, reason=str(e), **detail)
        raise
    finally:
        index.close()
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    if audit:
        audit.append(
            "report_written",
            report_id=report_id,
            envelope_sha256=hashlib.sha256((result.report_dir / ENVELOPE).read_bytes()).hexdigest(),
        )
    return result


def _run(
    req: TriageRequest,
    hooks: Hooks,
    signer: Signer,
    rules: CompiledRules | None,
    index: HashIndex,
    scope: ScopeFilter,
    report_id: str,
    partial: Path,
    early: tuple[EvidenceRef, Walker] | None,
) -> TriageResult:
    started = hooks.clock()
    t0 = time.monotonic()
    ref, walker = early if early else (_evidence(req), None)  # the second raises why
    cfg = ScanConfig(
        evidence=ref,
        rules_blob=rules.to_bytes() if rules else None,
        rule_meta=dict(rules.meta) if rules else {},
        hashsets=index.sets,
        max_yara_bytes=req.max_yara_bytes,
        yara_timeout_s=req.yara_timeout_s,
        workers=req.workers,
        gate_blob=rules.gate_bytes() if rules else None,
        gate_prefixes=rules.gate_prefixes if rules else (),
        yara_enabled=req.yara,
        archives=req.archives,
        same_content_same_matches=rules is not None and not rules.per_file_externals,
        rule_externals=rules.externals if rules else None,
    )
    plan: AreaPlan = plan_areas(req.unallocated, req.yara, rules, req.window_bytes)
    cfg = plan.configure(cfg)
    with contextlib.ExitStack() as stack:  # walker and workers are stopped however it ends
        walker = walker or stack.enter_context(Walker(ref))
        # the workers start while the walker surveys and walks
        own = cfg.workers > 0 and hooks.executor is None
        if hooks.standby and not own:  # inline or on a cluster: not needed
            hooks.standby.close()
        standby = hooks.standby.take() if hooks.standby else []
        pool = stack.enter_context(WorkerPool(cfg, standby)) if own else None
        survey = walker.survey()  # media and volumes, in a child process that then walks
        volumes, media = survey.volumes, survey.media
        tally = Tally()

        def progress() -> float:  # read by the media hash's thread (engine.mediahash)
            files, size = walker.files_found, walker.bytes_found  # found so far
            return min(  # the lesser: one big file done early is not a tenth of the work
                tally.files_done / files if files else 0.0,
                tally.bytes_found / size if size else 0.0,
            )

        # the app watches for findings: the image's hash waits for the first and yields to the
        # user areas; unwatched it runs at full speed (engine.mediahash)
        pace = pace_for(media.size, progress, hooks.cancel, watched=hooks.on_finding is not None)
        hasher = MediaHasher(ref, media.ewf_stored_hashes, pace)
        hasher.start()
        problems: list[WalkProblem] = []
        outcome, outcome_reason = Outcome.COMPLETE, ""
        due = progress_ticker(PROGRESS_INTERVAL_S)

        def snapshot() -> Progress:  # the totals are what the walk has found so far
            return Progress(
                walker.files_found,
                tally.files_done,
                walker.bytes_found,
                tally.bytes_found,
                len(tally.findings),
                time.monotonic() - t0,
                counting=not walker.done and not walker.crash,
            )

        inv_path = partial / "files.jsonl"
        inv = inv_path.open("wb") if req.inventory else None
        inv_sha = hashlib.sha256()
        write_error: OSError | None = None  # the reports folder is full or gone: no report at all
        try:
            areas = _areas(req, rules)
            walker.order(areas)  # started already when the walker was early
            # user areas first (engine.priority); area pieces sized by the rules' plan
            # the image's hash yields to the user-area files only (engine.mediahash)
            tasks = prioritise(walker.tasks(problems, plan.piece), areas, on_rest=pace.release)
            shown: set[tuple[int, str]] = set()  # findings shown as they arrived (show_early)
            scanned = (
                hooks.executor.scan(tasks, cfg, hooks.cancel)
                if hooks.executor
                else scan_tasks(
                    tasks,
                    cfg,
                    hooks.cancel,
                    pool,
                    _show_early(hooks.on_finding, scope, shown, pace.found)
                    if hooks.on_finding
                    else None,
                )
            )
            # an archive's members follow it, each a result of its own (kiosk.engine.archives)
            for raw in with_members(scanned):
                if raw.status is FileStatus.ERROR and raw.reason.startswith(SET_INTEGRITY):
                    raise PageMismatch(raw.reason.removeprefix(SET_INTEGRITY))
                r = scope.apply(raw)  # out-of-scope matches are never findings
                tally.add(r)
                if inv is not None and r.task.area is None:  # an area is not a file
                    line = canonical(file_json(file_record(r))) + b"\n"
                    try:
                        inv.write(line)
                    except OSError as e:
                        write_error = e
                        hooks.cancel.set()  # stops the workers, the walker and the media hasher
                        break
                    inv_sha.update(line)
                if r.is_finding and hooks.on_finding and (r.task.seq, r.task.path) not in shown:
                    pace.found()
                    hooks.on_finding(tally.findings[-1])
                if hooks.on_progress and due():
                    hooks.on_progress(snapshot())
            if hooks.cancel.is_set():
                outcome, outcome_reason = Outcome.CANCELLED, "cancelled by the operator"
        except KioskError as e:
            outcome, outcome_reason = Outcome.FAILED, str(e)
            hooks.cancel.set()  # stops the media hasher too
        finally:
            pace.release()  # every result is in: the media hash finishes at full speed
            if inv is not None:
                try:
                    inv.close()  # flushes the last lines: the disk can be full here too
                except OSError as e:
                    write_error = write_error or e
        hasher.join()
    if write_error is not None:
        raise _unwritable(req.out_dir, write_error) from write_error
    if walker.crash and outcome is Outcome.COMPLETE:
        outcome, outcome_reason = Outcome.FAILED, walker.crash
    files_total, bytes_total = walker.files_found, walker.bytes_found  # the walk's totals
    if tally.files_done < files_total and outcome is Outcome.COMPLETE:  # never, unless a bug
        outcome, outcome_reason = Outcome.FAILED, "not every file the walk found has a result"
    swapped = index.changed()  # a set file rewritten in place under the workers' maps
    if swapped and outcome is Outcome.COMPLETE:
        outcome, outcome_reason = Outcome.FAILED, swapped
    if hooks.on_progress:
        hooks.on_progress(snapshot())
    hashes = hasher.result
    scope_text = (
        "; ".join(
            [
                f"rule pack {p.name} {p.version} ({p.rule_count} rules)"
                for p in (rules.packs if rules else ())
            ]
            + [f"hash set {s.name} {s.version} ({s.count} {s.algorithm})" for s in index.sets]
        )
        or "no rule packs or hash sets"
    ) + f"; {scope.describe()}"
    if not req.yara:  # no pack was loaded on purpose: say so, not "no rule packs"
        sets = "; ".join(
            f"hash set {s.name} {s.version} ({s.count} {s.algorithm})" for s in index.sets
        )
        scope_text = "YARA disabled for this run, no rule pack applied; " + (sets or "no hash sets")
    rec, reasons = recommend(
        outcome,
        outcome_reason,
        tally,
        volumes,
        problems,
        hashes,
        files_total,
        scope_text,
        req.yara,
        MAX_HASHED_ONLY_PERCENT,
        len(plan.window.safe) if plan.window and req.yara else 0,
    )
    finished = utc_text(hooks.clock())
    cover = coverage(volumes, tally, files_total, bytes_total)
    checkpoint = None
    if hooks.audit:
        checkpoint = hooks.audit.append(
            "scan_finished",
            report_id=report_id,
            outcome=outcome.value,
            recommendation=rec.value,
            files=file_counts_json(cover.files),
            findings=len(tally.findings),
        )
    report = TriageReport(
        schema=SCHEMA_VERSION,
        report_id=report_id,
        tool=ToolRecord("kiosk", __version__, _engine_versions(rules)),
        case=req.case,
        image=image_record(media, hashes),
        rule_packs=pack_records(rules.packs) if rules else (),
        hash_sets=hashset_records(index.sets),
        settings=SettingsRecord(
            max_yara_bytes=req.max_yara_bytes,
            yara_timeout_s=req.yara_timeout_s,
            workers=req.workers,
            inventory=req.inventory,
            allow_self_authorisation=req.allow_self_authorisation,
            dev_mode=req.dev,
            scope=scope.record(),
            yara=req.yara,
            max_hashed_only_percent=MAX_HASHED_ONLY_PERCENT,
            unallocated=req.unallocated,
            cluster=hooks.executor.record() if hooks.executor else None,
        ),
        started=utc_text(started),
        finished=finished,
        outcome=OutcomeRecord(outcome, outcome_reason or None),
        coverage=cover,
        not_examined=tuple(
            not_examined(
                volumes,
                problems,
                tally,
                outcome,
                files_total,
                media.size if plan.piece else None,
                plan.off_reason,
            )
        ),
        findings=tuple(tally.findings),
        findings_by_category=dict(sorted(tally.categories.items())),
        recommendation=RecommendationRecord(rec, tuple(reasons)),
        inventory=InventoryRecord("files.jsonl", inv_sha.hexdigest(), tally.records)
        if req.inventory
        else None,
        signing_key=signer.keyid,
        audit_checkpoint=checkpoint,
        areas=plan.record(tally.areas, volumes),
    )
    final = req.out_dir / report_id
    report_bytes, envelope_bytes = sign_report(report_json(report), signer)
    try:
        for name, data in ((REPORT, report_bytes), (ENVELOPE, envelope_bytes)):
            with (partial / name).open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        partial.rename(final)
    except OSError as e:
        with contextlib.suppress(OSError):
            shutil.rmtree(partial)
        raise _unwritable(req.out_dir, e) from e
    return TriageResult(final, report)
