"""Hash sets verified page by page (issue 19 item 5, issue 13 item 1): what a scan checks is what
it reads, so loading costs the same for any size, and a page that is not the signed one fails the
run that reads it. Known-good sets keep digests only.

The oracle for "which page a lookup reads" is the pack's own layout, computed here from its
header and bucket table with ``struct`` — not through ``kiosk.hashsets.hpk``.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.engine.triage import TriageResult
from kiosk.errors import HashSetError, PageMismatch
from kiosk.hashsets.build import ImportRequest
from kiosk.hashsets.hpk import PAGE_SIZE
from kiosk.hashsets.index import HashIndex
from kiosk.hashsets.store import import_set, sign_set
from kiosk.model import Outcome, Recommendation
from kiosk.trust.signing import PUBLISHING, REPORT_SIGNING, Signer, init_key, load_signer
from tests.test_hashset_import import make_rds3
from tests.test_hashsets import KNOWN_BAD, digest_list, imported, trust_demo_publisher

Triage = Callable[..., TriageResult]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kiosk home of its own, whose key also publishes (it signs the tests' sets)."""
    h = tmp_path / "home"
    init_key(h, purposes=(REPORT_SIGNING, PUBLISHING))
    monkeypatch.setenv("KIOSK_HOME", str(h))
    return h


@pytest.fixture
def signer(home: Path) -> Signer:
    return load_signer(home / "keys" / "kiosk.key")


def _records(pack: Path, digest: bytes) -> tuple[int, int, int]:
    """(first byte of the digest records, first and end offset of ``digest``'s bucket), read
    from the header and bucket table as documented in ``hpk``."""
    data = pack.read_bytes()
    magic, width, bits, _, _ = struct.unpack_from("<8sBBB5xQ", data, 0)
    assert magic == b"KIOSKHP1"
    table = 64
    base = table + 8 * ((1 << bits) + 1)
    bucket = int.from_bytes(digest[:4], "big") >> (32 - bits)
    lo, hi = struct.unpack_from("<QQ", data, table + bucket * 8)
    return base, base + lo * width, base + hi * width


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _big_set(store: Path, src: Path, signer: Signer, extra: list[bytes]) -> Path:
    """A signed set of 20 000 random digests plus ``extra``: a pack of about ten pages."""
    rng = random.Random(7)
    digests = [rng.randbytes(32) for _ in range(20_000)] + extra
    vdir = imported(store, "lab", digest_list(src, digests), signer, version="1")
    assert (vdir / "sha256.hpk").stat().st_size > 8 * PAGE_SIZE
    return vdir


def test_a_set_loads_without_reading_its_pack_and_a_bad_page_is_caught_when_read(
    tmp_path: Path, home: Path, signer: Signer
) -> None:
    vdir = _big_set(tmp_path / "store", tmp_path / "l", signer, [])
    pack = vdir / "sha256.hpk"
    rng = random.Random(7)
    members = [rng.randbytes(32) for _ in range(20_000)]
    # a member whose records lie beyond page 1, so the load (header, table ends) never reads them
    target = next(d for d in members if _records(pack, d)[1] > 2 * PAGE_SIZE)
    _, start, _ = _records(pack, target)
    page = start // PAGE_SIZE
    elsewhere = next(
        d for d in members if _records(pack, d)[1] // PAGE_SIZE not in (page, page + 1)
    )
    assert (vdir / "sha256.hpk.pages").stat().st_size == -(-pack.stat().st_size // PAGE_SIZE) * 32
    _flip(pack, start)  # the first record of target's bucket
    with HashIndex.load(tmp_path / "store") as index:  # signature, manifest, page list: fine
        assert index.sets[0].signed_by == signer.keyid
        assert index.lookup({"sha256": elsewhere})  # pages it reads are the signed ones
        with pytest.raises(PageMismatch, match=rf"page {page} does not match its signed digest"):
            index.lookup({"sha256": target})


def test_a_scan_that_reads_a_bad_page_fails_instead_of_missing_a_known_bad_file(
    tmp_path: Path, home: Path, signer: Signer, triage: Triage
) -> None:
    """The known-bad sample's bucket is corrupted (not its own digest): without the page check
    the lookup would answer from bytes nobody signed."""
    trust_demo_publisher(home)
    target = bytes.fromhex(KNOWN_BAD)
    vdir = _big_set(tmp_path / "store", tmp_path / "l", signer, [target])
    good = triage("ext4.dd", hashsets_dir=tmp_path / "store", out_dir=tmp_path / "ok", workers=2)
    assert good.report.outcome.status is Outcome.COMPLETE
    assert any(m.hashset == "lab" for f in good.report.findings for m in f.known_bad)
    pack = vdir / "sha256.hpk"
    _, start, end = _records(pack, target)
    at = next(off for off in range(start, end, 32) if pack.read_bytes()[off : off + 32] != target)
    _flip(pack, at)
    for workers in (0, 2):
        bad = triage(
            "ext4.dd",
            hashsets_dir=tmp_path / "store",
            out_dir=tmp_path / f"w{workers}",
            workers=workers,
        )
        outcome = bad.report.outcome
        assert outcome.status is Outcome.FAILED
        assert f"page {at // PAGE_SIZE} does not match its signed digest" in (outcome.reason or "")
        rec = bad.report.recommendation  # never "no matches": the run says it did not finish
        assert rec.result is not Recommendation.NO_MATCHES
        assert any("did not complete (failed)" in r for r in rec.reasons)


def test_signing_refuses_a_page_list_that_does_not_match_its_pack(
    tmp_path: Path, home: Path, signer: Signer
) -> None:
    vdir = imported(tmp_path / "store", "lab", digest_list(tmp_path / "l", [b"\x01" * 32]), None)
    pages = vdir / "sha256.hpk.pages"
    manifest = json.loads((vdir / "manifest.json").read_text())
    data = bytearray(pages.read_bytes())
    data[0] ^= 1
    pages.write_bytes(bytes(data))
    entry = manifest["algorithms"]["sha256"]["pages"]
    entry["sha256"] = hashlib.sha256(data).hexdigest()  # consistent with the manifest, not the pack
    (vdir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(HashSetError, match=r"the page list of sha256\.hpk does not match it"):
        sign_set(tmp_path / "store", "lab", signer)


def test_a_known_good_set_keeps_digests_only_unless_asked(tmp_path: Path, home: Path) -> None:
    """NSRL-style sources carry a file name and product per row; a known-good set needs only the
    digests, so by default no property table is built (import time and size per million rows:
    bench/hashsets.md). Known-bad sets keep theirs; ``keep_properties`` keeps them anyway."""
    rows = [(b"content %d" % i, f"file{i}.dll", 900001) for i in range(50)]
    src = tmp_path / "rds.db"
    make_rds3(src, rows)
    store = tmp_path / "store"
    good = import_set(store, ImportRequest("os", (src,), "known_good")).version_dir
    assert not (good / "props.sqlite").exists()
    assert json.loads((good / "manifest.json").read_text())["properties"] is None
    kept = import_set(
        store, ImportRequest("os-named", (src,), "known_good", keep_properties=True)
    ).version_dir
    with sqlite3.connect(kept / "props.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM props").fetchone()[0] >= 50
    bad = import_set(store, ImportRequest("bad", (src,), "known_bad")).version_dir
    assert (bad / "props.sqlite").exists()
    third = hashlib.sha256(rows[3][0]).digest()
    with HashIndex.load(store, dev=True) as index:
        hits = index.lookup({"sha256": third})
        assert {h.hashset for h in hits} == {"os", "os-named", "bad"}
        assert index.properties("os", third) == []
        assert index.properties("os-named", third)[0]["file_name"] == "file3.dll"


def _rds_rows(path: Path, rows: list[tuple[str | None, str | None, str | None]]) -> None:
    """Hash columns as given (None: NULL), beside make_rds3's schema."""
    make_rds3(path, [])
    with sqlite3.connect(path) as db:
        for i, (md5, sha1, sha256) in enumerate(rows, 1):
            db.execute(
                "INSERT INTO METADATA(metadata_id, object_id, file_name, extension, bytes, md5,"
                " sha1, sha256) VALUES (?, ?, 'f', 'dll', 1, ?, ?, ?)",
                (i, i, md5, sha1, sha256),
            )
            db.execute("INSERT INTO PACKAGE_OBJECT VALUES (?, 900001, ?)", (i, i))


def test_a_digests_only_rds_import_keeps_the_strongest_digest_of_every_row(
    tmp_path: Path, home: Path
) -> None:
    """Oracle: the source's own columns, read with sqlite3. A row with SHA-256 is kept by it
    alone; a row without falls back to SHA-1, then MD5; the empty file's digest is dropped."""
    rng = random.Random(5)
    full = [
        (rng.randbytes(16).hex(), rng.randbytes(20).hex(), rng.randbytes(32).hex())
        for _ in range(300)
    ]
    no_sha256 = (rng.randbytes(16).hex(), rng.randbytes(20).hex().upper(), None)
    md5_only = (rng.randbytes(16).hex(), "", None)
    empty = (None, None, hashlib.sha256(b"").hexdigest())
    src = tmp_path / "rds.db"
    _rds_rows(src, [*full, no_sha256, md5_only, empty])
    result = import_set(tmp_path / "store", ImportRequest("os", (src,), "known_good"))
    manifest = result.manifest
    assert {a: e["count"] for a, e in manifest["algorithms"].items()} == {
        "sha256": 300,
        "sha1": 1,
        "md5": 1,
    }
    assert manifest["stats"]["excluded_empty_file"] == 1
    assert manifest["stats"]["records"] == 302
    with HashIndex.load(tmp_path / "store", dev=True) as index:
        for md5, sha1, sha256 in full:
            assert index.lookup({"sha256": bytes.fromhex(sha256)})
            assert not index.lookup({"sha1": bytes.fromhex(sha1), "md5": bytes.fromhex(md5)})
        assert index.lookup({"sha1": bytes.fromhex(no_sha256[1])})
        assert index.lookup({"md5": bytes.fromhex(md5_only[0])})
        assert not index.lookup({"sha256": hashlib.sha256(b"").digest()})


def test_a_bad_digest_in_a_digests_only_rds_import_is_named_by_its_row(
    tmp_path: Path, home: Path
) -> None:
    src = tmp_path / "rds.db"
    good = hashlib.sha256(b"x").hexdigest()
    _rds_rows(src, [(None, None, good), (None, None, "zz" * 32), (None, None, good[:-2])])
    with pytest.raises(HashSetError, match=r"METADATA row 2: not a SHA-256 digest"):
        import_set(tmp_path / "store", ImportRequest("os", (src,), "known_good"))
    kept = import_set(
        tmp_path / "store", ImportRequest("os", (src,), "known_good", skip_invalid=True)
    ).manifest
    assert kept["stats"]["skipped_invalid"] == 2
    assert kept["algorithms"]["sha256"]["count"] == 1
