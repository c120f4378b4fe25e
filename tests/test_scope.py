"""The declared scope: matches outside the authority are not findings, and the report says so."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.engine.scope import Scope, ScopeFilter, check_scope, hash_categories, rule_categories
from kiosk.engine.triage import TriageResult
from kiosk.errors import CaseError
from kiosk.hashsets.index import HashIndex
from kiosk.locator import FsLoc, StreamLoc, VolumeLoc
from kiosk.model import (
    BUILTIN_CATEGORIES,
    FileResult,
    FileStatus,
    FileTask,
    HashMatch,
    Recommendation,
    RuleMatch,
)
from kiosk.packs.load import compile_packs
from kiosk.reports.model import MatchType, OutOfScope, ScopeRecord
from kiosk.tui.flow import scope_from_form
from tests.conftest import HASHSETS, IMAGES, ROOT, RULES, SAMPLES, TEST_CAP, scan_cmd

Triage = Callable[..., TriageResult]

TASK = FileTask(1, StreamLoc(FsLoc(VolumeLoc(0, 0), "ext4"), 11, 1, -1), "/a", True, 10)
YARA = RuleMatch("demo", "r", "fraud", "high", "d")
BAD = HashMatch("bad", "1", "sha256", "known_bad", "csam")
GOOD = HashMatch("good", "1", "sha256", "known_good", "os")


def _filter(rules: set[str], hashes: set[str]) -> ScopeFilter:
    return ScopeFilter(frozenset(rules), frozenset(hashes), True, {"bad": "csam"})


def test_out_of_scope_matches_are_removed_and_counted() -> None:
    r = FileResult(TASK, FileStatus.SCANNED, rule_matches=(YARA,), hash_matches=(BAD, GOOD))
    f = _filter({"malware"}, {"csam"})
    out = f.apply(r)
    assert out.rule_matches == ()
    assert out.hash_matches == (BAD, GOOD)
    assert out.is_finding  # the known-bad hash is in scope
    assert f.record().out_of_scope_matches == (OutOfScope(MatchType.YARA, "fraud", 1),)


def test_peek_gives_what_apply_gives_without_counting() -> None:
    """A finding shown as it arrives (peek) is the one the report holds (apply), counted once."""
    r = FileResult(TASK, FileStatus.SCANNED, rule_matches=(YARA,), hash_matches=(BAD, GOOD))
    f = _filter({"malware"}, {"csam"})
    seen = f.peek(r)
    assert f.record().out_of_scope_matches == ()  # nothing counted yet
    assert f.apply(r) == seen
    assert f.record().out_of_scope_matches == (OutOfScope(MatchType.YARA, "fraud", 1),)


def test_a_file_with_only_out_of_scope_matches_is_not_a_finding() -> None:
    r = FileResult(TASK, FileStatus.SCANNED, rule_matches=(YARA,), hash_matches=(BAD,))
    f = _filter(set(), {"fraud"})
    out = f.apply(r)
    assert not out.is_finding
    assert [m.category for m in f.record().out_of_scope_matches] == ["csam", "fraud"]


def test_known_good_sets_are_never_scoped_out() -> None:
    r = FileResult(TASK, FileStatus.KNOWN_GOOD, hash_matches=(GOOD,))
    f = _filter(set(), {"csam"})
    assert f.apply(r) is r
    assert f.record().out_of_scope_matches == ()


def test_hash_sets_are_scoped_by_their_own_category_not_a_per_hash_one() -> None:
    vics = HashMatch("bad", "1", "sha256", "known_bad", "vics_us_2")  # finer, per-hash label
    r = FileResult(TASK, FileStatus.SCANNED, hash_matches=(vics,))
    assert _filter(set(), {"csam"}).apply(r) is r
    f = _filter(set(), {"other"})
    assert f.apply(r).hash_matches == ()
    assert f.record().out_of_scope_matches == (OutOfScope(MatchType.HASHSET, "csam", 1),)


def test_check_scope_resolves_none_to_every_loaded_category() -> None:
    rules, index = compile_packs(RULES), HashIndex.load(HASHSETS)
    every_rule_category = {
        "demo_marker",
        "cybercrime_tool",
        "crypto_wallet",
        "card_fraud",
        "phishing_kit",
        "private_key",
        *BUILTIN_CATEGORIES,  # the kiosk's own checks: disguised files, encrypted data
    }
    assert set(rule_categories(rules)) == every_rule_category
    assert hash_categories(index) == ["demo_known_bad"]
    f = check_scope(None, rules, index)
    assert not f.restricted
    assert f.rule_categories == every_rule_category
    assert f.hash_categories == {"demo_known_bad"}
    only_hashes = check_scope(Scope(hash_categories=frozenset()), rules, index)
    assert only_hashes.restricted
    assert only_hashes.rule_categories == every_rule_category
    assert only_hashes.hash_categories == set()


def test_check_scope_refuses_unknown_or_empty_scopes() -> None:
    rules, index = compile_packs(RULES), HashIndex.load(HASHSETS)
    with pytest.raises(CaseError, match="no loaded pack or set has: fraud"):
        check_scope(Scope(rule_categories=frozenset({"fraud"})), rules, index)
    with pytest.raises(CaseError, match="authorises no category"):
        check_scope(Scope(frozenset(), frozenset()), rules, index)


def test_triage_reports_only_findings_within_scope(triage: Triage) -> None:
    scope = Scope(rule_categories=frozenset(), hash_categories=frozenset({"demo_known_bad"}))
    report = triage("fat16.dd", scope=scope).report
    paths = {f.path for f in report.findings}
    assert paths == {"/Downloads/known_bad_sample.bin"}
    assert report.findings_by_category == {"demo_known_bad": 1}
    assert report.recommendation.result is Recommendation.SUBMIT
    recorded = report.settings.scope
    assert recorded.restricted is True
    assert recorded.rule_categories == ()
    assert recorded.hash_categories == ("demo_known_bad",)
    (excluded,) = recorded.out_of_scope_matches
    assert excluded.type is MatchType.YARA
    assert excluded.category == "demo_marker"
    assert excluded.matches >= 2  # the marker file and its recoverable deleted copy


def test_an_unrestricted_triage_records_every_category_as_authorised(triage: Triage) -> None:
    report = triage("fat16.dd").report
    assert report.settings.scope == ScopeRecord(
        restricted=False,
        rule_categories=tuple(
            sorted(
                [
                    "demo_marker",
                    "cybercrime_tool",
                    "crypto_wallet",
                    "card_fraud",
                    "phishing_kit",
                    "private_key",
                    *BUILTIN_CATEGORIES,
                ]
            )
        ),
        hash_categories=("demo_known_bad",),
        out_of_scope_matches=(),
    )
    assert set(report.findings_by_category) == {"demo_marker", "demo_known_bad"}


def test_check_scope_places_categories_named_without_their_kind() -> None:
    rules, index = compile_packs(RULES), HashIndex.load(HASHSETS)
    f = check_scope(Scope(categories=frozenset({"card_fraud", "demo_known_bad"})), rules, index)
    assert (f.restricted, f.rule_categories, f.hash_categories) == (
        True,
        {"card_fraud"},
        {"demo_known_bad"},
    )
    with pytest.raises(CaseError) as refused:
        check_scope(Scope(categories=frozenset({"card_fraud", "fraud"})), rules, index)
    assert str(refused.value) == (
        "cannot start: the scope names categories no loaded pack or set has: fraud (known: "
        "card_fraud, crypto_wallet, cybercrime_tool, demo_known_bad, demo_marker, disguised_file, "
        "encrypted_data, phishing_kit, private_key)"
    )


def _scan(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [*scan_cmd(SAMPLES / "mbr-fat16-ext4.dd", out), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def test_cli_scope_gives_the_findings_and_report_fields_the_app_gives(
    triage: Triage, tmp_path: Path
) -> None:
    """``kiosk scan --scope`` against the app's path (its form's scope into ``run_triage``)."""
    run = _scan(
        tmp_path / "cli",
        "--scope",
        "card_fraud, demo_known_bad",
        "--inventory",
        "--max-yara-bytes",
        str(TEST_CAP),
    )
    assert run.returncode == 0, run.stderr
    cli_dir = Path(run.stdout.strip().splitlines()[-1])
    cli = json.loads((cli_dir / "report.json").read_bytes())
    app_dir = triage(
        "mbr-fat16-ext4.dd", scope=scope_from_form(["card_fraud"], ["demo_known_bad"])
    ).report_dir
    app = json.loads((app_dir / "report.json").read_bytes())
    assert cli["settings"]["scope"] == app["settings"]["scope"]
    recorded = cli["settings"]["scope"]
    assert (recorded["restricted"], recorded["rule_categories"], recorded["hash_categories"]) == (
        True,
        ["card_fraud"],
        ["demo_known_bad"],
    )
    assert {(m["type"], m["category"]) for m in recorded["out_of_scope_matches"]} == {
        ("yara", "demo_marker")
    }
    # in scope: exactly the walked files whose SHA-256 the demo known-bad source lists
    bad = set((ROOT / "demo" / "demo-known-bad.txt").read_text().split())
    assert {f["sha256"] for f in cli["findings"]} == {
        f["sha256"] for f in IMAGES["mbr-fat16-ext4.dd"]["files"] if f["sha256"] in bad
    }
    assert (
        cli["findings_by_category"]
        == app["findings_by_category"]
        == {"demo_known_bad": len(cli["findings"])}
    )
    assert [f["path"] for f in cli["findings"]] == [f["path"] for f in app["findings"]]
    lines = (cli_dir / "files.jsonl").read_text().splitlines()
    matches = [m for ln in lines for m in json.loads(ln)["matches"]]
    assert [m for m in matches if m["type"] == "yara"] == []  # card_fraud matched nothing here
    assert {m["category"] for m in matches} == {"demo_known_bad", "demo_known_good"}


def test_cli_scope_with_an_unknown_category_names_the_known_ones_and_writes_nothing(
    tmp_path: Path,
) -> None:
    run = _scan(tmp_path / "out", "--scope", "card_fraud,fraud")
    assert run.returncode == 1
    assert run.stderr == (
        "kiosk: error: cannot start: the scope names categories no loaded pack or set has: "
        "fraud (known: card_fraud, crypto_wallet, cybercrime_tool, demo_known_bad, demo_marker, "
        "disguised_file, encrypted_data, phishing_kit, private_key)\n"
    )
    assert not (tmp_path / "out").exists()
    run = _scan(tmp_path / "out", "--scope", " , ")
    assert (run.returncode, run.stderr) == (
        1,
        "kiosk: error: cannot start: the scope authorises no category\n",
    )
    assert not (tmp_path / "out").exists()
