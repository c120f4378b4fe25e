"""``kiosk`` and ``kiosk tui``: the app starts only in a terminal, and headless commands never
load Textual."""

from __future__ import annotations

import json
import subprocess
import sys

from kiosk.cli.main import build_parser, main


def test_kiosk_alone_means_the_terminal_app_and_needs_a_terminal() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "kiosk"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 2
    assert "needs an interactive terminal" in run.stderr
    assert "kiosk scan" in run.stderr


def test_tui_options_have_defaults_relative_to_the_working_folder() -> None:
    args = build_parser().parse_args(["tui"])
    assert str(args.evidence) == "sample_images"
    assert str(args.reports) == "reports"
    assert str(args.rules) == "rules"
    assert str(args.hashsets) == "hashsets"
    assert main(["tui", "--evidence", "x"]) == 2  # pytest's stdin is not a terminal


def test_headless_commands_do_not_import_textual() -> None:
    code = (
        "import json, sys\n"
        "from kiosk.cli.main import main\n"
        "main(['report', 'verify', '/nonexistent'])\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=True, text=True, timeout=60
    )
    modules = set(json.loads(out.stdout.splitlines()[-1]))
    assert "kiosk.cli.main" in modules
    assert "kiosk.tui" in modules  # only its argparse hook
    assert not {m for m in modules if m.split(".")[0] in ("textual", "rich")}
    assert "kiosk.tui.app" not in modules
