"""How kiosk starts its helper processes (scan workers, the walker): forked from a warm server.

Why: a spawned process is a fresh interpreter that imports kiosk again -- its engine, the
Sleuth Kit, libmagic, both YARA engines, libarchive, numpy -- about half a second of CPU each,
and under ``spawn`` it first re-runs the main script (for the ``kiosk`` command that is the whole
command line, Textual and Dask included). On a two-core kiosk, three such starts per scan were a
measurable part of a small image's CPU (bench/README.md, issue 19). The ``forkserver`` start
method starts one clean, single-threaded server process the first time it is needed; the
server imports the main module and the modules named here once, and every helper after that is
a fork of it: no imports, pages shared, ready at once. Later scans in the same process (the
app, ``kiosk batch``) reuse the server.

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

# What the server imports before its first fork: the main module (so a helper does not run the
# main script again, ``multiprocessing.spawn._fixup_main_from_path``) and the helpers' own code.
PRELOAD = ("__main__", "kiosk.engine.scan", "kiosk.evidence.walker")


def helper_context() -> ForkServerContext:
    """The context every kiosk helper process is started from."""
    ctx = multiprocessing.get_context("forkserver")
    if not isinstance(ctx, ForkServerContext):  # never: the name always gives one (for mypy)
        raise TypeError(f"unexpected multiprocessing context {ctx!r}")
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx
