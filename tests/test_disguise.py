"""Disguised files (kiosk.engine.disguise): content of one family under another family's name.

The table is tested both ways on libmagic's own answers (no mocks): every family's content under
every other family's extension is a finding, and the look-alikes that are not disguises (ZIP-based
documents, JAR/APK, a PNG named .jpg, text named .txt, unknown extensions) are not. Then a real
ext4 (``mke2fs -d``) holding such files is scanned through ``run_triage``: the findings are
exactly the disguised files, named with their reason, and the scope decides like for any
category. The oracle for the content type is the ``file`` command (libmagic's own CLI).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import magic
import pytest

from kiosk.engine.disguise import claimed_family, content_families, disguised
from kiosk.engine.scope import Scope
from kiosk.engine.triage import TriageResult
from kiosk.model import BUILTIN_PACK, DISGUISED_FILE, Recommendation
from kiosk.reports.model import MatchType, OutOfScope
from kiosk.reports.text import render_text

Triage = Callable[..., TriageResult]
pytestmark = pytest.mark.skipif(shutil.which("mke2fs") is None, reason="needs mke2fs")


def _jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 24), (20, 30, 200)).save(out, "PNG")
    return out.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


# A minimal PE header libmagic names application/vnd.microsoft.portable-executable.
PE = (
    b"MZ"
    + b"\0" * 58
    + b"\x80\0\0\0"
    + b"\0" * 64
    + b"PE\0\0\x4c\x01\x01\0"
    + b"\0" * 12
    + b"\xe0\0\x02\x01\x0b\x01"
    + b"\0" * 300
)
MP4 = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2\0\0\0\x08free" + b"\0" * 100
SQLITE = b"SQLite format 3\0" + b"\x10\0\x01\x01\0\x40\x20\x20" + b"\0" * 200
DOCX = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w/>"})
TEXT = b"meeting notes\nnothing to see\n" * 20

CONTENT = {
    "jpeg": _jpeg(),
    "png": _png(),
    "zip": _zip({"a.txt": b"hello " * 50}),
    "pe": PE,
    "mp4": MP4,
    "sqlite": SQLITE,
    "docx": DOCX,
    "text": TEXT,
}

# (name, content) -> disguised?
CASES = [
    ("photo.dll", "jpeg", True),  # a JPEG named as a library
    ("notes.txt", "zip", True),  # a ZIP named as text
    ("holiday.jpg", "pe", True),  # a program named as a picture
    ("report.pdf", "mp4", True),  # a video named as a document
    ("cache.sqlite", "png", True),  # a picture named as a database
    ("movie.mp4", "sqlite", True),  # a database named as a video
    ("readme.txt", "pe", True),
    ("real.jpg", "jpeg", False),
    ("pic.jpeg", "png", False),  # a PNG named .jpeg: same family, sloppy, not hidden
    ("letter.docx", "docx", False),  # OOXML is a ZIP
    ("letter2.docx", "zip", False),  # libmagic may say application/zip for any OOXML head
    ("tool.jar", "zip", False),
    ("app.apk", "zip", False),
    ("bundle.zip", "docx", False),
    ("readme.txt", "text", False),
    ("blob.dat", "jpeg", False),  # an extension the table does not know says nothing
    ("noextension", "pe", False),
    ("program.exe", "pe", False),
    ("cache.sqlite", "sqlite", False),
    ("clip.mp4", "mp4", False),
]


def _mime(data: bytes) -> str:
    return str(magic.Magic(mime=True).from_buffer(data[:8192]))


@pytest.mark.parametrize(("name", "kind", "expected"), CASES)
def test_the_family_table_both_ways_on_libmagics_answers(
    name: str, kind: str, expected: bool
) -> None:
    found = disguised(name, _mime(CONTENT[kind]))
    assert (found is not None) is expected, (name, kind, _mime(CONTENT[kind]))
    if found:
        assert (found.pack, found.category, found.severity) == (BUILTIN_PACK, DISGUISED_FILE, "low")
        assert f".{name.rpartition('.')[2]}" in found.description
        assert _mime(CONTENT[kind]) in found.description


def test_what_says_nothing_is_never_a_finding() -> None:
    assert content_families("application/octet-stream") == frozenset()
    assert content_families(None) == frozenset()
    assert disguised("a.jpg", "application/octet-stream") is None
    assert disguised("a.jpg", "application/x-empty") is None
    assert disguised("a.jpg:hidden", "application/x-dosexec") is None  # an NTFS stream
    assert disguised(".jpg", "application/x-dosexec") is None  # a dot file, no extension
    assert claimed_family("x.JPG") == "picture"
    assert claimed_family("x.tar.gz") == "archive"
    assert claimed_family("libc.so") is None  # often a text linker script: not judged
    # every family against every other, through the table's own families
    for ext, mime in [("jpg", "image/png"), ("mkv", "video/mp4"), ("7z", "application/gzip")]:
        assert disguised(f"x.{ext}", mime) is None
    for ext, mime in [("jpg", "video/mp4"), ("exe", "image/gif"), ("xlsx", "application/pdf")]:
        assert (disguised(f"x.{ext}", mime) is not None) is (ext != "xlsx")


def _image(tmp_path: Path, files: dict[str, bytes]) -> Path:
    tree = tmp_path / "tree"
    (tree / "docs").mkdir(parents=True)
    for name, data in files.items():
        (tree / name).write_bytes(data)
    img = tmp_path / "disguise.img"
    subprocess.run(["mke2fs", "-q", "-t", "ext4", "-d", str(tree), str(img), "4M"], check=True)
    return img


def _files() -> dict[str, bytes]:
    return {f"docs/{i:02d}-{name}": CONTENT[kind] for i, (name, kind, _) in enumerate(CASES)}


def test_a_scan_finds_exactly_the_disguised_files(triage: Triage, tmp_path: Path) -> None:
    files = _files()
    tree_oracle = {  # libmagic's own CLI on the very bytes placed in the image
        name: subprocess.run(
            ["file", "-b", "--mime-type", "-"], input=data, capture_output=True, check=True
        )
        .stdout.decode()
        .strip()
        for name, data in files.items()
    }
    expected = {f"/{name}" for name, (_, _, d) in zip(files, CASES, strict=True) if d}
    report = triage("ext4.dd", image=(_image(tmp_path, files),)).report
    found = {
        f.path: m
        for f in report.findings
        for m in f.rule_matches
        if m.pack == BUILTIN_PACK and m.category == DISGUISED_FILE
    }
    assert set(found) == expected
    for path, m in found.items():
        assert tree_oracle[path[1:]] in m.description
    assert report.findings_by_category[DISGUISED_FILE] == len(expected)
    assert report.recommendation.result is Recommendation.SUBMIT
    assert any("disguised" in r for r in report.recommendation.reasons)
    text = render_text(report)
    assert "kiosk:disguised_file (the content is a program" in text


def test_the_scope_decides_for_disguised_files_like_any_category(
    triage: Triage, tmp_path: Path
) -> None:
    img = _image(tmp_path, _files())
    scope = Scope(rule_categories=frozenset({"encrypted_data"}), hash_categories=frozenset())
    report = triage("ext4.dd", image=(img,), scope=scope).report
    assert not any(m.category == DISGUISED_FILE for f in report.findings for m in f.rule_matches)
    assert OutOfScope(MatchType.YARA, DISGUISED_FILE, 7) in (
        report.settings.scope.out_of_scope_matches
    )
    assert report.settings.scope.rule_categories == ("encrypted_data",)


def test_no_rule_pack_may_take_the_name_of_the_kiosks_own_checks(tmp_path: Path) -> None:
    from kiosk.errors import RulesError
    from kiosk.packs.check import read_pack
    from tests.conftest import pack_toml

    pack = tmp_path / BUILTIN_PACK
    pack.mkdir()
    (pack / "pack.toml").write_text(pack_toml(BUILTIN_PACK))
    with pytest.raises(RulesError, match="reserved for the kiosk's own checks"):
        read_pack(pack)
