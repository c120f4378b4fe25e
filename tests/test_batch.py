"""``kiosk batch MANIFEST``: the manifest checked whole before anything opens, then one signed
report per exhibit, byte for byte the one ``kiosk scan`` writes, and one broken exhibit never
stops the others."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.engine.batch import read_manifest
from kiosk.errors import ManifestError
from kiosk.model import LegalBasis
from tests.conftest import HASHSETS, SAMPLES, scan_cmd

HEADER = "evidence,case,exhibit,officer,authorised_by,legal_basis,legal_ref,scope,device\n"


def _kiosk(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_csv_and_toml_manifests_read_alike(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text(
        HEADER
        + f"{SAMPLES / 'ntfs.dd'},C-1,EX-1,PC-1,DS-2,warrant,W-1,,phone\n"
        + f"{SAMPLES / 'split.001'};{SAMPLES / 'split.002'},C-1,EX-2,PC-1,DS-2,consent,F-9,"
        '"demo,test",\n'
    )
    (tmp_path / "m.toml").write_text(
        "[[exhibit]]\n"
        f'evidence = "{SAMPLES / "ntfs.dd"}"\n'
        'case = "C-1"\nexhibit = "EX-1"\nofficer = "PC-1"\nauthorised_by = "DS-2"\n'
        'legal_basis = "warrant"\nlegal_ref = "W-1"\ndevice = "phone"\n'
        "[[exhibit]]\n"
        f'evidence = ["{SAMPLES / "split.001"}", "{SAMPLES / "split.002"}"]\n'
        'case = "C-1"\nexhibit = "EX-2"\nofficer = "PC-1"\nauthorised_by = "DS-2"\n'
        'legal_basis = "consent"\nlegal_ref = "F-9"\nscope = ["demo", "test"]\n'
    )
    csv_rows = read_manifest(tmp_path / "m.csv")
    assert csv_rows == read_manifest(tmp_path / "m.toml")
    assert [e.case.exhibit_ref for e in csv_rows] == ["EX-1", "EX-2"]
    assert csv_rows[1].evidence == (SAMPLES / "split.001", SAMPLES / "split.002")
    assert csv_rows[1].scope == frozenset({"demo", "test"})
    assert csv_rows[1].case.legal_basis is LegalBasis.CONSENT
    assert csv_rows[0].case.device_description == "phone"


def test_relative_paths_are_the_manifests_folder(tmp_path: Path) -> None:
    (tmp_path / "disk.dd").write_bytes((SAMPLES / "fat16.dd").read_bytes())
    (tmp_path / "m.csv").write_text(HEADER + "disk.dd,C,E,PC-1,DS-2,warrant,W,,\n")
    assert read_manifest(tmp_path / "m.csv")[0].evidence == (tmp_path / "disk.dd",)


def test_every_problem_of_every_row_is_found_before_anything_starts(tmp_path: Path) -> None:
    good = SAMPLES / "fat16.dd"
    (tmp_path / "m.csv").write_text(
        HEADER
        + f"{good},C,EX-1,PC-1,DS-2,warrant,W-1,,\n"
        + f"{good},C,EX-2,PC-1,DS-2,warrant,,,\n"  # no legal reference
        + f"{tmp_path / 'gone.dd'},C,EX-3,PC-1,DS-2,warrant,W-1,,\n"  # missing evidence
        + f"{good},C,EX-4,PC-1,DS-2,hunch,W-1,,\n"  # not a legal basis
        + f"{good},C,EX-1,PC-1,DS-2,warrant,W-1,,\n"  # the same exhibit twice
        + f"{good},C,EX-6,PC-1,PC-1,warrant,W-1,,\n"  # authorised by the officer
        + f"{tmp_path},C,EX-7,PC-1,DS-2,warrant,W-1,,\n"  # a folder
    )
    with pytest.raises(ManifestError) as e:
        read_manifest(tmp_path / "m.csv")
    assert str(e.value).startswith(f"{tmp_path / 'm.csv'}: nothing started: row 2: ")
    detail = str(e.value)
    for expected in (
        "row 2: legal basis reference not recorded",
        f"row 3: evidence {tmp_path / 'gone.dd'}: no such file or directory",
        "row 4: legal_basis 'hunch' is not one of warrant, statutory, consent, other",
        "row 5: exhibit C/EX-1 is also row 1",
        "row 6: the authorising officer must be someone other than the officer",
        f"row 7: evidence {tmp_path}: not a regular file",
    ):
        assert expected in detail
    assert "row 1:" not in detail


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("m.txt", "x", "a manifest is a .csv or a .toml file"),
        ("m.csv", "evidence,case\n", "the header has no column exhibit, officer"),
        ("m.csv", HEADER, "no exhibits listed"),
        ("m.toml", "[[exhibit]\n", "not valid TOML"),
        ("m.toml", "[other]\n", "unknown table 'other'"),
    ],
)
def test_an_unusable_manifest_is_one_line(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ManifestError, match=message):
        read_manifest(tmp_path / name)


def test_the_cli_refuses_a_bad_manifest_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text(
        HEADER
        + f"{SAMPLES / 'fat16.dd'},C,EX-1,PC-1,DS-2,warrant,W-1,,\n"
        + f"{SAMPLES / 'fat16.dd'},C,EX-2,PC-1,DS-2,warrant,W-1,no-such-category,\n"
    )
    run = _kiosk("batch", str(tmp_path / "m.csv"), "--out", str(tmp_path / "out"))
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1
    assert "nothing started: row 2:" in run.stderr
    assert "no-such-category" in run.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_batch_writes_the_reports_kiosk_scan_writes_and_survives_a_broken_exhibit(
    tmp_path: Path, signed_rules: Path
) -> None:
    broken = tmp_path / "broken.E01"  # present and readable, but not an EWF set
    broken.write_bytes((SAMPLES / "ewf.E01").read_bytes()[:4096])
    (tmp_path / "m.csv").write_text(
        HEADER
        + f"{SAMPLES / 'ext4.dd'},CASE-1,EX-1,PC-1,DS-2,warrant,W-1,,\n"
        + f"{broken},CASE-1,EX-2,PC-1,DS-2,warrant,W-1,,\n"
        + f"{SAMPLES / 'ewf.E01'},CASE-1,EX-3,PC-1,DS-2,warrant,W-1,,\n"
    )
    out = tmp_path / "out"
    run = _kiosk(
        "batch",
        str(tmp_path / "m.csv"),
        "--rules",
        str(signed_rules),
        "--hashsets",
        str(HASHSETS),
        "--out",
        str(out),
        "--inventory",
        "--workers",
        "1",
    )
    assert run.returncode == 1, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["exhibit", "outcome", "findings", "time", "report"]
    by_exhibit = {line.split()[0]: line for line in lines[1:4]}
    assert by_exhibit["CASE-1/EX-1"].split()[1] == "complete"
    assert by_exhibit["CASE-1/EX-3"].split()[1] == "complete"
    assert by_exhibit["CASE-1/EX-2"].split()[1] in ("error:", "failed:")
    assert lines[4].startswith("2 of 3 exhibit(s) complete")
    assert "1 exhibit(s) did not complete" in run.stderr
    reports = sorted(p for p in out.iterdir() if not p.name.startswith("."))
    assert len(reports) == 2  # the broken exhibit has none: nothing half-written
    for d in reports:
        verify = _kiosk("report", "verify", str(d))
        assert verify.returncode == 0, verify.stdout
    # the same exhibit through kiosk scan: the same inventory, the same report but the run's
    # own id and times
    single = tmp_path / "single"
    case_args = [
        *("--case", "CASE-1", "--exhibit", "EX-1", "--officer", "PC-1"),
        *("--authorised-by", "DS-2", "--legal-basis", "warrant", "--legal-ref", "W-1"),
    ]
    cmd = [*scan_cmd(SAMPLES / "ext4.dd", single, case_args), "--inventory", "--workers", "1"]
    cmd[cmd.index("--rules") + 1] = str(signed_rules)
    scan = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert scan.returncode == 0, scan.stderr
    (scanned,) = [p for p in single.iterdir() if not p.name.startswith(".")]
    batched = next(
        d
        for d in reports
        if json.loads((d / "report.json").read_text())["case"]["exhibit_ref"] == "EX-1"
    )
    assert (batched / "files.jsonl").read_bytes() == (scanned / "files.jsonl").read_bytes()
    a, b = (json.loads((d / "report.json").read_text()) for d in (batched, scanned))
    for run_field in ("report_id", "started", "finished", "audit_checkpoint"):
        a.pop(run_field)
        b.pop(run_field)
    assert a == b
    assert a["findings"]


def test_a_batch_takes_the_run_options_kiosk_scan_takes_and_applies_them_alike(
    tmp_path: Path, signed_rules: Path
) -> None:
    """The options are declared once (kiosk/cli/options.py): the newest ones reach a batch too,
    and the same options give the same report as ``kiosk scan`` but for the run's own fields."""
    flags = [
        *("--no-unallocated", "--yara-engine", "libyara", "--archive-depth", "0"),
        *("--priority-areas", "Documents", "--workers", "1", "--inventory"),
        *("--rules", str(signed_rules), "--hashsets", str(HASHSETS)),
    ]
    (tmp_path / "m.csv").write_text(
        HEADER + f"{SAMPLES / 'ext4.dd'},CASE-1,EX-1,PC-1,DS-2,warrant,W-1,,\n"
    )
    batch_out, scan_out = tmp_path / "batch", tmp_path / "scan"
    run = _kiosk("batch", str(tmp_path / "m.csv"), "--out", str(batch_out), *flags)
    assert run.returncode == 0, run.stderr
    case_args = [
        *("--case", "CASE-1", "--exhibit", "EX-1", "--officer", "PC-1"),
        *("--authorised-by", "DS-2", "--legal-basis", "warrant", "--legal-ref", "W-1"),
    ]
    cmd = scan_cmd(SAMPLES / "ext4.dd", scan_out, case_args)
    cmd = cmd[: cmd.index("--rules")] + cmd[cmd.index("--rules") + 2 :]  # the flags give them
    scan = subprocess.run([*cmd, *flags], capture_output=True, text=True, timeout=300, check=False)
    assert scan.returncode == 0, scan.stderr
    (batched,) = [p for p in batch_out.iterdir() if not p.name.startswith(".")]
    (scanned,) = [p for p in scan_out.iterdir() if not p.name.startswith(".")]
    a, b = (json.loads((d / "report.json").read_text()) for d in (batched, scanned))
    assert a["settings"]["unallocated"] is False
    assert a["tool"]["engines"]["yara_engine"].startswith("libyara ")
    first = json.loads((batched / "files.jsonl").read_text().splitlines()[0])
    assert first["path"].startswith("/Documents/")  # the priority area went first
    assert (batched / "files.jsonl").read_bytes() == (scanned / "files.jsonl").read_bytes()
    for run_field in ("report_id", "started", "finished", "audit_checkpoint"):
        a.pop(run_field)
        b.pop(run_field)
    assert a == b
