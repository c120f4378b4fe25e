"""``kiosk batch``: a lab's backlog as one manifest, one signed report per exhibit.

The manifest is checked whole before any exhibit is opened: a typing error in row 40 found after
the first 39 disks ran would leave an officer re-running half a batch by hand. Every row's
authority must be complete (as ``run_triage`` checks it), every evidence path present and
readable, the packs and sets must verify, and each row's scope must name categories they
carry. Then each exhibit goes through ``run_triage`` exactly as ``kiosk scan`` sends it, so its
report is the one ``kiosk scan`` would have written. An exhibit that fails (an image that will
not open, a run that ends failed) is recorded and the next one starts: one bad disk never holds
up the rest of the backlog.

Manifest formats (paths relative to the manifest's folder):

- CSV, a header row with ``evidence,case,exhibit,officer,authorised_by,legal_basis,legal_ref``
  and optionally ``scope`` (categories, comma-separated) and ``device``; several evidence files
  (segments, or an image and its parent) separated by ``;``.
- TOML, one ``[[exhibit]]`` table per row with the same keys; ``evidence`` and ``scope`` may be
  lists.
"""

from __future__ import annotations

import csv
import os
import stat
import threading
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.engine.scope import Scope, check_scope
from kiosk.engine.triage import Hooks, TriageRequest, TriageResult, check_case, run_triage
from kiosk.errors import CaseError, KioskError, ManifestError
from kiosk.hashsets.index import HashIndex
from kiosk.model import CaseRecord, LegalBasis
from kiosk.packs.load import compile_packs

REQUIRED = ("evidence", "case", "exhibit", "officer", "authorised_by", "legal_basis", "legal_ref")
OPTIONAL = ("scope", "device")
MAX_ROWS = 10_000
MAX_PROBLEMS_SHOWN = 20  # a manifest is typed by people; more rows than this is a wrong file
NOT_STARTED = "not started"
ERROR = "error"  # stopped before a report could be written (the reason says why)


@dataclass(frozen=True, slots=True)
class Exhibit:
    """One row: who asked, under what authority, which files, which categories."""

    row: int  # 1-based, as a person counts the manifest's rows (the CSV header is not one)
    case: CaseRecord
    evidence: tuple[Path, ...]
    scope: frozenset[str] | None  # None: all the loaded packs and sets

    @property
    def label(self) -> str:
        return f"{self.case.case_ref}/{self.case.exhibit_ref}"


@dataclass(frozen=True, slots=True)
class ExhibitOutcome:
    """How one exhibit ended, for the summary table."""

    exhibit: Exhibit
    status: str  # an Outcome value, "error" (no report) or "not started"
    reason: str
    findings: int
    seconds: float
    report_dir: Path | None


def read_manifest(path: Path, allow_self_authorisation: bool = False) -> tuple[Exhibit, ...]:
    """Every row, or ``ManifestError`` naming every problem of every row (nothing opened yet)."""
    raw = _rows(path)
    if not raw:
        raise ManifestError(f"{path}: no exhibits listed")
    if len(raw) > MAX_ROWS:
        raise ManifestError(f"{path}: {len(raw)} rows, more than {MAX_ROWS}")
    problems: list[str] = []
    exhibits: list[Exhibit] = []
    seen: dict[tuple[str, str], int] = {}
    for n, row in enumerate(raw, 1):
        mine: list[str] = []
        ex = _exhibit(n, row, path.parent, allow_self_authorisation, mine)
        if ex is not None:
            key = (ex.case.case_ref.strip(), ex.case.exhibit_ref.strip())
            if key in seen:
                mine.append(f"exhibit {ex.label} is also row {seen[key]}")
            seen.setdefault(key, n)
            exhibits.append(ex)
        problems += [f"row {n}: {p}" for p in mine]
    if problems:  # all of them on the one line: the officer fixes the file once
        shown = problems[:MAX_PROBLEMS_SHOWN]
        more = len(problems) - len(shown)
        tail = f"; and {more} more" if more else ""
        raise ManifestError(f"{path}: nothing started: {'; '.join(shown)}{tail}")
    return tuple(exhibits)


def _rows(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: cannot read the manifest: {e}") from e
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ManifestError(f"{path}: not valid TOML: {e}") from e
        rows = data.get("exhibit")
        unknown = sorted(set(data) - {"exhibit"})
        if unknown:
            raise ManifestError(f"{path}: unknown table {unknown[0]!r} (rows are [[exhibit]])")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ManifestError(f"{path}: no [[exhibit]] tables")
        return rows
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        header = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise ManifestError(f"{path}: the header has no column {', '.join(missing)}")
        try:
            return [dict(r) for r in reader if any((v or "").strip() for v in r.values())]
        except csv.Error as e:
            raise ManifestError(f"{path}: not valid CSV: {e}") from e
    raise ManifestError(f"{path}: a manifest is a .csv or a .toml file")


def _texts(value: Any, sep: str) -> list[str] | None:
    """A list of strings from a list or a separated string; None if it is neither."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(sep) if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    return None


def _exhibit(
    n: int, row: dict[str, Any], base: Path, allow_self: bool, problems: list[str]
) -> Exhibit | None:
    unknown = sorted(k for k in row if k not in REQUIRED + OPTIONAL)
    if unknown:
        problems.append(f"unknown column {unknown[0]!r}")
    fields: dict[str, str] = {}
    for key in (*REQUIRED[1:], "device"):
        value = row.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            problems.append(f"{key} is not text")
            value = ""
        fields[key] = value.strip()
    try:
        basis = LegalBasis(fields["legal_basis"])
    except ValueError:
        allowed = ", ".join(b.value for b in LegalBasis)
        problems.append(f"legal_basis {fields['legal_basis']!r} is not one of {allowed}")
        basis = LegalBasis.OTHER
    case = CaseRecord(
        case_ref=fields["case"],
        exhibit_ref=fields["exhibit"],
        officer=fields["officer"],
        authorised_by=fields["authorised_by"],
        legal_basis=basis,
        legal_ref=fields["legal_ref"],
        device_description=fields["device"],
    )
    try:
        check_case(case, allow_self)
    except CaseError as e:
        problems.append(str(e).removeprefix("cannot start: "))
    names = _texts(row.get("evidence", ""), ";")
    if not names:
        problems.append("no evidence path")
        names = []
    evidence = tuple((base / name).absolute() for name in names)
    for p in evidence:
        problems += _unreadable(p)
    scope_value = row.get("scope")
    scope: frozenset[str] | None = None
    if scope_value not in (None, ""):
        cats = _texts(scope_value, ",")
        if not cats:
            problems.append("scope names no category")
        else:
            scope = frozenset(cats)
    return Exhibit(n, case, evidence, scope)


def _unreadable(p: Path) -> list[str]:
    """Present, a regular file, and readable by this user: checked with a read-only open."""
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        return [f"evidence {p}: {(e.strerror or str(e)).lower()}"]
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return [f"evidence {p}: not a regular file"]
    finally:
        os.close(fd)
    return []


def check_knowledge(
    exhibits: Sequence[Exhibit],
    rules_dir: Path | None,
    hashsets_dir: Path | None,
    *,
    dev: bool = False,
    yara: bool = True,
) -> None:
    """The packs and sets verify, and every row's scope names categories they carry: checked
    once for the batch, before the first exhibit (each run checks them again, as scan does)."""
    rules = compile_packs(rules_dir, dev=dev) if rules_dir and yara else None
    index = HashIndex.load(hashsets_dir, dev=dev)
    try:
        problems: list[str] = []
        for ex in exhibits:
            if ex.scope is None:
                continue
            try:
                check_scope(Scope(categories=ex.scope), rules, index)
            except KioskError as e:
                problems.append(f"row {ex.row}: {e}")
        if problems:
            raise ManifestError(f"nothing started: {'; '.join(problems[:MAX_PROBLEMS_SHOWN])}")
    finally:
        index.close()


def run_batch(
    exhibits: Sequence[Exhibit],
    request: Callable[[Exhibit], TriageRequest],
    hooks: Callable[[Exhibit], Hooks],
    cancel: threading.Event,
    on_start: Callable[[int, Exhibit], None] | None = None,
    on_done: Callable[[int, ExhibitOutcome], None] | None = None,
) -> list[ExhibitOutcome]:
    """Triage each exhibit in turn; a failure is that exhibit's outcome, never the batch's end.

    ``cancel`` (the operator's Ctrl-C) stops the exhibit running (its report says cancelled) and
    starts no other: those are listed "not started".
    """
    outcomes: list[ExhibitOutcome] = []
    for i, ex in enumerate(exhibits):
        if cancel.is_set():
            out = ExhibitOutcome(ex, NOT_STARTED, "the batch was cancelled", 0, 0.0, None)
        else:
            if on_start:
                on_start(i, ex)
            out = _one(ex, request, hooks)
        outcomes.append(out)
        if on_done:
            on_done(i, out)
    return outcomes


def _one(
    ex: Exhibit,
    request: Callable[[Exhibit], TriageRequest],
    hooks: Callable[[Exhibit], Hooks],
) -> ExhibitOutcome:
    t0 = time.monotonic()
    try:
        result: TriageResult = run_triage(request(ex), hooks(ex))
    except KioskError as e:  # nothing written for this exhibit; the next one starts
        return ExhibitOutcome(ex, ERROR, str(e), 0, time.monotonic() - t0, None)
    report = result.report
    return ExhibitOutcome(
        ex,
        report.outcome.status.value,
        report.outcome.reason or "",
        len(report.findings),
        time.monotonic() - t0,
        result.report_dir,
    )
