"""Rule packs: validation with file:line, signed manifests, refusals, dev mode, cache, CLI.

Real yara compiles and real files throughout; keys are made per test session, never the
committed demo publisher key (except to check the committed manifests themselves).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yara
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import kiosk.packs.load as rules_module
from kiosk.engine.triage import Hooks
from kiosk.errors import RulesError
from kiosk.packs.check import check_pack, read_pack
from kiosk.packs.load import RULEPACK, Matcher, RuleMeta, compile_packs, file_externals, file_type
from kiosk.packs.sign import (
    MANIFEST_FILE,
    VERSIONS_FILE,
    read_unverified,
    verify_manifest,
)
from kiosk.reports.attestation import verify_report_dir
from kiosk.reports.html import render_html
from kiosk.reports.text import DEV_MODE_NOTE, render_text
from kiosk.trust.audit import AuditLog
from kiosk.trust.signing import Signer, TrustStore, key_id, load_public, load_signer
from tests.conftest import DEMO_PUBLISHER, ROOT, RULES, SAMPLES, pack_toml, sign_pack

RULE = """rule {name}
{{
    meta:
        category = "test"
        severity = "high"
        description = "test rule {name}"
        author = "tests"
        date = "2026-11-27"
    strings:
        $a = "{needle}"
    condition:
        $a
}}
"""


def _signer() -> Signer:
    private = Ed25519PrivateKey.generate()
    return Signer(private, key_id(private.public_key()))


@pytest.fixture(scope="module")
def publisher() -> Signer:
    return _signer()


@pytest.fixture
def trust(publisher: Signer) -> TrustStore:
    store = TrustStore([])
    store.add(publisher.public, label="test publisher")
    return store


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _pack(root: Path, name: str = "p", version: str = "1.0.0", needle: str = "NEEDLE-1") -> Path:
    pack = root / name
    (pack / "tests" / "positive" / "r1").mkdir(parents=True, exist_ok=True)
    (pack / "tests" / "negative" / "r1").mkdir(parents=True, exist_ok=True)
    (pack / "pack.toml").write_text(pack_toml(name, version))
    (pack / "r.yar").write_text(RULE.format(name="r1", needle=needle))
    (pack / "tests" / "positive" / "r1" / "hit.txt").write_text(f"x {needle} y\n")
    (pack / "tests" / "negative" / "r1" / "miss.txt").write_text("x NEEDLE y\n")
    return pack


def _load(rules: Path, home: Path, trust: TrustStore, **kw: Any) -> Any:
    kw.setdefault("audit", AuditLog(home / "audit.jsonl"))
    return compile_packs(rules, home=home, trust=trust, **kw)


def _events(home: Path) -> list[dict[str, Any]]:
    path = home / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["event"] for line in path.read_text().splitlines()]


def _versions(home: Path) -> dict[str, str]:
    path = home / VERSIONS_FILE
    return json.loads(path.read_text()) if path.exists() else {}


# --------------------------------------------------------------------------- signed packs


def test_a_signed_pack_loads_records_its_version_and_is_logged(
    tmp_path: Path, home: Path, publisher: Signer, trust: TrustStore
) -> None:
    pack = _pack(tmp_path / "rules")
    sign_pack(pack, publisher)
    compiled = _load(tmp_path / "rules", home, trust)
    (p,) = compiled.packs
    assert (p.name, p.version, p.rule_count, p.signed_by) == ("p", "1.0.0", 1, publisher.keyid)
    assert _versions(home) == {"rulepack:p": "1.0.0"}
    (loaded,) = [e for e in _events(home) if e["kind"] == "rulepack_loaded"]
    assert loaded["pack"] == "p"
    assert loaded["signed_by"] == publisher.keyid
    assert loaded["dev_mode"] is False


def test_an_unsigned_pack_is_refused_naming_it(
    tmp_path: Path, home: Path, trust: TrustStore
) -> None:
    _pack(tmp_path / "rules", name="unsigned")
    with pytest.raises(RulesError, match=r"^rule pack unsigned: not signed"):
        _load(tmp_path / "rules", home, trust)
    assert [e["kind"] for e in _events(home)] == ["rulepack_refused"]
    assert not (home / VERSIONS_FILE).exists()


@pytest.mark.parametrize(
    ("path", "what"),
    [
        ("r.yar", "changed: r.yar"),
        ("pack.toml", "changed: pack.toml"),
        ("tests/negative/r1/miss.txt", "changed: tests/negative/r1/miss.txt"),
    ],
)
def test_one_changed_byte_anywhere_in_a_signed_pack_is_refused(
    tmp_path: Path, home: Path, publisher: Signer, trust: TrustStore, path: str, what: str
) -> None:
    pack = _pack(tmp_path / "rules")
    sign_pack(pack, publisher)
    target = pack / path
    data = bytearray(target.read_bytes())
    data[5] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(RulesError, match=rf"^rule pack p: tampered since it was signed: {what}$"):
        _load(tmp_path / "rules", home, trust)


def test_an_added_or_removed_file_is_refused(
    tmp_path: Path, home: Path, publisher: Signer, trust: TrustStore
) -> None:
    pack = _pack(tmp_path / "rules")
    sign_pack(pack, publisher)
    (pack / "planted.yar").write_text(RULE.format(name="planted", needle="X"))
    with pytest.raises(RulesError, match=r"not signed: planted\.yar"):
        _load(tmp_path / "rules", home, trust)
    (pack / "planted.yar").unlink()
    (pack / "tests" / "positive" / "r1" / "hit.txt").unlink()
    with pytest.raises(RulesError, match=r"missing: tests/positive/r1/hit\.txt"):
        _load(tmp_path / "rules", home, trust)


def test_a_file_swapped_after_the_signature_check_is_refused(
    tmp_path: Path,
    home: Path,
    publisher: Signer,
    trust: TrustStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What is compiled is compared with the manifest again, not only what was hashed first."""
    pack = _pack(tmp_path / "rules")
    sign_pack(pack, publisher)
    real = rules_module.verify_manifest

    def verify_then_swap(*args: Any, **kw: Any) -> Any:
        verified = real(*args, **kw)
        (pack / "r.yar").write_text(RULE.format(name="r1", needle="SWAPPED"))
        return verified

    monkeypatch.setattr(rules_module, "verify_manifest", verify_then_swap)
    with pytest.raises(RulesError, match=r"tampered while being loaded: changed: r\.yar$"):
        _load(tmp_path / "rules", home, trust)


def test_an_untrusted_signer_or_a_forged_envelope_is_refused(
    tmp_path: Path, home: Path, publisher: Signer, trust: TrustStore
) -> None:
    pack = _pack(tmp_path / "rules")
    sign_pack(pack, _signer())
    with pytest.raises(RulesError, match=r"^rule pack p: signed by an unknown key"):
        _load(tmp_path / "rules", home, trust)
    sign_pack(pack, publisher)
    env = json.loads((pack / MANIFEST_FILE).read_text())
    other = _signer().envelope(b'{"kind":"rulepack"}', "application/vnd.kiosk.manifest+json")
    env["payload"] = other["payload"]  # a different payload under the publisher's signature
    (pack / MANIFEST_FILE).write_text(json.dumps(env))
    with pytest.raises(RulesError, match="does not match the payload"):
        _load(tmp_path / "rules", home, trust)


def test_an_expired_pack_is_refused(
    tmp_path: Path, home: Path, publisher: Signer, trust: TrustStore
) -> None:
    pack = _pack(tmp_path / "rules")
    signed = datetime(2026, 1, 1, tzinfo=UTC)
    sign_pack(pack, publisher, created=signed, expires=signed + timedelta(days=30))
    assert _load(tmp_path / "rules", home, trust, clock=lambda: signed + timedelta(days=29))
    with pytest.raises(RulesError, match=r"^rule pack p: version 1\.0\.0 expired at 2026-01-31"):
        _load(tmp_path / "rules", home, trust, clock=lambda: signed + timedelta(days=31))


def test_a_key_revoked_after_signing_is_refused(
    tmp_path: Path, home: Path, publisher: Signer, trust: TrustStore
) -> None:
    sign_pack(_pack(tmp_path / "rules"), publisher)
    trust.revoke(publisher.keyid, datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(RulesError, match="revoked"):
        _load(tmp_path / "rules", home, trust)


def test_a_downgrade_is_refused_and_the_version_in_use_keeps_working(
    tmp_path: Path, home: Path, publisher: Signer, trust: TrustStore
) -> None:
    rules = tmp_path / "rules"
    v1 = _pack(tmp_path / "v1")
    sign_pack(v1, publisher)
    v2 = _pack(tmp_path / "v2", version="1.10.0", needle="NEEDLE-2")
    sign_pack(v2, publisher)
    shutil.copytree(v2, rules / "p")
    _load(rules, home, trust)
    assert _versions(home) == {"rulepack:p": "1.10.0"}
    shutil.rmtree(rules / "p")
    shutil.copytree(v1, rules / "p")
    older = r"version 1\.0\.0 is older than version 1\.10\.0, already used .*downgrade"
    with pytest.raises(RulesError, match=older):
        _load(rules, home, trust)
    assert _versions(home) == {"rulepack:p": "1.10.0"}


def test_a_refused_update_does_not_lock_out_the_active_version(
    tmp_path: Path, home: Path, publisher: Signer, trust: TrustStore
) -> None:
    """A tampered or broken v2 is refused without recording v2, so v1 still loads."""
    rules = tmp_path / "rules"
    v1 = _pack(tmp_path / "v1")
    sign_pack(v1, publisher)
    shutil.copytree(v1, rules / "p")
    _load(rules, home, trust)
    broken = _pack(tmp_path / "broken", version="2.0.0")
    (broken / "r.yar").write_text("rule r1 {\n  condition:\n    nosuch\n}\n")
    sign_pack(broken, publisher)  # signed, but its rule does not compile
    tampered = _pack(tmp_path / "tampered", version="2.0.1")
    sign_pack(tampered, publisher)
    (tampered / "r.yar").write_text((tampered / "r.yar").read_text() + "\n")
    for bad, message in ((broken, r"r\.yar:3: undefined identifier"), (tampered, "tampered")):
        shutil.rmtree(rules / "p")
        shutil.copytree(bad, rules / "p")
        with pytest.raises(RulesError, match=message):
            _load(rules, home, trust)
        refused = _events(home)[-1]
        assert (refused["kind"], refused["pack"]) == ("rulepack_refused", "p")
        assert _versions(home) == {"rulepack:p": "1.0.0"}
        shutil.rmtree(rules / "p")
        shutil.copytree(v1, rules / "p")
        assert _load(rules, home, trust).packs[0].version == "1.0.0"


def test_the_version_record_keeps_other_writers_keys_and_refuses_damage(
    tmp_path: Path, home: Path, publisher: Signer, trust: TrustStore
) -> None:
    sign_pack(_pack(tmp_path / "rules"), publisher)
    home.mkdir()
    foreign = {"format": "someone-else/1", "sets": {"x": {"version": "3"}}, "hashset:h": "2.0"}
    (home / VERSIONS_FILE).write_text(json.dumps(foreign))
    _load(tmp_path / "rules", home, trust)
    assert _versions(home) == {**foreign, "rulepack:p": "1.0.0"}
    (home / VERSIONS_FILE).write_text(json.dumps({"rulepack:p": 1}))
    with pytest.raises(RulesError, match="is damaged; downgrades cannot be checked"):
        _load(tmp_path / "rules", home, trust)


def test_dev_mode_lets_unverified_packs_in_logs_each_and_records_no_version(
    tmp_path: Path, home: Path, publisher: Signer, trust: TrustStore
) -> None:
    _pack(tmp_path / "rules", name="unsigned")
    tampered = _pack(tmp_path / "rules", name="tampered")
    sign_pack(tampered, publisher)
    (tampered / "r.yar").write_text((tampered / "r.yar").read_text().replace("high", "low"))
    compiled = _load(tmp_path / "rules", home, trust, dev=True)
    assert [(p.name, p.signed_by) for p in compiled.packs] == [
        ("tampered", None),
        ("unsigned", None),
    ]
    dev = {e["pack"]: e["reason"] for e in _events(home) if e["kind"] == "rulepack_unverified_dev"}
    assert "tampered since it was signed" in dev["tampered"]
    assert "not signed" in dev["unsigned"]
    assert not (home / VERSIONS_FILE).exists()


def test_triage_records_dev_mode_in_the_report_and_the_log(
    tmp_path: Path, triage: Any, kiosk_home: Path
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns(MANIFEST_FILE))
    before = len(_events(kiosk_home))
    hooks = Hooks(  # the real clock, so the report verifies against the session key
        signer=load_signer(kiosk_home / "keys" / "kiosk.key"),
        audit=AuditLog(kiosk_home / "audit.jsonl"),
    )
    result = triage("fat16.dd", rules_dir=rules, dev=True, hooks=hooks)
    report = result.report
    assert report.settings.dev_mode is True
    assert {p.signed_by for p in report.rule_packs} == {None}
    kinds = [e["kind"] for e in _events(kiosk_home)[before:]]
    assert kinds[0] == "dev_mode"
    assert "rulepack_unverified_dev" in kinds
    assert render_text(result.report).splitlines()[-1] == DEV_MODE_NOTE
    verified = verify_report_dir(result.report_dir, TrustStore.load(kiosk_home / "trust.json"))
    page = render_html(verified)
    assert DEV_MODE_NOTE in page
    assert "UNVERIFIED (dev mode)" in page
    with pytest.raises(RulesError, match="not signed"):
        triage("fat16.dd", rules_dir=rules)


def test_a_normal_triage_reports_who_signed_each_pack(triage: Any) -> None:
    report = triage("fat16.dd").report
    demo_publisher = key_id(load_public(DEMO_PUBLISHER.read_text()))
    assert report.settings.dev_mode is False
    assert [(p.name, p.signed_by) for p in report.rule_packs] == [
        ("demo", demo_publisher),
        ("kiosk-core", demo_publisher),
    ]


def test_triage_checks_expiry_against_its_own_clock(triage: Any, kiosk_home: Path) -> None:
    later = Hooks(
        clock=lambda: datetime(2040, 1, 1, tzinfo=UTC),  # past the demo packs' ten-year expiry
        signer=load_signer(kiosk_home / "keys" / "kiosk.key"),
        audit=AuditLog(kiosk_home / "audit.jsonl"),
    )
    with pytest.raises(RulesError, match=r"^rule pack demo: version 1\.0\.0 expired at 20"):
        triage("fat16.dd", hooks=later)


def test_the_committed_manifests_match_the_committed_packs() -> None:
    """rules/* are signed by the demo publisher key; run make sign-demo-packs after edits."""
    store = TrustStore([])
    store.add(load_public((ROOT / "demo" / "publisher.pub").read_text()), label="demo")
    for pack in sorted(p for p in RULES.iterdir() if (p / "pack.toml").exists()):
        m = read_unverified(pack)
        assert m is not None, f"{pack.name} has no manifest"
        v = verify_manifest(pack, RULEPACK, pack.name, store, m.created, f"rule pack {pack.name}")
        assert v.manifest.version == read_pack(pack).version


# --------------------------------------------------------------------------- validation


def _problems(tmp_path: Path, source: str, extra_toml: str = "") -> list[str]:
    pack = tmp_path / "rules" / "q"
    pack.mkdir(parents=True, exist_ok=True)
    (pack / "pack.toml").write_text(pack_toml("q", extra=extra_toml))
    (pack / "a.yar").write_text(source)
    return [p.at("") for p in check_pack(read_pack(pack)).problems]


META = 'category = "test" severity = "low" description = "d" author = "a" date = "2026-01-02"'


@pytest.mark.parametrize(
    ("source", "extra", "expected"),
    [
        ("rule a {\n  condition:\n    nosuch\n}\n", "", 'a.yar:3: undefined identifier "nosuch"'),
        (
            'rule a {\n  condition:\n    filepath contains "x"\n}\n',
            "",
            'a.yar:3: undefined identifier "filepath" (an external: declare it',
        ),
        ('\n\nimport "magic"\nrule a { condition: true }\n', "", "a.yar:3: module 'magic' is not"),
        (
            f'import "pe"\nrule a {{ meta: {META} condition: pe.number_of_sections > 1 }}\n',
            "",
            "a.yar:1: module 'pe' is not declared in pack.toml 'modules'",
        ),
        ("\nrule a { condition: true }\n", "", "a.yar:2: rule a lacks meta category, severity"),
        (
            f"rule a {{ meta: {META.replace('low', 'urgent')} condition: true }}\n",
            "",
            "a.yar:1: rule a severity 'urgent' is not one of low, medium, high, critical",
        ),
        (
            f"rule a {{ meta: {META.replace('test', 'other')} condition: true }}\n",
            "",
            "a.yar:1: rule a category 'other' is not listed",
        ),
        (
            f"rule a {{ meta: {META} strings: $s = /[0-9]{{16}}/ condition: $s }}\n",
            "",
            'a.yar:1: libyara warns: string "$s" may slow down scanning',
        ),
        (f"rule a {{ meta: {META} condition: true }}\n", 'modules = ["cuckoo"]\n', "pack.toml:"),
    ],
)
def test_check_reports_each_problem_by_file_and_line(
    tmp_path: Path, source: str, extra: str, expected: str
) -> None:
    problems = _problems(tmp_path, source, extra)
    assert any(p.startswith(expected) for p in problems), problems


def test_a_declared_external_and_module_and_private_helper_rules_check_clean(
    tmp_path: Path,
) -> None:
    source = (
        'import "math"\n'
        "private rule helper { condition: filesize > 0 }\n"
        f'rule a {{ meta: {META} condition: helper and extension == ".txt" '
        "and math.entropy(0, filesize) >= 0 }\n"
    )
    extra = 'externals = ["extension"]\nmodules = ["math"]\n'
    assert _problems(tmp_path, source, extra) == []


def test_duplicate_rule_names_across_files_are_located(tmp_path: Path) -> None:
    pack = tmp_path / "q"
    pack.mkdir()
    (pack / "pack.toml").write_text(pack_toml("q"))
    (pack / "a.yar").write_text(f"rule same {{ meta: {META} condition: true }}\n")
    (pack / "b.yar").write_text(f"\nrule same {{ meta: {META} condition: true }}\n")
    (problem,) = check_pack(read_pack(pack)).problems
    assert problem.at("") == "b.yar:2: rule same is also defined at a.yar:1"


def test_a_lokistyle_rule_compiles_unchanged_with_pack_meta_defaults(tmp_path: Path) -> None:
    """signature-base style: description/author/date/score meta, filename/filepath externals."""
    source = (
        "rule Tool_Style_Example {\n"
        '  meta:\n    description = "example in LOKI style"\n    author = "tests"\n'
        '    date = "2016/04/26"\n    score = 70\n'
        '  strings:\n    $s = "example-tool-config" ascii\n'
        '  condition:\n    $s and filename == "tool.cfg" and filepath contains "/etc"\n'
        '    and filetype == "UNKNOWN" and extension == ".cfg"\n}\n'
    )
    extra = (
        'externals = ["filename", "filepath", "filetype", "extension"]\n'
        '[meta_defaults]\ncategory = "test"\nseverity = "medium"\n'
    )
    assert _problems(tmp_path, source, extra) == []
    pack = read_pack(tmp_path / "rules" / "q")
    compiled = yara.compile(source=pack.sources[0][1], externals=file_externals(b"", "x", "/x"))
    meta = {("default", "Tool_Style_Example"): RuleMeta("t", "m", "d")}
    matcher = Matcher(_save(compiled), meta, 5)
    data = b"example-tool-config"
    assert [m.rule for m in matcher.match(data, "tool.cfg", "/etc/app/tool.cfg")] == [
        "Tool_Style_Example"
    ]
    assert matcher.match(data, "tool.cfg", "/home/tool.cfg") == ()


def _save(rules: Any) -> bytes:
    buf = io.BytesIO()
    rules.save(file=buf)
    return buf.getvalue()


def test_externals_follow_loki() -> None:
    ext = file_externals(b"MZ\x90\x00", "Setup.EXE", "/Users/bob/Downloads/Setup.EXE", "ab")
    assert ext == {
        "filename": "Setup.EXE",
        "filepath": "/Users/bob/Downloads",
        "extension": ".exe",
        "filetype": "EXE",
        "owner": "",
        "md5": "ab",
    }
    assert file_externals(b"", ".bashrc", "/.bashrc")["extension"] == ""
    assert file_externals(b"", ".bashrc", "/.bashrc")["filepath"] == "/"
    assert file_type(b"\x7fELF\x02") == "ELF"
    assert file_type(b"#!/bin/sh") == "UNIX SCRIPT"
    assert file_type(b"hello") == "UNKNOWN"


# --------------------------------------------------------------------------- cache


def test_the_cache_is_used_only_when_its_hmac_verifies(
    tmp_path: Path, home: Path, publisher: Signer, trust: TrustStore
) -> None:
    pack = _pack(tmp_path / "rules")
    sign_pack(pack, publisher)
    first = _load(tmp_path / "rules", home, trust)
    (entry,) = [  # the full set's entry (beside it: its window-safe set's)
        p
        for p in (home / "cache" / "rules").iterdir()
        if b'"meta"' in p.read_bytes()[32:].partition(b"\n")[0]
    ]
    assert (home / "keys" / "cache.key").stat().st_mode & 0o077 == 0
    again = _load(tmp_path / "rules", home, trust)
    assert again.meta == first.meta
    assert not [e for e in _events(home) if e["kind"] == "rules_cache_rejected"]
    # a compiled file from elsewhere, dropped under the right name, is never loaded
    foreign = yara.compile(source="rule planted { condition: true }")
    entry.write_bytes(_save(foreign))
    third = _load(tmp_path / "rules", home, trust)
    assert list(third.meta) == [("p", "r1")]
    (rejected,) = [e for e in _events(home) if e["kind"] == "rules_cache_rejected"]
    assert "not written by this kiosk" in rejected["reason"]
    matcher = Matcher(third.to_bytes(), third.meta, 5)
    assert [m.rule for m in matcher.match(b"NEEDLE-1", "a", "/a")] == ["r1"]
    assert matcher.match(b"anything", "a", "/a") == ()


def test_a_cache_secret_readable_by_others_disables_the_cache(
    tmp_path: Path, home: Path, publisher: Signer, trust: TrustStore
) -> None:
    sign_pack(_pack(tmp_path / "rules"), publisher)
    _load(tmp_path / "rules", home, trust)
    (home / "keys" / "cache.key").chmod(0o644)
    assert _load(tmp_path / "rules", home, trust).rule_count == 1
    rejected = [e for e in _events(home) if e["kind"] == "rules_cache_rejected"]
    assert len(rejected) == 2  # the full set's entry and its window-safe set's
    assert all("readable by others" in e["reason"] for e in rejected)


# --------------------------------------------------------------------------- the CLI


def _cli(*args: str | Path, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    if home is not None:
        env["KIOSK_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "kiosk", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_cli_check_names_file_and_line_in_one_line(tmp_path: Path) -> None:
    pack = _pack(tmp_path / "rules")
    (pack / "r.yar").write_text("rule r1 {\n  condition:\n    nosuch\n}\n")
    run = _cli("rules", "check", "p", "--rules", tmp_path / "rules")
    assert run.returncode == 1
    assert run.stderr == f'kiosk: error: {pack}/r.yar:3: undefined identifier "nosuch"\n'
    assert "Traceback" not in run.stdout + run.stderr


def test_cli_check_and_test_pass_on_a_good_pack(tmp_path: Path) -> None:
    _pack(tmp_path / "rules")
    run = _cli("rules", "check", tmp_path / "rules" / "p")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("ok: rule pack p 1.0.0: 1 rules in 1 files")
    run = _cli("rules", "test", "p", "--rules", tmp_path / "rules")
    assert run.returncode == 0, run.stdout
    assert run.stdout.splitlines()[-1] == "rule pack p 1.0.0: 2 samples, 0 failure(s)"


def test_cli_test_fails_on_a_wrong_sample_or_an_untested_rule(tmp_path: Path) -> None:
    pack = _pack(tmp_path / "rules")
    (pack / "tests" / "negative" / "oops.txt").write_text("NEEDLE-1")
    (pack / "more.yar").write_text(RULE.format(name="r2", needle="OTHER"))
    run = _cli("rules", "test", "p", "--rules", tmp_path / "rules")
    assert run.returncode == 1
    assert "FAIL  tests/negative/oops.txt: no rule matches (matched r1)" in run.stdout
    assert "FAIL  rule r2 has no positive sample (tests/positive/r2/)" in run.stdout


def _write_key(path: Path, signer: Signer) -> Path:
    pem = signer.private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    return path


def test_cli_sign_then_list_then_tamper(
    tmp_path: Path, publisher: Signer, kiosk_home: Path
) -> None:
    home = tmp_path / "home"
    pack = _pack(tmp_path / "rules")
    key = _write_key(tmp_path / "publisher.key", publisher)
    run = _cli("rules", "sign", "p", "--rules", tmp_path / "rules", "--key", key, home=home)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == str(pack / MANIFEST_FILE)
    assert [e["kind"] for e in _events(home)] == ["rulepack_signed"]
    pub = tmp_path / "publisher.pub"
    pub.write_bytes(
        publisher.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    assert _cli("keys", "trust", pub, "--label", "publisher", home=home).returncode == 0
    run = _cli("rules", "list", "--rules", tmp_path / "rules", home=home)
    assert run.stdout.startswith(f"p  1.0.0  1 rules  signed by {publisher.keyid[:16]}")
    (pack / "r.yar").write_text((pack / "r.yar").read_text() + " ")
    run = _cli("rules", "list", "--rules", tmp_path / "rules", home=home)
    assert "REFUSED: tampered since it was signed: changed: r.yar" in run.stdout
    # the same version may not be signed again over different content
    run = _cli("rules", "sign", "p", "--rules", tmp_path / "rules", "--key", key, home=home)
    assert run.returncode == 1
    assert "version 1.0.0 was already signed with different content" in run.stderr


def test_cli_sign_refuses_a_pack_whose_tests_fail(tmp_path: Path, publisher: Signer) -> None:
    pack = _pack(tmp_path / "rules")
    (pack / "tests" / "positive" / "r1" / "hit.txt").write_text("no needle here")
    key = _write_key(tmp_path / "k.key", publisher)
    run = _cli("rules", "sign", pack, "--key", key, home=tmp_path / "home")
    assert run.returncode == 1
    assert run.stderr == "kiosk: error: rule pack p: its tests fail; run 'kiosk rules test " + (
        f"{pack}'\n"
    )
    assert not (pack / MANIFEST_FILE).exists()


def test_cli_scan_refuses_a_tampered_pack_and_dev_mode_allows_it(
    tmp_path: Path, signed_rules: Path
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(signed_rules, rules)
    yar = rules / "demo" / "demo.yar"
    yar.write_bytes(yar.read_bytes().replace(b"medium", b"medivm"))
    base = [
        "scan",
        SAMPLES / "fat16.dd",
        *("--case", "C-1", "--exhibit", "E-1", "--officer", "PC-1", "--authorised-by", "DS-2"),
        *("--legal-basis", "warrant", "--legal-ref", "W-1", "--rules", rules),
        *("--hashsets", ROOT / "hashsets", "--out", tmp_path / "out"),
    ]
    run = _cli(*base)
    assert run.returncode == 1
    assert run.stderr == (
        "kiosk: error: rule pack demo: tampered since it was signed: changed: demo.yar\n"
    )
    assert not (tmp_path / "out").exists()
    run = _cli(*base, "--dev", "--workers", "0")
    assert run.returncode == 1  # the tampered rule now fails validation: severity 'medivm'
    assert "demo.yar:15: rule kiosk_demo_marker_utf16 severity 'medivm'" in run.stderr
    yar.write_bytes(yar.read_bytes().replace(b"medivm", b"low"))
    run = _cli(*base, "--dev", "--workers", "0")
    assert run.returncode == 0, run.stderr
    report = json.loads((Path(run.stdout.splitlines()[-1]) / "report.json").read_text())
    assert report["settings"]["dev_mode"] is True
