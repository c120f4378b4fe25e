"""kiosk.trust.policy: one version order, one version ledger, one signature policy.

Packs and hash sets are judged by the same functions; the tests below check that each kind gets
the same outcome and the same one-line message for the same key, times and versions.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from kiosk.errors import KioskError, VerificationError
from kiosk.hashsets.build import ImportRequest
from kiosk.hashsets.index import read_manifest
from kiosk.hashsets.store import import_set, sign_set
from kiosk.hashsets.trust import check_version, set_ledger
from kiosk.packs.load import RULEPACK
from kiosk.packs.sign import pack_ledger, verify_manifest
from kiosk.trust.policy import Used, compare_versions, version_key
from kiosk.trust.signing import Signer, TrustStore, key_id
from tests.conftest import pack_toml, sign_pack

# --------------------------------------------------------------------------- the order

# Small alphabets find the interesting collisions (1 vs 1.0 vs 01, rc vs RC, . vs -) quickly.
VERSION = st.text(alphabet="0129.-_aArRc", max_size=8) | st.text(max_size=12)


def test_versions_in_the_documented_order() -> None:
    ordered = [
        "1",
        "1.0alpha",
        "1.0beta",
        "1.0rc1",
        "1.0rc2",
        "1.0",
        "1.0.0",
        "1.0.1",
        "1.9",
        "1.10",
        "2025.03.1",
        "2025.3.1",  # the same numbers as 2025.03.1: told apart by their text only
        "2025.03.2",
        "2025.10.1",
    ]
    assert sorted(reversed(ordered), key=version_key) == ordered
    for older, newer in itertools.pairwise(ordered):
        assert compare_versions(older, newer) == -1, (older, newer)
        assert compare_versions(newer, older) == 1, (older, newer)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1", "1.0", -1),  # a longer version is newer: never "the same"
        ("1.0", "1.0.0", -1),
        ("1.10", "1.9", 1),  # numbers compare as numbers
        ("1.0rc1", "1.0", -1),  # a tag is a pre-release of what it follows
        ("1.0rc1", "1.0.0", -1),
        ("1.0.rc1", "1.0.1", -1),
        ("1.0-rc1", "1.0rc1", -1),  # the same runs: the text decides
        ("1.0RC1", "1.0rc2", -1),  # tags compare without case
        ("1.0.beta", "1.0.alpha", 1),
        ("2025.10.1", "2025.9.3", 1),
        ("2.0.0", "2.0.0", 0),
    ],
)
def test_version_examples(a: str, b: str, expected: int) -> None:
    assert compare_versions(a, b) == expected


@given(VERSION, VERSION)
def test_version_order_is_consistent_with_equality_and_antisymmetric(a: str, b: str) -> None:
    assert (compare_versions(a, b) == 0) == (a == b)
    assert compare_versions(a, b) == -compare_versions(b, a)
    assert (version_key(a) == version_key(b)) == (a == b)


@given(VERSION, VERSION, VERSION)
def test_version_order_is_transitive(a: str, b: str, c: str) -> None:
    x, y, z = sorted((a, b, c), key=version_key)
    assert compare_versions(x, y) <= 0
    assert compare_versions(y, z) <= 0
    assert compare_versions(x, z) <= 0


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=5), st.integers(0, 99))
def test_one_more_number_is_newer_and_a_tag_is_older(parts: list[int], n: int) -> None:
    v = ".".join(map(str, parts))
    assert compare_versions(f"{v}.{n}", v) == 1
    assert compare_versions(f"{v}rc{n}", v) == -1
    bumped = [*parts[:-1], parts[-1] + 1]
    assert compare_versions(".".join(map(str, bumped)), v) == 1


# --------------------------------------------------------------------------- the ledger

NOW = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)

# The bytes a kiosk home holds today (written by the two ledgers this one replaced).
PACK_FILE = '{\n  "hashset:h": "2.0",\n  "rulepack:p": "1.9",\n  "zeta": 1\n}\n'
SET_FILE = (
    '{\n  "format": "kiosk.hashset-versions/1",\n  "sets": {\n    "s": {\n'
    '      "version": "1.9",\n      "digest": "d1",\n      "recorded": "2026-01-01T00:00:00Z"\n'
    "    }\n  }\n}\n"
)


def test_existing_version_records_load_and_keep_their_layout(tmp_path: Path) -> None:
    (tmp_path / "rulepack-versions.json").write_text(PACK_FILE)
    (tmp_path / "hashset-versions.json").write_text(SET_FILE)
    packs, sets = pack_ledger(tmp_path), set_ledger(tmp_path)
    assert packs.load() == {"hashset:h": "2.0", "rulepack:p": "1.9"}
    assert sets.load() == {"s": "1.9"}
    for ledger, key in ((packs, "rulepack:p"), (sets, "s")):
        assert ledger.check(key, "1.10") is None
        assert ledger.check(key, "1.9") is None
        assert ledger.check(key, "1.8") == (
            "version 1.8 is older than version 1.9, already used on this kiosk (downgrade refused)"
        )
        ledger.record([Used(key, "1.8", "d0")], NOW)  # never lowered: nothing written
    assert (tmp_path / "rulepack-versions.json").read_text() == PACK_FILE
    assert (tmp_path / "hashset-versions.json").read_text() == SET_FILE
    packs.record([Used("rulepack:p", "1.10"), Used("rulepack:new", "1")], NOW)
    sets.record([Used("s", "1.10", "d2")], NOW)
    assert (tmp_path / "rulepack-versions.json").read_text() == (
        '{\n  "hashset:h": "2.0",\n  "rulepack:new": "1",\n  "rulepack:p": "1.10",\n'
        '  "zeta": 1\n}\n'
    )
    assert json.loads((tmp_path / "hashset-versions.json").read_text()) == {
        "format": "kiosk.hashset-versions/1",
        "sets": {"s": {"version": "1.10", "digest": "d2", "recorded": "2026-03-04T05:06:07Z"}},
    }


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("rulepack-versions.json", "{not json", "is unreadable"),
        ("rulepack-versions.json", '{"rulepack:p": 1}', "is damaged"),
        ("hashset-versions.json", '{"format": "other/1", "sets": {}}', "is damaged"),
        ("hashset-versions.json", "[]", "is damaged"),
    ],
)
def test_a_damaged_version_record_refuses_everything(
    tmp_path: Path, name: str, content: str, why: str
) -> None:
    (tmp_path / name).write_text(content)
    ledger = pack_ledger(tmp_path) if name.startswith("rulepack") else set_ledger(tmp_path)
    message = f"the version record {tmp_path / name} {why}; downgrades cannot be checked"
    with pytest.raises(VerificationError) as e:
        ledger.check("rulepack:p", "1")
    assert str(e.value) == message
    with pytest.raises(VerificationError):
        ledger.record([Used("rulepack:p", "1")], NOW)
    assert (tmp_path / name).read_text() == content


# --------------------------------------------------------------------------- signatures

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def _trust(signer: Signer, revoked_at: datetime | None) -> TrustStore:
    trust = TrustStore([])
    trust.add(signer.public, label="publisher", not_before=T0)
    if revoked_at is not None:
        trust.revoke(signer.keyid, revoked_at)
    return trust


def _pack_problem(
    root: Path, signer: Signer, trust: TrustStore, created: datetime, now: datetime
) -> str | None:
    pack = root / "p"
    pack.mkdir(parents=True)
    (pack / "pack.toml").write_text(pack_toml("p", "1.0.0"))
    (pack / "r.yar").write_text("rule r { condition: false }\n")
    sign_pack(pack, signer, created=created, expires=T0 + 30 * DAY)
    try:
        verify_manifest(pack, RULEPACK, "p", trust, now, "rule pack p")
    except KioskError as e:
        return str(e).removeprefix("rule pack p: ")
    return None


def _set_problems(
    root: Path, signer: Signer, trust: TrustStore, created: datetime, now: datetime
) -> list[str]:
    src = root / "list.txt"
    src.parent.mkdir(parents=True)
    src.write_text("11" * 32 + "\n")
    store = root / "store"
    result = import_set(store, ImportRequest("s", (src,), "known_bad", version="1.0.0"))
    sign_set(store, "s", signer, expires=T0 + 30 * DAY, clock=lambda: created)
    manifest, _ = read_manifest(result.version_dir)
    return list(check_version(result.version_dir, manifest, trust, now).problems)


@pytest.mark.parametrize(
    ("revoked_at", "created", "now", "expected"),
    [
        pytest.param(None, T0 + DAY, T0 + 2 * DAY, None, id="valid"),
        pytest.param(
            T0 + 10 * DAY,
            T0 + DAY,  # dated before the revocation, checked after it
            T0 + 11 * DAY,
            "signed by a revoked key; signing time not proven "
            "(key {kid}… revoked at 2026-01-11T00:00:00Z)",
            id="revoked-key-backdated",
        ),
        pytest.param(
            T0 + 10 * DAY,
            T0 + 10 * DAY,
            T0 + 11 * DAY,
            "key {kid}… was revoked at 2026-01-11T00:00:00Z, when the manifest says it was signed",
            id="revoked-key-at-signing",
        ),
        pytest.param(
            None,
            T0 + DAY,
            T0 + 31 * DAY,
            "version 1.0.0 expired at 2026-01-31T00:00:00Z; a newly signed version is needed",
            id="expired",
        ),
        pytest.param(
            None,
            T0 - DAY,
            T0 + DAY,
            "key {kid}… was not yet valid at 2025-12-31T00:00:00Z, "
            "when the manifest says it was signed",
            id="key-not-yet-valid",
        ),
    ],
)
def test_packs_and_sets_get_the_same_verdict_and_message(
    tmp_path: Path,
    revoked_at: datetime | None,
    created: datetime,
    now: datetime,
    expected: str | None,
) -> None:
    private = Ed25519PrivateKey.generate()
    signer = Signer(private, key_id(private.public_key()))
    trust = _trust(signer, revoked_at)
    want = expected.format(kid=signer.keyid[:16]) if expected else None
    assert _pack_problem(tmp_path / "pack", signer, trust, created, now) == want
    assert _set_problems(tmp_path / "set", signer, trust, created, now) == ([want] if want else [])
