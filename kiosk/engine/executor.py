"""What ``run_triage`` needs of a scan executor other than this machine's own worker pool.

A Protocol, not an import of the cluster module: the triage use case must not pull in Dask
(a second of imports, a web stack) for the kiosk's everyday one-machine scan.
``kiosk.engine.cluster`` is the one implementation; the front ends make it and hand it over in
``Hooks.executor``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Protocol

from kiosk.engine.scan import ScanConfig
from kiosk.model import FileResult, FileTask
from kiosk.reports.model import ClusterRecord


class TaskExecutor(Protocol):
    """Tasks in, one result per task out, in ``seq`` order, exactly as ``scan_tasks`` yields
    them; stops early (without the unfinished files) when ``cancel`` is set, raises a
    ``KioskError`` when it cannot go on (the run then ends failed, and says why)."""

    def scan(
        self, tasks: Iterable[FileTask], cfg: ScanConfig, cancel: threading.Event | None
    ) -> Iterator[FileResult]: ...

    def record(self) -> ClusterRecord:
        """What the report says about where the files were scanned."""
        ...

    def close(self) -> None:
        """Disconnect (and stop a cluster it started itself)."""
        ...
