"""libyara and YARA-X give identical findings: the proof that lets YARA-X be the default.

Both engines run over every sample image (through the real scan pipeline), every sample of the
bundled packs, and a bench-style tree (``bench/make_bench_image.py``'s generator, ``tiny``
shape) on a real ext4 (``mke2fs -d``) with the 200-rule bench pack, its unguarded-``pe``
variant (the independent bench's rule style) and a pack of rules that read every LOKI external.
If any of these differ, ``DEFAULT_ENGINE`` must go back to libyara.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kiosk.canonical import canonical
from kiosk.engine.scan import ScanConfig, scan_tasks
from kiosk.errors import RulesError, RuleTimeoutError
from kiosk.evidence.image import Evidence
from kiosk.evidence.resolve import resolve
from kiosk.hashsets.index import HashIndex
from kiosk.packs.check import read_pack
from kiosk.packs.crosscheck import engine_problems
from kiosk.packs.engines import DEFAULT_ENGINE, ENGINE_NAMES, LIBYARA, YARA_X, engine
from kiosk.packs.load import CompiledRules, Matcher, compile_packs
from kiosk.reports.encode import file_json
from kiosk.reports.report import file_record
from tests.conftest import HASHSETS, IMAGES, RULES, SAMPLES, TEST_CAP, pack_toml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import make_bench_image as mbi

META = (
    '    meta:\n        category = "test"\n        severity = "low"\n'
    '        description = "d"\n        author = "kiosk tests"\n        date = "2026-12-06"\n'
)


def _rule(name: str, cond: str, strings: str = "", prefix: str = "") -> str:
    s = f"    strings:\n{strings}" if strings else ""
    return f"{prefix}rule {name}\n{{\n{META}{s}    condition:\n        {cond}\n}}\n"


# every external a scan sets, private and global rules, and a module rule
EXTERNALS_PACK = (
    'import "pe"\nimport "math"\n'
    + _rule("ext_filename", "filename matches /^[a-z]+_000[0-9][0-9]\\./")
    + _rule("ext_filepath", 'filepath contains "/Documents"')
    + _rule("ext_extension", 'extension == ".exe" or extension == ".json"')
    + _rule("ext_filetype", 'filetype == "EXE" or filetype == "PDF"')
    + _rule("ext_owner", 'owner == "" and filesize < 1500')
    + _rule("ext_md5", 'md5 startswith "0" or md5 startswith "f"')
    + _rule("helper", "$a", '        $a = "ent" ascii wide\n', prefix="private ")
    + _rule("uses_private", "helper and filesize > 40000")
    + _rule("pe_sections", "pe.number_of_sections >= 3 and math.entropy(0, filesize) > 2")
)


def _packs(root: Path) -> dict[str, Path]:
    """Rule directories: the bundled packs, the bench packs, the externals pack."""
    dirs: dict[str, Path] = {}
    bundled = root / "bundled"
    shutil.copytree(RULES, bundled)
    dirs["bundled"] = bundled
    for name, shape in (("bench", "tiny"), ("independent", "independent")):
        out = root / name
        mbi.write_pack(out, mbi.SHAPES[shape])
        dirs[name] = out / "rules"
    ext = root / "ext" / "rules" / "ext"
    ext.mkdir(parents=True)
    (ext / "pack.toml").write_text(
        pack_toml(
            "ext",
            extra='modules = ["pe", "math"]\n'
            'externals = ["filename", "filepath", "extension", "filetype", "owner", "md5"]\n',
        )
    )
    (ext / "ext.yar").write_text(EXTERNALS_PACK)
    dirs["ext"] = ext.parent
    return dirs


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], CompiledRules]:
    root = tmp_path_factory.mktemp("engines")
    out = {}
    for name, rules_dir in _packs(root).items():
        for eng in ENGINE_NAMES:
            out[(name, eng)] = compile_packs(
                rules_dir, dev=True, home=root / "home", use_cache=False, yara_engine=eng
            )
    return out


@pytest.fixture(scope="module")
def bench_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny bench-style tree and an ext4 image of it."""
    root = tmp_path_factory.mktemp("benchtree")
    tree = root / "tree"
    mbi.write_tree(tree, mbi.SEED, mbi.SHAPES["tiny"])
    # every bait and the PE bait once more, so each of those rules has something to find
    rng = random.Random(7)
    planted = tree / "Users" / "carol" / "Documents"
    planted.mkdir(parents=True)
    for i, bait in enumerate(mbi.BAITS):
        (planted / f"bait_{i}.txt").write_bytes(rng.randbytes(3000) + bait.encode() + b"\n")
    pe = mbi._pe_header(rng, mbi.PE_BAIT_TIMESTAMP)
    (planted / "tool.exe").write_bytes(pe + rng.randbytes(8192 - len(pe)))
    img = root / "bench.img"
    mbi.make_ext4(tree, img, 64)
    return tree, img


def _records(
    img: Path,
    rules: CompiledRules,
    cap: int = TEST_CAP,
    sets: bool = True,
    externals: frozenset[str] | None = None,
    gate: bool = True,
) -> list[bytes]:
    cfg = ScanConfig(
        evidence=resolve([img]),
        rules_blob=rules.to_bytes(),
        rule_meta=dict(rules.meta),
        hashsets=HashIndex.load(HASHSETS).sets if sets else (),
        max_yara_bytes=cap,
        workers=0,
        gate_blob=rules.gate_bytes() if gate else None,
        gate_prefixes=rules.gate_prefixes if gate else (),
        rule_externals=externals,
    )
    with Evidence(resolve([img])) as ev:
        tasks = list(ev.walk(ev.volumes()))
    return [canonical(file_json(file_record(r))) for r in scan_tasks(tasks, cfg)]


def _matched(records: list[bytes]) -> int:
    return sum(rec.count(b'"type":"yara"') for rec in records)


def test_the_default_engine_is_yara_x_and_each_compiles_to_its_own_format(
    compiled: dict[tuple[str, str], CompiledRules],
) -> None:
    assert DEFAULT_ENGINE == YARA_X
    for eng in ENGINE_NAMES:
        rules = compiled[("bench", eng)]
        assert rules.engine.name == eng
        assert Matcher(rules.to_bytes(), dict(rules.meta), 5).engine.name == eng
        assert rules.gate is not None  # the bench pack's pe/elf rules are gated on both


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_every_sample_image_gives_the_same_records_with_both_engines(
    image: str, compiled: dict[tuple[str, str], CompiledRules]
) -> None:
    path = SAMPLES / IMAGES[image]["segments"][0]
    for name in ("bundled", "ext"):
        a = _records(path, compiled[(name, LIBYARA)])
        b = _records(path, compiled[(name, YARA_X)])
        assert a == b, (image, name)
    if any(f["kind"] == "marker" for f in IMAGES[image].get("files", [])):
        assert _matched(_records(path, compiled[("bundled", YARA_X)])) > 0


def test_sample_images_do_produce_matches(compiled: dict[tuple[str, str], CompiledRules]) -> None:
    total = {
        eng: sum(
            _matched(_records(SAMPLES / IMAGES[i]["segments"][0], compiled[("bundled", eng)]))
            for i in IMAGES
        )
        for eng in ENGINE_NAMES
    }
    assert total[LIBYARA] == total[YARA_X] >= len(IMAGES)


def test_the_bundled_packs_samples_match_alike_and_as_the_packs_say(
    compiled: dict[tuple[str, str], CompiledRules],
) -> None:
    samples = sorted(p for p in RULES.glob("*/tests/**/*") if p.is_file())
    assert len(samples) > 40
    positive_hits = 0
    for eng_pair in (("bundled", LIBYARA), ("bundled", YARA_X)):
        rules = compiled[eng_pair]
        m = Matcher(rules.to_bytes(), dict(rules.meta), 10, rules.gate_bytes(), rules.gate_prefixes)
        got = [
            tuple(r.rule for r in m.match(p.read_bytes(), p.name, "/" + p.as_posix()))
            for p in samples
        ]
        if eng_pair[1] == LIBYARA:
            want = got
        else:
            assert got == want
        positive_hits = sum(
            1 for p, g in zip(samples, got, strict=True) if "positive" in p.parts and g
        )
    assert positive_hits == sum(1 for p in samples if "positive" in p.parts)
    for pack in ("demo", "kiosk-core"):
        assert engine_problems(read_pack(RULES / pack)) == []


@pytest.mark.skipif(shutil.which("mke2fs") is None, reason="needs mke2fs")
def test_a_bench_style_tree_gives_byte_identical_records_with_both_engines(
    compiled: dict[tuple[str, str], CompiledRules], bench_tree: tuple[Path, Path]
) -> None:
    _, img = bench_tree
    fired: dict[str, set[str]] = {}
    for name in ("bench", "independent", "ext"):
        a = _records(img, compiled[(name, LIBYARA)], cap=64 << 20, sets=False)
        b = _records(img, compiled[(name, YARA_X)], cap=64 << 20, sets=False)
        assert len(a) > 300
        assert a == b, name
        fired[name] = {
            m["rule"] for rec in a for m in _loads(rec)["matches"] if m["type"] == "yara"
        }
    # the comparison is not vacuous: each kind of rule fired somewhere
    baits = {f"bench_bait_{i:02d}" for i in range(len(mbi.BAITS))}
    assert baits | {"bench_pe_bait"} <= fired["bench"]
    assert baits | {"bench_pe_bait"} <= fired["independent"]
    assert {
        "ext_filename",
        "ext_filepath",
        "ext_extension",
        "ext_filetype",
        "ext_owner",
        "ext_md5",
        "uses_private",
        "pe_sections",
    } <= fired["ext"]
    assert "helper" not in fired["ext"]  # private rules are never reported, by either engine


def _loads(rec: bytes) -> dict[str, Any]:
    import json

    out: dict[str, Any] = json.loads(rec)
    return out


@pytest.mark.parametrize("eng", ENGINE_NAMES)
def test_a_rule_that_cannot_finish_times_out_on_either_engine(eng: str) -> None:
    e = engine(eng)
    rules = e.compile(
        {
            "slow": "rule quadratic { condition: for any i in (0..filesize - 1) : "
            "(for any j in (0..filesize - 1) : (uint8(i) == uint8(j) + 256)) }"
        },
        {"filename": ""},
    )
    with pytest.raises(RuleTimeoutError):
        e.scanner(rules, 1).scan(random.Random(1).randbytes(400_000), {"filename": "x"})


def test_the_cache_keeps_one_entry_per_engine_and_refuses_the_other_engines(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    made = {eng: compile_packs(RULES, dev=True, home=home, yara_engine=eng) for eng in ENGINE_NAMES}
    every = sorted((home / "cache" / "rules").glob("*.kcr"))
    heads = {e: e.read_bytes()[32:].partition(b"\n")[0] for e in every}
    entries = [e for e in every if b'"meta"' in heads[e]]
    windows = [e for e in every if b'"window"' in heads[e]]
    # per engine: the rules and their window-safe set (nothing to gate: no gate entry)
    assert (len(every), len(entries), len(windows)) == (4, 2, 2)
    again = compile_packs(RULES, dev=True, home=home, yara_engine=YARA_X)  # from the cache
    assert again.to_bytes() == made[YARA_X].to_bytes()
    assert again.engine.name == YARA_X
    # an entry made by one engine, put under the other engine's key, is not loaded
    x_key = next(e for e in entries if e.read_bytes()[32:].find(b'"engine": "yara-x') >= 0)
    lib_key = next(e for e in entries if e != x_key)
    x_key.write_bytes(lib_key.read_bytes())
    lines: list[tuple[str, dict[str, Any]]] = []

    class Audit:
        def append(self, kind: str, **fields: Any) -> None:
            lines.append((kind, fields))

    rules = compile_packs(RULES, dev=True, home=home, yara_engine=YARA_X, audit=Audit())  # type: ignore[arg-type]
    assert rules.engine.name == YARA_X
    assert any(k == "rules_cache_rejected" for k, _ in lines)


def test_a_yara_x_cache_hit_hands_on_the_cached_bytes_and_still_matches_in_this_process(
    tmp_path: Path,
) -> None:
    """The scan passes a cache hit's bytes straight to its workers (engines.Stored); a command
    that matches in its own process (``kiosk rules``) gets the loaded set, matching as the
    freshly compiled one does."""
    home = tmp_path / "home"
    fresh = compile_packs(RULES, dev=True, home=home, yara_engine=YARA_X)
    hit = compile_packs(RULES, dev=True, home=home, yara_engine=YARA_X)
    cached = (home / "cache" / "rules").glob("*")
    entries = {e.read_bytes()[32:].partition(b"\n")[2] for e in cached}
    assert hit.to_bytes() in entries  # the cache's own bytes, not a new serialisation
    assert hit.window is not None
    assert hit.window.to_bytes() in entries
    assert (hit.to_bytes(), hit.gate_bytes()) == (fresh.to_bytes(), fresh.gate_bytes())
    samples = sorted(p for p in RULES.glob("*/tests/positive/**/*") if p.is_file())
    assert samples
    x = engine(YARA_X)
    for p in samples:
        data = p.read_bytes()
        ext = {"filename": p.name, "filepath": "/" + p.as_posix(), "extension": p.suffix}
        got = x.scanner(hit.rules, 10).scan(data, ext)
        assert got, p
        assert got == x.scanner(fresh.rules, 10).scan(data, ext)


def test_a_construct_yara_x_cannot_parse_is_named_by_rules_check_and_stops_a_yara_x_scan(
    tmp_path: Path,
) -> None:
    pack = tmp_path / "rules" / "wild"
    pack.mkdir(parents=True)
    (pack / "pack.toml").write_text(pack_toml("wild"))
    (pack / "wild.yar").write_text(
        _rule("pe_a", "$a", '        $a = "hello"\n') + _rule("all_pe", "all of (pe_*)")
    )
    problems = engine_problems(read_pack(pack))
    assert [
        (p.file, "yara-x" in p.message and "cannot compile" in p.message) for p in problems
    ] == [("wild.yar", True)]
    with pytest.raises(RulesError, match=r"yara-x 1\.\d+\.\d+ cannot compile the packs.*syntax"):
        compile_packs(tmp_path / "rules", dev=True, home=tmp_path / "h", yara_engine=YARA_X)
    ok = compile_packs(tmp_path / "rules", dev=True, home=tmp_path / "h", yara_engine=LIBYARA)
    assert ok.rule_count == 2
    run = subprocess.run(
        [sys.executable, "-m", "kiosk", "rules", "check", str(pack)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert "wild.yar: yara-x" in run.stderr
    assert "cannot compile" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.skipif(shutil.which("mke2fs") is None, reason="needs mke2fs")
def test_setting_only_the_externals_rules_read_changes_no_record(
    compiled: dict[tuple[str, str], CompiledRules], bench_tree: tuple[Path, Path]
) -> None:
    _, img = bench_tree
    assert compiled[("bench", YARA_X)].externals == frozenset()
    assert compiled[("ext", YARA_X)].externals == frozenset(
        {"filename", "filepath", "extension", "filetype", "owner", "md5"}
    )
    for name in ("bench", "ext"):
        for eng in ENGINE_NAMES:
            rules = compiled[(name, eng)]
            every = _records(img, rules, cap=64 << 20, sets=False)
            some = _records(img, rules, cap=64 << 20, sets=False, externals=rules.externals)
            assert every == some, (name, eng)


PE_READS = (
    'import "pe"\n'
    + _rule("pe_fields", "pe.number_of_sections == 4 and pe.machine == pe.MACHINE_I386")
    + _rule("pe_call", 'pe.imports("kernel32.dll") or pe.number_of_sections >= 1')
    + _rule("pe_loop", 'for any s in pe.sections : (s.name == ".rsrc")')
    + _rule("pe_const", "pe.MACHINE_I386 == 0x14c and filesize > 60000")  # true on any file
    + _rule("pe_imports_zero", 'pe.imports("x.dll") == 0')  # YARA-X: true on a non-PE
)


@pytest.mark.skipif(shutil.which("mke2fs") is None, reason="needs mke2fs")
def test_rules_reading_pe_fields_are_gated_and_change_no_record(
    compiled: dict[tuple[str, str], CompiledRules],
    bench_tree: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    _, img = bench_tree
    pack = tmp_path / "rules" / "pereads"
    pack.mkdir(parents=True)
    (pack / "pack.toml").write_text(pack_toml("pereads", extra='modules = ["pe"]\n'))
    (pack / "pe.yar").write_text(PE_READS)
    for eng in ENGINE_NAMES:
        bench = compiled[("independent", eng)]
        assert bench.gate is not None
        gated = {r for _, r in bench.gate.gated}
        assert {f"bench_pe_{i:03d}" for i in range(19)} | {
            "bench_pe_bait",
            "bench_pe_math",
        } <= gated
        assert _records(img, bench, 64 << 20, False) == _records(
            img, bench, 64 << 20, False, gate=False
        )
        reads = compile_packs(tmp_path / "rules", dev=True, home=tmp_path / "h", yara_engine=eng)
        assert reads.gate is not None
        assert {r for _, r in reads.gate.gated} == {"pe_fields", "pe_loop"}  # "or" is not gated
        a = _records(img, reads, 64 << 20, False)
        assert a == _records(img, reads, 64 << 20, False, gate=False)
        fired = {m["rule"] for rec in a for m in _loads(rec)["matches"]}
        assert {"pe_fields", "pe_call", "pe_loop", "pe_const"} <= fired, eng


def test_rules_check_names_a_rule_the_engines_evaluate_differently(tmp_path: Path) -> None:
    pack = tmp_path / "rules" / "differ"
    (pack / "tests" / "negative").mkdir(parents=True)
    (pack / "pack.toml").write_text(pack_toml("differ", extra='modules = ["pe"]\n'))
    (pack / "d.yar").write_text('import "pe"\n' + _rule("no_x_imports", 'pe.imports("x.dll") == 0'))
    (pack / "tests" / "negative" / "notes.txt").write_bytes(b"plain text, not a PE\n")
    problems = engine_problems(read_pack(pack))
    assert [(p.file, p.message) for p in problems] == [
        (
            "tests/negative/notes.txt",
            f"rule no_x_imports does not match with {engine(LIBYARA).label} but matches with "
            f"{engine(YARA_X).label}",
        )
    ]


def test_the_gate_comes_from_the_cache_as_it_was_built(tmp_path: Path) -> None:
    mbi.write_pack(tmp_path, mbi.SHAPES["independent"])
    for eng in ENGINE_NAMES:
        home = tmp_path / f"home-{eng}"
        fresh = compile_packs(tmp_path / "rules", dev=True, home=home, yara_engine=eng)
        cached = compile_packs(tmp_path / "rules", dev=True, home=home, yara_engine=eng)
        assert fresh.gate is not None
        assert cached.gate is not None
        assert cached.gate.gated == fresh.gate.gated
        assert cached.gate_prefixes == fresh.gate_prefixes == (b"MZ",)
        assert cached.gate_bytes() == fresh.gate_bytes()


def test_the_cli_and_config_choose_the_engine_and_the_report_names_it(tmp_path: Path) -> None:
    import json
    import os

    from tests.conftest import SAMPLES, scan_cmd

    home = Path(os.environ["KIOSK_HOME"])
    cmd = scan_cmd(SAMPLES / "fat16.dd", tmp_path / "r")

    def scan(*extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
        run = subprocess.run([*cmd, *extra], capture_output=True, text=True, timeout=120)
        if run.returncode:
            return run, None
        report = Path(run.stdout.strip().splitlines()[-1]) / "report.json"
        return run, json.loads(report.read_text("utf-8"))

    for extra, want in (((), YARA_X), (("--yara-engine", "libyara"), LIBYARA)):
        run, report = scan(*extra)
        assert report is not None, run.stderr
        assert report["tool"]["engines"]["yara_engine"] == engine(want).label
    (home / "config.toml").write_text('yara_engine = "libyara"\n')
    try:
        _, by_config = scan()
        _, by_flag = scan("--yara-engine", "yara-x")  # the flag wins over the kiosk's config
        (home / "config.toml").write_text('yara_engine = "yara-y"\n')
        bad, none = scan()
    finally:
        (home / "config.toml").unlink()
    assert by_config is not None
    assert by_config["tool"]["engines"]["yara_engine"] == engine(LIBYARA).label
    assert by_flag is not None
    assert by_flag["tool"]["engines"]["yara_engine"] == engine(YARA_X).label
    assert (bad.returncode, none) == (1, None)
    assert bad.stderr.strip().splitlines() == [
        "kiosk: error: unknown YARA engine 'yara-y': use one of libyara, yara-x"
    ]
    _, hash_only = scan("--no-yara")
    assert hash_only is not None
    assert "yara_engine" not in hash_only["tool"]["engines"]  # no pack applied: absent
