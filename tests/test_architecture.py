"""The core never pulls in a front end: checked in a fresh interpreter, not by reading imports."""

from __future__ import annotations

import json
import subprocess
import sys


def test_triage_core_imports_no_front_end() -> None:
    code = "import json, sys, kiosk.engine.triage; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    modules = set(json.loads(out.stdout))
    assert "kiosk.engine.triage" in modules
    assert "kiosk.engine.scan" in modules
    assert not {m for m in modules if m.split(".")[0] in ("textual", "rich")}
    assert "kiosk.cli.main" not in modules
