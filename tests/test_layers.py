"""Encrypted volumes, LVM2 and APFS: what lies between a partition and its filesystem.

Every image here is real: LUKS volumes by ``cryptsetup luksFormat`` (payload encrypted with the
volume key by ``cryptography``'s AES-XTS: this sandbox has no device-mapper), LVM2 disks by
``pvcreate``/``lvcreate`` on a loop device, and the public APFS image of dfvfs
(``tests/data/apfs.raw``, see its PROVENANCE.md). The oracles are the Sleuth Kit CLI over the
plaintext filesystem (LUKS, LVM) and over the APFS pool (``fls -P apfs``, ``icat``),
independent of the libyal readers kiosk uses. BitLocker and FileVault volumes cannot be made with
free tools: only their signatures are tested (pure logic), and their unlock code is not in kiosk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kiosk.cli.unlock import read_keys
from kiosk.engine.triage import TriageRequest, run_triage
from kiosk.errors import ImageError, UsageError
from kiosk.evidence.image import Evidence
from kiosk.evidence.keys import VolumeKeys
from kiosk.evidence.layers import identify
from kiosk.evidence.resolve import resolve
from kiosk.model import FileStatus, Outcome, Recommendation
from kiosk.reports.model import AreaNotExamined, NotExaminedKind, TriageReport
from tests.conftest import CASE, CLI_CASE_ARGS, HASHSETS, ROOT, RULES, TEST_CAP, fixed_hooks
from tests.layered import ext4_with, loop_usable, luks_volume, lvm_disk, write_into
from tests.oracle import fls, icat_sha256

PASSPHRASE = "correct horse battery staple 7"  # noqa: S105 - the test volumes' passphrase
FILES = {
    "note.txt": b"inside the encrypted volume\n",
    "docs/report.bin": bytes(range(256)) * 40,
    "docs/deep/empty": b"",
}
APFS = ROOT / "tests" / "data" / "apfs.raw"  # from dfvfs (tests/data/PROVENANCE.md)


def _scan(image: Path, out: Path, keys: VolumeKeys | None = None, workers: int = 0) -> Any:
    return run_triage(
        TriageRequest(
            case=CASE,
            image=(image,),
            rules_dir=RULES,
            hashsets_dir=HASHSETS,
            out_dir=out,
            inventory=True,
            workers=workers,
            max_yara_bytes=TEST_CAP,
            keys=keys or VolumeKeys(),
        ),
        fixed_hooks(),
    )


def _inventory(result: Any) -> list[dict[str, Any]]:
    lines = (result.report_dir / "files.jsonl").read_bytes().splitlines()
    return [json.loads(x) for x in lines]


def _oracle(plain: Path) -> dict[str, str]:
    """Path -> SHA-256 of every regular file ``fls``/``icat`` find in a plaintext filesystem."""
    return {
        e.path: icat_sha256(plain, 0, e.inode) or "?"
        for e in fls(plain, 0)
        if e.meta_type == "r" and not e.deleted and "$OrphanFiles" not in e.path
    }


def _areas(report: TriageReport) -> list[AreaNotExamined]:
    """The report's regions: a walked filesystem is listed by its (uncarved) free space."""
    return [n for n in report.not_examined if isinstance(n, AreaNotExamined)]


@dataclass(frozen=True)
class _Walked:
    volume: int
    offset: int
    description: str


def _walked(report: TriageReport, fs_type: str) -> list[_Walked]:
    """The regions walked as ``fs_type``, from the report's coverage (their free space is
    searched now, so it is no longer a not-examined entry)."""
    return [
        _Walked(v.index, v.offset, v.description)
        for v in report.coverage.volumes
        if v.examined and v.fs_type == fs_type
    ]


def _found(result: Any, volume: int) -> dict[str, str]:
    return {
        r["path"]: r["sha256"]
        for r in _inventory(result)
        if r["volume"] == volume and r["status"] != FileStatus.ERROR.value
    }


# --------------------------------------------------------------------------- signatures


def _boot(at: int, sig: bytes, size: int = 4096) -> bytes:
    head = bytearray(size)
    head[at : at + len(sig)] = sig
    return bytes(head)


def test_each_signature_names_its_layer() -> None:
    to_go = bytearray(_boot(3, b"-FVE-FS-"))
    to_go[82:90] = b"FAT32   "
    cases = {
        _boot(3, b"-FVE-FS-"): ("bitlocker", "BitLocker volume"),
        bytes(to_go): ("bitlocker", "BitLocker To Go volume"),
        _boot(0, b"LUKS\xba\xbe\x00\x01"): ("luks1", "LUKS1 volume"),
        _boot(0, b"LUKS\xba\xbe\x00\x02"): ("luks2", "LUKS2 volume"),
        _boot(32, b"NXSB"): ("apfs", "APFS container"),
        _boot(512, b"LABELONE" + bytes(16) + b"LVM2 001"): ("lvm2", "LVM2 physical volume"),
    }
    cs = bytearray(4096)
    cs[4:6], cs[88:90] = (1).to_bytes(2, "little"), b"CS"
    cases[bytes(cs)] = ("corestorage", "FileVault 2 / CoreStorage volume")
    for head, (kind, name) in cases.items():
        layer = identify(head)
        assert layer is not None
        assert (layer.kind, layer.name) == (kind, name)
    assert identify(bytes(4096)) is None
    assert identify(_boot(3, b"NTFS    ")) is None


def test_the_keys_never_show_their_secrets() -> None:
    keys = VolumeKeys(passwords=(PASSPHRASE,))
    ref = dataclasses.replace(resolve([APFS]), keys=keys)
    for text in (repr(keys), str(keys), repr(ref), f"{ref}"):
        assert PASSPHRASE not in text
    assert "1 password" in repr(keys)


# --------------------------------------------------------------------------- LUKS


@pytest.fixture(scope="module")
def luks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Whole-disk LUKS1 and LUKS2 (PBKDF2 keyslot) volumes, a plain copy of their ext4, and an
    MBR disk with a LUKS1 and a LUKS2 (argon2id keyslot) partition, all holding that ext4."""
    if shutil.which("cryptsetup") is None:
        pytest.fail("cryptsetup is missing: apt-get install cryptsetup-bin")
    d = tmp_path_factory.mktemp("luks")
    plain = ext4_with(d / "root", FILES, 6 << 20, d / "plain.ext4")
    whole = d / "luks1.img"
    whole.write_bytes(bytes(8 << 20))
    luks_volume(whole, PASSPHRASE, plain)
    whole2 = d / "luks2.img"
    whole2.write_bytes(bytes(8 << 20))
    luks_volume(whole2, PASSPHRASE, plain, version=2, kdf="pbkdf2")
    # MBR: partition 1 (1 MiB, 8 MiB) LUKS1; partition 2 (9 MiB, 8 MiB) LUKS2
    disk = d / "disk.img"
    disk.write_bytes(bytes(18 << 20))
    subprocess.run(
        ["sfdisk", "-q", str(disk)],
        input="label: dos\nstart=2048, size=16384, type=83\nstart=18432, size=16384, type=83\n",
        text=True,
        check=True,
        capture_output=True,
    )
    for name, start, size, version in (("p1", 1, 8, 1), ("p2", 9, 8, 2)):
        part = d / f"{name}.img"
        part.write_bytes(bytes(size << 20))
        luks_volume(part, PASSPHRASE, plain, version)
        with disk.open("r+b") as f:
            f.seek(start << 20)
            f.write(part.read_bytes())
    return {"plain": plain, "whole": whole, "whole2": whole2, "disk": disk}


def test_a_luks1_volume_unlocked_with_its_passphrase_reads_like_its_plaintext(
    luks: dict[str, Path], tmp_path: Path
) -> None:
    oracle = _oracle(luks["plain"])
    assert len(oracle) == 3
    result = _scan(luks["disk"], tmp_path, VolumeKeys(passwords=("wrong one", PASSPHRASE)))
    report: TriageReport = result.report
    one, two = _walked(report, "ext4")
    assert one.description == "MBR: Linux (0x83) > LUKS1 volume unlocked with a passphrase"
    assert two.description == "MBR: Linux (0x83) > LUKS2 volume unlocked with a passphrase"
    assert (one.offset, two.offset) == (1 << 20, 9 << 20)
    assert _found(result, one.volume) == oracle
    assert _found(result, two.volume) == oracle
    assert report.outcome.status is Outcome.COMPLETE


def test_workers_unlock_for_themselves_and_write_the_same_inventory(
    luks: dict[str, Path], tmp_path: Path
) -> None:
    keys = VolumeKeys(passwords=(PASSPHRASE,))
    for image in ("whole", "whole2"):  # LUKS1 through libluksde, LUKS2 (PBKDF2) through ours
        inline = _scan(luks[image], tmp_path / image / "0", keys, workers=0)
        pooled = _scan(luks[image], tmp_path / image / "2", keys, workers=2)
        a = (inline.report_dir / "files.jsonl").read_bytes()
        assert a == (pooled.report_dir / "files.jsonl").read_bytes()
        assert {r["path"]: r["sha256"] for r in _inventory(inline)} == _oracle(luks["plain"])


def test_without_the_key_the_volume_is_named_not_damaged(
    luks: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(ImageError, match="LUKS1 volume: encrypted; its passphrase is needed"):
        _scan(luks["whole"], tmp_path)
    with pytest.raises(ImageError) as caught, Evidence(resolve([luks["disk"]])) as ev:
        ev.volumes()
    said = str(caught.value)
    assert "MBR: Linux (0x83): LUKS1 volume: encrypted; its passphrase is needed" in said
    assert "MBR: Linux (0x83): LUKS2 volume: encrypted; its passphrase is needed" in said
    assert "damaged" not in said
    assert "random" not in said


def test_a_wrong_passphrase_is_said_and_never_written_anywhere(
    luks: dict[str, Path], tmp_path: Path, kiosk_home: Path
) -> None:
    wrong = "not-the-passphrase-51"
    ref = dataclasses.replace(resolve([luks["disk"]]), keys=VolumeKeys(passwords=(wrong,)))
    with pytest.raises(ImageError) as caught, Evidence(ref) as ev:
        ev.volumes()
    said = str(caught.value)
    assert "LUKS1 volume: encrypted; none of the 1 passphrase given unlocks it" in said
    assert "LUKS2 volume: encrypted; none of the 1 passphrase given unlocks it" in said
    assert wrong not in said
    right = _scan(luks["disk"], tmp_path, VolumeKeys(passwords=(wrong, PASSPHRASE)))
    for f in [*right.report_dir.rglob("*"), kiosk_home / "audit.jsonl"]:
        if f.is_file():
            data = f.read_bytes()
            assert PASSPHRASE.encode() not in data, f
            assert wrong.encode() not in data, f


def _kiosk(*args: str | Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "kiosk", "scan", *map(str, args), *CLI_CASE_ARGS]
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    return subprocess.run(
        cmd, input=stdin, capture_output=True, text=True, timeout=180, env=env, check=False
    )


def test_the_cli_reads_the_passphrase_from_a_file_or_stdin_never_argv(
    luks: dict[str, Path], tmp_path: Path, signed_rules: Path
) -> None:
    keyfile = tmp_path / "pass.txt"
    keyfile.write_text(PASSPHRASE + "\n")
    common = ["--rules", signed_rules, "--hashsets", HASHSETS, "--no-yara"]
    by_file = _kiosk(luks["whole"], "--unlock", f"password:{keyfile}", *common,
                     "--out", tmp_path / "a")  # fmt: skip
    by_stdin = _kiosk(luks["whole"], "--unlock", "password:-", *common, "--out", tmp_path / "b",
                      stdin=PASSPHRASE + "\n")  # fmt: skip
    for done in (by_file, by_stdin):
        assert done.returncode == 0, done.stderr
        assert PASSPHRASE not in done.stdout + done.stderr
        assert "unlocked with a passphrase" in done.stdout
    bad = _kiosk(luks["whole"], "--unlock", "recovery:x", *common, "--out", tmp_path / "c")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1
    assert "unknown kind 'recovery'" in bad.stderr


def test_read_keys_takes_a_prompt_a_file_or_stdin(tmp_path: Path) -> None:
    import io

    asked: list[str] = []
    keys = read_keys(["password"], prompt=lambda q: asked.append(q) or "typed")
    assert keys.passwords == ("typed",)
    assert len(asked) == 1
    assert PASSPHRASE not in asked[0]
    assert read_keys(["password:-"], stdin=io.StringIO("piped\r\n")).passwords == ("piped",)
    with pytest.raises(UsageError, match="is empty"):
        read_keys(["password:-"], stdin=io.StringIO("\n"))
    with pytest.raises(UsageError, match="cannot open the key file"):
        read_keys([f"password:{tmp_path / 'missing'}"])
    with pytest.raises(UsageError, match="not a small regular file"):
        read_keys([f"password:{tmp_path}"])


# --------------------------------------------------------------------------- APFS


_ATTR = re.compile(r"^Type: (\S+) \((\d+-\d+)\)\s+Name: (.*?)\s+(?:Non-)?Resident", re.M)


def _apfs_oracle(image: Path) -> dict[str, tuple[int, str]]:
    """Path (``path:attribute`` for a named attribute) -> (inode, SHA-256) of every file and
    link ``fls -P apfs`` lists, each attribute ``istat`` shows read by ``icat inode-type-id``;
    an entry with no data attribute (an empty file, a link) holds no bytes."""
    pool = subprocess.run(["pstat", str(image)], capture_output=True, text=True, check=True)
    block = re.search(r"APSB Block Number: (\d+)", pool.stdout)
    assert block is not None
    base = ["-P", "apfs", "-B", block[1], str(image)]

    def tsk(tool: str, *args: str) -> bytes:
        return subprocess.run([tool, *base, *args], capture_output=True, check=True).stdout

    empty = hashlib.sha256(b"").hexdigest()
    out: dict[str, tuple[int, str]] = {}
    for line in tsk("fls", "-r", "-p").decode().splitlines():
        types, rest = line.split(" ", 1)
        inode, path = rest.split(":\t", 1)
        if types.split("/")[1] not in ("r", "l"):
            continue
        out["/" + path] = (int(inode), empty)
        for kind, attr, name in _ATTR.findall(tsk("istat", inode).decode()):
            content = hashlib.sha256(tsk("icat", f"{inode}-{attr}")).hexdigest()
            key = "/" + path if kind == "DATA" else f"/{path}:{name}"
            out[key] = (int(inode), content)
    return out


@pytest.fixture(scope="module")
def apfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not APFS.is_file():
        pytest.fail(f"the public APFS test image is missing: {APFS} (see its PROVENANCE.md)")
    copy = tmp_path_factory.mktemp("apfs") / "apfs.raw"
    shutil.copyfile(APFS, copy)
    return copy


def test_an_apfs_container_is_walked_volume_by_volume_like_the_sleuth_kit_lists_it(
    apfs: Path, tmp_path: Path
) -> None:
    oracle = _apfs_oracle(apfs)
    assert len(oracle) == 11  # PROVENANCE: 5 files, a link, 3 events; 3 attributes
    assert "/passwords.txt" in oracle
    result = _scan(apfs, tmp_path)
    report: TriageReport = result.report
    assert [(a.kind, a.description) for a in _areas(report)] == [
        (
            NotExaminedKind.FS_UNALLOCATED,
            "whole image (no partition table) > APFS volume 0 'apfs_test'",
        )
    ]
    rows = {  # the files; members of the gzip streams in .fseventsd follow them (archives)
        r["path"]: (r["inode"], r["sha256"]) for r in _inventory(result) if "!/" not in r["path"]
    }
    assert rows == oracle
    assert report.outcome.status is Outcome.COMPLETE


def test_apfs_extended_attributes_and_resource_forks_are_streams(apfs: Path) -> None:
    """Against libfsapfs's own listing (PROVENANCE: a resource fork, an xattr ``myxattr``)."""
    with Evidence(resolve([apfs])) as ev:
        vols = ev.volumes()
        streams = {t.path: t for t in ev.walk(vols) if ":" in t.path}
        fork = streams["/a_directory/a_resourcefork:com.apple.ResourceFork"]
        xattr = streams["/a_directory/a_file:myxattr"]
        assert (fork.size, xattr.size) == (17, 21)
        assert len(b"".join(ev.chunks(fork))) == 17
        assert b"".join(ev.chunks(xattr)) != b""
    assert set(streams) == {
        "/a_directory/a_resourcefork:com.apple.ResourceFork",
        "/a_directory/a_file:myxattr",
        "/a_link:com.apple.fs.symlink",
    }


# --------------------------------------------------------------------------- LVM2


@pytest.fixture(scope="module")
def lvm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    why = loop_usable()
    if why:
        pytest.skip(f"LVM2 disks cannot be built here: {why}")
    d = tmp_path_factory.mktemp("lvm")
    one = ext4_with(d / "one", {"a.txt": b"logical volume one\n"}, 4 << 20, d / "one.ext4")
    two = ext4_with(d / "two", {"b.bin": os.urandom(3000)}, 3 << 20, d / "two.ext4")
    disk = d / "lvm.img"
    vg, extents = lvm_disk(disk, 16 << 20, [("lvone", 4 << 20), ("lvtwo", 3 << 20)], d / "conf")
    write_into(disk, extents["lvone"], one.read_bytes())
    write_into(disk, extents["lvtwo"], two.read_bytes())
    split = d / "split.img"  # lvone extended after lvtwo was made: two segments
    vg2, ext2 = lvm_disk(
        split, 16 << 20, [("lvone", 2 << 20), ("lvtwo", 3 << 20), ("lvone", 2 << 20)], d / "c2"
    )
    write_into(split, ext2["lvtwo"], two.read_bytes())
    return {"disk": disk, "split": split, "vg": vg, "vg2": vg2, "one": one, "two": two}


def test_lvm_logical_volumes_are_volumes_read_like_their_plaintext(
    lvm: dict[str, Any], tmp_path: Path
) -> None:
    result = _scan(lvm["disk"], tmp_path)
    vols = {a.description: a for a in _walked(result.report, "ext4")}
    base = "whole image (no partition table) > LVM2 logical volume"
    one, two = vols[f"{base} {lvm['vg']}/lvone"], vols[f"{base} {lvm['vg']}/lvtwo"]
    assert len(vols) == 2
    assert _found(result, one.volume) == _oracle(lvm["one"])
    assert _found(result, two.volume) == _oracle(lvm["two"])


def test_a_logical_volume_libvslvm_cannot_map_is_listed_not_dropped(
    lvm: dict[str, Any], tmp_path: Path
) -> None:
    result = _scan(lvm["split"], tmp_path)
    missed = [n for n in result.report.not_examined if "cannot be mapped" in n.reason]
    assert len(missed) == 1
    walked = _walked(result.report, "ext4")
    assert [v.description.rsplit(" ", 1)[1] for v in walked] == [f"{lvm['vg2']}/lvtwo"]
    assert _found(result, walked[0].volume) == _oracle(lvm["two"])


# --------------------------------------------------------------------------- hostile layers


def _damaged_apfs(src: Path, out: Path, how: str) -> Path:
    data = bytearray(src.read_bytes())
    if how == "cut":
        del data[1 << 20 :]
    elif how == "omap":  # the container's object map and the volume superblock's block overwritten
        for block in (105, 106, 107):
            data[block * 4096 : (block + 1) * 4096] = bytes([0x5A]) * 4096
    elif how == "nxsb":  # the block size field of the superblock made absurd
        data[36:40] = (0xFFFFFFFF).to_bytes(4, "little")
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("how", ["omap", "nxsb"])
def test_a_damaged_apfs_container_is_one_plain_line(apfs: Path, tmp_path: Path, how: str) -> None:
    image = _damaged_apfs(apfs, tmp_path / "apfs.raw", how)
    with pytest.raises(ImageError) as caught:
        _scan(image, tmp_path / "out")
    said = str(caught.value)
    assert said.endswith("APFS container: it cannot be read (damaged?): not examined)")
    assert "libfsapfs" not in said


def test_a_cut_apfs_container_is_read_as_far_as_it_goes(apfs: Path, tmp_path: Path) -> None:
    """libfsapfs reads what the cut container still holds (its used blocks are in the first
    MiB); the missing range is listed and the answer is inconclusive."""
    result = _scan(_damaged_apfs(apfs, tmp_path / "apfs.raw", "cut"), tmp_path / "out")
    assert len([r for r in _inventory(result) if "!/" not in r["path"]]) == 11  # no members
    cut = [a for a in _areas(result.report) if a.kind is NotExaminedKind.VOLUME]
    assert [(a.offset, a.length) for a in cut] == [(1 << 20, apfs.stat().st_size - (1 << 20))]
    assert cut[0].reason.startswith("the image is truncated: the APFS container ends at byte")
    assert result.report.recommendation.result is Recommendation.INCONCLUSIVE


def test_a_damaged_luks_header_or_lvm_label_is_named_not_a_crash(
    luks: dict[str, Path], tmp_path: Path
) -> None:
    broken = tmp_path / "luks.img"
    data = bytearray(luks["whole"].read_bytes())
    data[168:200] = bytes(32)  # the master key digest: no passphrase can verify any more
    broken.write_bytes(bytes(data))
    keys = VolumeKeys(passwords=(PASSPHRASE,))
    with pytest.raises(ImageError) as caught:
        _scan(broken, tmp_path / "out", keys)
    said = str(caught.value)
    assert "LUKS1 volume: " in said
    assert "libluksde" not in said
    assert "\n" not in said


def test_an_apfs_scan_writes_the_same_inventory_with_workers(apfs: Path, tmp_path: Path) -> None:
    inline = _scan(apfs, tmp_path / "0", workers=0)
    pooled = _scan(apfs, tmp_path / "2", workers=2)
    a = (inline.report_dir / "files.jsonl").read_bytes()
    assert a.count(b"\n") == 13  # 11 files and streams, and the two gzip streams' members
    assert a == (pooled.report_dir / "files.jsonl").read_bytes()


@pytest.mark.parametrize(
    ("where", "blob", "said"),
    [
        (4096, b"{not json", "LUKS2 volume: the metadata is not JSON: not examined"),
        (8, (1 << 40).to_bytes(8, "big"), "LUKS2 volume: the header size is out of range"),
    ],
)
def test_a_damaged_luks2_header_is_named_not_a_crash(
    luks: dict[str, Path], tmp_path: Path, where: int, blob: bytes, said: str
) -> None:
    broken = tmp_path / "luks2.img"
    data = bytearray(luks["whole2"].read_bytes())
    data[where : where + len(blob)] = blob
    broken.write_bytes(bytes(data))
    ref = dataclasses.replace(resolve([broken]), keys=VolumeKeys(passwords=(PASSPHRASE,)))
    with pytest.raises(ImageError, match=re.escape(said)), Evidence(ref) as ev:
        ev.volumes()


def test_the_bulk_xts_equals_cryptographys_xts_sector_by_sector() -> None:
    """The LUKS2 reader's bulk AES-XTS against ``modes.XTS``, one cipher per sector."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from kiosk.evidence.luks2 import _xts

    for first in (0, 1, 2**32 - 3, 2**63 + 5):
        key, data = os.urandom(64), os.urandom(16 * 512)
        expected = b"".join(
            Cipher(algorithms.AES(key), modes.XTS(((first + i) % 2**64).to_bytes(16, "little")))
            .decryptor()
            .update(data[i * 512 : (i + 1) * 512])
            for i in range(16)
        )
        assert _xts(key, data, first) == expected


def test_a_luks2_header_asking_an_absurd_key_derivation_is_refused_not_attempted(
    luks: dict[str, Path], tmp_path: Path
) -> None:
    """A crafted header could make the kiosk derive for hours: refused with its reason."""
    data = bytearray(luks["whole2"].read_bytes())
    size = int.from_bytes(data[8:16], "big")
    meta = json.loads(bytes(data[4096:size]).split(b"\0", 1)[0])
    for slot in meta["keyslots"].values():
        slot["kdf"]["iterations"] = 1 << 40
    text = json.dumps(meta).encode()
    data[4096:size] = text + bytes(size - 4096 - len(text))
    broken = tmp_path / "costly.img"
    broken.write_bytes(bytes(data))
    ref = dataclasses.replace(resolve([broken]), keys=VolumeKeys(passwords=(PASSPHRASE,)))
    with (
        pytest.raises(ImageError, match="a key-derivation cost of 1099511627776"),
        Evidence(ref) as ev,
    ):
        ev.volumes()


def test_lvm_on_luks_the_usual_linux_full_disk_encryption_is_walked(
    lvm: dict[str, Any], tmp_path: Path
) -> None:
    """Debian's and Ubuntu's encrypted install: a LUKS2 partition holding an LVM2 physical
    volume holding the root filesystem. Each layer made by its own tool; the oracle is ``fls``/
    ``icat`` on the root ext4 before it went in. Workers reach it the way the walk did."""
    root = ext4_with(
        tmp_path / "r", {"etc/hostname": b"seized-laptop\n"}, 4 << 20, tmp_path / "root.ext4"
    )
    pv = tmp_path / "pv.img"
    vg, extents = lvm_disk(pv, 8 << 20, [("root", 4 << 20)], tmp_path / "conf")
    write_into(pv, extents["root"], root.read_bytes())
    part = tmp_path / "part.img"
    part.write_bytes(bytes(10 << 20))
    luks_volume(part, PASSPHRASE, pv, version=2)
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(12 << 20))
    subprocess.run(
        ["sfdisk", "-q", str(disk)],
        input="label: dos\nstart=2048, size=20480, type=83\n",
        text=True,
        check=True,
        capture_output=True,
    )
    with disk.open("r+b") as f:
        f.seek(1 << 20)
        f.write(part.read_bytes())
    keys = VolumeKeys(passwords=(PASSPHRASE,))
    inline = _scan(disk, tmp_path / "0", keys, workers=0)
    [vol] = _walked(inline.report, "ext4")
    assert vol.description == (
        "MBR: Linux (0x83) > LUKS2 volume unlocked with a passphrase > "
        f"LVM2 logical volume {vg}/root"
    )
    assert _found(inline, vol.volume) == _oracle(root)
    pooled = _scan(disk, tmp_path / "2", keys, workers=2)
    a = (inline.report_dir / "files.jsonl").read_bytes()
    assert a == (pooled.report_dir / "files.jsonl").read_bytes()


def test_luks2_reads_at_any_offset_equal_the_plaintext(luks: dict[str, Path]) -> None:
    """Reads across the reader's 64 KiB windows, unaligned, repeated, and past the end."""
    from kiosk.evidence.encryption import Unlocked, unlock
    from kiosk.evidence.media import open_media
    from kiosk.evidence.media.view import RegionFile

    plain = luks["plain"].read_bytes()
    ref = resolve([luks["whole2"]])
    media = open_media(ref)
    try:
        layer = identify(media.pread(0, 4096))
        assert layer is not None
        opened = unlock(
            layer, RegionFile(media, 0, media.size), VolumeKeys(passwords=(PASSPHRASE,))
        )
        assert isinstance(opened, Unlocked)
        inner = opened.media
        for offset, length in [
            (0, 4096),
            (65536 - 3, 10),
            (12345, 200_000),
            (65536 * 5 + 511, 513),
            (0, 4096),
            (len(plain) - 100, 100),
        ]:
            assert inner.pread(offset, length) == plain[offset : offset + length], (offset, length)
        assert inner.pread(inner.size, 10) == b""
        tail = inner.pread(inner.size - 5, 100)
        assert len(tail) == 5
    finally:
        media.close()
