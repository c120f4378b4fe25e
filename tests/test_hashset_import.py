"""Hash-set source readers on real files built here: every format, its quirks, its bad input."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from kiosk.errors import HashSetError
from kiosk.hashsets import records as hashset_records
from kiosk.hashsets.formats import Source, detect_format, read_source
from kiosk.hashsets.nsrl_vics import load_category_map
from kiosk.hashsets.records import Context

# The synthetic files of the reference note: "synthetic sample one\n", "… two\n", and empty.
ONE = b"synthetic sample one\n"
TWO = b"synthetic sample two\n"


def h(algorithm: str, data: bytes) -> bytes:
    return hashlib.new(algorithm, data).digest()


def read(
    path: Path, fmt: str | None = None, **ctx_kw: Any
) -> tuple[Source, dict[str, set[bytes]], list[tuple[bytes, str | None, dict[str, Any]]], Context]:
    """Everything a source yields: digests by algorithm, property rows, and the counts."""
    ctx = Context(**ctx_kw)
    source, batches = read_source(path, fmt, ctx)
    digests: dict[str, set[bytes]] = {"md5": set(), "sha1": set(), "sha256": set()}
    props = []
    for batch in batches:
        for algorithm, items in batch.digests.items():
            if not items:  # a batch has a list for every kind a store holds (PDQ too)
                continue
            width = hashset_records.STORED_WIDTH[algorithm]
            found = digests.setdefault(algorithm, set())
            for item in items:  # an item may hold several digests back to back
                assert len(item) % width == 0
                found.update(item[i : i + width] for i in range(0, len(item), width))
        props += [(d, c, json.loads(p)) for d, c, p in batch.props]
    return source, digests, props, ctx


# --------------------------------------------------------------------------- plain lists


def test_plain_list_takes_every_algorithm_case_crlf_bom_comments_and_drops_the_empty_file(
    tmp_path: Path,
) -> None:
    src = tmp_path / "list.txt"
    src.write_bytes(
        b"\xef\xbb\xbf# exported by a lab tool\r\n"
        + h("sha256", ONE).hex().upper().encode()
        + b"\r\n\r\n"
        + h("sha1", ONE).hex().encode()
        + b"\n"
        + h("md5", TWO).hex().encode()
        + b"\n"
        + hashlib.sha256(b"").hexdigest().encode()
        + b"\n"
        + h("sha256", ONE).hex().encode()  # a duplicate: kept here, merged by the store
    )
    source, digests, props, ctx = read(src)
    assert source.format == "plain"
    assert digests == {
        "md5": {h("md5", TWO)},
        "sha1": {h("sha1", ONE)},
        "sha256": {h("sha256", ONE)},
    }
    assert props == []
    assert (ctx.stats.records, ctx.stats.excluded_empty_file) == (4, 1)


def test_plain_list_with_an_xways_header_line(tmp_path: Path) -> None:
    src = tmp_path / "xways.txt"
    src.write_text(f"SHA-256\n{h('sha256', ONE).hex()}\n")
    assert read(src)[1]["sha256"] == {h("sha256", ONE)}


def test_plain_fast_blocks_give_the_same_digests_and_true_line_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks of uniform lines are decoded whole; an odd block is read line by line."""
    monkeypatch.setattr(hashset_records, "BLOCK", 65 * 7)  # 7 lines a block
    digests = [hashlib.sha256(b"%d" % i).digest() for i in range(100)]
    lines = [d.hex() for d in digests]
    lines[50] = "# a comment in the middle"
    src = tmp_path / "big.txt"
    src.write_text("\n".join(lines) + "\n")
    _, got, _, ctx = read(src)
    assert got["sha256"] == set(digests) - {digests[50]}
    assert ctx.stats.records == 99
    lines[83] = lines[83][:-1]  # 63 characters on line 84
    src.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        HashSetError, match=r"big\.txt line 84: not an MD5, SHA-1 or SHA-256 digest \(63"
    ):
        read(src)


def test_plain_fast_blocks_still_drop_the_empty_file_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hashset_records, "BLOCK", 65 * 4)
    digests = [hashlib.sha256(b"%d" % i).digest() for i in range(12)] + [hashlib.sha256().digest()]
    src = tmp_path / "l.txt"
    src.write_text("".join(d.hex() + "\n" for d in digests))
    _, got, _, ctx = read(src)
    assert got["sha256"] == set(digests[:-1])
    assert ctx.stats.excluded_empty_file == 1


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("abc", "not an MD5, SHA-1 or SHA-256 digest (3 characters)"),
        ("g" * 64, "not an MD5, SHA-1 or SHA-256 digest (64 characters)"),
        ("a" * 62, "not an MD5, SHA-1 or SHA-256 digest (62 characters)"),
    ],
)
def test_plain_malformed_line_names_file_and_line(tmp_path: Path, line: str, why: str) -> None:
    src = tmp_path / "bad.txt"
    src.write_text(f"{h('md5', ONE).hex()}\n{line}\n")
    with pytest.raises(HashSetError, match=r"bad\.txt line 2: " + re.escape(why)):
        read(src, "plain")


def test_skip_invalid_counts_instead_of_failing(tmp_path: Path) -> None:
    src = tmp_path / "bad.txt"
    src.write_text(f"{h('md5', ONE).hex()}\nnope\n{h('md5', TWO).hex()}\nzz\n")
    _, digests, _, ctx = read(src, "plain", skip_invalid=True)
    assert digests["md5"] == {h("md5", ONE), h("md5", TWO)}
    assert ctx.stats.skipped_invalid == 2
    assert ctx.stats.first_invalid is not None
    assert "line 2" in ctx.stats.first_invalid


def test_binary_junk_is_refused_whether_detected_or_forced(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 1000)
    with pytest.raises(HashSetError, match="binary data of no known hash-set format"):
        detect_format(junk)
    with pytest.raises(HashSetError, match=r"junk\.bin line 1: "):
        read(junk, "plain")
    endless = tmp_path / "endless.bin"
    endless.write_bytes(b"a" * 200_000)  # no newline at all: not read whole
    with pytest.raises(HashSetError, match=r"line 1: longer than 65536 bytes"):
        read(endless, "plain")


# --------------------------------------------------------------------------- sums, LOKI, hashdeep


def test_sha256sum_gnu_binary_escaped_and_bsd_lines(tmp_path: Path) -> None:
    src = tmp_path / "SHA256SUMS"
    src.write_text(
        f"{h('sha256', ONE).hex()}  sample_one.txt\n"
        f"{h('sha256', TWO).hex()} *dir/sample two.bin\n"
        f"\\{h('md5', ONE).hex()}  back\\\\slash\\nnewline\n"
        f"SHA1 (name (1).txt) = {h('sha1', TWO).hex()}\n"
    )
    source, digests, props, _ = read(src)
    assert source.format == "sums"
    assert digests == {
        "md5": {h("md5", ONE)},
        "sha1": {h("sha1", TWO)},
        "sha256": {h("sha256", ONE), h("sha256", TWO)},
    }
    names = {d: p["file_name"] for d, _, p in props}
    assert names[h("sha256", TWO)] == "dir/sample two.bin"
    assert names[h("md5", ONE)] == "back\\slash\nnewline"
    assert names[h("sha1", TWO)] == "name (1).txt"


def test_sums_wrong_length_is_an_error_with_the_line(tmp_path: Path) -> None:
    src = tmp_path / "sums.txt"
    src.write_text(f"{h('sha256', ONE).hex()}  a\n{h('sha256', ONE).hex()[:-2]}  b\n")
    with pytest.raises(HashSetError, match=r"sums\.txt line 2: not an MD5, SHA-1 or SHA-256"):
        read(src, "sums")


def test_loki_ioc_file_with_scores_comments_and_mixed_algorithms(tmp_path: Path) -> None:
    src = tmp_path / "hash-iocs.txt"
    src.write_text(
        "# LOKI hash IOCs\n\n"
        f"{h('md5', ONE).hex()};Demo dropper; the first\n"
        f"{h('sha256', TWO).hex()};80;Demo implant\n"
    )
    source, digests, props, _ = read(src)
    assert source.format == "loki"
    assert digests["md5"] == {h("md5", ONE)}
    assert digests["sha256"] == {h("sha256", TWO)}
    by = {d: p for d, _, p in props}
    assert by[h("md5", ONE)] == {"description": "Demo dropper; the first"}
    assert by[h("sha256", TWO)] == {"description": "Demo implant", "score": 80}


def test_hashdeep_columns_comments_and_commas_in_names(tmp_path: Path) -> None:
    src = tmp_path / "known.hashdeep"
    src.write_text(
        "%%%% HASHDEEP-1.0\n"
        "%%%% size,md5,sha256,filename\n"
        "## Invoked from: /cases/demo\n"
        "## $ hashdeep -c md5,sha256 -r evidence\n"
        "##\n"
        f"21,{h('md5', ONE).hex()},{h('sha256', ONE).hex()},evidence/one, with comma.txt\n"
        f"0,{h('md5', b'').hex()},{h('sha256', b'').hex()},evidence/empty.bin\n"
    )
    source, digests, props, ctx = read(src)
    assert source.format == "hashdeep"
    assert source.info["columns"] == ["size", "md5", "sha256", "filename"]
    assert digests["md5"] == {h("md5", ONE)}
    assert digests["sha256"] == {h("sha256", ONE)}
    assert {p["file_name"] for _, _, p in props} == {"evidence/one, with comma.txt"}
    assert ctx.stats.excluded_empty_file == 1


def test_hashdeep_without_its_header_or_with_a_bad_digest(tmp_path: Path) -> None:
    src = tmp_path / "x.hashdeep"
    src.write_text("%%%% HASHDEEP-1.0\n21,abc,def,name\n")
    with pytest.raises(HashSetError, match=r"line 2: a record before the '%%%% size"):
        read(src, "hashdeep")
    src.write_text(f"%%%% HASHDEEP-1.0\n%%%% size,md5,filename\n21,{h('sha1', ONE).hex()},n\n")
    with pytest.raises(HashSetError, match=r"line 3: not an MD5 digest \(40 characters\)"):
        read(src, "hashdeep")


# --------------------------------------------------------------------------- NSRL


def test_legacy_nsrl_csv(tmp_path: Path) -> None:
    src = tmp_path / "NSRLFile.txt"
    src.write_bytes(
        b'"SHA-1","MD5","CRC32","FileName","FileSize","ProductCode","OpSystemCode","SpecialCode"\r\n'
        + f'"{h("sha1", ONE).hex().upper()}","{h("md5", ONE).hex().upper()}","9FF2E26A",'.encode()
        + b'"sample, \xe9one.txt",21,900001,"TBD",""\r\n'
    )
    source, digests, props, _ = read(src)
    assert source.format == "nsrl-csv"
    assert digests == {"md5": {h("md5", ONE)}, "sha1": {h("sha1", ONE)}, "sha256": set()}
    p = props[0][2]
    assert (p["file_size"], p["product_code"], p["op_system_code"]) == (21, 900001, "TBD")
    assert p["file_name"] == "sample, \udce9one.txt"  # not UTF-8: kept, not lost


def test_legacy_nsrl_csv_bad_row(tmp_path: Path) -> None:
    src = tmp_path / "NSRLFile.txt"
    src.write_text(
        '"SHA-1","MD5","CRC32","FileName","FileSize","ProductCode","OpSystemCode","SpecialCode"\n'
        '"XYZ","00","0","n",1,1,"x",""\n'
    )
    with pytest.raises(HashSetError, match=r"NSRLFile\.txt line 2: not a SHA-1 digest"):
        read(src)


def make_rds3(path: Path, rows: list[tuple[bytes, str, int]]) -> None:
    """An RDSv3-shaped database: METADATA and PACKAGE_OBJECT tables, FILE and PKG views.

    Column names and the FILE view follow NIST's RDSv3 schema (hex in METADATA, ``UPPER()`` and
    ``'.' || extension`` in the view); no index on the hash columns, as published.
    """
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE METADATA(metadata_id INTEGER PRIMARY KEY, object_id INTEGER, key_hash TEXT,
            image_hash TEXT, path TEXT, file_name TEXT, extension TEXT, bytes INTEGER,
            mtime INTEGER, used_in_rds INTEGER, update_date TEXT, recursion_level INTEGER,
            extractee_id INTEGER, crc32 TEXT, md5 TEXT, sha1 TEXT, sha256 TEXT);
        CREATE TABLE PACKAGE_OBJECT(package_object_id INTEGER PRIMARY KEY, package_id INTEGER,
            object_id INTEGER);
        CREATE TABLE APPLICATION(application_id INTEGER PRIMARY KEY, package_id INTEGER,
            name TEXT, version TEXT);
        CREATE TABLE VERSION(version TEXT, build_set TEXT, build_date TEXT, release_date TEXT,
            description TEXT);
        CREATE VIEW FILE AS SELECT UPPER(m.sha256) AS sha256, UPPER(m.sha1) AS sha1,
            UPPER(m.md5) AS md5, m.file_name || '.' || m.extension AS file_name,
            m.bytes AS file_size, po.package_id AS package_id
            FROM METADATA m JOIN PACKAGE_OBJECT po ON m.object_id = po.object_id;
        CREATE VIEW PKG AS SELECT package_id, name, version FROM APPLICATION;
        INSERT INTO VERSION VALUES ('2026.03.1', 'modern', '2026-03-01', '2026-03-15', 'test');
        INSERT INTO APPLICATION VALUES (1, 900001, 'Demo Suite', '1.0');
        """
    )
    for i, (data, name, package) in enumerate(rows, 1):
        stem, _, ext = name.rpartition(".")
        db.execute(
            "INSERT INTO METADATA(metadata_id, object_id, file_name, extension, bytes, md5, sha1,"
            " sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                i,
                i,
                stem,
                ext,
                len(data),
                *(hashlib.new(a, data).hexdigest() for a in ("md5", "sha1", "sha256")),
            ),
        )
        db.execute("INSERT INTO PACKAGE_OBJECT VALUES (?, ?, ?)", (i, package, i))
    db.commit()
    db.close()


def test_nsrl_rds3_database_through_its_file_view(tmp_path: Path) -> None:
    src = tmp_path / "RDS_2026.03.1_modern_minimal.db"
    make_rds3(src, [(ONE, "sample_one.txt", 900001), (TWO, "sample_two.dll", 900002)])
    source, digests, props, ctx = read(src)
    assert source.format == "nsrl-rds3"
    assert source.info["table"] == "FILE"
    assert source.info["nsrl_version"]["version"] == "2026.03.1"
    assert digests["sha256"] == {h("sha256", ONE), h("sha256", TWO)}
    assert digests["md5"] == {h("md5", ONE), h("md5", TWO)}
    by = {d: p for d, _, p in props}
    assert by[h("sha1", ONE)] == {
        "file_name": "sample_one.txt",
        "file_size": 21,
        "package_id": 900001,
        "product": "Demo Suite 1.0",
    }
    assert "product" not in by[h("sha1", TWO)]  # no such package: nothing invented
    assert ctx.stats.records == 2


def test_nsrl_rds3_bad_hash_and_corrupt_or_foreign_database(tmp_path: Path) -> None:
    src = tmp_path / "rds.db"
    make_rds3(src, [(ONE, "a.txt", 1)])
    db = sqlite3.connect(src)
    db.execute("UPDATE METADATA SET sha1 = 'ABC'")
    db.commit()
    db.close()
    with pytest.raises(HashSetError, match=r"rds\.db FILE row 1: not a SHA-1 digest \(3"):
        read(src)
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(src.read_bytes()[:100] + b"\xff" * 4000)
    with pytest.raises(HashSetError, match=r"corrupt\.db: not a readable SQLite database"):
        read(corrupt)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t(x)").connection.close()
    with pytest.raises(HashSetError, match="not an NSRL RDSv3 database"):
        read(other, "nsrl-rds3")


# --------------------------------------------------------------------------- VICS


def vics_media(data: bytes, category: int | None, media_id: int) -> dict[str, Any]:
    return {
        "MediaID": media_id,
        "Category": category,
        "MD5": h("md5", data).hex().upper(),
        "SHA1": h("sha1", data).hex().upper(),
        "MediaSize": len(data),
        "DateUpdated": "2025-01-01T00:00:00.000Z",
        "IsPrecategorized": "true",
    }


def write_vics(path: Path, version: str, media: list[dict[str, Any]], shape: str = "Media") -> None:
    if version == "1":
        head = {"odata.metadata": f"http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#{shape}"}
    else:
        url = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata"
        head = {"@odata.context": f"{url}#{shape}"}
    value: list[dict[str, Any]] = media if shape == "Media" else [{"CaseID": 1, "Media": media}]
    path.write_text("\ufeff" + json.dumps({**head, "value": value}), encoding="utf-8")


@pytest.mark.parametrize("version", ["1", "2"])
def test_vics_media_sets_with_a_category_map_keep_the_source_category(
    tmp_path: Path, version: str
) -> None:
    src = tmp_path / "vics.json"
    write_vics(src, version, [vics_media(ONE, 1, 10), vics_media(TWO, 0, 11)])
    cmap = {"1": "vics_category_1", "0": None}
    source, digests, props, ctx = read(src, category_map=cmap)
    assert source.format == "vics"
    assert (source.info["model"], source.info["shape"]) == (
        ("1.3", "Media") if version == "1" else ("2.0", "Media")
    )
    assert source.info["profile"] == (None if version == "1" else "US")
    assert digests["md5"] == {h("md5", ONE)}
    assert digests["sha1"] == {h("sha1", ONE)}
    assert {(c, p["vics_category"], p["media_id"]) for _, c, p in props} == {
        ("vics_category_1", 1, 10)
    }
    assert ctx.stats.excluded_by_category_map == 1


def test_vics_case_export_and_alternative_hashes(tmp_path: Path) -> None:
    src = tmp_path / "case.json"
    m = vics_media(ONE, 2, 1)
    m["AlternativeHashes"] = [
        {"HashName": "SHA256", "HashValue": h("sha256", ONE).hex()},
        {"HashName": "PhotoDNA", "HashValue": "AAAA"},
    ]
    write_vics(src, "2", [m], shape="Cases")
    source, digests, props, _ = read(src)
    assert source.info["shape"] == "Cases"
    assert digests["sha256"] == {h("sha256", ONE)}
    assert {c for _, c, _ in props} == {None}  # no map: the category is kept verbatim only
    assert {p["vics_category"] for _, _, p in props} == {2}


def test_vics_bad_input(tmp_path: Path) -> None:
    src = tmp_path / "v.json"
    write_vics(src, "2", [vics_media(ONE, 3, 1), vics_media(TWO, 1, 2)])
    with pytest.raises(
        HashSetError, match=r"v\.json record 1: Category 3 is not in the category map"
    ):
        read(src, category_map={"1": "a"})
    full = src.read_bytes()
    src.write_bytes(full[: len(full) // 2])
    with pytest.raises(
        HashSetError,
        match=r"v\.json: truncated JSON \(after 0 records\): parse error: premature EOF$",
    ):
        read(src)
    src.write_text('{"@odata.context": "x#Media", "value": []}')
    with pytest.raises(HashSetError, match="not a VICS Media or Cases file"):
        read(src)
    src.write_text('{"value": []}')
    with pytest.raises(HashSetError, match=r"no odata\.metadata or @odata\.context"):
        read(src)
    m = vics_media(ONE, 1, 1)
    m["MD5"] = "12345"
    write_vics(src, "1", [m])
    with pytest.raises(HashSetError, match=r"record 1: not an MD5 digest \(5 characters\)"):
        read(src)


def test_category_map_file(tmp_path: Path) -> None:
    good = tmp_path / "map.json"
    good.write_text('{"0": null, "1": "csam_a", "null": "uncategorised"}')
    assert load_category_map(good) == {"0": None, "1": "csam_a", "null": "uncategorised"}
    good.write_text('{"1": 5}')
    with pytest.raises(HashSetError, match="must map to a label or null"):
        load_category_map(good)
    plain = tmp_path / "l.txt"
    plain.write_text(h("md5", ONE).hex() + "\n")
    with pytest.raises(HashSetError, match="applies to VICS JSON sources only"):
        read(plain, category_map={"1": "x"})


@pytest.mark.parametrize(
    ("content", "fmt"),
    [
        (b"SQLite format 3\x00" + b"\x00" * 100, "nsrl-rds3"),
        (b' \n{"odata.metadata": 1}', "vics"),
        (b"%%%% HASHDEEP-1.0\n", "hashdeep"),
        (b'"SHA-1","MD5","CRC32"\n', "nsrl-csv"),
        (b"# c\n" + b"a" * 32 + b";x\n", "loki"),
        (b"a" * 64 + b"  name\n", "sums"),
        (b"SHA256 (x) = " + b"a" * 64 + b"\n", "sums"),
        (b"SHA-1\n" + b"a" * 40 + b"\n", "plain"),
    ],
)
def test_format_detection(tmp_path: Path, content: bytes, fmt: str) -> None:
    src = tmp_path / "src"
    src.write_bytes(content)
    assert detect_format(src) == fmt


def test_undetectable_and_empty_sources(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_text("hello world\n")
    with pytest.raises(HashSetError, match="cannot tell its hash-set format: give --format"):
        detect_format(src)
    src.write_text("\n\n")
    with pytest.raises(HashSetError, match="empty"):
        detect_format(src)
