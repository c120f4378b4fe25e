"""Shared fixtures: the committed sample images, their manifest, and a triage runner."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kiosk.canonical import canonical
from kiosk.engine.triage import Hooks, TriageRequest, TriageResult, run_triage
from kiosk.model import CaseRecord, LegalBasis
from kiosk.packs.check import read_pack
from kiosk.packs.load import RULEPACK
from kiosk.packs.sign import MANIFEST_FILE, build_manifest, write_manifest
from kiosk.reports.decode import read_report
from kiosk.reports.encode import report_json
from kiosk.trust.audit import AuditLog
from kiosk.trust.signing import (
    PUBLISHING,
    REPORT_SIGNING,
    REVIEWING,
    Signer,
    TrustStore,
    init_key,
    load_public,
    load_signer,
    new_key,
)
from tests import report_schema

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_images"
RULES = ROOT / "rules"
HASHSETS = ROOT / "hashsets"
DEMO_PUBLISHER = ROOT / "demo" / "publisher.pub"  # signs the bundled packs and sets
MANIFEST: dict[str, Any] = json.loads((SAMPLES / "manifest.json").read_text(encoding="utf-8"))
IMAGES: dict[str, dict[str, Any]] = {im["name"]: im for im in MANIFEST["images"]}
MARKER = MANIFEST["marker"].encode()
TEST_CAP = 1 << 20  # the test YARA cap: the sample "large" files are bigger than this

CASE = CaseRecord(
    case_ref="CASE-2026-0042",
    exhibit_ref="EX-7",
    officer="PC-1234",
    authorised_by="DS-5678",
    legal_basis=LegalBasis.WARRANT,
    legal_ref="Warrant 2026/117, Sheriff Court",
)


@pytest.fixture(scope="session")
def kiosk_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kiosk home with a key pair and trust store, shared by the session's tests.

    It trusts the demo publisher key for publishing only, as the `make demo` home does, so the
    bundled packs and sets load (and a report or review it signs does not verify). Its own key
    also publishes: the tests sign packs and sets with it, as a lab's workstation would.
    """
    home = tmp_path_factory.mktemp("kiosk-home")
    (home / "people").mkdir(mode=0o700)
    init_key(  # trusted from before the fixed test clock
        home,
        not_before=datetime(2026, 1, 1, tzinfo=UTC),
        purposes=(REPORT_SIGNING, PUBLISHING),
    )
    store = TrustStore.load(home / "trust.json")
    store.add(
        load_public(DEMO_PUBLISHER.read_text()),
        label="kiosk project demo publisher",
        purposes=(PUBLISHING,),
    )
    for name in SUPERVISORS:  # each supervisor's own key, encrypted, trusted for reviews
        person = new_key(supervisor_key(home, name), SUPERVISOR_PASSPHRASE)
        store.add(
            person.public,
            label=name,
            not_before=datetime(2026, 1, 1, tzinfo=UTC),
            purposes=(REVIEWING,),
        )
    store.save(home / "trust.json")
    return home


@pytest.fixture
def own_home(kiosk_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the test kiosk home (same keys and trust) with an audit log of its own, for a
    test whose audit events must not meet another test's: the reports are deterministic, so two
    tests' reviews of the same sample would be of the same report."""
    home = tmp_path / "own-home"
    shutil.copytree(kiosk_home, home, ignore=shutil.ignore_patterns("audit.jsonl"))
    monkeypatch.setenv("KIOSK_HOME", str(home))
    return home


SUPERVISORS = ("SGT-9", "INSP-2")
SUPERVISOR_PASSPHRASE = b"test supervisor passphrase"


def supervisor_key(home: Path, name: str = "SGT-9") -> Path:
    """Where the test home keeps a supervisor's own key file (outside keys/: it is theirs)."""
    return home / "people" / f"{name.lower()}.key"


def supervisor(name: str = "SGT-9") -> Signer:
    """A supervisor's signer, opened with the passphrase as ``kiosk review`` would."""
    home = Path(os.environ["KIOSK_HOME"])
    return load_signer(supervisor_key(home, name), lambda: SUPERVISOR_PASSPHRASE)


@pytest.fixture(autouse=True)
def _home_env(kiosk_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test (and every `python -m kiosk` it starts) uses the test kiosk home."""
    monkeypatch.setenv("KIOSK_HOME", str(kiosk_home))


def pack_toml(name: str, version: str = "1.0.0", extra: str = "") -> str:
    """A complete pack.toml for a test pack whose rules use category "test"."""
    return (
        f'name = "{name}"\nversion = "{version}"\ndescription = "a test pack"\n'
        f'maintainer = "tests"\ncategories = ["test"]\n{extra}'
    )


def sign_pack(
    pack_dir: Path,
    signer: Signer,
    *,
    version: str | None = None,
    created: datetime | None = None,
    expires: datetime | None = None,
) -> Path:
    """Sign a pack as forensic staff would (``kiosk rules sign`` without its check and tests)."""
    created = created or datetime.now(UTC)
    manifest = build_manifest(
        RULEPACK,
        pack_dir.name,
        version or read_pack(pack_dir).version,
        pack_dir,
        created,
        expires or created + timedelta(days=1),
    )
    return write_manifest(pack_dir, manifest, signer)


@pytest.fixture(scope="session")
def signed_rules(kiosk_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of rules/ re-signed by the session key, for subprocess scans, which check expiry
    against the real clock: they must not fail once the committed demo signatures expire."""
    out = tmp_path_factory.mktemp("signed") / "rules"
    shutil.copytree(RULES, out, ignore=shutil.ignore_patterns(MANIFEST_FILE))
    signer = load_signer(kiosk_home / "keys" / "kiosk.key")
    for pack in sorted(p for p in out.iterdir() if p.is_dir()):
        sign_pack(pack, signer)
    return out


def fixed_hooks(**kw: Any) -> Hooks:
    """Hooks with a frozen clock, a fixed id and the test key, so report bytes are reproducible."""
    home = Path(os.environ["KIOSK_HOME"])
    kw.setdefault("signer", load_signer(home / "keys" / "kiosk.key"))
    kw.setdefault("audit", AuditLog(home / "audit.jsonl"))
    return Hooks(clock=lambda: datetime(2026, 11, 27, 12, 0, tzinfo=UTC), new_id=lambda: "r1", **kw)


@pytest.fixture
def triage(tmp_path: Path, written_reports: list[Path]) -> Callable[..., TriageResult]:
    """Run a full triage of a sample image into a fresh output folder.

    The committed packs, as signed by the demo publisher: the fixed clock of ``fixed_hooks``
    is also the time their expiry is checked against, so these tests never expire.
    """

    def run(name: str, *, hooks: Hooks | None = None, **kw: Any) -> TriageResult:
        image = IMAGES[name]
        req_kw: dict[str, Any] = {
            "case": CASE,
            "image": (SAMPLES / image["segments"][0],),
            "rules_dir": RULES,
            "hashsets_dir": HASHSETS,
            "out_dir": tmp_path / "reports",
            "inventory": True,
            "workers": 2,
            "max_yara_bytes": TEST_CAP,
        }
        req_kw.update(kw)
        result = run_triage(TriageRequest(**req_kw), hooks or fixed_hooks())
        check_written_report(result)
        written_reports.append(result.report_dir)
        return result

    return run


def check_written_report(result: TriageResult) -> None:
    """A report as just written (before any test tampers with it) fits the published schema,
    and reads back into the very records the engine built, which write the same bytes again."""
    raw = (result.report_dir / "report.json").read_bytes()
    data = json.loads(raw)
    assert report_schema.problems(data) == []
    back = read_report(data)
    assert back == result.report
    assert canonical(report_json(back)) == raw


@pytest.fixture(scope="session", autouse=True)
def written_reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Path]]:
    """The report directories the triage fixture wrote; and after the session, every report any
    test wrote (in process, through the CLI in a subprocess, from the app) and left as kiosk
    wrote it is checked against docs/report.schema.json, inventories included. A sweep that
    finds reports but validates none, or finds none although the triage fixture wrote some, is
    itself a failure: the check must not pass by checking nothing."""
    written: list[Path] = []
    yield written
    counts, failures = report_schema.sweep(tmp_path_factory.getbasetemp())
    assert failures == [], "\n".join(failures[:20])
    if counts.envelopes or written:
        assert counts.validated > 0, f"no written report was validated ({counts})"


CLI_CASE_ARGS = [
    "--case",
    "CASE-1",
    "--exhibit",
    "EX-1",
    "--officer",
    "PC-1",
    "--authorised-by",
    "DS-2",
    "--legal-basis",
    "warrant",
    "--legal-ref",
    "W-1",
]


def scan_cmd(image: Path, out: Path, case_args: list[str] | None = None) -> list[str]:
    """``python -m kiosk scan`` of one image with the bundled packs and sets, as scripts run it."""
    return [
        sys.executable,
        "-m",
        "kiosk",
        "scan",
        str(image),
        *(CLI_CASE_ARGS if case_args is None else case_args),
        "--rules",
        str(RULES),
        "--hashsets",
        str(HASHSETS),
        "--out",
        str(out),
    ]
