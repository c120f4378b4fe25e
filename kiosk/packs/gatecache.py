"""The module gate kept beside the compiled rules in the kiosk's own cache.

Building the gate (``kiosk.packs.gate``) reads every rule's condition and compiles a second,
reduced set: for a 6,000-rule imported collection that is seconds on every scan start, more
than loading the compiled rules themselves. The reduced set depends on exactly what the full
set depends on, so it is cached under the same key (``<key>-gate``), with the same HMAC
(``kiosk.packs.cache``): a missing, foreign or altered entry is rebuilt from source, never
trusted. "No gating possible" is cached too, so it is not searched for again.
"""

from __future__ import annotations

from typing import Any

from kiosk.errors import RulesError
from kiosk.packs.cache import RulesCache
from kiosk.packs.engines import Engine
from kiosk.packs.gate import Gate

ABSENT = "absent"  # nothing cached (or the entry was refused): build the gate


def cached_gate(
    cache: RulesCache, key: str, eng: Engine
) -> tuple[tuple[Gate, Any] | str | None, str | None]:
    """The cached gate with the engine's reduced set (None: no gating), or ``ABSENT``, and why
    an entry was refused."""
    entry, rejected = cache.load(f"{key}-gate", eng.label)
    if entry is None:
        return ABSENT, rejected
    head: dict[str, Any] = entry.header
    try:
        if not head["gated"]:
            return None, None
        prefixes = tuple(bytes.fromhex(p) for p in head["prefixes"])
        gated = tuple((str(ns), str(r)) for ns, r in head["gated"])
        reduced = eng.load(entry.blob)
        return (Gate(reduced, prefixes, gated), reduced), None
    except (RulesError, KeyError, TypeError, ValueError) as e:
        return ABSENT, f"unusable: {e}"


def store_gate(
    cache: RulesCache, key: str, eng: Engine, gate: Gate | None, reduced: Any
) -> str | None:
    """Keep ``gate`` and the engine's ``reduced`` set; returns why it could not be written."""
    if gate is None or reduced is None:
        return cache.store(f"{key}-gate", b"", {"gated": [], "prefixes": []}, eng.label)
    head = {"gated": [list(g) for g in gate.gated], "prefixes": [p.hex() for p in gate.prefixes]}
    return cache.store(f"{key}-gate", eng.save(reduced), head, eng.label)
