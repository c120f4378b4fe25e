"""User areas first: the files an officer is most likely to find evidence in are scanned first.

Why: on a seized computer or phone the findings are mostly in what its users made or received
-- home folders, Desktop, Documents, Downloads, Pictures, camera rolls, messaging media -- and
an officer waiting at the kiosk wants the first one on screen long before the operating
system's thousands of files are done. The walk still covers everything and every file is
still scanned; only the order changes: files whose path lies in a user area go first, each
group in walk order, and the sequence numbers follow that order. So the report and the
inventory list files in that order, the same for the same evidence and packs (and the same
for ``workers=0`` and ``workers=2``).

Where the areas come from: the packs' ``priority_areas`` in ``pack.toml`` (a pack knows where
its findings live), or ``--priority-areas`` given for the run. An area is a sequence of path
components, matched without regard to case anywhere in the path: ``Users`` matches
``/Users/bob/x.jpg``, ``WhatsApp/Media`` matches ``/sdcard/WhatsApp/Media/IMG-1.jpg``.

Memory: the files outside the areas are held until the walk ends, at most ``MAX_HELD`` of
them (about 100 MB); past that the held ones are released in walk order and the rest of the
walk streams as it comes -- still deterministic, as the cut-off depends on the walk alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator

from kiosk.model import FileTask

MAX_HELD = 400_000
# What a force would start with (README): Windows, macOS and Linux homes, the usual user
# folders, phone camera rolls and messaging apps' media.
SUGGESTED_AREAS = (
    "Users",
    "home",
    "Documents and Settings",
    "Desktop",
    "Documents",
    "Downloads",
    "Pictures",
    "DCIM",
    "WhatsApp/Media",
    "Telegram",
    "Signal",
)


def _parts(area: str) -> tuple[str, ...]:
    return tuple(p.casefold() for p in area.strip("/").split("/") if p)


def in_areas(path: str, areas: tuple[tuple[str, ...], ...]) -> bool:
    """Whether ``path``'s components contain one of ``areas`` (case-folded) in a row.

    As text: the folders of the path and each area joined with ``/`` and framed by ``/``, so a
    substring test matches whole components only (a component never holds ``/``, and case
    folding never makes one). One call per file in the walk: a tenth of the per-component
    comparison it replaced."""
    comps = [c for c in path.casefold().split("/") if c]
    folders = "/" + "/".join(comps[:-1]) + "/"  # the last component is the file itself
    return any(f"/{'/'.join(area)}/" in folders for area in areas)


def prioritise(
    tasks: Iterable[FileTask],
    areas: tuple[str, ...],
    on_rest: Callable[[], None] | None = None,
) -> Iterator[FileTask]:
    """``tasks`` with those in ``areas`` first; sequence numbers renumbered in that order.

    ``on_rest`` is called once, just before the first task outside the areas is given out (at
    once when there are no areas): the user-area phase is over. The scan lets the
    image's hash run freely from then on (``kiosk.engine.mediahash``)."""
    rest = _Once(on_rest)
    wanted = tuple(a for a in (_parts(x) for x in areas) if a)
    if not wanted:  # no user-area phase: over before it starts
        rest()
        yield from tasks
        return
    held: list[FileTask] = []
    seq: int | None = None
    streaming = False
    for t in tasks:
        if seq is None:
            seq = t.seq
        if streaming or in_areas(t.path, wanted):  # streaming: rest() was called already
            yield _renumbered(t, seq)
            seq += 1
        else:
            held.append(t)
            if len(held) >= MAX_HELD:
                streaming = True
                rest()
                for h in held:
                    yield _renumbered(h, seq)
                    seq += 1
                held = []
    if held:
        rest()
    for h in held:
        assert seq is not None  # noqa: S101 - set by the first task, and held is not empty
        yield _renumbered(h, seq)
        seq += 1


def _renumbered(t: FileTask, seq: int) -> FileTask:
    """``t`` with sequence number ``seq``; itself when it has it already (the walk enters the
    user areas first, so most tasks keep their number: a copy each was 8 us of the parent's
    time per file)."""
    return t if t.seq == seq else dataclasses.replace(t, seq=seq)


class _Once:
    """Calls ``fn`` the first time it is called, never again."""

    def __init__(self, fn: Callable[[], None] | None) -> None:
        self._fn = fn

    def __call__(self) -> None:
        if self._fn is not None:
            fn, self._fn = self._fn, None
            fn()
