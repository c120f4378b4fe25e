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
) -> list[bytes]:
    cfg = ScanConfig(
        evidence=resolve([img]),
        rules_blob=rules.to_bytes(),
        rule_meta=dict(rules.meta),
        hashsets=HashIndex.load(HASHSETS).sets if sets else (),
        max_yara_bytes=cap,
        workers=0,
        gate_blob=rules.gate_bytes(),
        gate_prefixes=rules.gate_prefixes,
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
    entries = sorted(e for e in (home / "cache" / "rules").glob("*.kcr") if "-gate" not in e.name)
    assert len(entries) == 2
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
