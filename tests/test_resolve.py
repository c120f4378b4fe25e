"""Segments are found once, recorded with their sizes, and never looked for again.

``resolve`` makes the one ``EvidenceRef`` of a scan; the walker, the workers and the media
hasher open the media from it. A segment that changed size since then is refused, and a
segment that appeared since then is never taken in.
"""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import pyewf
import pytest

from kiosk.engine import triage as triage_module
from kiosk.engine.scan import ScanConfig, scan_tasks
from kiosk.engine.triage import TriageResult
from kiosk.errors import ImageError, SegmentError
from kiosk.evidence import resolve as resolve_module
from kiosk.evidence.image import Evidence
from kiosk.evidence.resolve import EvidenceRef, resolve
from kiosk.evidence.walker import Walker
from kiosk.model import FileStatus, Outcome
from tests.conftest import IMAGES, SAMPLES

Triage = Callable[..., TriageResult]


def _copy(tmp_path: Path, name: str, stem: str = "x") -> list[Path]:
    """The sample's segments copied under a new stem, in order."""
    out = []
    for seg in IMAGES[name]["segments"]:
        dst = tmp_path / f"{stem}{Path(seg).suffix}"
        shutil.copyfile(SAMPLES / seg, dst)
        out.append(dst)
    return out


@pytest.mark.parametrize("name", ["split.001", "ewf.E01", "ext4.dd"])
def test_resolve_records_the_format_and_each_segment_with_its_size(name: str) -> None:
    im = IMAGES[name]
    ref = resolve([SAMPLES / im["segments"][0]])
    assert ref.format == im["format"]
    assert ref.name == im["segments"][0]
    assert [(s.name, s.size) for s in ref.segments] == [
        (n, (SAMPLES / n).stat().st_size) for n in im["segments"]
    ]
    assert [Path(s.path) for s in ref.segments] == [SAMPLES / n for n in im["segments"]]
    assert pickle.loads(pickle.dumps(ref)) == ref  # noqa: S301 - to the walker and the workers


def test_ewf_segments_are_looked_for_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = pyewf.glob

    def counting(first: str) -> list[str]:
        calls.append(first)
        return list(real(first))

    monkeypatch.setattr(pyewf, "glob", counting)
    ref = resolve([SAMPLES / "ewf.E01"])
    with Evidence(ref) as ev:
        ev.volumes()
        assert ev.record.segments == ("ewf.E01", "ewf.E02")
    assert calls == [str(SAMPLES / "ewf.E01")]


def test_explicit_segments_are_taken_as_given(tmp_path: Path) -> None:
    parts = _copy(tmp_path, "split.001")
    renamed = [p.rename(tmp_path / f"part-{i}") for i, p in enumerate(parts)]
    ref = resolve(renamed)
    assert ref.format == "split_raw"
    assert [s.name for s in ref.segments] == ["part-0", "part-1", "part-2"]


@pytest.mark.parametrize(("name", "grown"), [("split.001", 1), ("ewf.E01", 1), ("ext4.dd", 0)])
def test_a_segment_whose_size_changed_after_resolve_is_refused(
    tmp_path: Path, name: str, grown: int
) -> None:
    segs = _copy(tmp_path, name)
    ref = resolve([segs[0]])
    with segs[grown].open("ab") as f:
        f.write(b"\0" * 512)
    message = rf"segment {segs[grown].name} changed after it was found \(\d+ bytes then, \d+ now\)"
    with pytest.raises(SegmentError, match=message):
        Evidence(ref)
    # the walker's child refuses it the same way: a one-line error, no parsing
    with Walker(ref) as w, pytest.raises(ImageError, match=message):
        w.survey()


def test_a_segment_gone_after_resolve_is_a_clear_error(tmp_path: Path) -> None:
    segs = _copy(tmp_path, "split.001")
    ref = resolve([segs[0]])
    segs[2].unlink()
    with pytest.raises(SegmentError, match=r"cannot open segment .*x\.003"):
        Evidence(ref)


def test_a_run_never_looks_for_segments_after_resolving_them(
    tmp_path: Path, triage: Triage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fourth split segment appears just after run_triage resolved the image.

    Anything that looked again (the walker's child, the workers, the media hasher) would take
    it in: more segments in the report, a larger media, another SHA-256.
    """
    segs = _copy(tmp_path, "split.001")
    real = triage_module.resolve

    def resolve_then_add_a_segment(paths: Sequence[Path], parents: Sequence[Path]) -> EvidenceRef:
        ref = real(paths, parents)
        (tmp_path / "x.004").write_bytes(b"\xff" * 65536)
        return ref

    monkeypatch.setattr(triage_module, "resolve", resolve_then_add_a_segment)
    report = triage("split.001", image=(segs[0],)).report
    assert (tmp_path / "x.004").exists()
    assert report.outcome.status is Outcome.COMPLETE
    assert report.image.segments == ("x.001", "x.002", "x.003")
    assert report.image.size == sum(p.stat().st_size for p in segs)
    assert report.image.sha256 == IMAGES["split.001"]["sha256"]
    # the same run without the wrapper does take the fourth segment in: the check can fail
    monkeypatch.setattr(triage_module, "resolve", real)
    assert [s.name for s in resolve([segs[0]]).segments][-1] == "x.004"


def test_a_worker_given_the_ref_never_looks_for_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a worker process runs (Scanner, through scan_tasks), in-process to be spied on."""
    segs = _copy(tmp_path, "ewf.E01")
    ref = resolve([segs[0]])
    looked: list[object] = []

    def refuse(*args: object) -> None:
        looked.append(args)
        raise AssertionError("segment discovery after resolve")

    monkeypatch.setattr(resolve_module, "_check_file", refuse)  # the first step of any discovery
    monkeypatch.setattr(pyewf, "glob", refuse)
    with Evidence(ref) as ev:
        tasks = list(ev.walk(ev.volumes()))
    cfg = ScanConfig(
        evidence=ref,
        rules_blob=None,
        rule_meta={},
        hashsets=(),
        workers=0,
    )
    results = list(scan_tasks(tasks, cfg))
    assert looked == []
    assert len(results) == len(tasks) > 10
    by_path = {r.task.path: r for r in results}
    for f in IMAGES["ewf.E01"]["files"]:
        if f["content_recoverable"]:
            r = by_path[f["path"]]
            assert (r.status, r.sha256) == (FileStatus.HASHED_ONLY, f["sha256"]), f["path"]
