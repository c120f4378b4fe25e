"""The walk of a hostile filesystem, run in its own process so a native crash cannot take the kiosk.

Partition tables, filesystem structures and directories are parsed by the Sleuth Kit in C. A
crafted image can crash that code; in the main process the crash would end the run with no
report at all. So the survey (media and volumes) and the walk itself happen in a child process,
which streams ``FileTask`` batches back over a pipe as it walks (the pipe's back-pressure keeps
memory flat). There is no counting walk first: the image is walked once, and the scan's progress
counts against what the walk has found so far. If the child dies, the main process still holds
everything sent so far: the scan goes on with those files, and the report says the walk was cut
short and why.

The officer's app uses the same child for its preflight screen (``count=False``: media and
volumes only, then the child exits), so a hostile image is never parsed in the app's process.
"""

from __future__ import annotations

import contextlib
import threading
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


@dataclass(frozen=True, slots=True)
class Survey:
    """What the image is made of: the media as opened and every region, examined or not."""

    media: MediaRecord
    volumes: list[VolumeRecord]


def _child(conn: Connection, ref: EvidenceRef, count: bool) -> None:
    """Entry point of the walker process: the survey, then (``count``) the walk, streamed.

    The walk starts as soon as the scan says which user areas to find first (``order``: it
    knows them once its rules are loaded, while the survey is being made): its batches wait in
    the pipe (whose back-pressure keeps memory flat) until the scan reads them, so the first
    files reach the workers as soon as they are ready, not after a counting walk of the whole
    image. The size of the area pieces comes with the scan's first read; the areas follow the
    files."""
    try:
        with Evidence(ref) as ev:
            volumes = ev.volumes()
            conn.send(("survey", Survey(ev.record, volumes)))
            if not count:
                return
            asked = conn.recv()
            first = tuple(asked[1]) if isinstance(asked, tuple) and asked[0] == "order" else ()
            problems: list[WalkProblem] = []
            batch: list[FileTask] = []
            last = 0
            for t in ev.walk(volumes, problems, first=first):
                batch.append(t)
                last = t.seq
                if len(batch) >= BATCH:
                    conn.send(("tasks", batch))
                    batch = []
            conn.send(("tasks", batch))
            batch = []
            asked = conn.recv()
            if not (isinstance(asked, tuple) and asked[0] == "walk"):
                return
            # byte areas (unallocated space, outside partitions) follow the files, numbered on
            for t in ev.areas(volumes, int(asked[1]), last) if asked[1] else ():
                batch.append(t)
                if len(batch) >= BATCH:
                    conn.send(("tasks", batch))
                    batch = []
            conn.send(("tasks", batch))
            conn.send(("done", problems))
    except KioskError as e:
        conn.send(("error", (str(e), e.detail)))
    except (EOFError, ConnectionError):  # a broken pipe, or a reset when the main process
        pass  # closed with our batches unread (the rules were refused): nothing left to do
    except Exception as e:  # reported to the main process as a one-line image error
        conn.send(("error", f"the image could not be parsed ({type(e).__name__}: {e})"))


def _how(proc: Any) -> str:
    proc.join(2)
    code = proc.exitcode
    return f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"


class Walker:
    """One walk of one image in a child process. Use as a context manager.

    The child surveys the image (media, volumes: ``survey()``), then walks it, streaming tasks;
    ``count=False`` stops after the survey (the app's preflight screen). The child starts at
    once: a scan starts it before loading its rules, so the survey and the first batches are
    ready when the workers are (issue 19: time to first finding). While the walk streams,
    ``files_found``/``bytes_found`` are what it has found so far: the scan's progress counts
    against them, and they are the image's totals once the walk is done.
    """

    def __init__(self, ref: EvidenceRef, count: bool = True) -> None:
        ctx = helper_context()
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_child,
            args=(child, ref, count),
            name="kiosk-walker",
            daemon=True,
        )
        self._start_error: BaseException | None = None

        def start() -> None:
            try:
                self._proc.start()
            except BaseException as e:  # raised again by the first use
                self._start_error = e
            finally:
                child.close()

        # A fork from the helpers' server waits for the server's own imports when it has only
        # just been started (a fresh process): the caller loads its rules meanwhile.
        self._starter = threading.Thread(target=start, name="walker-start", daemon=True)
        self._starter.start()
        self.files_found = 0  # file tasks received so far (areas are not files)
        self.bytes_found = 0
        self.done = False  # the walk reached its end (not cut short)
        self.crash: str = ""  # why the walk was cut short, if it was
        self._ordered = False

    def _started(self) -> None:
        """Wait for the child's start; raise what stopped it, if anything did."""
        self._starter.join()
        if self._start_error is not None:
            raise self._start_error

    @property
    def pid(self) -> int | None:
        """The walker process's id (for operators and tests that need to stop it)."""
        self._started()
        pid: int | None = self._proc.pid
        return pid

    def __enter__(self) -> Walker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def survey(self) -> Survey:
        """Media and volumes; raises ImageError with the reason, or if the parser crashed."""
        found: Survey = self._first_answer()
        return found

    def _first_answer(self) -> Any:
        self._started()
        try:
            kind, payload = self._conn.recv()
        except (EOFError, ConnectionError) as e:
            raise ImageError(
                "the image's partition tables or filesystems could not be parsed: the parser "
                f"crashed ({_how(self._proc)})"
            ) from e
        if kind == "error":
            message, detail = payload if isinstance(payload, tuple) else (payload, "")
            raise ImageError(message, detail=detail)
        return payload

    def order(self, first: tuple[str, ...]) -> None:
        """Start the walk, entering the folders of these user areas first (``Evidence.walk``);
        once only, before ``tasks`` (which starts it in plain order otherwise)."""
        if self._ordered:
            return
        self._started()
        self._ordered = True
        with contextlib.suppress(OSError):  # it died: tasks() says how
            self._conn.send(("order", tuple(first)))

    def tasks(self, problems: list[WalkProblem], areas: int = 0) -> Iterator[FileTask]:
        """Every file stream the walk finds, in walk order; a crash ends the stream, recorded.

        ``areas``: after the files, area tasks of at most that many bytes each
        (``Evidence.areas``); 0 for none."""
        self.order(())
        self._conn.send(("walk", areas))
        seen = 0
        last: FileTask | None = None
        while True:
            try:
                kind, payload = self._conn.recv()
            except (EOFError, ConnectionError):  # a reset: it died with our request unread
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
                self.done = True
                return
            if kind == "error":
                message = payload[0] if isinstance(payload, tuple) else payload
                self.crash = f"the walk stopped: {message}"
                problems.append(WalkProblem(last.volume if last else 0, "/", 0, self.crash))
                return
            for t in payload:
                seen += 1
                last = t
                if t.area is None:
                    self.files_found += 1
                    self.bytes_found += t.size
                yield t

    def close(self) -> None:
        self._starter.join()
        with contextlib.suppress(OSError):
            self._conn.close()
        if self._start_error is not None:
            return  # never started: nothing to stop
        self._proc.join(1)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
