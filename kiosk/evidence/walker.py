"""The walk of a hostile filesystem, run in its own process so a native crash cannot take the kiosk.

Partition tables, filesystem structures and directories are parsed by the Sleuth Kit in C. A
crafted image can crash that code; in the main process the crash would end the run with no
report at all. So the preflight (volumes and the metadata-only count) and the walk itself happen
in a child process, which streams ``FileTask`` batches back over a pipe (the pipe's back-pressure
keeps memory flat). If the child dies, the main process still holds everything sent so far: the
scan goes on with those files, and the report says the walk was cut short and why.

The officer's app uses the same child for its preflight screen (``count=False``: media and
volumes only, then the child exits), so a hostile image is never parsed in the app's process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from kiosk.errors import ImageError, KioskError
from kiosk.evidence.image import Evidence
from kiosk.evidence.resolve import EvidenceRef
from kiosk.model import FileTask, MediaRecord, VolumeRecord, WalkProblem
from kiosk.processes import helper_context

BATCH = 512
# Up to this many tasks (about 25 MB) the counting walk is kept and replayed as the scan's walk,
# instead of parsing every directory a second time; a bigger image is walked twice.
KEEP_TASKS = 100_000


@dataclass(frozen=True, slots=True)
class Survey:
    """What the image is made of: the media as opened and every region, examined or not."""

    media: MediaRecord
    volumes: list[VolumeRecord]


@dataclass(frozen=True, slots=True)
class Preflight:
    """What the image holds, before any content is read."""

    media: MediaRecord
    volumes: list[VolumeRecord]
    files_total: int
    bytes_total: int


def _child(conn: Connection, ref: EvidenceRef, keep: int, count: bool) -> None:
    """Entry point of the walker process: preflight, then the walk when asked (with the size of
    its area pieces: the scan knows it only once the rules are loaded, which the preflight need
    not wait for)."""
    try:
        with Evidence(ref) as ev:
            volumes = ev.volumes()
            if not count:
                conn.send(("survey", Survey(ev.record, volumes)))
                return
            files = size = 0
            kept: list[FileTask] | None = []  # the first walk, replayed if it is small enough
            problems: list[WalkProblem] = []
            for t in ev.walk(volumes, problems):
                files += 1
                size += t.size
                if kept is not None:
                    kept.append(t)
                    if len(kept) > keep:
                        kept = None
            conn.send(("preflight", Preflight(ev.record, volumes, files, size)))
            asked = conn.recv()
            if not (isinstance(asked, tuple) and asked[0] == "walk"):
                return
            areas = int(asked[1])
            if kept is None:  # too many to hold: walk again, reading the same metadata
                problems = []
            batch: list[FileTask] = []
            last = 0
            for t in kept if kept is not None else ev.walk(volumes, problems):
                batch.append(t)
                last = t.seq
                if len(batch) >= BATCH:
                    conn.send(("tasks", batch))
                    batch = []
            # byte areas (unallocated space, outside partitions) follow the files, numbered on
            for t in ev.areas(volumes, areas, last) if areas else ():
                batch.append(t)
                if len(batch) >= BATCH:
                    conn.send(("tasks", batch))
                    batch = []
            conn.send(("tasks", batch))
            conn.send(("done", problems))
    except KioskError as e:
        conn.send(("error", (str(e), e.detail)))
    except (EOFError, ConnectionError):  # a broken pipe, or a reset when the main process
        pass  # closed with our preflight unread (the rules were refused): nothing left to do
    except Exception as e:  # reported to the main process as a one-line image error
        conn.send(("error", f"the image could not be parsed ({type(e).__name__}: {e})"))


def _how(proc: Any) -> str:
    proc.join(2)
    code = proc.exitcode
    return f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"


class Walker:
    """One walk of one image in a child process. Use as a context manager.

    ``count=False``: the child lists the media and volumes (``survey()``) and stops; there is
    no counting walk and no walk. The child starts at once: a scan starts it before loading its
    rules, so the preflight runs on the other core meanwhile (issue 19: time to first finding).
    """

    def __init__(self, ref: EvidenceRef, keep: int = KEEP_TASKS, count: bool = True) -> None:
        ctx = helper_context()
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_child,
            args=(child, ref, keep, count),
            name="kiosk-walker",
            daemon=True,
        )
        self._proc.start()
        child.close()
        self.crash: str = ""  # why the walk was cut short, if it was

    @property
    def pid(self) -> int | None:
        """The walker process's id (for operators and tests that need to stop it)."""
        pid: int | None = self._proc.pid
        return pid

    def __enter__(self) -> Walker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def preflight(self) -> Preflight:
        """Volumes and totals; raises ImageError with the reason, or if the parser crashed."""
        pre: Preflight = self._first_answer()
        return pre

    def survey(self) -> Survey:
        """Media and volumes (a Walker made with ``count=False``); raises like ``preflight``."""
        found: Survey = self._first_answer()
        return found

    def _first_answer(self) -> Any:
        try:
            kind, payload = self._conn.recv()
        except EOFError as e:
            raise ImageError(
                "the image's partition tables or filesystems could not be parsed: the parser "
                f"crashed ({_how(self._proc)})"
            ) from e
        if kind == "error":
            message, detail = payload if isinstance(payload, tuple) else (payload, "")
            raise ImageError(message, detail=detail)
        return payload

    def tasks(self, problems: list[WalkProblem], areas: int = 0) -> Iterator[FileTask]:
        """Every file stream the walk finds, in walk order; a crash ends the stream, recorded.

        ``areas``: after the files, area tasks of at most that many bytes each
        (``Evidence.areas``); 0 for none."""
        self._conn.send(("walk", areas))
        seen = 0
        last: FileTask | None = None
        while True:
            try:
                kind, payload = self._conn.recv()
            except EOFError:
                self.crash = (
                    f"the process walking the filesystems crashed ({_how(self._proc)}) after "
                    f"{seen} entries; the rest of the image was not listed"
                )
                problems.append(
                    WalkProblem(
                        last.volume if last else 0,
                        last.path if last else "/",
                        last.inode if last else 0,
                        self.crash,
                    )
                )
                return
            if kind == "done":
                problems.extend(payload)
                return
            if kind == "error":
                message = payload[0] if isinstance(payload, tuple) else payload
                self.crash = f"the walk stopped: {message}"
                problems.append(WalkProblem(last.volume if last else 0, "/", 0, self.crash))
                return
            for t in payload:
                seen += 1
                last = t
                yield t

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.close()
        self._proc.join(1)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
