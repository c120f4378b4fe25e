"""The command line as officers and scripts use it: exit codes, one-line errors, no leftovers."""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.engine.triage import TriageResult
from kiosk.trust.signing import load_signer
from tests.conftest import CLI_CASE_ARGS, HASHSETS, RULES, SAMPLES, pack_toml, scan_cmd, sign_pack

CASE_ARGS = CLI_CASE_ARGS
Triage = Callable[..., TriageResult]


def _kiosk(
    *args: str | Path, out: Path, rules: Path = RULES, extra: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "kiosk",
        "scan",
        *map(str, args),
        *CASE_ARGS,
        "--rules",
        str(rules),
        "--hashsets",
        str(HASHSETS),
        "--out",
        str(out),
        *(extra or []),
    ]
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)


def test_scan_prints_summary_and_ends_stdout_with_the_report_dir(
    tmp_path: Path, signed_rules: Path
) -> None:
    run = _kiosk(
        SAMPLES / "mbr-fat16-ext4.dd", out=tmp_path / "r", rules=signed_rules, extra=["--inventory"]
    )
    assert run.returncode == 0, run.stderr
    last = Path(run.stdout.strip().splitlines()[-1])
    assert last.parent == tmp_path / "r"
    assert sorted(p.name for p in last.iterdir()) == [
        "files.jsonl",
        "report.dsse.json",
        "report.json",
    ]
    assert "SUBMIT FOR EXAMINATION" in run.stdout
    assert run.stderr == ""  # no progress bar when stderr is not a terminal


def test_explicit_segments_are_accepted(tmp_path: Path, signed_rules: Path) -> None:
    segs = [SAMPLES / f"split.00{i}" for i in (1, 2, 3)]
    run = _kiosk(*segs, out=tmp_path / "r", rules=signed_rules)
    assert run.returncode == 0, run.stderr


def _random(p: Path) -> Path:
    p.write_bytes(b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(40000)))
    return p


def _ewf_missing_segment(p: Path) -> Path:
    shutil.copyfile(SAMPLES / "ewf.E01", p.with_suffix(".E01"))
    return p.with_suffix(".E01")


def _empty(p: Path) -> Path:
    p.write_bytes(b"")
    return p


def _zeros(p: Path) -> Path:
    p.write_bytes(bytes(1 << 20))
    return p


BAD_INPUTS = {
    "missing file": (lambda d: d / "nope.dd", "no such file"),
    "directory": (lambda d: d, "is a directory"),
    "empty file": (lambda d: _empty(d / "e.dd"), "is empty"),
    "random bytes": (lambda d: _random(d / "r.dd"), "no filesystem found"),
    "all zeros": (lambda d: _zeros(d / "z.dd"), "no filesystem found"),
    "E01 missing a segment": (lambda d: _ewf_missing_segment(d / "x"), "x.E02 is missing"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_clear_line_and_leaves_nothing(
    tmp_path: Path, case: str, signed_rules: Path
) -> None:
    make, message = BAD_INPUTS[case]
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    run = _kiosk(make(evidence), out=tmp_path / "reports", rules=signed_rules)
    assert run.returncode == 1
    assert run.stderr.startswith("kiosk: error: ")
    assert message in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert "Traceback" not in run.stderr + run.stdout
    assert not (tmp_path / "reports").exists() or list((tmp_path / "reports").iterdir()) == []


def test_unreadable_rules_are_a_clear_error(tmp_path: Path, kiosk_home: Path) -> None:
    pack = tmp_path / "rules" / "p"
    pack.mkdir(parents=True)
    (pack / "pack.toml").write_text(pack_toml("p"))
    (pack / "r.yar").write_text('rule r { meta: category = "c" condition: }\n')
    sign_pack(pack, load_signer(kiosk_home / "keys" / "kiosk.key"))
    cmd = [
        sys.executable,
        "-m",
        "kiosk",
        "scan",
        str(SAMPLES / "fat16.dd"),
        *CASE_ARGS,
        "--rules",
        str(tmp_path / "rules"),
        "--hashsets",
        str(HASHSETS),
        "--out",
        str(tmp_path / "o"),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 1
    assert run.stderr.startswith("kiosk: error: rule pack p: r.yar:1: syntax error")
    assert len(run.stderr.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "kiosk", "scan", str(SAMPLES / "fat16.dd")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert "--case" in run.stderr
    bad_basis = [a if a != "warrant" else "hunch" for a in CASE_ARGS]
    run = subprocess.run(
        [sys.executable, "-m", "kiosk", "scan", str(SAMPLES / "fat16.dd"), *bad_basis],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_keys_init_trust_revoke(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"KIOSK_HOME": str(home)}
    init = _run("keys", "init", env=env)
    assert init.returncode == 0, init.stderr
    keyid = init.stdout.split()[2]
    assert len(keyid) == 64
    again = _run("keys", "init", env=env)
    assert again.returncode == 1
    assert "never overwritten" in again.stderr
    other = tmp_path / "other"
    _run("keys", "init", env={"KIOSK_HOME": str(other)})
    trust = _run("keys", "trust", str(other / "keys" / "kiosk.pub"), "--label", "kiosk 2", env=env)
    assert trust.returncode == 0, trust.stderr
    store = json.loads((home / "trust.json").read_text())
    assert len(store["keys"]) == 2
    revoke = _run("keys", "revoke", keyid[:10], env=env)
    assert revoke.returncode == 0, revoke.stderr
    assert revoke.stdout.strip() == f"revoked: {keyid}"
    kinds = [
        json.loads(x)["event"]["kind"] for x in (home / "audit.jsonl").read_text().splitlines()
    ]
    assert kinds == ["key_created", "key_trusted", "key_revoked"]


def test_scan_without_a_key_or_with_an_open_key_refuses_before_the_image(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run = _kiosk(SAMPLES / "fat16.dd", out=tmp_path / "r", extra=[])
    assert run.returncode == 0  # the session's test home has a key
    env = {**os.environ, "KIOSK_HOME": str(home)}
    cmd = scan_cmd(SAMPLES / "fat16.dd", tmp_path / "r2", CASE_ARGS)
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert run.returncode == 1
    assert "kiosk keys init" in run.stderr
    _run("keys", "init", env={"KIOSK_HOME": str(home)})
    (home / "keys" / "kiosk.key").chmod(0o640)
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert run.returncode == 1
    assert "readable by others" in run.stderr
    assert not (tmp_path / "r2").exists()


def test_self_authorisation_only_where_the_kiosk_config_allows(tmp_path: Path) -> None:
    home = Path(os.environ["KIOSK_HOME"])
    args = [a if a != "DS-2" else "PC-1" for a in CASE_ARGS]
    cmd = scan_cmd(SAMPLES / "fat16.dd", tmp_path / "r", args)
    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 1
    assert "someone other than the officer" in refused.stderr
    (home / "config.toml").write_text("allow_self_authorisation = true\n")
    try:
        allowed = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    finally:
        (home / "config.toml").unlink()
    assert allowed.returncode == 0, allowed.stderr
    report = json.loads((Path(allowed.stdout.strip().splitlines()[-1]) / "report.json").read_text())
    assert report["settings"]["allow_self_authorisation"] is True


def test_an_envelope_moved_to_another_report_fails(tmp_path: Path) -> None:
    a = _kiosk(SAMPLES / "fat16.dd", out=tmp_path / "a")
    b = _kiosk(SAMPLES / "ext4.dd", out=tmp_path / "b")
    da = Path(a.stdout.strip().splitlines()[-1])
    db = Path(b.stdout.strip().splitlines()[-1])
    (db / "report.dsse.json").write_bytes((da / "report.dsse.json").read_bytes())
    run = _run("report", "verify", str(db))
    assert run.returncode == 1
    assert run.stdout.startswith("invalid: report.json differs from the signed report")


def test_a_scan_leaves_nothing_in_temporary_folders(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    cmd = scan_cmd(SAMPLES / "ntfs.dd", tmp_path / "r", CASE_ARGS)
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert list(scratch.iterdir()) == []
    written = [p for p in (tmp_path / "r").rglob("*") if p.is_file()]
    assert written  # the report itself
    for p in written:
        assert b"KIOSK-DEMO-MARKER" not in p.read_bytes()


# --------------------------------------------------------------------------- one line, right code


def test_scan_without_arguments_names_only_what_is_required() -> None:
    run = _run("scan")
    assert run.returncode == 2
    (required,) = [ln for ln in run.stderr.splitlines() if "required:" in ln]
    assert required.split("required: ")[1].split(", ")[0] == "image"
    assert "segments" not in required


def test_hashsets_lookup_without_a_digest_is_a_usage_error() -> None:
    run = _run("hashsets", "lookup", "--hashsets", str(HASHSETS))
    assert (run.returncode, run.stderr) == (
        2,
        "kiosk: error: hashsets lookup: give HASH… or --from FILE\n",
    )


def test_report_html_into_a_missing_folder_is_one_line(triage: Triage, tmp_path: Path) -> None:
    report = triage("fat16.dd").report_dir
    target = tmp_path / "nonexistent" / "r.html"
    run = _run("report", "html", str(report), "--out", str(target))
    assert (run.returncode, run.stderr) == (
        1,
        f"kiosk: error: cannot write {target}: no folder {target.parent}\n",
    )
    assert not target.parent.exists()
    ok = _run("report", "html", str(report), "--out", str(tmp_path / "r.html"))
    assert ok.returncode == 0, ok.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "reports"]  # no temp file


def test_audit_verify_names_the_checkpoint_path_given(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    run = _run("audit", "verify", "--checkpoint", str(missing))
    assert (run.returncode, run.stderr) == (1, f"kiosk: error: {missing}: not found\n")
    run = _run("audit", "verify", "--checkpoint", str(tmp_path))
    assert (run.returncode, run.stderr) == (
        1,
        f"kiosk: error: {tmp_path}: not a report directory (no report.json)\n",
    )


def _copy_home(to: Path) -> Path:
    """A kiosk home with the session's key and trust store but a fresh (short) audit log."""
    session = Path(os.environ["KIOSK_HOME"])
    shutil.copytree(session / "keys", to / "keys")
    shutil.copy2(session / "trust.json", to / "trust.json")
    return to


FSIZE_LIMIT = 6000  # bytes: below report.json and files.jsonl of mbr-fat16-ext4.dd (8.8, 13.6 KB)


@pytest.mark.parametrize("inventory", [False, True])
def test_a_report_folder_that_cannot_take_the_report_is_named_and_left_empty(
    tmp_path: Path, inventory: bool
) -> None:
    """A full disk, made without mounting anything: a file-size limit (RLIMIT_FSIZE) on the
    command and everything it starts, so the report's own writes fail (EFBIG) as they would on a
    full tmpfs (ENOSPC); the fresh home's short audit log and small ledgers stay under it."""

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))

    out = tmp_path / "reports"
    cmd = scan_cmd(SAMPLES / "mbr-fat16-ext4.dd", out) + (["--inventory"] if inventory else [])
    env = {**os.environ, "KIOSK_HOME": str(_copy_home(tmp_path / "home"))}
    run = subprocess.run(  # Python ignores SIGXFSZ: the write fails instead of killing the process
        cmd, capture_output=True, text=True, env=env, timeout=120, check=False, preexec_fn=limited
    )
    assert (run.returncode, run.stderr) == (
        1,
        f"kiosk: error: cannot write the report to {out}/: file too large\n",
    )
    assert list(out.iterdir()) == []  # no report, no hidden partial directory
    audit = (tmp_path / "home" / "audit.jsonl").read_text().splitlines()
    assert json.loads(audit[-1])["event"]["kind"] == "scan_failed"


def test_a_reader_that_stops_early_gets_no_error_line(triage: Triage) -> None:
    """`kiosk report show DIR | head`: the pipe closes under us, and nothing is said of it.

    `true` exits without reading, long before the interpreter has started: every write fails."""
    report_dir = triage("mbr-fat16-ext4.dd").report_dir
    cmd = f"{sys.executable} -m kiosk report show {report_dir} | true"
    run = subprocess.run(
        ["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=60
    )
    assert run.stderr == ""
    assert run.returncode in (0, 1)  # 1 when its writes failed (nearly always); never a crash


def test_the_kiosk_command_imports_its_command_line_once_not_in_every_helper(
    tmp_path: Path,
) -> None:
    """The walker and the workers are forked from the helpers' server; none of them may run the
    ``kiosk`` script again to rebuild ``__main__`` (each such run imported the whole command
    line: ~0.1 s a helper). Every process reports its imports (``PYTHONPROFILEIMPORTTIME``) on
    the shared stderr: the command line's module must appear once, in the kiosk process."""
    script = Path(sys.executable).parent / "kiosk"
    run = subprocess.run(
        [
            *(str(script), "scan", str(SAMPLES / "ext4.dd"), *CASE_ARGS, "--out", str(tmp_path)),
            *("--rules", str(RULES), "--hashsets", str(HASHSETS), "--workers", "2"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    imported = [ln for ln in run.stderr.splitlines() if ln.rstrip().endswith("| kiosk.cli.main")]
    helpers = [ln for ln in run.stderr.splitlines() if ln.rstrip().endswith("| kiosk.engine.scan")]
    assert len(imported) == 1, imported
    assert helpers  # the helpers' server did import the engine (so the lines are being seen)


_START_PROBE = """
import sys
import kiosk.processes
seen = []
kiosk.processes.warm_up = lambda: seen.append("kiosk.cli.main" in sys.modules)
sys.argv = ["kiosk", *sys.argv[1:]]
from kiosk.cli.start import main
try:
    main()
except SystemExit:
    pass
print("warm-ups:", seen)
"""


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (["scan", "--help"], "[False]"),  # started before the command line was imported
        (["batch", "--help"], "[False]"),
        (["keys", "--help"], "[]"),  # commands that never fork a helper start no server
        (["--version"], "[]"),
    ],
)
def test_the_kiosk_command_starts_the_helpers_server_first_only_for_scanning_commands(
    args: list[str], want: str
) -> None:
    """``kiosk.cli.start``: the server's imports overlap the command line's only when the
    command will fork helpers (bench/README.md, round 3)."""
    run = subprocess.run(
        [sys.executable, "-c", _START_PROBE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert f"warm-ups: {want}" in run.stdout, run.stdout + run.stderr


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_line_shows_no_fraction_while_the_walk_is_still_counting() -> None:
    from kiosk.cli.main import _ProgressLine
    from kiosk.model import Progress

    out = _Tty()
    line = _ProgressLine(out)
    line(Progress(512, 100, 50_000_000, 40_000_000, 0, 1.0, counting=True))
    counting = out.getvalue()
    assert "still counting files" in counting
    assert "files 100/512+" in counting
    assert "%" not in counting  # 80 % of what has been found so far would be a lie
    line(Progress(9_000, 100, 900_000_000, 40_000_000, 0, 2.0))
    assert "4.4%" in out.getvalue().rsplit("\r", 1)[1]
