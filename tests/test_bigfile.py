"""Files over the YARA cap (issue 17, item 5): every rule on the head, the window-safe rules on
all of it, and the report says how far each reached.

A real ext4 (``mke2fs -d``) holds a sparse 200 MiB file (built in milliseconds, stored in a few
blocks) with a marker at 100 MiB, one across a window edge (96 MiB, a multiple of the 16 MiB
window), one across the cap (64 MiB: only the windows see it whole) and one in the head. The
scan's windows start at 48 MiB, after the windows wholly inside the head. The oracle is a
brute-force search of the file's bytes as ``icat`` gives them; the windows must find each tail
marker exactly once, at its offset.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kiosk.engine.triage import TriageRequest, TriageResult, run_triage
from kiosk.engine.windows import WINDOW_BYTES, Hits, WindowMatcher
from kiosk.evidence.image import Evidence
from kiosk.evidence.resolve import resolve
from kiosk.packs.load import compile_packs
from kiosk.trust.signing import load_signer
from tests.conftest import CASE, check_written_report, fixed_hooks, pack_toml, sign_pack

MiB = 1 << 20
SIZE = 200 * MiB
CAP = 64 * MiB
AT_100 = 100 * MiB
EDGE = 6 * WINDOW_BYTES - 9  # straddles the window edge at 96 MiB
HEAD = 1 * MiB
AT_CAP = CAP - 9  # straddles the cap: the head's scan sees only its first 9 bytes
TAIL_START = 3 * WINDOW_BYTES  # where a big file's windows start (after those inside the head)
WORD = b"WORDEDGE48"  # a fullword string: the byte before it decides
FIXED = datetime(2026, 11, 27, tzinfo=UTC)
MARKS = {
    "far": b"FAR-MARK-100MiB-a7",
    "edge": b"EDGE-MARK-96MiB-b3",
    "head": b"HEAD-MARK-c9",
    "cap": b"CAP-MARK-64MiB-d1",
}

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("mke2fs", "icat", "fls")), reason="needs e2fsprogs, TSK"
)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("big")
    src = d / "src"
    src.mkdir()
    big = src / "big.bin"
    with big.open("wb") as f:
        f.truncate(SIZE)
        marks = ((AT_100, "far"), (EDGE, "edge"), (HEAD, "head"), (AT_CAP, "cap"))
        for off, m in ((o, MARKS[k]) for o, k in marks):
            f.seek(off)
            f.write(m)
        f.seek(TAIL_START - 1)  # the tail's windows start inside a longer word: no whole word
        f.write(b"x" + WORD)
    (src / "small.txt").write_bytes(MARKS["far"])  # a small file: every rule, as ever
    img = d / "big.img"
    # the filesystem must be at least as large as the sparse file for the Sleuth Kit to read it
    subprocess.run(
        ["mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-d", str(src), str(img), "232M"],
        check=True,
        capture_output=True,
    )
    return img


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory, kiosk_home: Path) -> Path:
    out = tmp_path_factory.mktemp("rules") / "rules"
    pack = out / "big"
    pack.mkdir(parents=True)
    (pack / "pack.toml").write_text(pack_toml("big"))
    meta = ' meta:\n category = "test"\n severity = "high"\n description = "d"\n'
    meta += ' author = "t"\n date = "2026-12-06"\n'

    def rule(name: str, mark: bytes, cond: str, mods: str = "") -> str:
        return (
            f'rule {name}\n{{\n{meta} strings:\n $m = "{mark.decode()}" {mods}\n'
            f" condition:\n {cond}\n}}\n"
        )

    (pack / "r.yar").write_text(
        rule("far_window", MARKS["far"], "$m")
        + rule("edge_window", MARKS["edge"], "any of them")
        + rule("cap_window", MARKS["cap"], "$m")
        + rule("word_window", WORD, "$m", "fullword")  # never a whole word in big.bin
        + rule("far_whole", MARKS["far"], "$m and filesize > 10")  # whole-file only
        + rule("head_whole", MARKS["head"], "$m and filesize > 10")
    )
    sign_pack(pack, load_signer(kiosk_home / "keys" / "kiosk.key"), created=FIXED)
    return out


def _big_task(ev: Evidence) -> Any:
    vols = ev.volumes()
    return next(t for t in ev.walk(vols) if t.path == "/big.bin")


def test_windows_find_each_tail_marker_once_at_its_offset(image: Path, rules: Path) -> None:
    compiled = compile_packs(rules, clock=lambda: FIXED)
    assert compiled.window is not None
    assert {r for _, r in compiled.window.safe} == {
        "far_window",
        "edge_window",
        "cap_window",
        "word_window",
    }
    with Evidence(resolve((image,))) as ev:
        task = _big_task(ev)
        assert task.size == SIZE
        w = compiled.window
        wm = WindowMatcher(
            w.engine.name, w.to_bytes(), dict(compiled.meta), w.max_match, 30, rule_count=3
        )
        hits = Hits()
        oracle: dict[str, list[int]] = {k: [] for k in MARKS}

        def brute_force(chunks: Any) -> Any:
            """The oracle, on the same bytes as they pass: every occurrence, tail kept."""
            tail, pos = b"", 0
            for chunk in chunks:
                data = tail + chunk
                for k, v in MARKS.items():
                    for m in re.finditer(re.escape(v), data):
                        at = pos - len(tail) + m.start()
                        if at not in oracle[k]:
                            oracle[k].append(at)
                tail, pos = data[-64:], pos + len(chunk)
                yield chunk

        assert wm.scan(0, brute_force(ev.chunks(task)), None, hits) == SIZE
    assert oracle["far"] == [AT_100]
    assert oracle["edge"] == [EDGE]
    got = {rule: (kept, n[0]) for (_, rule), (kept, n) in hits.by_rule.items()}
    assert got == {
        "far_window": ([AT_100], 1),
        "edge_window": ([EDGE], 1),
        "cap_window": ([AT_CAP], 1),
    }
    # a big file's windows start after those wholly inside the head: the same grid from there
    assert wm.head_windows(CAP) == TAIL_START
    assert wm.head_windows(WINDOW_BYTES + wm.overlap - 1) == 0
    assert wm.head_windows(WINDOW_BYTES + wm.overlap) == WINDOW_BYTES


@pytest.fixture
def scan(tmp_path: Path, written_reports: list[Path]) -> Callable[..., dict[str, Any]]:
    def run(image: Path, rules: Path, **kw: Any) -> dict[str, Any]:
        req = TriageRequest(
            case=CASE,
            image=(image,),
            rules_dir=rules,
            hashsets_dir=None,
            out_dir=tmp_path / f"reports{len(written_reports)}",
            inventory=True,
            workers=kw.pop("workers", 2),
            max_yara_bytes=CAP,
            unallocated=False,  # the file's reach is the point here
            **kw,
        )
        result: TriageResult = run_triage(req, fixed_hooks())
        check_written_report(result)
        written_reports.append(result.report_dir)
        out: dict[str, Any] = json.loads((result.report_dir / "report.json").read_text())
        out["_inventory"] = [
            json.loads(line)
            for line in (result.report_dir / "files.jsonl").read_text().splitlines()
        ]
        return out

    return run


def test_a_file_over_the_cap_is_scanned_to_its_end_and_says_how_far(
    image: Path, rules: Path, scan: Callable[..., dict[str, Any]]
) -> None:
    rep = scan(image, rules)
    files = {f["path"]: f for f in rep["_inventory"]}
    big = files["/big.bin"]
    rules_hit = sorted(m["rule"] for m in big["matches"])
    # the tail markers (the one across the cap too): by the window rules only; the head
    # marker: by a whole-file rule; the word cut where the windows start: by none (its windows
    # are given the byte before them, as the whole file has it)
    assert rules_hit == ["cap_window", "edge_window", "far_window", "head_whole"]
    assert big["status"] == "hashed_only"  # the whole-file rules saw the head only
    assert big["yara_reach"] == {"whole_file_rules": CAP, "window_rules": SIZE}
    assert f"first {CAP} bytes" in big["reason"]
    assert "window-safe" in big["reason"]
    # a small file: no reach recorded, every rule as ever
    small = files["/small.txt"]
    assert "yara_reach" not in small
    assert sorted(m["rule"] for m in small["matches"]) == ["far_whole", "far_window"]
    assert rep["coverage"]["files"]["hashed_only"] == 1
