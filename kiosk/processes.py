"""How kiosk starts its helper processes (scan workers, the walker): forked from a warm server.

Why: a spawned process is a fresh interpreter that imports kiosk again -- its engine, the
Sleuth Kit, libmagic, both YARA engines, libarchive, numpy -- about half a second of CPU each,
and under ``spawn`` it first re-runs the main script (for the ``kiosk`` command that is the whole
command line, Textual and Dask included). On a two-core kiosk, three such starts per scan were a
measurable part of a small image's CPU (bench/README.md, issue 19). The ``forkserver`` start
method starts one clean, single-threaded server process the first time it is needed; the
server imports the modules named here once, and every helper after that is a fork of it: no
imports, pages shared, ready at once. Later scans in the same process (the app, ``kiosk
batch``) reuse the server. A helper would still re-run the main script to rebuild ``__main__``
(CPython 3.11's forkserver never hands the server the main script's path, so it cannot preload
it): the ``kiosk`` command therefore presents itself as ``python -m kiosk`` does
(``kiosk.cli.main``), which multiprocessing leaves alone; helpers need nothing from it.

Why not plain ``fork``: the scanning process has threads (the media hasher, the app's worker,
Dask's), and forking a threaded process can leave a lock held forever in the child. The server
has no threads. A helper still gets everything it needs as arguments (its configuration is
pickled, as under ``spawn``), never from the server's environment, which may be older than the
scan: tests and the app change ``KIOSK_HOME`` between scans.

May import: the standard library only (a leaf: the evidence layer and the engine both use it).
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import ForkServerContext

# What the server imports before its first fork: the helpers' own code.
PRELOAD = ("kiosk.engine.scan", "kiosk.evidence.walker")


def helper_context() -> ForkServerContext:
    """The context every kiosk helper process is started from."""
    ctx = multiprocessing.get_context("forkserver")
    if not isinstance(ctx, ForkServerContext):  # never: the name always gives one (for mypy)
        raise TypeError(f"unexpected multiprocessing context {ctx!r}")
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def tune_allocator() -> bool:
    """Keep freed memory for the next file instead of handing it back and faulting it in again.

    Why: a scan allocates and frees the same large buffers for every file -- reads of up to
    1 MiB, the YARA buffer up to the cap, 16 MiB windows. With glibc's defaults each large one
    is a fresh ``mmap`` (or the heap is trimmed after it), so every file pays page faults and
    zeroing for memory it just gave back: about 6 % of a small-file scan's CPU (bench/README.md).
    Buffers up to 32 MiB (glibc's most) now come from the heap, which keeps 64 MiB of slack and
    is trimmed only beyond 256 MiB. The price is a resident set that stays near the largest
    file's buffers, which a scan holds at its peak anyway. Not glibc: nothing changes (False).
    """
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return all(
        mallopt(param, value) == 1
        for param, value in (
            (_M_MMAP_THRESHOLD, 32 << 20),
            (_M_TOP_PAD, 64 << 20),
            (_M_TRIM_THRESHOLD, 256 << 20),
        )
    )


def warm_up() -> None:
    """Start the helpers' server now, without waiting for it: its imports (about half a second)
    then overlap the scan's own start-up -- loading rules and hash sets -- instead of delaying
    the walker's preflight and so the first file (issue 19: time to first finding)."""
    from multiprocessing import forkserver

    helper_context()
    forkserver.ensure_running()
