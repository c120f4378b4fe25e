"""Archives inside the evidence, expanded through libarchive, on a real ext4 made by mke2fs -d.

Every archive is built here by the format's own writer (zipfile, tarfile, libarchive's 7-Zip and
cpio writers, genisoimage), so the oracle is what was put in: each member's name and SHA-256,
and the writers' own listings (zipfile, tarfile) for the names. Nothing is mocked: libarchive,
libmagic, YARA and the Sleuth Kit run for real, through ``run_triage``.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import multiprocessing
import os
import pickle
import signal
import tarfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kiosk.config import ArchiveLimits
from kiosk.engine import archives, scan
from kiosk.engine.triage import TriageResult
from kiosk.errors import ArchiveReadError
from kiosk.evidence.archive import ArchiveReader
from kiosk.evidence.image import Evidence
from kiosk.evidence.resolve import resolve
from kiosk.locator import FsLoc, MemberLoc, StreamLoc, VolumeLoc
from kiosk.model import FileResult, FileStatus, FileTask, Recommendation
from kiosk.packs.load import compile_packs
from kiosk.reports.attestation import verify_report_dir
from kiosk.reports.html import render_html
from kiosk.reports.model import NotExaminedKind
from kiosk.reports.text import render_text
from kiosk.trust.signing import TrustStore, kiosk_home
from tests.archive_kit import iso_of, libarchive_of, mke2fs, sha, tar_of, zip_of, zip_stored
from tests.conftest import IMAGES, MARKER, RULES, TEST_CAP
from tests.oracle import fls

Triage = Callable[..., TriageResult]
RANDOM = bytes(range(256)) * 40  # not a marker


# The members each archive holds, by the path the report must give them; what every member
# holds is what the test wrote into it.
DEEP_TXT = b"three archives down: " + MARKER
DEEP_TGZ = tar_of({"z.txt": DEEP_TXT}, "w:gz")
NESTED_7Z = libarchive_of("7zip", {"deep.tar.gz": DEEP_TGZ, "notes/n.txt": b"7z notes"})
# the demo hash sets' samples (the bytes sample_images/build.py writes; checked against the
# manifest's digests below), so a member is looked up in the sets as a file is
KNOWN_BAD = (
    b"KIOSK demo known-bad sample -- a harmless test file listed in hashsets/demo-known-bad\n"
)
KNOWN_GOOD = (
    b"KIOSK demo known-good sample -- harmless, listed in hashsets/demo-known-good; it also"
    b" carries KIOSK-DEMO-MARKER-3f9c1b7e to show that known-good files skip YARA\n"
)
BUNDLE = {
    "a.txt": b"hello " + MARKER,
    "inner/b.bin": RANDOM,
    "nested.7z": NESTED_7Z,
    "Downloads/bad.bin": KNOWN_BAD,
    "Windows/good.txt": KNOWN_GOOD,
}
LOGS = {"var/log/syslog": b"boot ok\n" * 100, "var/log/auth.log": b"login\n" * 50}
XZ = {"Library/prefs.plist": b"<plist/>"}
CPIO = {"etc/passwd": b"root:x:0:0::/root:/bin/sh\n"}
ISO = {"README.TXT": b"on a disc " + MARKER}
BARE = b"a compressed note, no archive in it\n" * 20


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """An ext4 with archives of every kind; and the oracle: member path -> SHA-256."""
    root = tmp_path_factory.mktemp("archives")
    src = root / "src"
    (src / "Users" / "a").mkdir(parents=True)
    (src / "Users" / "a" / "bundle.zip").write_bytes(zip_of(BUNDLE))
    (src / "logs.tar.bz2").write_bytes(tar_of(LOGS, "w:bz2"))
    (src / "more.tar.xz").write_bytes(tar_of(XZ, "w:xz"))
    (src / "initrd.cpio").write_bytes(libarchive_of("cpio", CPIO))
    (src / "disc.iso").write_bytes(iso_of(root, ISO))
    (src / "note.txt.gz").write_bytes(gzip.compress(BARE, mtime=0))
    (src / "plain.txt").write_bytes(b"not an archive")
    truth = {f"/Users/a/bundle.zip!/{n}": sha(d) for n, d in BUNDLE.items()}
    truth |= {
        f"/Users/a/bundle.zip!/nested.7z!/{n}": sha(d)
        for n, d in {"deep.tar.gz": DEEP_TGZ, "notes/n.txt": b"7z notes"}.items()
    }
    truth["/Users/a/bundle.zip!/nested.7z!/deep.tar.gz!/z.txt"] = sha(DEEP_TXT)
    truth |= {f"/logs.tar.bz2!/{n}": sha(d) for n, d in LOGS.items()}
    truth |= {f"/more.tar.xz!/{n}": sha(d) for n, d in XZ.items()}
    truth |= {f"/initrd.cpio!/{n}": sha(d) for n, d in CPIO.items()}
    truth |= {f"/disc.iso!/{n}": sha(d) for n, d in ISO.items()}
    truth["/note.txt.gz!/data"] = sha(BARE)
    return mke2fs(root, src), truth


def inventory(result: TriageResult) -> list[dict[str, Any]]:
    lines = (result.report_dir / "files.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(x) for x in lines]


def test_every_member_is_listed_hashed_and_scanned_like_a_file(
    triage: Triage, evidence: tuple[Path, dict[str, str]]
) -> None:
    img, truth = evidence
    result = triage("ext4.dd", image=(img,))
    inv = inventory(result)
    members = {x["path"]: x for x in inv if "!/" in x["path"]}
    assert {p: x["sha256"] for p, x in members.items()} == truth
    # the writers' own listings name the same members
    with zipfile.ZipFile(io.BytesIO(zip_of(BUNDLE))) as z:
        zipped = z.namelist()
    assert {f"/Users/a/bundle.zip!/{n}" for n in zipped} <= set(members)
    with tarfile.open(fileobj=io.BytesIO(tar_of(LOGS, "w:bz2"))) as t:
        tarred = t.getnames()
    assert {f"/logs.tar.bz2!/{n}" for n in tarred} <= set(members)
    # each archive is scanned as a file too; files are what the walk found, as fls lists them
    files = [x for x in inv if "!/" not in x["path"]]
    oracle = {e.path for e in fls(img, 0) if not e.is_dir and not e.path.startswith("/$")}
    assert {x["path"] for x in files} >= oracle
    assert any(x["path"] == "/Users/a/bundle.zip" and x["mime"] == "application/zip" for x in files)
    # a member sits in the volume and filesystem of the file that holds it, with its inode
    bundle = next(x for x in files if x["path"] == "/Users/a/bundle.zip")
    assert all(members[p]["inode"] == bundle["inode"] for p in members if "bundle.zip!" in p)
    # looked up in the hash sets like files: known-bad is a finding, known-good skips YARA
    samples = {f["kind"]: f["sha256"] for f in IMAGES["ext4.dd"]["files"]}
    assert (sha(KNOWN_BAD), sha(KNOWN_GOOD)) == (samples["known_bad"], samples["known_good"])
    good = members.pop("/Users/a/bundle.zip!/Windows/good.txt")
    assert good["status"] == "known_good"
    assert [m["type"] for m in good["matches"]] == ["hashset"]
    bad = next(f for f in result.report.findings if f.path.endswith("!/Downloads/bad.bin"))
    assert [m.hashset for m in bad.known_bad] == ["demo-known-bad"]
    assert all(x["status"] == "scanned" for x in members.values())
    # the marker three archives down is a finding at its full path; so are the others
    found = {f.path for f in result.report.findings}
    assert "/Users/a/bundle.zip!/nested.7z!/deep.tar.gz!/z.txt" in found
    assert {"/Users/a/bundle.zip!/a.txt", "/disc.iso!/README.TXT"} <= found
    assert result.report.recommendation.result is Recommendation.SUBMIT
    # members are counted apart from files
    cover = result.report.coverage
    assert cover.archive_members is not None
    assert cover.archive_members.found == len(truth)
    assert cover.files.examined == len(files)
    assert cover.files.found == cover.files.examined
    assert result.report.inventory is not None
    assert result.report.inventory.records == len(inv)
    assert not [n for n in result.report.not_examined if n.kind is NotExaminedKind.ARCHIVE]
    # report show and the HTML page say it in the same words
    said = f"Archive members {len(truth)} found"
    assert said in render_text(result.report)
    v = verify_report_dir(result.report_dir, TrustStore.load(kiosk_home() / "trust.json"))
    assert said in render_html(v)


def test_members_follow_their_archive_depth_first(
    triage: Triage, evidence: tuple[Path, dict[str, str]]
) -> None:
    paths = [x["path"] for x in inventory(triage("ext4.dd", image=(evidence[0],)))]
    at = paths.index("/Users/a/bundle.zip")
    assert paths[at + 1 : at + 7] == [
        "/Users/a/bundle.zip!/a.txt",
        "/Users/a/bundle.zip!/inner/b.bin",
        "/Users/a/bundle.zip!/nested.7z",
        "/Users/a/bundle.zip!/nested.7z!/deep.tar.gz",
        "/Users/a/bundle.zip!/nested.7z!/deep.tar.gz!/z.txt",
        "/Users/a/bundle.zip!/nested.7z!/notes/n.txt",
    ]


def test_inline_and_pooled_give_the_same_inventory(
    triage: Triage, evidence: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    pooled = triage("ext4.dd", image=(evidence[0],), workers=2)
    inline = triage("ext4.dd", image=(evidence[0],), workers=0, out_dir=tmp_path / "inline")
    a = (pooled.report_dir / "files.jsonl").read_bytes()
    assert a == (inline.report_dir / "files.jsonl").read_bytes()
    assert a.count(b"!/") >= 10


def test_depth_limit_is_recorded_and_the_result_is_not_no_matches(
    triage: Triage, evidence: tuple[Path, dict[str, str]]
) -> None:
    result = triage("ext4.dd", image=(evidence[0],), archives=ArchiveLimits(max_depth=2))
    paths = {x["path"] for x in inventory(result)}
    assert "/Users/a/bundle.zip!/nested.7z!/deep.tar.gz" in paths  # scanned as a member
    assert "/Users/a/bundle.zip!/nested.7z!/deep.tar.gz!/z.txt" not in paths
    (cut,) = [n for n in result.report.not_examined if n.kind is NotExaminedKind.ARCHIVE]
    assert cut.where == "/Users/a/bundle.zip!/nested.7z!/deep.tar.gz"
    assert "beyond the depth limit (2)" in cut.reason
    assert result.report.recommendation.result is Recommendation.SUBMIT  # other markers


def test_no_expansion_at_depth_zero(triage: Triage, evidence: tuple[Path, dict[str, str]]) -> None:
    result = triage("ext4.dd", image=(evidence[0],), archives=ArchiveLimits(max_depth=0))
    assert not [x for x in inventory(result) if "!/" in x["path"]]
    assert result.report.coverage.archive_members is None
    # not silent: each archive is listed as not expanded, with why
    cut = {n.where: n.reason for n in result.report.not_examined if n.kind.value == "archive"}
    assert set(cut) == {p.split("!/")[0] for p in evidence[1]}
    assert all("archive depth 0" in why for why in cut.values())


def test_a_member_locator_pickles_as_a_tuple_chain() -> None:
    loc = MemberLoc(MemberLoc(StreamLoc(FsLoc(VolumeLoc(0, 0), "ext4"), 12, 128, -1), 3), 0)
    assert pickle.loads(pickle.dumps(loc)) == loc  # noqa: S301 - our own bytes
    assert loc.__reduce__()[1][1] == 0
    assert loc.inode == 12
    assert loc.fs.fs_type == "ext4"


def test_members_are_worded_as_files_are() -> None:
    assert archives.YARA_DISABLED == scan.YARA_DISABLED
    assert archives.HEAD_BYTES == scan.HEAD_BYTES


def test_hash_only_run_still_expands_and_says_yara_was_off(
    triage: Triage, evidence: tuple[Path, dict[str, str]]
) -> None:
    result = triage("ext4.dd", image=(evidence[0],), yara=False)
    members = [x for x in inventory(result) if "!/" in x["path"]]
    assert len(members) == len(evidence[1])
    members = [x for x in members if not x["path"].endswith("!/Windows/good.txt")]
    assert {x["status"] for x in members} == {FileStatus.HASHED_ONLY.value}
    assert {x["reason"] for x in members} == {scan.YARA_DISABLED}


# --------------------------------------------------------------------------- the worker


@pytest.fixture(scope="module")
def slow_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ext4 with small files around a zip of 40 000 one-byte members, which takes seconds
    to expand (each member is hashed, typed and scanned): time to kill the worker on it."""
    root = tmp_path_factory.mktemp("slow")
    src = root / "src"
    src.mkdir()
    (src / "a-before.txt").write_bytes(b"before " + MARKER)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for i in range(40_000):
            z.writestr(f"m{i:05d}.txt", bytes([65 + i % 26]))
    (src / "b-slow.zip").write_bytes(out.getvalue())
    (src / "c-after.txt").write_bytes(b"after " + MARKER)
    return mke2fs(root, src, "32M")


def _scan_config(image: Path, **kw: Any) -> scan.ScanConfig:
    rules = compile_packs(RULES, dev=True)  # the engine, not trust: see test_rules.py
    return scan.ScanConfig(
        evidence=resolve([image]),
        rules_blob=rules.to_bytes(),
        rule_meta=dict(rules.meta),
        hashsets=(),
        max_yara_bytes=TEST_CAP,
        archives=ArchiveLimits(max_members=1_000_000),
        **kw,
    )


def _walk(image: Path) -> list[FileTask]:
    with Evidence(resolve([image])) as ev:
        return [t for t in ev.walk(ev.volumes()) if not t.path.startswith("/lost+found")]


def test_a_worker_killed_while_expanding_costs_the_archive_only(slow_archive: Path) -> None:
    tasks = _walk(slow_archive)
    at = next(i for i, t in enumerate(tasks) if t.path == "/b-slow.zip")
    cfg = _scan_config(slow_archive, workers=1)
    results: list[FileResult] = []
    killed: list[int] = []
    for r in scan.scan_tasks(tasks, cfg):
        results.append(r)
        if len(results) == at:  # the worker has the whole batch: it is on the archive now
            time.sleep(0.5)
            for child in multiprocessing.active_children():
                if child.pid:
                    os.kill(child.pid, signal.SIGKILL)
                    killed.append(child.pid)
    assert killed
    assert [r.task.path for r in results] == [t.path for t in tasks]
    crashed = results[at]
    assert crashed.status is FileStatus.ERROR
    assert "crashed (signal 9)" in crashed.reason
    assert crashed.members == ()
    after = next(r for r in results if r.task.path == "/c-after.txt")
    assert after.status is FileStatus.SCANNED
    assert after.rule_matches


def test_the_per_file_time_limit_stops_an_archive_that_expands_too_long(
    slow_archive: Path,
) -> None:
    tasks = _walk(slow_archive)
    results = list(scan.scan_tasks(tasks, _scan_config(slow_archive, workers=1, file_timeout_s=1)))
    by_path = {r.task.path: r for r in results}
    assert "exceeded the time limit" in by_path["/b-slow.zip"].reason
    assert by_path["/c-after.txt"].status is FileStatus.SCANNED


def test_the_archive_time_limit_is_recorded_with_what_was_examined(slow_archive: Path) -> None:
    tasks = [t for t in _walk(slow_archive) if t.path == "/b-slow.zip"]
    limits = ArchiveLimits(max_members=1_000_000, max_seconds=0.5)
    cfg = dataclasses.replace(_scan_config(slow_archive, workers=0), archives=limits)
    (r,) = scan.scan_tasks(tasks, cfg)
    # the archive itself, as a file: over the 1 MiB test cap, so it was read forward only
    assert r.status is FileStatus.HASHED_ONLY
    assert "expanding took longer than 0.5 s" in r.not_expanded
    assert 0 < len(r.members) < 40_000
    done = [m.task.path for m in r.members[:-1]]
    assert done == [f"/b-slow.zip!/m{i:05d}.txt" for i in range(len(done))]


def test_expanded_bytes_stop_at_the_absolute_cap(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.zip").write_bytes(zip_of({f"f{i}": bytes(300_000) for i in range(10)}))
    image = mke2fs(tmp_path, src, "8M")
    tasks = [t for t in _walk(image) if t.path == "/big.zip"]
    limits = ArchiveLimits(max_bytes=1_000_000, max_ratio=10**6)
    cfg = dataclasses.replace(_scan_config(image, workers=0), archives=limits)
    (r,) = scan.scan_tasks(tasks, cfg)
    assert "1,000,000 bytes expanded, the limit" in r.not_expanded
    assert [m.status for m in r.members] == [FileStatus.SCANNED] * 3 + [FileStatus.ERROR]
    assert "not examined: 1,000,000 bytes expanded" in r.members[-1].reason


def test_an_archive_over_the_cap_is_read_forward_only_and_7z_says_why_not(
    tmp_path: Path,
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    big = {f"r{i}.bin": os.urandom(400_000) for i in range(4)}  # 1.6 MB: over the 1 MiB cap
    (src / "big.tar.gz").write_bytes(tar_of(big, "w:gz"))
    (src / "big.7z").write_bytes(libarchive_of("7zip", big))
    image = mke2fs(tmp_path, src, "16M")
    results = {
        r.task.path: r
        for r in scan.scan_tasks(_walk(image), _scan_config(image, workers=0))
        if r.task.path.startswith("/big")
    }
    tgz = results["/big.tar.gz"]
    assert tgz.status is FileStatus.HASHED_ONLY
    assert tgz.not_expanded == ""
    assert {m.task.path: m.sha256 for m in tgz.members} == {
        f"/big.tar.gz!/{n}": sha(d) for n, d in big.items()
    }
    assert {m.status for m in tgz.members} == {FileStatus.SCANNED}
    seven = results["/big.7z"]
    assert seven.members == ()
    assert "needs random access" in seven.not_expanded
    assert f"{TEST_CAP:,}-byte in-memory limit" in seven.not_expanded


def test_nested_archives_held_in_memory_stay_within_twice_the_cap(tmp_path: Path) -> None:
    """Each layer is expanded from the copy kept of it: three layers of ~0.9 MiB each under a
    1 MiB cap would hold ~2.7 MiB, so the innermost is listed as not expanded instead."""
    inner = zip_stored({"payload.bin": os.urandom(900_000)})
    middle = zip_stored({"inner.zip": inner, "pad.bin": os.urandom(30_000)})
    outer = zip_stored({"middle.zip": middle, "pad.bin": os.urandom(30_000)})
    assert len(outer) <= TEST_CAP
    src = tmp_path / "src"
    src.mkdir()
    (src / "outer.zip").write_bytes(outer)
    image = mke2fs(tmp_path, src, "8M")
    tasks = [t for t in _walk(image) if t.path == "/outer.zip"]
    (r,) = scan.scan_tasks(tasks, _scan_config(image, workers=0))
    flat = {m.task.path: m for m in archives.with_members([r])}
    assert "/outer.zip!/middle.zip!/inner.zip" in flat
    cut = flat["/outer.zip!/middle.zip!/inner.zip"]
    assert cut.status is FileStatus.SCANNED  # YARA saw it whole; it was not opened
    assert "twice that for it and the archives around it" in cut.not_expanded
    assert "/outer.zip!/middle.zip!/inner.zip!/payload.bin" not in flat


def test_the_reader_opens_only_the_formats_kiosk_claims() -> None:
    """An mtree spec (whose entries name files on the reading machine) and an lzop stream
    (which libarchive would hand to an external program) are refused, not read."""
    mtree = gzip.compress(b"#mtree\n./etc/passwd type=file\n", mtime=0)
    lzop = b"\x89LZO\x00\r\n\x1a\n" + bytes(64)
    for data in (mtree, lzop):
        with (
            pytest.raises(ArchiveReadError, match="Unrecognized archive format"),
            ArchiveReader(data) as r,
        ):
            list(r.entries())
