"""Work a scan need not do twice: the type and rule matches of content already seen.

Why: a real disk holds many byte-identical copies (the same DLL in several program folders,
a photo in Pictures and in a messaging app's media, installers in Downloads and a cache). The
libmagic type of a file is a function of its first bytes, and its rule matches a function of
its bytes -- unless a rule reads where the file is (``filename``, ``filepath``, ``extension``),
which ``kiosk.packs.load.uses_place_externals`` decides from the packs at compile time. So each
worker keeps, per SHA-256 of the bytes it read, the type and (when no rule reads a place
external) the matches, and gives them to the next file with the same SHA-256.

Why per worker and not one map in the parent: the result is a function of the content, so
whichever worker computes it, the record is the same bytes, and ``workers=0`` equals
``workers=2``. A shared map would cost a round trip per file; instead the scan sends copies to
the same worker (``kiosk.engine.dispatch``: same size, same home worker), so a per-worker map
sees them all but where balance comes first. Errors and timeouts are never remembered: a copy
is tried again.
Memory is bounded: after ``MAX_ENTRIES`` distinct contents nothing more is added.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.model import RuleMatch

MAX_ENTRIES = 200_000  # about 40 MB at most per worker (digest, type, a tuple of matches)


@dataclass(frozen=True, slots=True)
class Seen:
    mime: str
    matches: tuple[RuleMatch, ...] | None  # None: not matched yet, or rules read place externals


class ContentMemo:
    """SHA-256 -> what typing and matching that content gave, in one worker process."""

    def __init__(self, same_matches: bool) -> None:
        self._same_matches = same_matches  # no rule reads a per-file place external
        self._seen: dict[bytes, Seen] = {}

    def get(self, sha256: bytes) -> Seen | None:
        return self._seen.get(sha256)

    def mime(self, sha256: bytes, mime: str) -> None:
        """Remember the type; the matches, if any, come with ``matches``."""
        if sha256 not in self._seen and len(self._seen) < MAX_ENTRIES:
            self._seen[sha256] = Seen(mime, None)

    def matches(self, sha256: bytes, matches: tuple[RuleMatch, ...]) -> None:
        seen = self._seen.get(sha256)
        if self._same_matches and seen is not None:
            self._seen[sha256] = Seen(seen.mime, matches)
