"""The kiosk terminal app (Textual). This module only wires ``kiosk tui`` into the CLI.

Textual is imported only inside ``run_app``, so ``kiosk scan`` and the other headless commands
never load it (tests/tui/test_cli_tui.py checks this in a fresh interpreter).

Settings come from the command line; every folder is relative to where ``kiosk`` is started:
``--evidence`` (default ``sample_images``: images offered for triage), ``--reports`` (default
``reports``), ``--rules`` (default ``rules``), ``--hashsets`` (default ``hashsets``). The signing
key, trust store, policy (``config.toml``) and audit log are in ``$KIOSK_HOME``. The kiosk id
shown on the home screen is ``--kiosk-id`` or, by default, the host name followed by the first
8 characters of the signing key id.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kiosk.config import DEFAULT_WORKERS, check_workers, int_argument


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``kiosk tui`` subcommand and its options."""
    t = sub.add_parser("tui", help="the officer's and supervisor's terminal app (the default)")
    t.add_argument("--evidence", type=Path, default=Path("sample_images"), help="evidence folder")
    t.add_argument("--reports", type=Path, default=Path("reports"), help="reports folder")
    t.add_argument("--rules", type=Path, default=Path("rules"), help="rule packs directory")
    t.add_argument("--hashsets", type=Path, default=Path("hashsets"), help="hash sets directory")
    t.add_argument(
        "--workers",
        type=int_argument(check_workers),
        default=DEFAULT_WORKERS,
        help=f"scan worker processes; 0 scans inline (default {DEFAULT_WORKERS})",
    )
    t.add_argument("--kiosk-id", help="this kiosk's id (default: host name + key id prefix)")


def run_app(args: argparse.Namespace) -> int:
    """Start the app in this terminal; 2 when there is no terminal to start it in."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print(  # noqa: T201 - the CLI's output is its interface
            "kiosk: error: the terminal app needs an interactive terminal; "
            "use 'kiosk scan' for a headless scan",
            file=sys.stderr,
        )
        return 2
    from kiosk.tui.app import default_settings, make_app

    settings = default_settings(
        evidence_dir=args.evidence,
        reports_dir=args.reports,
        rules_dir=args.rules,
        hashsets_dir=args.hashsets,
        workers=args.workers,
        kiosk_id=args.kiosk_id,
    )
    make_app(settings).run()
    return 0
