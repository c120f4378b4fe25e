"""What a newer snapshot of a collection changes, shown before anyone signs it.

Following upstream means taking hundreds of rule changes at once. Forensic staff sign what
they reviewed, so the import prints — and keeps in the pack as ``changes.txt`` — the rules
added, removed and changed (by the text of the rule itself, from ``rule`` to its closing
brace: a moved file or an edited comment between rules is not a change), the rules newly
quarantined with the reason, and those that left quarantine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from kiosk.packs.check import PackCheck, PackSource
from kiosk.packs.collection import parse_rule_file
from kiosk.packs.imported import Quarantined


@dataclass(frozen=True, slots=True)
class PackDiff:
    """Rule names, sorted; quarantined rules with their reasons."""

    old_version: str | None  # None: a first import
    added: tuple[str, ...]  # in the collection now, not before (active ones)
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    newly_quarantined: tuple[Quarantined, ...]  # active before (or new) and left out now
    released: tuple[str, ...]  # left out before, active now

    @property
    def empty(self) -> bool:
        return not (
            self.added or self.removed or self.changed or self.newly_quarantined or self.released
        )

    def lines(self) -> list[str]:
        """The difference as staff read it: one heading per kind, one rule per line."""
        if self.old_version is None:
            return ["first import of this collection: no earlier version to compare with"]
        if self.empty:
            return [f"no rule changed since version {self.old_version}"]
        out = [f"changes since version {self.old_version}:"]
        for title, names in (
            ("rules added", self.added),
            ("rules removed", self.removed),
            ("rules changed", self.changed),
            ("rules no longer quarantined", self.released),
        ):
            if names:
                out.append(f"  {title} ({len(names)}):")
                out += [f"    {n}" for n in names]
        if self.newly_quarantined:
            out.append(f"  rules newly quarantined ({len(self.newly_quarantined)}):")
            out += [f"    {q.rule} ({q.file}): {q.reason}" for q in self.newly_quarantined]
        return out


def rule_digests(src: PackSource) -> dict[str, str]:
    """Each rule's SHA-256 over its own text (header to closing brace); first definition wins."""
    out: dict[str, str] = {}
    for path, text in src.sources:
        f = parse_rule_file(path, text)
        for r in f.rules:
            close = f.masked.rfind("}", r.start, r.end)
            body = text[r.start : close + 1 if close >= 0 else r.end].strip()
            out.setdefault(r.name, hashlib.sha256(body.encode()).hexdigest())
    return out


def diff_packs(
    old: tuple[PackSource, PackCheck] | None, new: tuple[PackSource, PackCheck]
) -> PackDiff:
    """Compare two examined snapshots of one imported pack."""
    new_src, new_check = new
    new_rules = rule_digests(new_src)
    new_left = {q.rule: q for q in new_check.quarantined}
    if old is None:
        return PackDiff(None, (), (), (), (), ())
    old_src, old_check = old
    old_rules = rule_digests(old_src)
    old_left = {q.rule for q in old_check.quarantined}
    added = sorted(n for n in new_rules if n not in old_rules and n not in new_left)
    removed = sorted(n for n in old_rules if n not in new_rules)
    changed = sorted(n for n in new_rules if n in old_rules and new_rules[n] != old_rules[n])
    newly = sorted(
        (q for n, q in new_left.items() if n not in old_left), key=lambda q: (q.rule, q.file)
    )
    released = sorted(n for n in old_left if n in new_rules and n not in new_left)
    return PackDiff(
        old_src.version,
        tuple(added),
        tuple(removed),
        tuple(changed),
        tuple(newly),
        tuple(released),
    )
