"""The ``kiosk`` command's first step: start the helpers' server, then load the command line.

Why: the command line imports most of kiosk (about 0.4 s of one core here) before it reads its
arguments, and a scan's helpers (the walker, the workers) are forked from a server that imports
the engine for itself (about 0.35 s more, ``kiosk.processes``). Started here, before the
command line is imported, the server's imports run on the other core at the same time instead
of after them: a scan's first file is reached that much sooner, and on a two-core kiosk the
second core is not left idle while the first imports (issue 19). Only the commands that scan
start it; the others never fork a helper.
"""

from __future__ import annotations

import sys

SCANNING = frozenset({"scan", "batch", "tui"})  # and no command at all: the app


def main() -> int:
    args = sys.argv[1:]
    if not args or args[0] in SCANNING:
        from kiosk.processes import warm_up

        warm_up()
    from kiosk.cli.main import main as command_line

    return command_line()
