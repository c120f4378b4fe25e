"""Work avoidance keeps records identical: copies typed and matched once, known-good untouched.

On a real ext4 (``mke2fs -d``) holding byte-identical copies under different names, the records
with the content memo equal those without it, equal ``workers=2``, and equal a brute-force
oracle (a fresh libmagic and matcher per file). A pack whose rules read ``filename`` turns
the matches memo off, and the test shows why: with it forced on, a copy would inherit a match
that its own name does not give.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import magic
import pytest

from kiosk.canonical import canonical
from kiosk.engine.scan import HEAD_BYTES, ScanConfig, Scanner, scan_tasks
from kiosk.evidence.image import Evidence
from kiosk.evidence.resolve import resolve
from kiosk.model import BUILTIN_PACK, FileResult, FileStatus, FileTask, RuleMatch
from kiosk.packs.engines import ENGINE_NAMES
from kiosk.packs.load import CompiledRules, Matcher, compile_packs, uses_place_externals
from kiosk.reports.encode import file_json
from kiosk.reports.report import file_record
from tests.conftest import MARKER, RULES, pack_toml

pytestmark = pytest.mark.skipif(shutil.which("mke2fs") is None, reason="needs mke2fs")

META = (
    '    meta:\n        category = "test"\n        severity = "low"\n'
    '        description = "d"\n        author = "kiosk tests"\n        date = "2026-12-06"\n'
)
PE = b"MZ" + bytes(0x3A) + b"\x80\x00\x00\x00" + bytes(0x40) + b"PE\x00\x00" + bytes(200)


def _tree(root: Path) -> Path:
    tree = root / "tree"
    bodies = {
        "marker": b"notes\n" + MARKER + b"\n" * 50,
        "text": b"just some words\n" * 40,
        "pe": PE + b"hello" * 30,
        "json": b'{"a": [1, 2, 3], "b": "c"}\n',
    }
    for d in ("Users/alice/Documents", "Users/bob/Pictures", "Windows/Temp", "Program Files/x"):
        for kind, body in bodies.items():
            for name in (f"{kind}.txt", f"copy of {kind}.bin", "a.txt" if kind == "text" else ""):
                if name:
                    p = tree / d / name
                    p.parent.mkdir(parents=True, exist_ok=True)
                    p.write_bytes(body)
    (tree / "unique.txt").write_bytes(b"only once " + MARKER)
    return tree


def _image(tmp_path: Path) -> Path:
    img = tmp_path / "copies.img"
    subprocess.run(
        ["mke2fs", "-q", "-t", "ext4", "-d", str(_tree(tmp_path)), str(img), "8M"], check=True
    )
    return img


def _place_pack(root: Path) -> Path:
    pack = root / "rules" / "place"
    pack.mkdir(parents=True)
    (pack / "pack.toml").write_text(pack_toml("place", extra='externals = ["filename"]\n'))
    (pack / "place.yar").write_text(
        f'rule named_a\n{{\n{META}    strings:\n        $w = "words"\n'
        '    condition:\n        $w and filename == "a.txt"\n}\n'
    )
    return pack.parent


def _cfg(img: Path, rules: CompiledRules, workers: int, memo: bool) -> ScanConfig:
    return ScanConfig(
        evidence=resolve([img]),
        rules_blob=rules.to_bytes(),
        rule_meta=dict(rules.meta),
        hashsets=(),
        workers=workers,
        gate_blob=rules.gate_bytes(),
        gate_prefixes=rules.gate_prefixes,
        same_content_same_matches=memo,
    )


def _tasks(img: Path) -> list[FileTask]:
    with Evidence(resolve([img])) as ev:
        return list(ev.walk(ev.volumes()))


def _packs_only(r: FileResult) -> tuple[RuleMatch, ...]:
    """The packs' matches: the memo's business (the kiosk's own content checks, such as a
    disguised ``pe.txt``, run on every file apart from it: kiosk.engine.probe)."""
    return tuple(m for m in r.rule_matches if m.pack != BUILTIN_PACK)


def _records(results: list[FileResult]) -> list[bytes]:
    return [canonical(file_json(file_record(r))) for r in results]


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_copies_give_the_records_of_a_brute_force_scan(tmp_path: Path, engine: str) -> None:
    img = _image(tmp_path)
    rules = compile_packs(RULES, dev=True, home=tmp_path / "h", yara_engine=engine)
    assert rules.per_file_externals is False  # the bundled packs read no place external
    tasks = _tasks(img)
    memo0 = list(scan_tasks(tasks, _cfg(img, rules, 0, memo=True)))
    plain = list(scan_tasks(tasks, _cfg(img, rules, 0, memo=False)))
    memo2 = list(scan_tasks(tasks, _cfg(img, rules, 2, memo=True)))
    assert _records(memo0) == _records(plain) == _records(memo2)
    # the oracle: every file typed and matched on its own
    m = magic.Magic(mime=True)
    matcher = Matcher(rules.to_bytes(), dict(rules.meta), 10)
    with Evidence(resolve([img])) as ev:
        for r in memo0:
            if r.task.size == 0:
                continue
            data = b"".join(ev.chunks(r.task))
            assert r.sha256 == hashlib.sha256(data).hexdigest()
            assert r.mime == m.from_buffer(data[:HEAD_BYTES]), r.task.path
            want = matcher.match(data, r.task.filename, r.task.path, r.md5 or "")
            assert _packs_only(r) == want, r.task.path
    hits = [r.task.path for r in memo0 if _packs_only(r)]
    assert len(hits) == 4 * 2 + 1  # every marker copy and the unique file


def test_each_content_is_typed_and_matched_once_in_a_worker(tmp_path: Path) -> None:
    img = _image(tmp_path)
    rules = compile_packs(RULES, dev=True, home=tmp_path / "h")
    scanner = Scanner(_cfg(img, rules, 0, memo=True))
    try:
        results = [scanner.scan(t) for t in _tasks(img) if t.readable]
    finally:
        scanner.close()
    contents = {r.sha256 for r in results if r.status is FileStatus.SCANNED}
    seen = scanner._memo._seen
    assert len(seen) == len(contents)
    assert all(s.matches is not None for s in seen.values())


def test_a_pack_reading_filename_turns_the_matches_memo_off_and_must(tmp_path: Path) -> None:
    img = _image(tmp_path)
    rules = compile_packs(_place_pack(tmp_path), dev=True, home=tmp_path / "h")
    assert rules.per_file_externals is True
    tasks = _tasks(img)
    right = list(scan_tasks(tasks, _cfg(img, rules, 0, memo=not rules.per_file_externals)))
    named = sorted(r.task.path for r in right if _packs_only(r))
    assert named == [
        "/Program Files/x/a.txt",
        "/Users/alice/Documents/a.txt",
        "/Users/bob/Pictures/a.txt",
        "/Windows/Temp/a.txt",
    ]
    # forced on, the first copy's match would be handed to copies named otherwise
    wrong = list(scan_tasks(tasks, _cfg(img, rules, 0, memo=True)))
    assert sorted(r.task.path for r in wrong if _packs_only(r)) != named


def test_place_externals_are_found_in_conditions_only() -> None:
    assert uses_place_externals({"a": 'rule r { condition: filename == "x" }'})
    assert uses_place_externals({"a": "rule r { condition: extension matches /exe/ }"})
    assert uses_place_externals({"a": 'rule r { condition:\n filepath contains "Temp" }'})
    assert not uses_place_externals(
        {
            "a": 'rule r { meta: d = "uses filename and extension" strings: $filename = "x" '
            "condition: $filename and #filename > 1 } // filepath\n/* extension */"
        }
    )
    assert not uses_place_externals({"a": 'rule r { condition: filetype == "EXE" and md5 == "" }'})


def test_known_good_files_are_neither_typed_nor_matched(tmp_path: Path) -> None:
    from tests.test_scan import _scan

    known = [r for r in _scan("ext4.dd", workers=0).values() if r.status is FileStatus.KNOWN_GOOD]
    assert known
    for r in known:
        assert r.mime is None
        assert r.rule_matches == ()
        assert "not typed or YARA-scanned" in r.reason
