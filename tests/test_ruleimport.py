"""Importing public collections (issue 15): unedited rule text, quarantine, following upstream.

The collections are written in ``tests/collections.py`` in each public collection's style (no
rule text copied). Real libyara compiles and matches throughout; the end-to-end test runs the
real CLI on a real ext4 made by ``mke2fs -d`` and reads the signed report.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from kiosk.errors import RulesError
from kiosk.packs.check import read_pack
from kiosk.packs.collection import mask, parse_rule_file
from kiosk.packs.engines import ENGINE_NAMES, LIBYARA, YARA_X
from kiosk.packs.importer import ImportOptions, import_collection
from kiosk.packs.load import Matcher, compile_packs
from kiosk.packs.quarantine import examine
from kiosk.packs.sign import MANIFEST_FILE
from kiosk.tui.authority import rule_choices
from tests.collections import LICENCE, STYLES, pe_sample, write_collection
from tests.conftest import CLI_CASE_ARGS, ROOT, pack_toml

COMMIT = "1234567890abcdef1234567890abcdef12345678"


def _import(tmp_path: Path, style: str, **kw: Any) -> tuple[Path, Any]:
    src = write_collection(tmp_path / f"{style}-src", style)
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    kw.setdefault("bench", False)
    result = import_collection(src, ImportOptions(pack=style, rules_dir=rules, **kw))
    return result.pack_dir, result


def _left(pack_dir: Path) -> dict[str, str]:
    return {q.rule: q.reason for q in examine(read_pack(pack_dir)).quarantined}


def _cli(*args: str | Path, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    if home is not None:
        env["KIOSK_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "kiosk", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


# --------------------------------------------------------------------------- reading YARA text


def test_rule_headers_are_found_in_code_not_in_comments_strings_or_regexes() -> None:
    text = (
        'import "pe"\n/* rule in_block { condition: true } */\n'
        'rule a { strings: $s = "x\\" rule in_string" $r = /a\\/\\/b rule r/ '
        "condition: $s and filesize / 2 > 1 }\n"
        "// rule in_line_comment\nprivate global rule b { condition: a }\n"
    )
    f = parse_rule_file("rules/x.yar", text)
    assert [(r.name, r.private, r.line) for r in f.rules] == [("a", False, 3), ("b", True, 5)]
    assert len(mask(text)) == len(text)
    assert mask(text).count("\n") == text.count("\n")
    # blanking a rule keeps every other line where it was on disk
    out = f.effective_text({"a"})
    assert out.splitlines()[4] == text.splitlines()[4]
    assert "rule a" not in out


# --------------------------------------------------------------------------- each collection


def test_signature_base_style_score_meta_externals_and_pe_import_unedited(tmp_path: Path) -> None:
    pack_dir, result = _import(tmp_path, "sigbase", commit=COMMIT, date="2025-03-01")
    # the rule text is byte for byte the collection's
    for rel, text in STYLES["sigbase"].items():
        if rel.startswith("yara/"):
            assert (pack_dir / "rules" / rel).read_text() == text
    assert (pack_dir / "licence" / "LICENSE").read_text() == LICENCE
    src = read_pack(pack_dir)
    assert src.upstream == {
        "name": "sigbase-src",
        "commit": COMMIT,
        "date": "2025-03-01",
        "source": "sigbase-src",
        "licence": "licence/LICENSE",
    }
    assert src.modules == ("pe",)
    check = examine(src)
    assert check.quarantined == ()
    sev = {r: (m.severity, m.category) for r, m in check.meta.items()}
    assert sev == {
        "HKTL_Tessera_Config_Jan25": ("high", "sigbase_src"),  # score 80
        "SUSP_Tessera_Path_Jan25": ("medium", "sigbase_src"),  # 55
        "APT_Quillmark_Loader_Feb25": ("critical", "sigbase_src"),  # 95
        "MAL_Quillmark_Dropper_Low": ("low", "sigbase_src"),  # 40
    }
    assert (result.active, result.quarantined) == (4, 0)
    # LOKI externals are filled per file as a scan fills them
    rules = compile_packs(tmp_path / "rules", dev=True, home=tmp_path / "home", use_cache=False)
    m = Matcher(rules.to_bytes(), rules.meta, 5, rules.gate_bytes(), rules.gate_prefixes)
    cfg = b"tessera-relay-secret=abc\n"
    assert [x.rule for x in m.match(cfg, "t.cfg", "/tmp/x/t.cfg")] == ["SUSP_Tessera_Path_Jan25"]
    assert m.match(cfg, "t.cfg", "/home/t.cfg") == ()
    hit = m.match(pe_sample(b"QUILLMARK-LOADER-7"), "q.exe", "/q.exe")
    assert [(x.rule, x.severity) for x in hit] == [("APT_Quillmark_Loader_Feb25", "critical")]
    assert rules.gate is not None  # the pe rule is gated by its uint16(0) guard


def test_yara_rules_style_index_files_and_every_quarantine_reason(tmp_path: Path) -> None:
    pack_dir, result = _import(tmp_path, "yararules")
    src = read_pack(pack_dir)
    check = examine(src)
    left = {q.rule: (q.file, q.line, q.reason) for q in check.quarantined}
    assert left == {
        "Brindle_Broken": (
            "rules/malware/MALW_Brindle.yar",
            15,
            'undefined identifier "brindle_helper_that_does_not_exist" (line 20)',
        ),
        "Brindle_Slow_Regex": (
            "rules/malware/MALW_Brindle.yar",
            23,
            'libyara warns: string "$r" may slow down scanning (line 28)',
        ),
        "Brindle_Sandbox": (
            "rules/malware/MALW_Needs_Cuckoo.yar",
            4,
            f"needs module 'cuckoo', which this kiosk's libyara {_yara()} lacks",
        ),
        "Android_Tollgate": (
            "rules/mobile_malware/Android_Tollgate.yar",
            4,
            f"needs module 'androguard', which this kiosk's libyara {_yara()} lacks",
        ),
        "Brindle_Stealer": (
            "rules/webshells/WShell_Ferrule.yar",
            16,
            "rule Brindle_Stealer is also defined at rules/malware/MALW_Brindle.yar:2",
        ),
        "Escaping_Include": (
            "rules/webshells/WShell_Escape.yar",
            4,
            "includes '../../../outside/secret.yar', outside the collection",
        ),
    }
    # categories from the folders, the helper from the included file, the first Brindle_Stealer
    assert {r: m.category for r, m in check.meta.items()} == {
        "Brindle_Stealer": "malware",
        "Ferrule_Webshell": "webshells",
    }
    assert (result.active, result.quarantined) == (2, 6)
    assert set(src.categories) >= {"malware", "webshells"}
    assert src.labels["webshells"] == "Web shells"
    # the quarantine is recorded in the pack, signed with it, and honoured by a scan's load
    assert "Brindle_Slow_Regex" in (pack_dir / "quarantine.toml").read_text()
    rules = compile_packs(tmp_path / "rules", dev=True, home=tmp_path / "home", use_cache=False)
    (pack,) = rules.packs
    assert (pack.rule_count, len(pack.quarantined)) == (2, 6)
    m = Matcher(rules.to_bytes(), rules.meta, 5)
    php = b"<?php ferrule_exec($_POST['c']); ?>"
    assert [x.rule for x in m.match(php, "s.php", "/var/www/s.php")] == ["Ferrule_Webshell"]
    assert m.match(b"x ferrule_exec($_POST", "s.txt", "/s.txt") == ()  # not at 0: no <?php
    # the scope picker shows the pack's words for its categories
    titles = {c.name: c.title for c in rule_choices(rules)}
    assert titles == {  # and the kiosk's own content checks, in every scope picker
        "malware": "Malware",
        "webshells": "Web shells",
        "disguised_file": "Disguised file",
        "encrypted_data": "Encrypted data",
    }


def yara_x_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("yara-x")


def _yara() -> str:
    import yara

    return str(yara.__version__)


def test_an_excluded_folder_is_not_imported_and_stays_excluded(tmp_path: Path) -> None:
    """YARA-Rules keeps old copies in deprecated/: sorted first, they would win every name."""
    src = write_collection(tmp_path / "src", "yararules")
    (src / "deprecated").mkdir()
    (src / "deprecated" / "Old_Brindle.yar").write_text(
        'rule Brindle_Stealer { strings: $a = "brindle-exfil-v1" condition: $a }\n'
    )
    rules = tmp_path / "rules"
    rules.mkdir()
    plain = import_collection(src, ImportOptions(pack="all", rules_dir=rules, bench=False))
    left = _left(plain.pack_dir)
    assert left["Brindle_Stealer"].startswith("rule Brindle_Stealer is also defined at rules/depr")
    opts = ImportOptions(pack="yr", rules_dir=rules, bench=False, exclude=("deprecated",))
    first = import_collection(src, opts)
    assert not (first.pack_dir / "rules" / "deprecated").exists()
    assert "Brindle_Stealer" in examine(read_pack(first.pack_dir)).meta
    assert read_pack(first.pack_dir).mapping.exclude == ("deprecated",)  # type: ignore[union-attr]
    again = import_collection(src, ImportOptions(pack="yr", rules_dir=rules, bench=False))
    assert again.version == "1.0.1"
    assert not (again.pack_dir / "rules" / "deprecated").exists()
    assert again.diff.empty


def test_reversinglabs_style_category_meta_or_another_meta_key(tmp_path: Path) -> None:
    pack_dir, _ = _import(tmp_path, "revlabs")
    check = examine(read_pack(pack_dir))
    assert {r: (m.category, m.severity) for r, m in check.meta.items()} == {
        "Win32_Ransomware_Tinlock": ("malware", "medium")  # "MALWARE" made an identifier
    }
    shutil.rmtree(pack_dir)
    pack_dir, _ = _import(tmp_path, "revlabs", sources={"category": ("folder",)})
    check = examine(read_pack(pack_dir))
    assert {m.category for m in check.meta.values()} == {"ransomware"}
    assert read_pack(pack_dir).labels == {"ransomware": "Ransomware", "revlabs_src": "Revlabs src"}


def test_elastic_style_numeric_severity_creation_date_and_threat_name(tmp_path: Path) -> None:
    pack_dir, _ = _import(tmp_path, "elastic", default_category="trojan")
    (meta,) = examine(read_pack(pack_dir)).meta.values()
    assert (meta.category, meta.severity, meta.description) == (
        "trojan",
        "critical",
        "Windows.Trojan.Gaffer",
    )


def test_a_rule_one_engine_cannot_compile_is_quarantined_for_both(tmp_path: Path) -> None:
    """YARA-X (the default engine) takes no rule-name wildcards; libyara does. The imported
    pack leaves that rule out by name, so either engine runs the same rules."""
    src = write_collection(tmp_path / "src", "sigbase")
    (src / "yara" / "gen_wild.yar").write_text(
        'rule PE_Wild_A { meta: score = 60 strings: $a = "wild-a-marker" condition: $a }\n'
        "rule SUSP_All_Wild { meta: score = 70 condition: all of (PE_Wild_*) }\n"
    )
    result = import_collection(src, ImportOptions(pack="wild", rules_dir=tmp_path, bench=False))
    assert _left(result.pack_dir) == {
        "SUSP_All_Wild": f"yara-x {yara_x_version()} cannot compile it: error[E001]: "
        "syntax error (line 2)"
    }
    loaded = {
        eng: compile_packs(tmp_path, dev=True, home=tmp_path / "home", yara_engine=eng)
        for eng in ENGINE_NAMES
    }
    assert [sorted(c.meta) for c in loaded.values()] == [sorted(loaded[LIBYARA].meta)] * 2
    assert ("wild", "PE_Wild_A") in loaded[YARA_X].meta


def test_kiosk_own_packs_keep_their_strictness(tmp_path: Path) -> None:
    pack = tmp_path / "own"
    pack.mkdir()
    (pack / "pack.toml").write_text(pack_toml("own"))
    (pack / "a.yar").write_text("rule broken { condition: nosuch }\n")
    check = examine(read_pack(pack))
    assert check.quarantined == ()
    assert [p.at("") for p in check.problems] == ['a.yar:1: undefined identifier "nosuch"']
    with pytest.raises(RulesError, match="is kiosk's own pack, not an imported one"):
        import_collection(tmp_path / "x", ImportOptions(pack="own", rules_dir=tmp_path))


def test_a_rule_that_times_out_on_the_benchmark_buffer_is_found_by_name(tmp_path: Path) -> None:
    src = write_collection(tmp_path / "src", "sigbase")
    (src / "yara" / "gen_loops.yar").write_text(
        "rule SUSP_Every_Pair_Of_Bytes {\n  meta:\n    score = 60\n  condition:\n"
        "    for any i in (0..filesize) : ( for any j in (0..filesize) :"
        " ( uint8(i) == 0x7f and uint8(j) == 0x7e ) )\n}\n"
    )
    opts = ImportOptions(pack="loops", rules_dir=tmp_path, bench_timeout_s=1)
    result = import_collection(src, opts)
    assert _left(result.pack_dir) == {
        "SUSP_Every_Pair_Of_Bytes": "timed out (1 s) on the pack's 1 MiB benchmark buffer"
    }
    assert result.active == 4
    assert result.reasons == {"timed out on the benchmark buffer": 1}


def test_hostile_snapshots_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("c/ok.yar", "rule ok { condition: true }\n")
        z.writestr("c/../../escape.yar", "rule x { condition: true }\n")
    with pytest.raises(RulesError, match=r"member 'c/\.\./\.\./escape\.yar' would land outside"):
        import_collection(evil, ImportOptions(pack="evil", rules_dir=rules))
    linked = tmp_path / "linked.tar"
    with tarfile.open(linked, "w") as t:
        data = b"rule fine { meta: score = 50 condition: filesize > 0 }\n"
        info = tarfile.TarInfo("c/fine.yar")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("c/passwd.yar")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(link)
    result = import_collection(linked, ImportOptions(pack="linked", rules_dir=rules, bench=False))
    assert result.skipped == ("c/passwd.yar",)
    assert sorted(p.name for p in (result.pack_dir / "rules").iterdir()) == ["fine.yar"]
    with pytest.raises(RulesError, match=r"version 1\.0\.0 is not newer than 1\.0\.0"):
        import_collection(linked, ImportOptions(pack="linked", rules_dir=rules, version="1.0.0"))
    assert sorted(p.name for p in rules.iterdir()) == ["linked"]  # no scratch left behind


@pytest.mark.parametrize(
    ("source", "pack", "message"),
    [
        ("missing.zip", "p", "kiosk: error: collection missing.zip: not found\n"),
        ("notes.txt", "p", "kiosk: error: collection notes.txt: not a folder or an archive"),
        ("broken.zip", "p", "kiosk: error: collection broken.zip: cannot be read: "),
        ("empty", "p", "kiosk: error: collection empty: no .yar or .yara files in it\n"),
        ("empty", "9bad", "kiosk: error: pack name '9bad': a letter, then letters, digits"),
    ],
)
def test_cli_import_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, source: str, pack: str, message: str
) -> None:
    (tmp_path / "notes.txt").write_text("not rules")
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 truncated")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README").write_text("no rules here")
    rules = tmp_path / "rules"
    rules.mkdir()
    run = _cli("rules", "import", tmp_path / source, "--pack", pack, "--rules", rules)
    assert run.returncode == 1
    assert run.stderr.startswith(message)
    assert run.stderr.count("\n") == 1
    assert "Traceback" not in run.stderr
    assert list(rules.iterdir()) == []


def test_the_cache_keeps_the_quarantine_and_the_gate(tmp_path: Path) -> None:
    _import(tmp_path, "yararules")
    _import(tmp_path, "sigbase")
    home = tmp_path / "home"
    first = compile_packs(tmp_path / "rules", dev=True, home=home)
    again = compile_packs(tmp_path / "rules", dev=True, home=home)
    assert [p.quarantined for p in again.packs] == [p.quarantined for p in first.packs]
    assert [len(p.quarantined) for p in again.packs] == [0, 6]
    assert again.meta == first.meta
    assert first.gate is not None
    assert again.gate is not None
    assert again.gate.gated == first.gate.gated == (("sigbase", "APT_Quillmark_Loader_Feb25"),)
    # an altered gate entry is refused and built again from source, never used
    (entry,) = [  # the gate's entry: its header holds the gate
        e
        for e in (home / "cache" / "rules").glob("*.kcr")
        if b'"gate"' in e.read_bytes()[32:].partition(b"\n")[0]
    ]
    entry.write_bytes(entry.read_bytes()[:-1] + b"x")
    third = compile_packs(tmp_path / "rules", dev=True, home=home)
    assert third.gate is not None
    assert third.gate.gated == first.gate.gated
    m = Matcher(third.to_bytes(), third.meta, 5, third.gate_bytes(), third.gate_prefixes)
    hit = m.match(pe_sample(b"QUILLMARK-LOADER-7"), "q.exe", "/q.exe")
    assert [x.rule for x in hit] == ["APT_Quillmark_Loader_Feb25"]


# --------------------------------------------------------------------------- end to end


def _github_zip(path: Path, files: dict[str, str], top: str, commit: str) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.comment = commit.encode()
        for rel, text in sorted(files.items()):
            z.writestr(f"{top}/{rel}", text)
    return path


def _github_tar(path: Path, files: dict[str, str], top: str, commit: str) -> Path:
    with tarfile.open(
        path, "w:gz", format=tarfile.PAX_FORMAT, pax_headers={"comment": commit}
    ) as t:
        for rel, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{rel}")
            info.size, info.mtime = len(data), 1_700_000_000
            t.addfile(info, io.BytesIO(data))
    return path


def _second_snapshot() -> dict[str, str]:
    files = dict(STYLES["sigbase"])
    tools = files["yara/gen_tool_configs.yar"]
    # changed: a new string in one rule; removed: the path rule; added: a rule, and one that
    # warns (newly quarantined)
    tools = tools.replace('$s2 = "[tessera:beacon]" ascii wide', '$s2 = "[tessera:beacon2]" ascii')
    tools = tools[: tools.index("rule SUSP_Tessera_Path_Jan25")]
    files["yara/gen_tool_configs.yar"] = tools
    files["yara/gen_new_things.yar"] = (
        'rule HKTL_Cobweb_Notes_Mar25 {\n  meta:\n    description = "invented"\n'
        '    score = 75\n  strings:\n    $a = "cobweb-notes-session"\n  condition:\n    $a\n}\n'
        "rule SUSP_Cobweb_Hex_Blob {\n  meta:\n    score = 60\n  strings:\n"
        "    $h = /[0-9a-f]{64}/\n  condition:\n    $h\n}\n"
    )
    return files


@pytest.mark.skipif(shutil.which("mke2fs") is None, reason="needs mke2fs")
def test_import_check_test_sign_scan_then_follow_upstream(tmp_path: Path, kiosk_home: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(kiosk_home, home)
    key = home / "keys" / "kiosk.key"  # trusted for publishing in the test home
    rules = tmp_path / "rules"
    rules.mkdir()
    files = dict(STYLES["sigbase"])
    files["yara/gen_broken.yar"] = "rule SUSP_Broken_One {\n  condition:\n    nosuch_thing\n}\n"
    snap1 = _github_zip(tmp_path / "sigbase-master.zip", files, "sigbase-master", COMMIT)

    run = _cli(
        "rules", "import", snap1, "--pack", "sigbase", "--rules", rules, "--no-bench", home=home
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout.splitlines()
    assert out[1].startswith(f"imported: rule pack sigbase 1.0.0 from sigbase ({COMMIT[:12]}, ")
    assert out[1].endswith(": 4 active, 1 quarantined")
    assert "  quarantined: 1 does not compile" in out
    assert "  licence: licence/LICENSE" in out
    assert "first import of this collection: no earlier version to compare with" in out
    pack = rules / "sigbase"
    assert not (pack / MANIFEST_FILE).exists()  # signing stays an explicit act
    (event,) = [
        json.loads(x)["event"]
        for x in (home / "audit.jsonl").read_text().splitlines()
        if json.loads(x)["event"]["kind"] == "rulepack_imported"
    ]
    assert (event["pack"], event["commit"], event["active"], event["quarantined"]) == (
        "sigbase",
        COMMIT,
        4,
        1,
    )

    run = _cli("rules", "check", "sigbase", "--rules", rules)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == (
        f"quarantined: {pack}/rules/yara/gen_broken.yar:1: rule SUSP_Broken_One: "
        'undefined identifier "nosuch_thing" (line 3)'
    )
    assert "ok: rule pack sigbase 1.0.0: 4 active, 1 quarantined in 3 files" in run.stdout

    run = _cli("rules", "test", "sigbase", "--rules", rules)
    assert run.returncode == 1
    assert (
        "FAIL  an imported pack needs at least one sample in tests/positive/<rule>/" in run.stdout
    )
    planted = {
        "APT_Quillmark_Loader_Feb25": ("loader.exe", pe_sample(b"QUILLMARK-LOADER-7")),
        "HKTL_Tessera_Config_Jan25": (
            "tessera.ini",
            b"tessera-relay-secret=1\n[tessera:beacon]\n",
        ),
    }
    for rule, (name, data) in planted.items():
        (pack / "tests" / "positive" / rule).mkdir(parents=True)
        (pack / "tests" / "positive" / rule / name).write_bytes(data)
    (pack / "tests" / "negative").mkdir()
    (pack / "tests" / "negative" / "notes.txt").write_bytes(b"quillmark tessera, nothing more\n")
    run = _cli("rules", "test", "sigbase", "--rules", rules)
    assert run.returncode == 0, run.stdout
    assert run.stdout.splitlines()[-1] == "rule pack sigbase 1.0.0: 3 samples, 0 failure(s)"

    run = _cli("rules", "sign", "sigbase", "--rules", rules, "--key", key, home=home)
    assert run.returncode == 0, run.stderr
    assert "(4 active, 1 quarantined," in run.stdout
    run = _cli("rules", "list", "--rules", rules, home=home)
    assert run.stdout.startswith("sigbase  1.0.0  4 active, 1 quarantined  signed by ")

    # an image with the planted samples (and a decoy): the scan finds them, names the quarantine
    tree = tmp_path / "tree"
    (tree / "tmp").mkdir(parents=True)
    (tree / "Users" / "a").mkdir(parents=True)
    (tree / "Users" / "a" / "loader.exe").write_bytes(pe_sample(b"QUILLMARK-LOADER-7"))
    (tree / "tmp" / "tessera.cfg").write_bytes(b"tessera-relay-secret=1\n[tessera:beacon]\n")
    (tree / "Users" / "a" / "notes.txt").write_bytes(b"nothing to see\n")
    img = tmp_path / "planted.img"
    subprocess.run(["mke2fs", "-q", "-t", "ext4", "-d", str(tree), str(img), "4M"], check=True)
    report = _scan(img, rules, tmp_path / "out1", home)
    found = _found(report)
    assert found == {
        ("/Users/a/loader.exe", "APT_Quillmark_Loader_Feb25"),
        ("/tmp/tessera.cfg", "HKTL_Tessera_Config_Jan25"),
        ("/tmp/tessera.cfg", "SUSP_Tessera_Path_Jan25"),  # filepath and extension externals
    }
    (packrec,) = report["rule_packs"]
    assert (packrec["name"], packrec["rules"], packrec["quarantined"]) == ("sigbase", 4, 1)
    page = tmp_path / "report.html"
    run = _cli("report", "html", report["_dir"], "--out", page, home=home)
    assert run.returncode == 0, run.stderr
    assert "sigbase (imported collection; 1 rule quarantined)" in page.read_text()

    shutil.copytree(pack, tmp_path / "sigbase-1.0.0")  # the signed 1.0.0, for later

    # a newer snapshot: the difference is shown before signing, the version rises
    snap2 = _github_tar(
        tmp_path / "sigbase-main.tar.gz", _second_snapshot(), "sigbase-main", "f" * 40
    )
    run = _cli("rules", "import", snap2, "--pack", "sigbase", "--rules", rules, "--no-bench")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    diff = lines[lines.index("changes since version 1.0.0:") :]
    assert diff[:-1] == [
        "changes since version 1.0.0:",
        "  rules added (1):",
        "    HKTL_Cobweb_Notes_Mar25",
        "  rules removed (2):",
        "    SUSP_Broken_One",
        "    SUSP_Tessera_Path_Jan25",
        "  rules changed (1):",
        "    HKTL_Tessera_Config_Jan25",
        "  rules newly quarantined (1):",
        "    SUSP_Cobweb_Hex_Blob (rules/yara/gen_new_things.yar): "
        'libyara warns: string "$h" may slow down scanning (line 14)',
    ]
    assert (pack / "changes.txt").read_text().splitlines() == diff[:-1]
    assert "imported: rule pack sigbase 1.0.1 from sigbase (ffffffffffff, 2023-11-14)" in run.stdout
    assert (pack / "tests" / "negative" / "notes.txt").exists()  # staff's samples kept
    run = _cli("rules", "list", "--rules", rules, home=home)
    assert "REFUSED: not signed" in run.stdout
    # the changed rule no longer matches staff's sample: the tests say so before signing
    run = _cli("rules", "test", "sigbase", "--rules", rules)
    assert run.returncode == 1
    assert "FAIL  tests/positive/HKTL_Tessera_Config_Jan25/tessera.ini" in run.stdout
    sample = pack / "tests" / "positive" / "HKTL_Tessera_Config_Jan25" / "tessera.ini"
    sample.write_bytes(b"tessera-relay-secret=1\n[tessera:beacon2]\n")
    run = _cli("rules", "sign", "sigbase", "--rules", rules, "--key", key, home=home)
    assert run.returncode == 0, run.stderr
    report = _scan(img, rules, tmp_path / "out2", home)
    assert report["rule_packs"][0]["version"] == "1.0.1"
    assert _found(report) == {("/Users/a/loader.exe", "APT_Quillmark_Loader_Feb25")}
    # rollback protection as for every pack: the old snapshot back is refused
    assert json.loads((home / "rulepack-versions.json").read_text())["rulepack:sigbase"] == "1.0.1"
    shutil.rmtree(pack)
    shutil.copytree(tmp_path / "sigbase-1.0.0", pack)
    run = _cli("scan", img, *CLI_CASE_ARGS, "--rules", rules, "--out", tmp_path / "o3", home=home)
    assert run.returncode == 1
    assert "rule pack sigbase: version 1.0.0 is older than version 1.0.1" in run.stderr


def _found(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (f["path"], m["rule"])
        for f in report["findings"]
        for m in f["matches"]
        if m["type"] == "yara"
    }


def _scan(img: Path, rules: Path, out: Path, home: Path) -> dict[str, Any]:
    run = _cli(
        "scan",
        img,
        *CLI_CASE_ARGS,
        "--rules",
        rules,
        "--hashsets",
        ROOT / "hashsets",
        "--out",
        out,
        "--workers",
        "0",
        home=home,
    )
    assert run.returncode == 0, run.stderr
    folder = Path(run.stdout.splitlines()[-1])
    return {**json.loads((folder / "report.json").read_text()), "_dir": str(folder)}
