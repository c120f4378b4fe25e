"""Module gating (kiosk.packs.gate) and hash-only runs: less work, identical findings.

Gating is checked against real libyara on real data: the same corpus matched with the gated
pair of sets and with the one full set must give the same matches, file by file, and a scan of a
real ext4 (``mke2fs -d``) must give byte-identical records either way.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from kiosk.canonical import canonical
from kiosk.engine.scan import YARA_DISABLED, ScanConfig, scan_tasks
from kiosk.evidence.image import Evidence
from kiosk.evidence.resolve import resolve
from kiosk.hashsets.index import HashIndex
from kiosk.model import HashMatch, Recommendation
from kiosk.packs.engines import LIBYARA
from kiosk.packs.gate import gate_prefix
from kiosk.packs.load import CompiledRules, Matcher, compile_packs
from kiosk.reports.encode import file_json
from kiosk.reports.report import file_record
from tests.conftest import pack_toml

META = '    meta:\n        category = "test"\n        severity = "low"\n' + (
    '        description = "d"\n        author = "t"\n        date = "2026-11-27"\n'
)
PE_TS = 0x5F5E0FF


def _rule(name: str, cond: str, strings: str = "", prefix: str = "") -> str:
    s = f"    strings:\n{strings}" if strings else ""
    return f"{prefix}rule {name}\n{{\n{META}{s}    condition:\n        {cond}\n}}\n"


SOURCE = (
    'import "pe"\nimport "elf"\n'
    + _rule("pe_ts", f"pe.is_pe and pe.timestamp == {PE_TS:#x}")
    + _rule("pe_sections", "(pe.is_pe == 1 and pe.number_of_sections == 2)")
    + _rule("mz_text", "uint16(0) == 0x5A4D and $a", '        $a = "hello"\n')
    + _rule("elf_guard", "uint32(0) == 0x464C457F and elf.type == elf.ET_EXEC")
    + _rule("not_pe", "not pe.is_pe and $a", '        $a = "hello"\n')  # must not be gated
    + _rule("pe_or_text", "pe.is_pe or $a", '        $a = "plainword"\n')  # must not be gated
    + _rule("plain", "$a", '        $a = "hello"\n')
    + "// rule commented_out { condition: true }\n"
)


def _pe(timestamp: int, sections: int = 2) -> bytes:
    dos = bytearray(0x80)
    dos[0:2] = b"MZ"
    dos[0x3C:0x40] = struct.pack("<I", 0x80)
    coff = b"PE\0\0" + struct.pack("<HHIIIHH", 0x14C, sections, timestamp, 0, 0, 0xE0, 0x0102)
    opt = bytearray(0xE0)
    struct.pack_into("<HBBIII", opt, 0, 0x10B, 14, 0, 0x1000, 0x1000, 0)
    struct.pack_into("<I", opt, 92, 16)
    secs = b"".join(
        struct.pack("<8sIIIIIIHHI", n, 0x1000, 0x1000 * (k + 1), 0x200, 0x400, 0, 0, 0, 0, 0)
        for k, n in enumerate((b".text", b".data")[:sections])
    )
    return bytes(dos) + coff + bytes(opt) + secs + b"\0" * 512 + b"hello"


def _elf(etype: int) -> bytes:
    ident = b"\x7fELF\x02\x01\x01" + bytes(9)
    hdr = struct.pack("<HHIQQQIHHHHHH", etype, 62, 1, 0, 64, 0, 0, 64, 56, 0, 64, 0, 0)
    return ident + hdr + bytes(200)


CORPUS = {
    "pe_bait.exe": _pe(PE_TS),
    "pe_other.dll": _pe(1234, sections=1),
    "elf_exec": _elf(2),
    "elf_so": _elf(3),
    "mz_not_pe.txt": b"MZ hello, not a PE at all",
    "mz_inside.txt": b"text then MZ" + _pe(PE_TS),  # a PE embedded, not at offset 0
    "hello.txt": b"hello world plainword",
    "empty": b"",
    "random.bin": bytes(range(256)) * 40,
}


def _pack(tmp_path: Path) -> CompiledRules:
    pack = tmp_path / "rules" / "gated"
    pack.mkdir(parents=True)
    (pack / "pack.toml").write_text(pack_toml("gated", extra='modules = ["pe", "elf"]\n'))
    (pack / "gated.yar").write_text(SOURCE)
    return compile_packs(tmp_path / "rules", dev=True, home=tmp_path / "home", use_cache=False)


def test_guards_are_read_from_the_condition_not_guessed() -> None:
    assert gate_prefix(_rule("a", "pe.is_pe and $x", '        $x = "a"\n')) == b"MZ"
    assert gate_prefix(_rule("a", "$x and uint16(0) == 0x5a4d", '        $x = "a"\n')) == b"MZ"
    assert gate_prefix(_rule("a", "uint32(0) == 0x464c457f")) == b"\x7fELF"
    assert gate_prefix(_rule("a", "pe.is_pe or $x", '        $x = "a"\n')) is None
    assert gate_prefix(_rule("a", "not pe.is_pe")) is None
    assert gate_prefix(_rule("a", "pe.is_pe == 0 and true")) is None
    # a pe field compared with a literal is undefined, so false, on data without MZ (issue 19)
    assert gate_prefix(_rule("a", "pe.number_of_sections > 2")) == b"MZ"
    assert gate_prefix(_rule("a", "pe.number_of_sections != 2")) is None  # != is not read
    assert gate_prefix(_rule("a", "pe.MACHINE_I386 == 0x14c")) is None  # a constant: defined
    assert gate_prefix(_rule("a", '"pe.is_pe and" == "x" or true')) is None


def test_gated_and_full_sets_give_identical_matches(tmp_path: Path) -> None:
    rules = _pack(tmp_path)
    assert rules.gate is not None
    assert set(rules.gate.gated) == {
        ("gated", r) for r in ("pe_ts", "pe_sections", "mz_text", "elf_guard")
    }
    assert rules.gate_prefixes == (b"MZ", b"\x7fELF")
    reduced = {r.identifier for r in rules.gate.reduced}
    assert reduced == {"not_pe", "pe_or_text", "plain"}
    full = Matcher(rules.to_bytes(), dict(rules.meta), 10)
    gated = Matcher(rules.to_bytes(), dict(rules.meta), 10, rules.gate_bytes(), rules.gate_prefixes)
    seen = set()
    for name, data in CORPUS.items():
        a = full.match(data, name, f"/x/{name}")
        assert gated.match(data, name, f"/x/{name}") == a, name
        seen |= {m.rule for m in a}
    # the corpus exercises every rule, so equality above is not vacuous
    assert seen == {"pe_ts", "pe_sections", "mz_text", "elf_guard", "not_pe", "pe_or_text", "plain"}


def test_a_rule_that_another_rule_needs_is_not_gated(tmp_path: Path) -> None:
    pack = tmp_path / "rules" / "dep"
    pack.mkdir(parents=True)
    (pack / "pack.toml").write_text(pack_toml("dep", extra='modules = ["pe"]\n'))
    (pack / "dep.yar").write_text(
        'import "pe"\n'
        + _rule("is_exe", "pe.is_pe", prefix="private ")
        + _rule("uses_it", "is_exe or $a", '        $a = "hello"\n')
        + _rule("global_pe", "pe.is_pe and true", prefix="global ")
    )
    rules = compile_packs(tmp_path / "rules", dev=True, home=tmp_path / "home", use_cache=False)
    assert rules.gate is None  # the reduced set would not compile: one full set, no gating


def test_a_wildcard_rule_set_turns_gating_off(tmp_path: Path) -> None:
    pack = tmp_path / "rules" / "wild"
    pack.mkdir(parents=True)
    (pack / "pack.toml").write_text(pack_toml("wild", extra='modules = ["pe"]\n'))
    (pack / "wild.yar").write_text(
        'import "pe"\n'
        + _rule("pe_a", "pe.is_pe and pe.number_of_sections == 2")
        + _rule("pe_b", "$a", '        $a = "hello"\n')
        + _rule("all_pe", "all of (pe_*)")  # true on "hello" only if pe_a were dropped
    )
    # YARA-X 1.23 does not parse rule-name wildcards (tests/test_engines.py): the reference
    rules = compile_packs(
        tmp_path / "rules", dev=True, home=tmp_path / "home", use_cache=False, yara_engine=LIBYARA
    )
    assert rules.gate is None


def test_a_string_set_by_wildcard_keeps_gating_on(tmp_path: Path) -> None:
    """``1 of ($s*)`` (how signature-base writes most rules) names strings, not rules."""
    pack = tmp_path / "rules" / "strs"
    pack.mkdir(parents=True)
    (pack / "pack.toml").write_text(pack_toml("strs", extra='modules = ["pe"]\n'))
    strings = '        $s1 = "hello"\n        $s2 = "plainword"\n'
    (pack / "strs.yar").write_text(
        'import "pe"\n'
        + _rule("pe_strs", "uint16(0) == 0x5a4d and pe.is_pe and 1 of ($s*)", strings)
        + _rule("text_strs", "all of ($s*)", strings)
    )
    rules = compile_packs(tmp_path / "rules", dev=True, home=tmp_path / "home", use_cache=False)
    assert rules.gate is not None
    assert rules.gate.gated == (("strs", "pe_strs"),)
    m = Matcher(rules.to_bytes(), rules.meta, 5, rules.gate_bytes(), rules.gate_prefixes)
    assert [r.rule for r in m.match(b"hello plainword", "a.txt", "/a.txt")] == ["text_strs"]
    assert [r.rule for r in m.match(_pe(PE_TS), "a.exe", "/a.exe")] == ["pe_strs"]


@pytest.mark.skipif(shutil.which("mke2fs") is None, reason="needs mke2fs")
def test_scan_records_are_identical_with_and_without_gating(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    for name, data in CORPUS.items():
        (tree / name).write_bytes(data)
    img = tmp_path / "gate.img"
    subprocess.run(["mke2fs", "-q", "-t", "ext4", "-d", str(tree), str(img), "4M"], check=True)
    rules = _pack(tmp_path)
    base = ScanConfig(
        evidence=resolve([img]),
        rules_blob=rules.to_bytes(),
        rule_meta=dict(rules.meta),
        hashsets=(),
        workers=0,
    )
    gated = ScanConfig(
        **{**_fields(base), "gate_blob": rules.gate_bytes(), "gate_prefixes": rules.gate_prefixes}
    )
    with Evidence(resolve([img])) as ev:
        tasks = list(ev.walk(ev.volumes()))
    a = [canonical(file_json(file_record(r))) for r in scan_tasks(tasks, base)]
    b = [canonical(file_json(file_record(r))) for r in scan_tasks(tasks, gated)]
    assert a == b
    assert b"pe_ts" in b"".join(a)


def _fields(cfg: ScanConfig) -> dict[str, object]:
    return {f: getattr(cfg, f) for f in ScanConfig.__dataclass_fields__}


def test_hash_only_run_never_claims_no_rule_matched(triage: object, tmp_path: Path) -> None:
    result = triage("ext4.dd", yara=False, hashsets_dir=None)  # type: ignore[operator]
    report = result.report
    assert report.settings.yara is False
    assert report.rule_packs == ()
    lines = (result.report_dir / "files.jsonl").read_text().splitlines()
    import json

    records = [json.loads(x) for x in lines]
    readable = [r for r in records if r["status"] != "unrecoverable"]
    assert readable
    assert all(r["status"] == "hashed_only" for r in readable)
    assert all(r["reason"] == YARA_DISABLED for r in readable)
    assert all(r["sha256"] for r in readable)
    assert report.recommendation.result is Recommendation.NO_MATCHES
    text = " ".join(report.recommendation.reasons)
    assert "YARA was disabled" in text
    assert "no file matched the rule packs" not in text


def test_hash_only_run_still_reports_known_bad_files(triage: object) -> None:
    report = triage("ext4.dd", yara=False).report  # type: ignore[operator]
    assert report.recommendation.result is Recommendation.SUBMIT
    assert all(isinstance(m, HashMatch) for f in report.findings for m in f.matches), (
        "no YARA match can appear in a hash-only run"
    )
    assert report.findings
    _ = HashIndex  # the known-bad set is the bundled demo set
