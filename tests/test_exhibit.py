"""The report lists every evidence file with its size and SHA-256: what an exhibit label says.

The oracle is hashlib over the committed sample files themselves. A single raw image lists
nothing extra (its file is the media: the media SHA-256 already is its hash), so reports of
raw images keep their bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.engine.triage import TriageResult
from kiosk.evidence.exhibit import hash_files
from kiosk.evidence.resolve import resolve
from kiosk.reports.attestation import verify_report_dir
from kiosk.reports.html import render_html
from kiosk.reports.model import EvidenceFileRecord
from kiosk.reports.text import render_text
from kiosk.trust.signing import TrustStore
from tests.conftest import IMAGES, SAMPLES


def _label(name: str) -> tuple[EvidenceFileRecord, ...]:
    return tuple(
        EvidenceFileRecord(s, (SAMPLES / s).stat().st_size, _sha256(SAMPLES / s))
        for s in IMAGES[name]["segments"]
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["ewf.E01", "split.001"])
def test_every_segment_is_listed_with_its_size_and_sha256(
    name: str, triage: Callable[..., TriageResult]
) -> None:
    result = triage(name)
    files = result.report.image.evidence_files
    assert len(files) == len(IMAGES[name]["segments"]) > 1
    assert files == _label(name)
    written = json.loads((result.report_dir / "report.json").read_bytes())
    assert [f["sha256"] for f in written["image"]["evidence_files"]] == [f.sha256 for f in files]
    trust = TrustStore.load(Path(os.environ["KIOSK_HOME"]) / "trust.json")
    shown = render_text(result.report)
    page = render_html(verify_report_dir(result.report_dir, trust))
    for f in files:  # what `report show` and the printable page say, as on the exhibit label
        assert f"File {f.name}  {f.size} bytes  sha256 {f.sha256}" in shown
        assert f"{f.name}  {f.size} bytes  sha256 {f.sha256}" in page


def test_a_single_raw_image_lists_no_files_beyond_the_media(
    triage: Callable[..., TriageResult],
) -> None:
    result = triage("ext4.dd")
    assert result.report.image.evidence_files == ()
    assert result.report.image.sha256 == _sha256(SAMPLES / "ext4.dd")
    written = json.loads((result.report_dir / "report.json").read_bytes())
    assert "evidence_files" not in written["image"]


def test_a_stopped_hash_leaves_the_files_unhashed_not_wrong() -> None:
    ref = resolve([SAMPLES / "split.001"])
    files = hash_files(ref, lambda: True)
    assert [(f.name, f.sha256) for f in files] == [(s.name, None) for s in ref.files]
