"""docs/report.schema.json as the tests use it: one validator, and a sweep over written reports.

Other tools read report.json through the published schema, so every report the test suite
writes is checked against it (``sweep``, run once at the end of the session by conftest), not
only the goldens: a field added to the records but not to the schema fails the run.
"""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from kiosk.canonical import canonical

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "report.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
Draft202012Validator.check_schema(SCHEMA)
REPORT = Draft202012Validator(SCHEMA)
FILE_LINE = Draft202012Validator({**SCHEMA["$defs"]["file"], "$defs": SCHEMA["$defs"]})


def problems(report: object) -> list[str]:
    """Every way ``report`` departs from the schema, as ``path: message``; empty if it fits."""
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(report)'}: {e.message}"
        for e in sorted(REPORT.iter_errors(report), key=lambda e: list(map(str, e.path)))
    ]


def line_problems(line: object) -> list[str]:
    """Every way one files.jsonl record departs from ``#/$defs/file``."""
    return [e.message for e in FILE_LINE.iter_errors(line)]


@dataclass
class Sweep:
    envelopes: int = 0  # report directories with an envelope, as kiosk leaves them
    validated: int = 0  # of those, reports (and their inventories) checked against the schema


def _signed_report(directory: Path) -> dict[str, Any] | None:
    """The report as signed in the envelope, when report.json is still exactly its bytes.

    Tests tamper with reports on purpose (a flipped byte, a rewritten payload, a truncated
    envelope); those are no longer what kiosk wrote and are left to the tests that made them.
    """
    if not all(_regular(directory / name) for name in ("report.dsse.json", "report.json")):
        return None  # a planted FIFO or link (tests/test_report_folder.py): never read here
    try:
        envelope = json.loads((directory / "report.dsse.json").read_bytes())
        statement = json.loads(base64.b64decode(envelope["payload"]))
        report = statement["predicate"]
        if canonical(report) != (directory / "report.json").read_bytes():
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return report if isinstance(report, dict) else None


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def sweep(base: Path) -> tuple[Sweep, list[str]]:
    """Validate every untampered report (and inventory) under ``base``; (counts, failures)."""
    counts, failures = Sweep(), []
    for envelope in sorted(base.rglob("report.dsse.json")):
        counts.envelopes += 1
        report = _signed_report(envelope.parent)
        if report is None:
            continue
        found = [f"{envelope.parent}: {p}" for p in problems(report)]
        inventory, digest = envelope.parent / "files.jsonl", (report.get("inventory") or {})
        data = inventory.read_bytes() if inventory.is_file() else b""
        if digest and hashlib.sha256(data).hexdigest() == digest.get("sha256"):
            for n, line in enumerate(data.decode("utf-8").splitlines(), 1):
                found += [f"{inventory}:{n}: {p}" for p in line_problems(json.loads(line))]
        failures += found
        counts.validated += 1
    return counts, failures
