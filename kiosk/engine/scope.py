"""The declared scope of a triage: which rule-pack and hash-set categories the authority covers.

A warrant or a consent form covers some kinds of material, not everything a kiosk's packs can
match. The officer records the authorised categories with the case; a match outside them is
not a finding. It is taken off the file's result before the result is tallied, so it never
reaches the findings, the recommendation, the live findings table or the inventory. Only how
many matches each excluded category had is kept, in the report's ``settings.scope`` — the
report says that something outside the authority matched, so a supervisor can seek a wider one,
never what or where.

The kiosk's own checks (disguised files, encrypted data) are rule categories like a pack's: they
are listed, authorised and counted the same way, whatever packs are loaded.

Hash-set scope is decided per *set*, by the category in the set's manifest: a set may also
label single hashes with finer categories (VICS), which are reported as they are but are not
what the officer chose from. Known-good sets are never scoped: they only decide which files
need no YARA scan.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from kiosk.errors import CaseError
from kiosk.hashsets.index import HashIndex
from kiosk.model import BUILTIN_CATEGORIES, AreaScan, FileResult, HashMatch
from kiosk.packs.load import CompiledRules
from kiosk.reports.model import MatchType, OutOfScope, ScopeRecord


@dataclass(frozen=True, slots=True)
class Scope:
    """Authorised categories; ``None`` means every category the loaded packs or sets carry.

    The app's form lists rule-pack and hash-set categories apart and gives both sets. The command
    line (``--scope``) names categories without their kind: ``categories`` is then authorised
    wherever a loaded pack or set carries it, and resolves to the same two sets the form would
    give for the same ticks (so the report records the scope the same way).
    """

    rule_categories: frozenset[str] | None = None
    hash_categories: frozenset[str] | None = None
    categories: frozenset[str] | None = None  # named without their kind; both sets above unset


def rule_categories(rules: CompiledRules | None) -> list[str]:
    """Every category named by a rule in the compiled packs, and the categories of the kiosk's
    own checks (disguised files, encrypted data: ``kiosk.model.BUILTIN_CATEGORIES``), sorted."""
    found = {m.category for m in rules.meta.values()} if rules else set()
    return sorted(found | set(BUILTIN_CATEGORIES))


def hash_categories(index: HashIndex) -> list[str]:
    """Every category of a known-bad hash set, sorted (known-good sets are never scoped)."""
    return sorted({s.category for s in index.sets if s.disposition == "known_bad"})


@dataclass(slots=True)
class ScopeFilter:
    """Applies a checked scope to results one by one and counts what it took out."""

    rule_categories: frozenset[str]
    hash_categories: frozenset[str]
    restricted: bool
    set_categories: dict[str, str] = field(default_factory=dict)  # known-bad set -> category
    excluded: dict[tuple[MatchType, str], int] = field(default_factory=dict)

    def _hash_in_scope(self, m: HashMatch) -> bool:
        if m.disposition != "known_bad":
            return True
        return self.set_categories.get(m.hashset, m.category) in self.hash_categories

    def apply(self, r: FileResult) -> FileResult:
        """The result with out-of-scope matches removed (the same object when nothing is),
        each removed match counted for the report."""
        for a in r.areas:  # unallocated space, slack: the same scope per match
            for h in a.hits:
                if h.match.category not in self.rule_categories:
                    self._count(MatchType.YARA, h.match.category)
        for m in r.rule_matches:
            if m.category not in self.rule_categories:
                self._count(MatchType.YARA, m.category)
        for hm in r.hash_matches:
            if not self._hash_in_scope(hm):
                self._count(MatchType.HASHSET, self.set_categories.get(hm.hashset, hm.category))
        return self.peek(r)

    def peek(self, r: FileResult) -> FileResult:
        """``apply`` without counting: what a result will be once in scope, to show a finding
        the moment it is found (``kiosk.engine.triage``), before its turn in the report."""
        if any(a.hits for a in r.areas):
            r = dataclasses.replace(r, areas=tuple(self._area(a) for a in r.areas))
        rules = tuple(m for m in r.rule_matches if m.category in self.rule_categories)
        hashes = tuple(m for m in r.hash_matches if self._hash_in_scope(m))
        if len(rules) == len(r.rule_matches) and len(hashes) == len(r.hash_matches):
            return r
        return dataclasses.replace(r, rule_matches=rules, hash_matches=hashes)

    def _area(self, a: AreaScan) -> AreaScan:
        keep = tuple(h for h in a.hits if h.match.category in self.rule_categories)
        return a if len(keep) == len(a.hits) else dataclasses.replace(a, hits=keep)

    def _count(self, kind: MatchType, category: str) -> None:
        self.excluded[(kind, category)] = self.excluded.get((kind, category), 0) + 1

    def describe(self) -> str:
        """One line for the recommendation's reasons."""
        if not self.restricted:
            return "all categories of the loaded packs and sets"
        return (
            f"rule categories: {', '.join(sorted(self.rule_categories)) or 'none'}; "
            f"hash-set categories: {', '.join(sorted(self.hash_categories)) or 'none'}"
        )

    def record(self) -> ScopeRecord:
        """The report's ``settings.scope``: what was authorised and how much fell outside it."""
        return ScopeRecord(
            restricted=self.restricted,
            rule_categories=tuple(sorted(self.rule_categories)),
            hash_categories=tuple(sorted(self.hash_categories)),
            out_of_scope_matches=tuple(
                OutOfScope(kind, cat, n) for (kind, cat), n in sorted(self.excluded.items())
            ),
        )


def check_scope(scope: Scope | None, rules: CompiledRules | None, index: HashIndex) -> ScopeFilter:
    """Resolve a requested scope against the loaded packs and sets, refusing a wrong one.

    A category no pack or set carries is a typing error on the form, not an empty search, and a
    scope that authorises nothing at all could only ever report "no matches": both stop the run
    before the image is opened.
    """
    known_rules, known_hashes = frozenset(rule_categories(rules)), frozenset(hash_categories(index))
    sets = {s.name: s.category for s in index.sets if s.disposition == "known_bad"}
    if scope is None:
        return ScopeFilter(known_rules, known_hashes, False, sets)
    if scope.categories is not None:  # --scope: each name wherever a pack or set carries it
        rule_cats, hash_cats = scope.categories & known_rules, scope.categories & known_hashes
        unknown = sorted(scope.categories - known_rules - known_hashes)
    else:
        rule_cats = known_rules if scope.rule_categories is None else scope.rule_categories
        hash_cats = known_hashes if scope.hash_categories is None else scope.hash_categories
        unknown = sorted(rule_cats - known_rules) + sorted(hash_cats - known_hashes)
    if unknown:
        known = ", ".join(sorted(known_rules | known_hashes)) or "none"
        raise CaseError(
            f"cannot start: the scope names categories no loaded pack or set has: "
            f"{', '.join(unknown)} (known: {known})"
        )
    if not rule_cats and not hash_cats:
        raise CaseError("cannot start: the scope authorises no category")
    return ScopeFilter(rule_cats, hash_cats, True, sets)
