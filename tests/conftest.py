"""Shared fixtures: the committed sample images, their manifest, and a triage runner."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kiosk.audit import AuditLog
from kiosk.model import CaseRecord, LegalBasis
from kiosk.signing import TrustStore, init_key, load_public, load_signer
from kiosk.triage import Hooks, TriageRequest, TriageResult, run_triage

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_images"
RULES = ROOT / "rules"
HASHSETS = ROOT / "hashsets"
DEMO_KEY = ROOT / "demo" / "hashset-signing.pub"  # signs the bundled demo hash sets
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

    It trusts the demo hash-set key, as the `make demo` home does, so the bundled sets load.
    """
    home = tmp_path_factory.mktemp("kiosk-home")
    init_key(home, not_before=datetime(2026, 1, 1, tzinfo=UTC))  # before the fixed test clock
    trust = TrustStore.load(home / "trust.json")
    trust.add(load_public(DEMO_KEY.read_text(encoding="utf-8")), label="kiosk project demo key")
    trust.save(home / "trust.json")
    return home


@pytest.fixture(autouse=True)
def _home_env(kiosk_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test (and every `python -m kiosk` it starts) uses the test kiosk home."""
    monkeypatch.setenv("KIOSK_HOME", str(kiosk_home))


def fixed_hooks(**kw: Any) -> Hooks:
    """Hooks with a frozen clock, a fixed id and the test key, so report bytes are reproducible."""
    home = Path(os.environ["KIOSK_HOME"])
    kw.setdefault("signer", load_signer(home / "keys" / "kiosk.key"))
    kw.setdefault("audit", AuditLog(home / "audit.jsonl"))
    return Hooks(clock=lambda: datetime(2026, 11, 27, 12, 0, tzinfo=UTC), new_id=lambda: "r1", **kw)


@pytest.fixture
def triage(tmp_path: Path) -> Callable[..., TriageResult]:
    """Run a full triage of a sample image into a fresh output folder."""

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
        return run_triage(TriageRequest(**req_kw), hooks or fixed_hooks())

    return run
