"""Run settings are defined once (kiosk.config) and refused with the same line everywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.cli.main import build_parser
from kiosk.config import (
    DEFAULT_MAX_YARA_BYTES,
    DEFAULT_WORKERS,
    DEFAULT_YARA_TIMEOUT_S,
    MAX_WORKERS,
    check_max_yara_bytes,
    check_workers,
    check_yara_timeout,
    load_config,
)
from kiosk.engine.triage import TriageRequest
from kiosk.errors import ConfigError
from kiosk.tui.flow import Settings
from tests.conftest import CASE, CLI_CASE_ARGS, SAMPLES

SCAN = ["scan", str(SAMPLES / "fat16.dd"), *CLI_CASE_ARGS]


@pytest.mark.parametrize("good", [0, 1, DEFAULT_WORKERS, MAX_WORKERS])
def test_worker_counts_in_range(good: int) -> None:
    assert check_workers(good) == good


@pytest.mark.parametrize(
    ("check", "bad", "message"),
    [
        (check_workers, -1, "the number of workers must be from 0 to 64, not -1"),
        (check_workers, MAX_WORKERS + 1, "the number of workers must be from 0 to 64, not 65"),
        (check_max_yara_bytes, 0, "the YARA size cap must be more than 0 bytes, not 0"),
        (check_yara_timeout, 0, "the YARA time limit must be more than 0 seconds, not 0"),
    ],
)
def test_a_bad_setting_is_one_line(check: object, bad: int, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        check(bad)  # type: ignore[operator]
    assert str(e.value) == message


def test_the_defaults_are_the_same_for_every_caller(tmp_path: Path) -> None:
    scan = build_parser().parse_args(SCAN)
    tui = build_parser().parse_args(["tui"])
    req = TriageRequest(CASE, (SAMPLES / "fat16.dd",), None, None, tmp_path)
    settings = Settings(tmp_path, tmp_path, tmp_path, tmp_path, tmp_path)
    assert scan.workers == tui.workers == req.workers == settings.workers == DEFAULT_WORKERS
    assert scan.max_yara_bytes == req.max_yara_bytes == DEFAULT_MAX_YARA_BYTES
    assert req.yara_timeout_s == DEFAULT_YARA_TIMEOUT_S


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            [*SCAN, "--workers", "-1"],
            "kiosk scan: error: argument --workers: "
            "the number of workers must be from 0 to 64, not -1",
        ),
        (
            ["tui", "--workers", "-1"],
            "kiosk tui: error: argument --workers: "
            "the number of workers must be from 0 to 64, not -1",
        ),
        (
            ["tui", "--workers", "two"],
            "kiosk tui: error: argument --workers: not a whole number: 'two'",
        ),
        (
            [*SCAN, "--max-yara-bytes", "0"],
            "kiosk scan: error: argument --max-yara-bytes: "
            "the YARA size cap must be more than 0 bytes, not 0",
        ),
    ],
)
def test_both_front_ends_refuse_a_bad_setting_as_a_usage_error(argv: list[str], line: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "kiosk", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert run.stderr.splitlines()[-1] == line
    assert run.stdout == ""


def test_the_engine_refuses_what_the_front_ends_refuse(tmp_path: Path) -> None:
    image = (SAMPLES / "fat16.dd",)
    for kw, message in (
        ({"workers": -1}, "the number of workers must be from 0 to 64, not -1"),
        ({"max_yara_bytes": 0}, "the YARA size cap must be more than 0 bytes, not 0"),
        ({"yara_timeout_s": -5}, "the YARA time limit must be more than 0 seconds, not -5"),
    ):
        with pytest.raises(ConfigError) as e:
            TriageRequest(CASE, image, None, None, tmp_path, **kw)  # type: ignore[arg-type]
        assert str(e.value) == message


def test_a_broken_kiosk_config_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("allow_self_authorisation = 1\n")
    with pytest.raises(ConfigError, match="must be true or false"):
        load_config(tmp_path)
    (tmp_path / "config.toml").write_text("workers = 4\n")
    with pytest.raises(ConfigError, match=r"unknown settings: \['workers'\]"):
        load_config(tmp_path)
