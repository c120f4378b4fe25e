"""A Dask worker preload for the cluster tests: faults injected by file, from outside the engine.

The suite starts its workers with ``--preload`` of this file; production workers never load it.
It wraps ``Scanner.scan`` in the worker process so that, for one evidence name and file path
named in the worker's environment:

- ``KIOSK_TEST_POISON=NAME:PATH`` kills the worker (SIGKILL) every time it reaches that file,
  as a file that crashes native parsing would;
- ``KIOSK_TEST_HANG=NAME:PATH=MARKER`` makes the first worker that reaches it write its pid to
  MARKER (created exclusively, so only once) and sleep, so the test can kill it mid-file.
"""

from __future__ import annotations

import os
import signal
import time

from kiosk.engine import scan as _scan
from kiosk.model import FileResult, FileTask

# Dask may import a preload more than once in a process: wrap the engine's own method, once.
_original = getattr(_scan.Scanner, "_unfaulted_scan", _scan.Scanner.scan)
_scan.Scanner._unfaulted_scan = _original  # type: ignore[attr-defined]


def _faulty(self: _scan.Scanner, task: FileTask) -> FileResult:
    where = f"{self._cfg.evidence.name}:{task.path}"
    if os.environ.get("KIOSK_TEST_POISON") == where:
        os.kill(os.getpid(), signal.SIGKILL)
    hang = os.environ.get("KIOSK_TEST_HANG", "")
    target, _, marker = hang.partition("=")
    if hang and target == where:
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # a later try of the same file: behave
        else:
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            time.sleep(120)
    return _original(self, task)


_scan.Scanner.scan = _faulty  # type: ignore[method-assign]
