"""User areas first: every file still scanned, the order deterministic, the first finding early.

On a real ext4 (``mke2fs -d``) with system folders and a user's folders, a triage with priority
areas lists (and scans) the user-area files first, in walk order, then the rest in walk order;
it holds exactly the files and findings of a plain run; ``workers=0`` equals ``workers=2``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.canonical import canonical
from kiosk.engine.priority import in_areas, prioritise
from kiosk.engine.scan import ScanConfig, scan_tasks
from kiosk.engine.triage import TriageResult
from kiosk.errors import RulesError
from kiosk.evidence.image import Evidence
from kiosk.evidence.resolve import resolve
from kiosk.packs.check import read_pack
from kiosk.packs.load import compile_packs
from kiosk.reports.encode import file_json
from kiosk.reports.report import file_record
from tests.conftest import MARKER, RULES, pack_toml

pytestmark = pytest.mark.skipif(shutil.which("mke2fs") is None, reason="needs mke2fs")


def _image(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    for i in range(60):
        p = tree / "Windows" / "System32" / f"lib{i:03d}.dll"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"MZ" + bytes(100) + i.to_bytes(2, "big"))
    (tree / "Windows" / "Temp").mkdir(parents=True)
    (tree / "Windows" / "Temp" / "dropped.txt").write_bytes(b"tmp " + MARKER)
    for d, n in (("Users/bob/Pictures", 5), ("Users/bob/Documents", 3), ("sdcard/DCIM/Camera", 2)):
        (tree / d).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (tree / d / f"f{i}.txt").write_bytes(f"user file {d} {i}\n".encode())
    (tree / "Users/bob/Documents/notes.txt").write_bytes(b"notes " + MARKER)
    (tree / "zzz.txt").write_bytes(b"root file")
    img = tmp_path / "areas.img"
    subprocess.run(["mke2fs", "-q", "-t", "ext4", "-d", str(tree), str(img), "8M"], check=True)
    return img


def _inventory(result: TriageResult) -> list[dict[str, Any]]:
    text = (result.report_dir / "files.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_in_areas_matches_components_without_case() -> None:
    areas = (("users",), ("whatsapp", "media"), ("dcim",))
    assert in_areas("/Users/bob/x.jpg", areas)
    assert in_areas("/sdcard/WhatsApp/Media/IMG-1.jpg", areas)
    assert in_areas("/data/media/0/DCIM/Camera/1.jpg", areas)
    assert not in_areas("/WhatsApp/Backups/Media", areas)  # the file's own name is no area
    assert not in_areas("/Windows/Users.dll", areas)
    assert not in_areas("/MyUsers/x", areas)


_COMPONENT = st.sampled_from(["Users", "users", "bob", "WhatsApp", "Media", "DCIM", "ß", "SS", "x"])


@given(
    path=st.lists(_COMPONENT | st.just(""), min_size=1, max_size=7),
    areas=st.lists(st.lists(_COMPONENT, min_size=1, max_size=3), min_size=1, max_size=3),
)
def test_in_areas_agrees_with_matching_component_by_component(
    path: list[str], areas: list[list[str]]
) -> None:
    """The text test against the plain definition: consecutive case-folded components of the
    folders (empty components, from doubled slashes, do not count)."""
    text = "/" + "/".join(path)
    wanted = tuple(tuple(c.casefold() for c in a) for a in areas)
    comps = [c.casefold() for c in text.split("/") if c][:-1]
    expect = any(
        tuple(comps[i : i + len(a)]) == a for a in wanted for i in range(len(comps) - len(a) + 1)
    )
    assert in_areas(text, wanted) == expect


def test_user_areas_come_first_and_nothing_is_lost(tmp_path: Path, triage: Any) -> None:
    img = _image(tmp_path)
    areas = ("Users", "DCIM")
    first = triage("ext4.dd", image=(img,), priority_areas=areas, hashsets_dir=None)
    plain = triage(
        "ext4.dd", image=(img,), priority_areas=(), hashsets_dir=None, out_dir=tmp_path / "p"
    )
    a, b = _inventory(first), _inventory(plain)
    assert sorted(canonical(x) for x in a) == sorted(canonical(x) for x in b)
    paths = [x["path"] for x in a]
    in_user = [p for p in paths if p.startswith(("/Users/", "/sdcard/DCIM/"))]
    assert paths[: len(in_user)] == in_user  # every user-area file before any other
    assert len(in_user) == 5 + 3 + 1 + 2
    # each group in walk order: the plain run's order restricted to the group
    plain_paths = [x["path"] for x in b]
    assert in_user == [p for p in plain_paths if p in set(in_user)]
    rest = paths[len(in_user) :]
    assert rest == [p for p in plain_paths if p not in set(in_user)]
    # findings: the same files; the user-area one first
    fa = [f.path for f in first.report.findings]
    assert sorted(fa) == sorted(f.path for f in plain.report.findings)
    assert fa[0] == "/Users/bob/Documents/notes.txt"
    assert paths.index("/Users/bob/Documents/notes.txt") < len(in_user)


def test_workers_0_and_2_give_the_same_order(tmp_path: Path) -> None:
    img = _image(tmp_path)
    rules = compile_packs(RULES, dev=True, home=tmp_path / "h")
    with Evidence(resolve([img])) as ev:
        tasks = list(ev.walk(ev.volumes()))
    out = []
    for workers in (0, 2):
        cfg = ScanConfig(
            evidence=resolve([img]),
            rules_blob=rules.to_bytes(),
            rule_meta=dict(rules.meta),
            hashsets=(),
            workers=workers,
        )
        results = scan_tasks(prioritise(iter(tasks), ("Users", "DCIM")), cfg)
        out.append([canonical(file_json(file_record(r))) for r in results])
    assert out[0] == out[1]
    assert len(out[0]) == len(tasks)


def test_held_files_past_the_limit_stream_in_walk_order(monkeypatch: pytest.MonkeyPatch) -> None:
    import kiosk.engine.priority as priority
    from kiosk.model import FileTask

    monkeypatch.setattr(priority, "MAX_HELD", 3)
    with Evidence(resolve([Path(__file__).parent.parent / "sample_images" / "ext4.dd"])) as ev:
        tasks: list[FileTask] = list(ev.walk(ev.volumes()))
    got = list(prioritise(iter(tasks), ("Documents",)))
    assert sorted(t.path for t in got) == sorted(t.path for t in tasks)
    assert [t.seq for t in got] == list(range(tasks[0].seq, tasks[0].seq + len(tasks)))


def test_a_pack_names_its_priority_areas(tmp_path: Path) -> None:
    pack = tmp_path / "rules" / "areas"
    pack.mkdir(parents=True)
    (pack / "pack.toml").write_text(
        pack_toml("areas", extra='priority_areas = ["Users", "WhatsApp/Media"]\n')
    )
    (pack / "a.yar").write_text(
        'rule r\n{\n    meta:\n        category = "test"\n        severity = "low"\n'
        '        description = "d"\n        author = "a"\n        date = "2026-12-06"\n'
        "    condition:\n        false\n}\n"
    )
    assert read_pack(pack).priority_areas == ("Users", "WhatsApp/Media")
    rules = compile_packs(tmp_path / "rules", dev=True, home=tmp_path / "h")
    assert rules.priority_areas == ("Users", "WhatsApp/Media")
    (pack / "pack.toml").write_text(pack_toml("areas", extra='priority_areas = "Users"\n'))
    with pytest.raises(RulesError, match="'priority_areas' must be a list of names"):
        read_pack(pack)


def test_the_rest_is_announced_once_before_the_first_file_outside_the_areas() -> None:
    """``on_rest`` (the image's hash stops yielding to the scan) fires exactly once, after every
    user-area file and before the first other one; at once without areas; never when every file
    is in the areas (the hash is then released when the results are in)."""
    from kiosk.locator import FsLoc, StreamLoc, VolumeLoc
    from kiosk.model import FileTask

    fs = FsLoc(VolumeLoc(0, 0), "ext4")
    paths = ["/Windows/a.dll", "/Users/bob/x.jpg", "/Windows/b.dll", "/Users/bob/y.txt", "/c"]
    tasks = [FileTask(i + 1, StreamLoc(fs, 10 + i, 1, -1), p, True, 5) for i, p in enumerate(paths)]

    def run(areas: tuple[str, ...], items: list[FileTask]) -> tuple[list[str], list[int]]:
        out: list[str] = []
        calls: list[int] = []
        for t in prioritise(iter(items), areas, on_rest=lambda: calls.append(len(out))):
            out.append(t.path)
        return out, calls

    out, calls = run(("Users",), tasks)
    assert out[:2] == ["/Users/bob/x.jpg", "/Users/bob/y.txt"]
    assert len(out) == 5
    assert calls == [2]
    assert run((), tasks)[1] == [0]
    assert run(("Users",), [t for t in tasks if t.path.startswith("/Users")])[1] == []
