"""The headless front end: ``kiosk scan …`` and friends, a thin layer over ``run_triage``.

Exit codes: 0 the scan completed (whatever it found); 1 a clear one-line error on stderr —
bad evidence, broken rules, unwritable output, or a run that failed; 2 a usage error. No
traceback ever reaches the officer: this is one of the two places that catch broadly.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TextIO

from kiosk import __version__
from kiosk.errors import KioskError
from kiosk.model import CaseRecord, LegalBasis, Outcome, Progress
from kiosk.report import render_text
from kiosk.triage import Hooks, TriageRequest, run_triage


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from e
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kiosk", description="Forensic triage of a seized device image."
    )
    p.add_argument("--version", action="version", version=f"kiosk {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("scan", help="triage one image (raw, split raw or E01), read-only")
    s.add_argument("image", type=Path, help="the image, or its first segment")
    s.add_argument(
        "segments", type=Path, nargs="*", help="further segments, if not found automatically"
    )
    s.add_argument("--case", required=True, help="case reference")
    s.add_argument("--exhibit", required=True, help="exhibit reference of the device")
    s.add_argument("--officer", required=True, help="ID of the officer running the scan")
    s.add_argument("--authorised-by", required=True, help="ID of the authorising officer")
    s.add_argument("--legal-basis", required=True, choices=[b.value for b in LegalBasis])
    s.add_argument(
        "--legal-ref", required=True, help="warrant number, statutory power, consent form …"
    )
    s.add_argument("--device", default="", help="optional description of the device")
    s.add_argument(
        "--rules", type=Path, default=Path("rules"), help="rule packs directory (default: rules)"
    )
    s.add_argument(
        "--hashsets",
        type=Path,
        default=Path("hashsets"),
        help="hash sets directory (default: hashsets)",
    )
    s.add_argument(
        "--out",
        type=Path,
        default=Path("reports"),
        help="where report directories go (default: reports)",
    )
    s.add_argument(
        "--inventory", action="store_true", help="also write files.jsonl, one line per file"
    )
    s.add_argument(
        "--workers",
        type=_positive_int,
        default=2,
        help="worker processes; 0 scans inline (default 2)",
    )
    s.add_argument(
        "--max-yara-bytes",
        type=_positive_int,
        default=64 << 20,
        help="files larger than this are hashed only (default 64 MiB)",
    )
    return p


class _ProgressLine:
    """One self-overwriting progress line on a terminal; silent when stderr is not a TTY."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()

    def __call__(self, p: Progress) -> None:
        if not self._tty:
            return
        frac = (
            p.bytes_done / p.bytes_total
            if p.bytes_total
            else (p.files_done / p.files_total if p.files_total else 1)
        )
        rate = p.bytes_done / p.elapsed_s / 1e6 if p.elapsed_s > 0 else 0.0
        eta = (p.elapsed_s / frac - p.elapsed_s) if frac > 0 else 0.0
        bar = "#" * int(frac * 30)
        self._stream.write(
            f"\r[{bar:<30}] {frac:6.1%}  files {p.files_done}/{p.files_total}  "
            f"{rate:7.1f} MB/s  ETA {eta:5.0f}s  findings {p.findings}  "
        )
        self._stream.flush()

    def done(self) -> None:
        if self._tty:
            self._stream.write("\n")


def _scan(args: argparse.Namespace) -> int:
    case = CaseRecord(
        case_ref=args.case,
        exhibit_ref=args.exhibit,
        officer=args.officer,
        authorised_by=args.authorised_by,
        legal_basis=LegalBasis(args.legal_basis),
        legal_ref=args.legal_ref,
        device_description=args.device,
    )
    req = TriageRequest(
        case=case,
        image=(args.image, *args.segments),
        rules_dir=args.rules,
        hashsets_dir=args.hashsets,
        out_dir=args.out,
        inventory=args.inventory,
        workers=args.workers,
        max_yara_bytes=args.max_yara_bytes,
    )
    progress = _ProgressLine(sys.stderr)
    hooks = Hooks(on_progress=progress)

    def _interrupt(_sig: int, _frame: FrameType | None) -> None:
        hooks.cancel.set()

    previous = signal.signal(signal.SIGINT, _interrupt)
    try:
        result = run_triage(req, hooks)
    finally:
        signal.signal(signal.SIGINT, previous)
        progress.done()
    print(render_text(result.report))
    print(result.report_dir)
    outcome = result.report["outcome"]
    if outcome["status"] == Outcome.FAILED.value:
        print(f"kiosk: error: the scan failed: {outcome['reason']}", file=sys.stderr)
        return 1
    if outcome["status"] == Outcome.CANCELLED.value:
        print("kiosk: the scan was cancelled; the report is marked cancelled", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "scan":
            return _scan(args)
    except KioskError as e:
        print(f"kiosk: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # the front end's promise: one line, never a traceback
        print(f"kiosk: internal error ({type(e).__name__}): {e}", file=sys.stderr)
        return 1
    return 2
