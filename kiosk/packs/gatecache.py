"""The module gate kept beside the compiled rules in the kiosk's own cache.

Building the gate (``kiosk.packs.gate``) reads every rule's condition and compiles a second,
reduced set: for a 6,000-rule imported collection that is seconds on every scan start, more
than loading the compiled rules themselves. The reduced set depends on exactly what the full
set depends on, so it is cached under the same key (``<key>-gate``), with the same HMAC
(``kiosk.packs.cache``): a missing, foreign or altered entry is rebuilt from source, never
trusted. "No gating possible" is cached too, so it is not searched for again.
"""

from __future__ import annotations

import io
from typing import Any

import yara

from kiosk.packs.cache import RulesCache
from kiosk.packs.gate import Gate

ABSENT = "absent"  # nothing cached (or the entry was refused): build the gate


def cached_gate(cache: RulesCache, key: str) -> tuple[Gate | str | None, str | None]:
    """The cached gate (or None: no gating), ``ABSENT``, and why an entry was refused."""
    entry, rejected = cache.load(f"{key}-gate")
    if entry is None:
        return ABSENT, rejected
    head: dict[str, Any] = entry.header
    try:
        if not head["gated"]:
            return None, None
        prefixes = tuple(bytes.fromhex(p) for p in head["prefixes"])
        gated = tuple((str(ns), str(r)) for ns, r in head["gated"])
        return Gate(yara.load(file=io.BytesIO(entry.blob)), prefixes, gated), None
    except (yara.Error, KeyError, TypeError, ValueError) as e:
        return ABSENT, f"unusable: {e}"


def store_gate(cache: RulesCache, key: str, gate: Gate | None) -> str | None:
    """Keep ``gate`` for the next load; returns why it could not be written, or None."""
    if gate is None:
        return cache.store(f"{key}-gate", b"", {"gated": [], "prefixes": []})
    buf = io.BytesIO()
    gate.reduced.save(file=buf)
    head = {"gated": [list(g) for g in gate.gated], "prefixes": [p.hex() for p in gate.prefixes]}
    return cache.store(f"{key}-gate", buf.getvalue(), head)
