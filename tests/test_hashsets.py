"""The hash-set store: build, look up, atomic import, signing, refusal, dev mode, scan, CLI."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.engine.triage import TriageResult
from kiosk.errors import HashSetError
from kiosk.hashsets.build import ImportRequest, sort_unique
from kiosk.hashsets.hpk import Pack
from kiosk.hashsets.index import HashIndex
from kiosk.hashsets.store import import_set, remove_set, sign_set
from kiosk.model import FileStatus, HashMatch, Outcome, Recommendation
from kiosk.trust.audit import AuditLog, Checkpoint
from kiosk.trust.signing import (
    PUBLISHING,
    REPORT_SIGNING,
    REVIEWING,
    Signer,
    TrustStore,
    init_key,
    key_id,
    load_public,
    load_signer,
)
from tests.conftest import DEMO_PUBLISHER, HASHSETS, IMAGES, RULES, SAMPLES, TEST_CAP, fixed_hooks
from tests.test_hashset_import import make_rds3, vics_media, write_vics

Triage = Callable[..., TriageResult]
KNOWN_BAD = next(f["sha256"] for f in IMAGES["ext4.dd"]["files"] if f["kind"] == "known_bad")
KNOWN_GOOD = next(f["sha256"] for f in IMAGES["ext4.dd"]["files"] if f["kind"] == "known_good")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh kiosk home of its own (key, trust store, hashset-versions.json, audit log)."""
    h = tmp_path / "home"
    init_key(h, purposes=(REPORT_SIGNING, REVIEWING, PUBLISHING))  # it signs the tests' sets
    monkeypatch.setenv("KIOSK_HOME", str(h))
    return h


def trust_demo_publisher(home: Path) -> None:
    """Scans also load the bundled rule packs, which the demo publisher signed."""
    trust = TrustStore.load(home / "trust.json")
    trust.add(load_public(DEMO_PUBLISHER.read_text()), label="kiosk project demo publisher")
    trust.save(home / "trust.json")


@pytest.fixture
def signer(home: Path) -> Signer:
    return load_signer(home / "keys" / "kiosk.key")


def md5(data: bytes) -> bytes:
    return hashlib.new("md5", data).digest()  # noqa: S324 - a forensic identity, not security


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def digest_list(path: Path, digests: list[bytes]) -> Path:
    path.write_text("".join(d.hex() + "\n" for d in digests))
    return path


def events(home: Path) -> list[dict[str, object]]:
    lines = (home / "audit.jsonl").read_text().splitlines()
    return [json.loads(line)["event"] for line in lines]


def imported(store: Path, name: str, src: Path, signer: Signer | None, **kw: object) -> Path:
    kw.setdefault("disposition", "known_bad")
    result = import_set(store, ImportRequest(name, (src,), **kw))  # type: ignore[arg-type]
    if signer:
        sign_set(store, name, signer)
    return result.version_dir


# --------------------------------------------------------------------------- the pack


def test_lookups_find_every_member_and_nothing_else(
    tmp_path: Path, home: Path, signer: Signer
) -> None:
    rnd = random.Random(5)
    members = [rnd.randbytes(32) for _ in range(20_000)]
    src = digest_list(tmp_path / "l.txt", members + members[:100])  # duplicates merged
    vdir = imported(tmp_path / "store", "big", src, signer, version="1")
    manifest = json.loads((vdir / "manifest.json").read_text())
    assert manifest["algorithms"]["sha256"]["count"] == 20_000
    assert manifest["algorithms"]["sha256"]["duplicates_merged"] == 100
    pack = Pack(vdir / "sha256.hpk", 32)
    try:
        assert all(d in pack for d in members)
        others = [rnd.randbytes(32) for _ in range(20_000)]
        assert not any(d in pack for d in others)
        near = [m[:-1] + bytes([m[-1] ^ 1]) for m in members[:2000]]  # one bit off
        assert not any(d in pack for d in near)
        assert members[0][:16] not in pack  # wrong width: never a match
    finally:
        pack.close()


def test_sort_unique_handles_digests_sharing_their_first_eight_bytes() -> None:
    rnd = random.Random(1)
    prefix = rnd.randbytes(8)
    rows = [prefix + rnd.randbytes(24) for _ in range(50)] + [rnd.randbytes(32) for _ in range(50)]
    rows += rows[:10]
    rnd.shuffle(rows)
    rec = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, 32)
    out = [bytes(r) for r in sort_unique(rec)]
    assert out == sorted(set(rows))


def test_a_truncated_pack_is_refused(tmp_path: Path, home: Path) -> None:
    vdir = imported(tmp_path / "s", "t", digest_list(tmp_path / "l", [b"\x01" * 32]), None)
    data = (vdir / "sha256.hpk").read_bytes()
    (vdir / "sha256.hpk").write_bytes(data[:-1])
    with pytest.raises(HashSetError, match="bytes where its header implies"):
        Pack(vdir / "sha256.hpk", 32)


# --------------------------------------------------------------------------- import


def test_multi_algorithm_set_matches_any_digest_and_names_the_strongest(
    tmp_path: Path, home: Path, signer: Signer
) -> None:
    src = tmp_path / "known.hashdeep"
    one, two = b"synthetic sample one\n", b"synthetic sample two\n"
    src.write_text(
        "%%%% HASHDEEP-1.0\n%%%% size,md5,sha256,filename\n"
        f"21,{md5(one).hex()},{sha256(one).hex()},one.txt\n"
        f"21,{md5(two).hex()},{sha256(two).hex()},two.txt\n"
    )
    store = tmp_path / "store"
    imported(store, "hd", src, signer, category="demo_tools")
    with HashIndex.load(store) as index:
        (s,) = index.sets
        assert (s.algorithm, s.algorithms, s.count) == ("sha256+md5", ("sha256", "md5"), 2)
        full = {"md5": md5(one), "sha256": sha256(one)}
        (hit,) = index.lookup(full)
        assert (hit.algorithm, hit.category, hit.disposition) == (
            "sha256",
            "demo_tools",
            "known_bad",
        )
        (hit,) = index.lookup({"md5": md5(two), "sha256": b"\0" * 32})
        assert hit.algorithm == "md5"
        assert index.properties("hd", md5(two)) == [{"file_name": "two.txt", "size": 21}]


def test_a_failed_import_leaves_the_active_version_working(
    tmp_path: Path, home: Path, signer: Signer
) -> None:
    store = tmp_path / "store"
    good = digest_list(tmp_path / "v1.txt", [b"\x11" * 32])
    imported(store, "s", good, signer, version="1")
    bad = tmp_path / "v2.txt"
    bad.write_text(("22" * 32 + "\n") * 1000 + "not-a-digest\n")
    with pytest.raises(HashSetError, match=r"v2\.txt line 1001"):
        import_set(store, ImportRequest("s", (bad,), "known_bad", version="2"))
    assert sorted(p.name for p in store.iterdir()) == ["s"]  # no .build-* left
    killed = store / ".build-s-deadbeef"  # what an import killed with SIGKILL leaves
    (killed / "2").mkdir(parents=True)
    (killed / "2" / "sha256.hpk").write_bytes(b"half")
    assert sorted(p.name for p in (store / "s").iterdir()) == ["1", "current"]
    with HashIndex.load(store) as index:
        assert [(s.version, bool(index.lookup({"sha256": b"\x11" * 32}))) for s in index.sets] == [
            ("1", True)
        ]
    empty = digest_list(tmp_path / "e", [])
    with pytest.raises(HashSetError, match="no usable digests"):  # a new set: nothing appears
        import_set(store, ImportRequest("new", (empty,), "known_bad", format="plain"))
    assert not (store / "new").exists()
    assert not killed.exists()  # the next import cleans up what a killed one left


def test_versions_only_go_up_and_the_old_version_is_replaced(tmp_path: Path, home: Path) -> None:
    store = tmp_path / "store"
    src = digest_list(tmp_path / "l.txt", [b"\x01" * 20])
    imported(store, "s", src, None, version="1.9")
    with pytest.raises(HashSetError, match=r"version 1\.9 is not newer than the active 1\.9"):
        import_set(store, ImportRequest("s", (src,), "known_bad", version="1.9"))
    result = import_set(store, ImportRequest("s", (src,), "known_good", version="1.10"))
    assert result.replaced == ("1.9",)
    assert (store / "s" / "current").read_text() == "1.10\n"
    with pytest.raises(HashSetError, match=r"hash set name '\.\./x'"):
        import_set(store, ImportRequest("../x", (src,), "known_bad"))


# --------------------------------------------------------------------------- trust


def test_production_refuses_an_unsigned_set_and_dev_mode_takes_it_logged(
    tmp_path: Path, home: Path
) -> None:
    store = tmp_path / "store"
    imported(store, "unsigned-set", digest_list(tmp_path / "l", [b"\x05" * 32]), None, version="3")
    with pytest.raises(HashSetError, match=r"^hash set unsigned-set 3 refused: unsigned"):
        HashIndex.load(store)
    with HashIndex.load(store, dev=True, audit=AuditLog(home / "audit.jsonl")) as index:
        (s,) = index.sets
        assert s.signed_by is None
        assert s.dev_override[0].startswith("unsigned")
        assert index.lookup({"sha256": b"\x05" * 32})
    kinds = [e["kind"] for e in events(home)]
    assert kinds[-2:] == ["hashsets_dev_mode", "hashset_loaded"]
    assert events(home)[-1]["dev_override"] == list(s.dev_override)
    assert not (home / "hashset-versions.json").exists()  # an unverified set never raises the bar


@pytest.mark.parametrize("victim", ["sha256.hpk", "manifest.json"])
def test_one_changed_byte_in_a_signed_set_is_refused(
    tmp_path: Path, home: Path, signer: Signer, victim: str
) -> None:
    store = tmp_path / "store"
    src = digest_list(tmp_path / "l", [b"\x07" * 32])
    vdir = imported(store, "signed", src, signer, version="1", description="lab set")
    with HashIndex.load(store) as index:
        assert index.sets[0].signed_by == signer.keyid
    data = bytearray((vdir / victim).read_bytes())
    at = data.index(b"lab set") if victim == "manifest.json" else len(data) - 2
    data[at] ^= 0x01  # still valid JSON, still a well-formed pack: only the signature can tell
    (vdir / victim).write_bytes(bytes(data))
    with pytest.raises(HashSetError, match=rf"hash set signed 1 refused: .*{victim}.*tampered"):
        HashIndex.load(store)


def test_untrusted_key_expired_and_foreign_signatures_are_refused(
    tmp_path: Path, home: Path, signer: Signer
) -> None:
    store = tmp_path / "store"
    src = digest_list(tmp_path / "l", [b"\x08" * 32])
    imported(store, "s", src, None, version="1")
    stranger = Ed25519PrivateKey.generate()
    sign_set(store, "s", Signer(stranger, key_id(stranger.public_key())))
    with pytest.raises(HashSetError, match="refused: signature: signed by an unknown key"):
        HashIndex.load(store)
    t0 = datetime.now(UTC)
    sign_set(store, "s", signer, expires=t0 + timedelta(days=1), clock=lambda: t0)
    with HashIndex.load(store):
        pass
    with pytest.raises(HashSetError, match=r"refused: version 1 expired at .*newly signed"):
        HashIndex.load(store, now=t0 + timedelta(days=2))
    # a valid signature of another set, copied over: names and files do not match
    imported(store, "other", src, signer, version="1")
    (store / "s" / "1" / "manifest.dsse.json").write_bytes(
        (store / "other" / "1" / "manifest.dsse.json").read_bytes()
    )
    with pytest.raises(HashSetError, match="refused: the signature is for other 1, not s 1"):
        HashIndex.load(store)


def test_the_demo_key_signs_the_bundled_sets_and_is_not_trusted_by_default(
    tmp_path: Path, home: Path
) -> None:
    """Production refusal is real: a fresh kiosk home does not trust the demo key."""
    with pytest.raises(HashSetError, match="refused: signature: signed by an unknown key"):
        HashIndex.load(HASHSETS)
    assert DEMO_PUBLISHER.exists()


def test_a_lower_version_than_one_used_here_is_refused(
    tmp_path: Path, home: Path, signer: Signer
) -> None:
    src = digest_list(tmp_path / "l", [b"\x09" * 32])
    newer, older = tmp_path / "newer", tmp_path / "older"
    imported(newer, "lab-bad", src, signer, version="2025.10.1")
    imported(older, "lab-bad", src, signer, version="2025.9.3")
    with HashIndex.load(older):
        pass  # nothing seen yet: fine, and now 2025.9.3 is recorded
    with HashIndex.load(newer):
        pass
    versions = json.loads((home / "hashset-versions.json").read_text())
    assert versions["sets"]["lab-bad"]["version"] == "2025.10.1"
    audit = AuditLog(home / "audit.jsonl")
    with pytest.raises(
        HashSetError, match=r"lab-bad 2025\.9\.3 refused: version 2025\.9\.3 is older"
    ):
        HashIndex.load(older, audit=audit)
    (refused,) = [e for e in events(home) if e["kind"] == "hashset_refused"]
    assert refused["reasons"] == [
        "version 2025.9.3 is older than version 2025.10.1, already used on this kiosk "
        "(downgrade refused)"
    ]


def test_workers_accept_only_what_the_parent_verified(
    tmp_path: Path, home: Path, signer: Signer
) -> None:
    store = tmp_path / "store"
    imported(store, "s", digest_list(tmp_path / "l", [b"\x0a" * 32]), signer, version="1")
    with HashIndex.load(store) as parent:
        sets = parent.sets
    with HashIndex.load(None, verified=sets) as worker:
        assert worker.lookup({"sha256": b"\x0a" * 32})
    imported(store, "s", digest_list(tmp_path / "l2", [b"\x0b" * 32]), signer, version="2")
    with pytest.raises(HashSetError, match="changed on disk after it was verified"):
        HashIndex.load(None, verified=sets)


def test_a_same_size_pack_swapped_in_after_verification_is_refused_by_workers(
    tmp_path: Path, home: Path, signer: Signer
) -> None:
    """The issue's swap, below the scan: a worker maps only the very file the parent hashed."""
    store, other = tmp_path / "store", tmp_path / "other"
    vdir = imported(store, "s", digest_list(tmp_path / "l", [b"\x0a" * 32]), signer, version="1")
    odir = imported(other, "s", digest_list(tmp_path / "o", [b"\x0b" * 32]), signer, version="1")
    assert (vdir / "sha256.hpk").stat().st_size == (odir / "sha256.hpk").stat().st_size
    with HashIndex.load(store) as parent:
        sets = parent.sets
        (odir / "sha256.hpk").replace(vdir / "sha256.hpk")
        assert parent.changed() == (
            "sha256.hpk of hash set s 1 changed on disk after it was verified (replaced or "
            "rewritten); its matches cannot be trusted"
        )
    with pytest.raises(HashSetError, match=r"sha256\.hpk of hash set s 1 changed on disk"):
        HashIndex.load(None, verified=sets)


def test_a_pack_rewritten_in_place_under_a_worker_is_noticed_when_the_scan_ends(
    tmp_path: Path, home: Path, signer: Signer
) -> None:
    store = tmp_path / "store"
    vdir = imported(store, "s", digest_list(tmp_path / "l", [b"\x0a" * 32]), signer, version="1")
    with HashIndex.load(store) as parent, HashIndex.load(None, verified=parent.sets) as worker:
        assert worker.changed() is None
        pack = vdir / "sha256.hpk"
        pack.chmod(0o644)
        with pack.open("r+b") as f:  # same inode, same size, new bytes
            f.seek(-32, os.SEEK_END)
            f.write(b"\x0b" * 32)
        assert worker.changed() is not None
        assert "sha256.hpk of hash set s 1 changed on disk" in str(parent.changed())


def test_remove(tmp_path: Path, home: Path) -> None:
    store = tmp_path / "store"
    imported(store, "gone", digest_list(tmp_path / "l", [b"\x0c" * 32]), None, version="4")
    assert remove_set(store, "gone") == "4"
    assert list(store.iterdir()) == []
    with pytest.raises(HashSetError, match="no hash set gone"):
        remove_set(store, "gone")


# --------------------------------------------------------------------------- the scan


def test_scan_reports_the_vics_category_of_a_planted_file_and_skips_yara_on_known_good(
    tmp_path: Path, home: Path, signer: Signer, triage: Triage
) -> None:
    store = tmp_path / "store"
    bad = tmp_path / "vics.json"
    media = vics_media(b"unrelated", 1, 7)
    listed = {
        "MediaID": 8,
        "Category": 2,
        "AlternativeHashes": [{"HashName": "SHA256", "HashValue": KNOWN_BAD}],
    }
    write_vics(bad, "2", [media, listed])
    cmap = tmp_path / "map.json"
    cmap.write_text('{"1": "vics_us_1", "2": "vics_us_2", "0": null}')
    imported(store, "vic", bad, signer, version="2026.1", category_map=cmap)
    good = tmp_path / "SHA256SUMS"
    good.write_text(f"{KNOWN_GOOD}  Windows/known_good_sample.txt\n")
    imported(store, "os-files", good, signer, version="1", disposition="known_good")
    trust_demo_publisher(home)  # the bundled rule packs are the demo publisher's

    result = triage("ext4.dd", hashsets_dir=store, hooks=fixed_hooks(), max_yara_bytes=TEST_CAP)
    report = result.report
    hash_findings = [f for f in report.findings if any(isinstance(m, HashMatch) for m in f.matches)]
    assert [(f.path, f.matches) for f in hash_findings] == [
        (
            "/Downloads/known_bad_sample.bin",
            (HashMatch("vic", "2026.1", "sha256", "known_bad", "vics_us_2"),),
        )
    ]
    inventory = [
        json.loads(line) for line in (result.report_dir / "files.jsonl").read_text().splitlines()
    ]
    good_file = next(r for r in inventory if r["path"] == "/Windows/known_good_sample.txt")
    assert good_file["status"] == FileStatus.KNOWN_GOOD.value
    assert [m["type"] for m in good_file["matches"]] == [
        "hashset"
    ]  # it carries the marker: no YARA
    assert {s.name: s.signed_by for s in report.hash_sets} == {
        "os-files": signer.keyid,
        "vic": signer.keyid,
    }
    loaded = [e for e in events(home) if e["kind"] == "hashset_loaded"]
    assert {e["name"] for e in loaded} == {"vic", "os-files"}
    audit_text = (home / "audit.jsonl").read_text()
    assert "known_bad_sample" not in audit_text
    assert "known_good_sample" not in audit_text


def test_a_tampered_set_stops_the_scan_before_the_evidence_is_touched(
    tmp_path: Path, home: Path, signer: Signer, triage: Triage
) -> None:
    trust_demo_publisher(home)
    store = tmp_path / "store"
    vdir = imported(
        store, "lab", digest_list(tmp_path / "l", [bytes.fromhex(KNOWN_BAD)]), signer, version="1"
    )
    data = bytearray((vdir / "sha256.hpk").read_bytes())
    data[100] ^= 0xFF
    (vdir / "sha256.hpk").write_bytes(bytes(data))
    with pytest.raises(HashSetError, match=r"hash set lab 1 refused: sha256\.hpk does not match"):
        triage("ext4.dd", hashsets_dir=store, out_dir=tmp_path / "reports")
    assert not (tmp_path / "reports").exists()
    assert [e["kind"] for e in events(home)][-2:] == ["hashset_refused", "knowledge_refused"]
    result = triage("ext4.dd", hashsets_dir=store, dev=True, out_dir=tmp_path / "dev-reports")
    (record,) = result.report.hash_sets
    assert record.signed_by is None
    assert any("does not match" in p for p in record.dev_override)


class _SwapWhenLoaded(AuditLog):
    """The audit log, and an attacker watching it: when it shows ``hashset_loaded``, a
    same-size ``sha256.hpk`` from another import is renamed over the verified one."""

    def __init__(self, path: Path, victim: Path, replacement: Path) -> None:
        super().__init__(path)
        self.victim, self.replacement = victim, replacement

    def append(self, kind: str, **fields: object) -> Checkpoint:
        checkpoint = super().append(kind, **fields)
        if kind == "hashset_loaded":
            self.replacement.replace(self.victim)  # os.replace: a rename over it
        return checkpoint


def test_a_set_swapped_during_a_scan_fails_the_run_instead_of_hiding_matches(
    tmp_path: Path, home: Path, signer: Signer, triage: Triage
) -> None:
    """Issue 13, attack 1: on the old code the workers mapped the swapped file, found nothing,
    and the report verified with the set named as signed."""
    trust_demo_publisher(home)
    store, other = tmp_path / "store", tmp_path / "other"
    bad = digest_list(tmp_path / "l", [bytes.fromhex(KNOWN_BAD)])
    vdir = imported(store, "lab", bad, signer, version="1")
    odir = imported(other, "lab", digest_list(tmp_path / "o", [b"\x0b" * 32]), signer, version="2")
    victim, replacement = vdir / "sha256.hpk", odir / "sha256.hpk"
    assert victim.stat().st_size == replacement.stat().st_size
    attacker = _SwapWhenLoaded(home / "audit.jsonl", victim, replacement)
    report = triage("ext4.dd", hashsets_dir=store, hooks=fixed_hooks(audit=attacker)).report
    assert report.outcome.status is Outcome.FAILED
    assert report.outcome.reason == (
        "a scan worker could not start: sha256.hpk of hash set lab 1 changed on disk after it "
        "was verified (replaced or rewritten); its matches cannot be trusted"
    )
    assert report.recommendation.result is Recommendation.INCONCLUSIVE  # never "no matches"


# --------------------------------------------------------------------------- the CLI


def kiosk(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    return subprocess.run(
        [sys.executable, "-m", "kiosk", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
        cwd=cwd,
    )


def test_cli_import_sign_list_info_lookup_remove(tmp_path: Path, home: Path) -> None:
    store = tmp_path / "store"
    rds = tmp_path / "RDS_2026.03.1_modern_minimal.db"
    make_rds3(rds, [(b"synthetic sample one\n", "sample_one.txt", 900001)])
    run = kiosk(
        "hashsets",
        "import",
        "nsrl",
        rds,
        "--disposition",
        "known_good",
        "--keep-properties",  # a known-good set keeps digests only unless asked
        "--version",
        "2026.03.1",
        "--hashsets",
        store,
    )
    assert run.returncode == 0, run.stderr
    assert "imported nsrl 2026.03.1 (known_good" in run.stdout
    assert "per-hash properties: 3 rows kept" in run.stdout  # one per digest
    assert "unsigned" in run.stdout
    run = kiosk("hashsets", "list", "--hashsets", store)
    assert "nsrl 2026.03.1" in run.stdout
    assert "REFUSED: unsigned" in run.stdout
    run = kiosk(
        "hashsets",
        "sign",
        "nsrl",
        "--key",
        home / "keys" / "kiosk.key",
        "--expires",
        "2099-01-01",
        "--hashsets",
        store,
    )
    assert run.returncode == 0, run.stderr
    run = kiosk("hashsets", "info", "nsrl", "--hashsets", store)
    assert "status:        trusted" in run.stdout
    assert "expires 2099-01-01T00:00:00Z" in run.stdout
    assert '"nsrl_version"' in run.stdout
    sha256 = hashlib.sha256(b"synthetic sample one\n").hexdigest()
    queries = tmp_path / "q.txt"
    queries.write_text(f"{sha256.upper()}\n{'0' * 40}\n")
    run = kiosk("hashsets", "lookup", "--from", queries, "--hashsets", store)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"{sha256}  nsrl 2026.03.1  known_good  known_good")
    assert '"product": "Demo Suite 1.0"' in lines[0]
    assert lines[1] == f"{'0' * 40}  not found"
    run = kiosk("hashsets", "remove", "nsrl", "--hashsets", store)
    assert run.returncode == 0
    assert "removed nsrl" in run.stdout
    kinds = [e["kind"] for e in events(home)]
    for k in ("hashset_imported", "hashset_signed", "hashset_lookup", "hashset_removed"):
        assert k in kinds


@pytest.mark.parametrize(
    ("content", "fmt", "message"),
    [
        (b"SQLite format 3\x00" + b"\xff" * 5000, None, "not a readable SQLite database"),
        (
            b'{"@odata.context": "http://x/DataModels/2.0.xml/US/$metadata#Media", "value": [{"MD5',
            None,
            "truncated JSON",
        ),
        (bytes(range(256)) * 64, None, "binary data of no known hash-set format"),
        (b"a" * 63 + b"\n", "plain", "line 1: not an MD5, SHA-1 or SHA-256 digest (63 characters)"),
    ],
)
def test_cli_bad_sources_are_one_line_errors_and_the_active_version_survives(
    tmp_path: Path, home: Path, signer: Signer, content: bytes, fmt: str | None, message: str
) -> None:
    store = tmp_path / "store"
    imported(store, "s", digest_list(tmp_path / "v1", [b"\x0d" * 32]), signer, version="1")
    bad = tmp_path / "bad-source"
    bad.write_bytes(content)
    run = kiosk(
        "hashsets",
        "import",
        "s",
        bad,
        "--disposition",
        "known_bad",
        "--version",
        "2",
        "--hashsets",
        store,
        *(["--format", fmt] if fmt else []),
    )
    assert run.returncode == 1
    assert run.stdout == ""
    (line,) = run.stderr.splitlines()
    assert line.startswith("kiosk: error: ")
    assert message in line
    run = kiosk("hashsets", "lookup", "0d" * 32, "--hashsets", store)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("0d" * 32 + "  s 1  known_bad")


def test_cli_scan_refuses_a_tampered_set_with_one_line_naming_it(
    tmp_path: Path, home: Path, signer: Signer
) -> None:
    trust_demo_publisher(home)
    store = tmp_path / "store"
    vdir = imported(
        store, "lab-known-bad", digest_list(tmp_path / "l", [b"\x0e" * 32]), signer, version="7"
    )
    manifest = vdir / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"known_bad"', '"known_good"', 1))
    scan = ["scan", SAMPLES / "fat16.dd", "--case", "C", "--exhibit", "E", "--officer", "A"]
    scan += ["--authorised-by", "B", "--legal-basis", "consent", "--legal-ref", "x"]
    scan += ["--rules", RULES, "--hashsets", store, "--out", tmp_path / "r"]
    run = kiosk(*scan)
    assert run.returncode == 1
    (line,) = run.stderr.splitlines()
    assert line.startswith("kiosk: error: hash set lab-known-bad 7 refused:")
    assert not (tmp_path / "r").exists()
    run = kiosk(*scan, "--dev")  # forensic staff: it runs, and says what it accepted
    assert run.returncode == 0, run.stderr
    (line,) = run.stderr.splitlines()
    assert line.startswith("kiosk: warning: --dev: hash set lab-known-bad 7 used although: ")
    assert "manifest.json does not match its signature (tampered)" in line
