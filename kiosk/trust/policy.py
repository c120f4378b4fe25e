"""Trust policy shared by rule packs and hash sets: which version is newer, and when a signature
may still be used. One rule each, so a pack and a set are never judged differently.

**Versions.** A kiosk keeps the highest version of each pack and set it has used (a version
ledger) and refuses an older one: a validly signed but outdated pack must not be slipped back in
(rollback). That needs a *total* order on version text that is consistent with equality: two
different version strings are never "the same version", or a publisher's ``1.0`` and ``1.0.0``
could be swapped for each other forever. The order (``version_key``):

* A version is read as runs of digits (numbers, compared as numbers: ``1.10`` > ``1.9``,
  ``2025.03.1`` = ``2025.3.1`` as numbers) and runs of letters (tags, compared without case);
  anything else (``.``, ``-``, ``_``, ``+``) only separates runs.
* Runs are compared in order. Where one version has a number and the other has ended, the
  longer is newer, as in dpkg and rpm: ``1`` < ``1.0`` < ``1.0.0`` < ``1.0.1``. A publisher
  who wrote ``1.0`` and then ``1.0.0`` meant a new release; calling them equal would let either
  replace the other.
* A tag marks a pre-release of what comes before it, as in PEP 440 and SemVer: it sorts below
  the end of the version and below any number, so ``1.0rc1`` < ``1.0rc2`` < ``1.0`` <
  ``1.0.1``, and ``1.0alpha`` < ``1.0beta``. A kiosk that tried a release candidate then accepts
  the release. (So a fix after ``1.0`` is ``1.0.1``, not ``1.0a``.)
* Versions that read the same but are written differently (``2025.03.1`` and ``2025.3.1``,
  ``1.0-rc1`` and ``1.0rc1``, ``RC`` and ``rc``) are ordered by their text, so only equal
  strings compare equal.

**Signatures.** ``signature_problem`` is the one rule for every signature the kiosk relies on:
rule packs and hash sets (at load), reports and reviews (at verification). A signature says when
it was made (a manifest's ``created``, a report's ``finished``, a review's ``time``), but that is
the signer's own claim. So:

* a claimed time more than ``CLOCK_SKEW`` after this machine's clock is refused, for reports
  and reviews (a report "finished" in 2099 is not a record of what happened). Manifests are
  judged against the scan's clock, which tests freeze; a future ``created`` gains a publisher
  nothing there (a revoked publisher's manifests are refused whatever their date, and the end
  of use is ``expires``), so they pass ``future_ok``;
* the key must have been valid at the claimed time (``TrustedKey.problem_at``);
* once a key is revoked, its signatures count only where something the key could not control
  proves they came before the revocation: an *anchor*, a time vouched for by another trusted key
  (``proven_before``) — for a report, a supervisor's review signed by another key before the
  revocation. Otherwise: "signed by a revoked key; signing time not proven". A stolen key could
  backdate anything it signs; only an anchor cannot be backdated by it. Packs and sets have no
  anchor: a revoked publisher's manifests are refused. (An audit-log checkpoint is written by the
  kiosk whose key signed the report, and no RFC 3161 time-stamping authority is configured, so
  neither counts as an anchor here.)
* a manifest past its ``expires`` is refused.

May import the leaves and ``kiosk.trust.signing``.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from kiosk.canonical import utc_text_seconds
from kiosk.errors import VerificationError
from kiosk.trust.signing import TrustedKey

# --------------------------------------------------------------------------- versions

_RUN = re.compile(r"[0-9]+|[A-Za-z]+")
# What can stand at one position of a version, lowest first: a tag, the end, a number.
_TAG, _END, _NUMBER = 0, 1, 2

VersionKey = tuple[tuple[tuple[int, int | str], ...], str]


def version_key(version: str) -> VersionKey:
    """A sort key for version text: the order described in this module's docstring.

    Each run becomes ``(_NUMBER, n)`` or ``(_TAG, text)`` and the end ``(_END, 0)``; tuples with
    the same first element hold the same type, so the comparison never mixes ints and strs. The
    text itself breaks ties, which makes the order consistent with string equality.
    """
    runs = tuple(
        (_NUMBER, int(r)) if r.isdigit() else (_TAG, r.lower()) for r in _RUN.findall(version)
    )
    return (*runs, (_END, 0)), version


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older than, the same as (only if ``a == b``) or newer than ``b``."""
    ka, kb = version_key(a), version_key(b)
    return (ka > kb) - (ka < kb)


def downgrade_problem(version: str, seen: str | None) -> str | None:
    """Why ``version`` may not be used when ``seen`` is the highest used here; None if it may."""
    if seen is not None and compare_versions(version, seen) < 0:
        return (
            f"version {version} is older than version {seen}, already used on this kiosk "
            "(downgrade refused)"
        )
    return None


# --------------------------------------------------------------------------- the ledger


@dataclass(frozen=True, slots=True)
class Used:
    """One pack or set version used now: its ledger key, version and content digest."""

    key: str
    version: str
    digest: str = ""


class LedgerLayout(Protocol):
    """How one ledger file lays out its entries.

    Two files exist in kiosk homes, each in its own layout (``rulepack-versions.json`` flat,
    ``hashset-versions.json`` nested with a digest and a time per set); they keep their bytes,
    so the layout is the only part that differs. ``kiosk.packs.sign`` and
    ``kiosk.hashsets.trust`` each define theirs.
    """

    @property
    def lock_name(self) -> str:
        """The lock file beside the ledger (its name in existing kiosk homes)."""

    def versions(self, data: Any) -> dict[str, str] | None:
        """Recorded version per key in the parsed file (None: absent); None if it is damaged."""

    def updated(self, data: Any, raised: list[Used], now: datetime) -> Any:
        """The whole file's new JSON value: ``data`` (None: absent) with ``raised`` recorded."""


class VersionLedger:
    """The highest version of each pack or set used on this kiosk, in one JSON file.

    Writes take an exclusive lock, re-read the file and only ever raise an entry, so two kiosk
    processes never lower or lose each other's entries. An unreadable or damaged file refuses
    everything (``VerificationError``): without it a downgrade cannot be told from an upgrade.
    Deleting the file resets the rollback guard on that kiosk: it is local state, protected like
    the audit log beside it.
    """

    def __init__(self, path: Path, layout: LedgerLayout) -> None:
        self.path = path
        self.layout = layout

    def _data(self) -> Any:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise VerificationError(
                f"the version record {self.path} is unreadable; downgrades cannot be checked"
            ) from e

    def _versions(self, data: Any) -> dict[str, str]:
        versions = self.layout.versions(data)
        if versions is None:
            raise VerificationError(
                f"the version record {self.path} is damaged; downgrades cannot be checked"
            )
        return versions

    def load(self) -> dict[str, str]:
        """Every recorded key and its highest version."""
        return self._versions(self._data())

    def highest(self, key: str) -> str | None:
        return self.load().get(key)

    def check(self, key: str, version: str) -> str | None:
        """Why ``version`` of ``key`` may not be used here (a downgrade), or None."""
        return downgrade_problem(version, self.highest(key))

    def record(self, used: Iterable[Used], now: datetime) -> None:
        """Raise each entry to the version used, never lower one; write only if one changed."""
        used = list(used)
        if not used:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path.with_name(self.layout.lock_name), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise VerificationError(
                f"cannot record versions in {self.path}: {e.strerror or e}"
            ) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = self._data()
            known = self._versions(data)
            raised: dict[str, Used] = {}
            for u in used:
                seen = raised[u.key].version if u.key in raised else known.get(u.key)
                if seen is None or compare_versions(u.version, seen) > 0:
                    raised[u.key] = u
            if raised:
                body = self.layout.updated(data, list(raised.values()), now)
                tmp = self.path.with_name(self.path.name + ".tmp")
                tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
                tmp.replace(self.path)
        except OSError as e:
            raise VerificationError(
                f"cannot record versions in {self.path}: {e.strerror or e}"
            ) from e
        finally:
            os.close(fd)


# --------------------------------------------------------------------------- signatures


CLOCK_SKEW = timedelta(minutes=5)  # how far a signing time may run ahead of this machine's clock
REVOKED_UNPROVEN = "signed by a revoked key; signing time not proven"


def signature_problem(
    key: TrustedKey,
    signed_at: datetime,
    now: datetime,
    *,
    expires: datetime | None = None,
    version: str = "",
    proven_before: datetime | None = None,
    claimed_by: str = "the manifest",
    future_ok: bool = False,
) -> str | None:
    """Why a signature by ``key`` claiming ``signed_at`` may not be relied on at ``now``; None
    if it may. The rules, first failing one reported (one line), are in the module docstring.

    ``expires``: a manifest's end of use (None: none, or not a manifest). ``proven_before``: an
    anchor, a time by which another trusted key shows the signature existed. ``claimed_by``
    names what states ``signed_at`` in the message ("the report"). ``future_ok``: manifests only
    (module docstring).
    """
    if signed_at > now + CLOCK_SKEW and not future_ok:
        minutes = int(CLOCK_SKEW.total_seconds() // 60)
        return (
            f"its signing time {utc_text_seconds(signed_at)} is in the future (more than "
            f"{minutes} minutes ahead of this machine's clock, {utc_text_seconds(now)})"
        )
    problem = key.problem_at(signed_at)
    if problem:
        return f"{problem}, when {claimed_by} says it was signed"
    revoked = key.revoked_at
    anchored = proven_before is not None and revoked is not None and proven_before < revoked
    if revoked is not None and now >= revoked and not anchored:
        return (
            f"{REVOKED_UNPROVEN} (key {key.keyid[:16]}… revoked at {utc_text_seconds(revoked)})"
        )
    if expires is not None and now >= expires:
        return (
            f"version {version} expired at {utc_text_seconds(expires)}; "
            "a newly signed version is needed"
        )
    return None
