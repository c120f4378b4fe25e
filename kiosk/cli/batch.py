"""``kiosk batch MANIFEST``: every exhibit of a manifest, one signed report each.

The manifest, the packs and sets, the signing key and the cluster are all checked before the
first exhibit opens; then progress is shown per exhibit and overall, and a summary table closes
the run. Exit 0 only when every exhibit completed; 1 otherwise (the table says which did not).
"""

from __future__ import annotations

import argparse
import hashlib
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TextIO

from kiosk.cli.cluster import add_cluster_arguments, open_executor
from kiosk.cli.common import audit_log
from kiosk.cli.options import add_run_options, check_cluster_engine, run_fields
from kiosk.config import DEFAULT_WORKERS, KioskConfig, load_config
from kiosk.engine.batch import (
    Exhibit,
    ExhibitOutcome,
    check_knowledge,
    read_manifest,
    run_batch,
)
from kiosk.engine.executor import TaskExecutor
from kiosk.engine.scope import Scope
from kiosk.engine.triage import Hooks, TriageRequest
from kiosk.model import Outcome, Progress
from kiosk.reports.text import visible
from kiosk.trust.audit import AuditLog
from kiosk.trust.signing import Signer, kiosk_home, load_signer


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    b = sub.add_parser(
        "batch",
        help="triage every exhibit of a manifest (CSV or TOML), one signed report each",
    )
    b.add_argument(
        "manifest",
        type=Path,
        help="CSV (evidence,case,exhibit,officer,authorised_by,legal_basis,legal_ref[,scope,"
        "device]; several evidence files separated by ';') or TOML ([[exhibit]] tables)",
    )
    add_run_options(
        b, f"worker processes (or LocalCluster workers) per exhibit (default {DEFAULT_WORKERS})"
    )
    add_cluster_arguments(b)


class _BatchProgress:
    """One self-overwriting line on a terminal: the exhibit and the batch, each with a bar."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._total = total
        self._index = 0
        self._label = ""

    def start(self, index: int, ex: Exhibit) -> None:
        self._index, self._label = index, visible(ex.label)
        if not self._tty:  # a log gets one line per exhibit instead of a bar
            self._stream.write(f"kiosk: exhibit {index + 1}/{self._total}: {self._label}\n")
            self._stream.flush()

    def __call__(self, p: Progress) -> None:
        if not self._tty:
            return
        frac = p.fraction  # None: the walk is still finding files, no fraction of it yet
        overall = (self._index + (frac or 0.0)) / self._total
        this = (
            f"[{'counting':^20}] {'':6}  files {p.files_done}/{p.files_total}+"
            if frac is None
            else f"[{'#' * int(frac * 20):<20}] {frac:6.1%}  files {p.files_done}/{p.files_total}"
        )
        self._stream.write(
            f"\r\x1b[2Kbatch [{'#' * int(overall * 20):<20}] {self._index + 1}/{self._total}  "
            f"{self._label} {this}  findings {p.findings}"
        )
        self._stream.flush()

    def done(self) -> None:
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()


def _table(outcomes: list[ExhibitOutcome]) -> str:
    rows = [("exhibit", "outcome", "findings", "time", "report")]
    for o in outcomes:
        outcome = o.status if not o.reason else f"{o.status}: {o.reason}"
        rows.append(
            (
                visible(o.exhibit.label),
                visible(outcome),
                str(o.findings) if o.report_dir else "-",
                f"{o.seconds:.1f}s" if o.seconds else "-",
                visible(str(o.report_dir)) if o.report_dir else "-",
            )
        )
    widths = [min(max(len(r[i]) for r in rows), 60) for i in range(4)]
    lines = []
    for r in rows:
        cells = [r[i][: widths[i]].ljust(widths[i]) for i in range(4)]
        lines.append("  ".join([*cells, r[4]]).rstrip())
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    config = load_config(kiosk_home())
    exhibits = read_manifest(args.manifest, config.allow_self_authorisation)
    cluster = bool(args.scheduler)
    rules = args.rules.absolute() if cluster else args.rules
    hashsets = args.hashsets.absolute() if cluster else args.hashsets
    check_knowledge(exhibits, rules, hashsets, dev=args.dev, yara=args.yara)
    signer = load_signer(args.key)
    check_cluster_engine(args)
    executor = open_executor(args)  # the cluster is reached (or refused) before any exhibit
    try:
        return _run(args, exhibits, rules, hashsets, signer, executor, config)
    finally:
        if executor is not None:
            executor.close()


def _run(
    args: argparse.Namespace,
    exhibits: tuple[Exhibit, ...],
    rules: Path,
    hashsets: Path,
    signer: Signer,
    executor: TaskExecutor | None,
    config: KioskConfig,
) -> int:
    audit: AuditLog = audit_log()
    audit.append(
        "batch_started",
        manifest=str(args.manifest),
        manifest_sha256=hashlib.sha256(args.manifest.read_bytes()).hexdigest(),
        exhibits=len(exhibits),
        scheduler=args.scheduler or "",
    )
    cancel = threading.Event()
    progress = _BatchProgress(sys.stderr, len(exhibits))

    def request(ex: Exhibit) -> TriageRequest:
        return TriageRequest(
            case=ex.case,
            image=ex.evidence,
            rules_dir=rules,
            hashsets_dir=hashsets,
            out_dir=args.out,
            scope=None if ex.scope is None else Scope(categories=ex.scope),
            parents=(),
            **run_fields(args, config),
        )

    def hooks(_ex: Exhibit) -> Hooks:
        return Hooks(
            on_progress=progress,
            cancel=cancel,  # Ctrl-C stops this exhibit and starts no other
            signer=signer,
            audit=audit,
            executor=executor,
        )

    def interrupt(_sig: int, _frame: FrameType | None) -> None:
        cancel.set()

    previous = signal.signal(signal.SIGINT, interrupt)
    t0 = time.monotonic()
    try:
        outcomes = run_batch(
            exhibits,
            request,
            hooks,
            cancel,
            on_start=progress.start,
            on_done=lambda _i, _o: progress.done(),
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    complete = sum(o.status == Outcome.COMPLETE.value for o in outcomes)
    audit.append(
        "batch_finished",
        manifest=str(args.manifest),
        exhibits=len(exhibits),
        complete=complete,
    )
    print(_table(outcomes))
    print(
        f"{complete} of {len(exhibits)} exhibit(s) complete, "
        f"{sum(o.findings for o in outcomes)} finding(s), {time.monotonic() - t0:.1f}s"
    )
    if complete < len(exhibits):
        print(
            f"kiosk: error: {len(exhibits) - complete} exhibit(s) did not complete (see the table)",
            file=sys.stderr,
        )
        return 1
    return 0
