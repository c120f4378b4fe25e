"""What the officer records about the authority, as plain values: no Textual here.

Two things the case form needs beyond checking its fields. The categories an authority can
cover, labelled for a person: a warrant speaks of "card fraud", the packs of ``card_fraud``, so
each choice carries a readable title and where it comes from (which packs and how many rules,
or which hash set and its description), read from the packs' rule metadata and the sets'
manifests. And a case kept for the next exhibit: one warrant often covers several devices, and
retyping the case, the officers and the authority for each is where typing errors creep in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from kiosk.engine.scope import Scope
from kiosk.hashsets.index import HashIndex
from kiosk.model import BUILTIN_CATEGORIES, DISGUISED_FILE, ENCRYPTED_DATA, CaseRecord, LegalBasis
from kiosk.packs.load import CompiledRules


@dataclass(frozen=True, slots=True)
class CategoryChoice:
    """One category the officer can tick: ``kind`` is ``rule`` or ``hash``, ``name`` its id."""

    kind: str
    name: str
    source: str  # "rules: kiosk-core (3)", "hash set demo-known-bad: <its description>"
    label: str = ""  # an imported pack's words for it (pack.toml [category_labels])

    @property
    def title(self) -> str:
        """``card_fraud`` as ``Card fraud``: the words a warrant would use."""
        if self.label:
            return self.label
        words = self.name.replace("_", " ").replace("-", " ").strip()
        return words[:1].upper() + words[1:] if words else self.name

    @property
    def value(self) -> tuple[str, str]:
        return (self.kind, self.name)


BUILTIN_SOURCES = {
    DISGUISED_FILE: "kiosk's own check: a name that hides the content's kind",
    ENCRYPTED_DATA: "kiosk's own check: encrypted files, vaults, wallets",
}


def rule_choices(rules: CompiledRules) -> list[CategoryChoice]:
    """One choice per rule category, with the packs that have rules in it and how many."""
    counts = Counter((meta.category, pack) for (pack, _), meta in rules.meta.items())
    labels: dict[str, str] = {}
    for p in rules.packs:  # the first pack to label a category names it
        for category, label in p.labels:
            labels.setdefault(category, label)
    out = []
    for category in sorted({c for c, _ in counts} | set(BUILTIN_CATEGORIES)):
        packs = sorted((p, n) for (c, p), n in counts.items() if c == category)
        if not packs:  # the kiosk's own checks, which no pack carries
            out.append(CategoryChoice("rule", category, BUILTIN_SOURCES[category]))
            continue
        rule_word = "rule" if sum(n for _, n in packs) == 1 else "rules"
        where = ", ".join(f"{p} ({n})" for p, n in packs)
        out.append(
            CategoryChoice("rule", category, f"{rule_word} in {where}", labels.get(category, ""))
        )
    return out


def hash_choices(index: HashIndex) -> list[CategoryChoice]:
    """One choice per known-bad set category, with its set and what the set says it holds."""
    out = []
    bad = [s for s in index.sets if s.disposition == "known_bad"]
    for category in sorted({s.category for s in bad}):
        sets = sorted((s for s in bad if s.category == category), key=lambda s: s.name)
        if len(sets) == 1:
            about = f": {sets[0].description}" if sets[0].description else ""
            source = f"hash set {sets[0].name}{about}"
        else:
            source = "hash sets " + ", ".join(s.name for s in sets)
        out.append(CategoryChoice("hash", category, source))
    return out


@dataclass(frozen=True, slots=True)
class CaseDraft:
    """What a case form starts with: the last case and authority, for its next exhibit.

    The exhibit and the device are left blank on purpose: they are what changes between
    exhibits, and a kept exhibit reference would label the next device's report wrongly.
    """

    case_ref: str
    officer: str
    authorised_by: str
    legal_basis: LegalBasis
    legal_ref: str
    scope: Scope
    after_exhibit: str  # the exhibit just triaged, shown so the officer knows what was kept

    def values(self) -> dict[str, str]:
        """The form's text fields (``CASE_FIELDS`` names), exhibit and device blank."""
        return {
            "case_ref": self.case_ref,
            "exhibit_ref": "",
            "officer": self.officer,
            "authorised_by": self.authorised_by,
            "legal_ref": self.legal_ref,
            "device": "",
        }

    def ticked(self, choice: CategoryChoice) -> bool:
        """Whether the kept scope covers ``choice`` (``None`` in a scope means every one)."""
        cats = self.scope.rule_categories if choice.kind == "rule" else self.scope.hash_categories
        return cats is None or choice.name in cats


def next_exhibit(case: CaseRecord, scope: Scope | None) -> CaseDraft:
    """The case and authority of a triage, kept for the next exhibit of the same case."""
    return CaseDraft(
        case_ref=case.case_ref,
        officer=case.officer,
        authorised_by=case.authorised_by,
        legal_basis=case.legal_basis,
        legal_ref=case.legal_ref,
        scope=scope or Scope(),
        after_exhibit=case.exhibit_ref,
    )
