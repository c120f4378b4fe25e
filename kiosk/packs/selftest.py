"""A pack's own tests: samples that must match named rules, and near misses that must not.

Layout under ``rules/<pack>/tests/`` (file names starting with ``.`` are ignored)::

    positive/<rule>/<sample>   must match <rule>; other rules of the pack may match too
    negative/<rule>/<sample>   must not match <rule>: a near miss written for that rule
    negative/<sample>          must match no rule of the pack

Every rule needs at least one positive and one negative sample of its own, and every sample
directory must name a rule that exists — a rule nobody tested, or a test for a renamed rule,
fails the run. An imported pack (``kiosk.packs.imported``) needs only one positive sample: staff
cannot write samples for a collection's thousands of rules, but the ones they write must pass,
and a sample for a rule the import quarantined fails, naming the reason.

Samples are matched with the externals a scan would set for a file of the same
name, so rules that test ``extension`` or ``filename`` are tested as they will run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yara

from kiosk.errors import RulesError
from kiosk.packs.check import compile_pack_sources, read_pack
from kiosk.packs.load import file_externals
from kiosk.packs.quarantine import examine

TIMEOUT_S = 60


@dataclass(frozen=True, slots=True)
class SampleResult:
    sample: str  # path relative to the pack directory
    expectation: str  # what the layout demands, in words
    matched: tuple[str, ...]
    passed: bool


@dataclass(frozen=True, slots=True)
class PackTestReport:
    pack: str
    version: str
    results: tuple[SampleResult, ...]
    problems: tuple[str, ...]  # coverage problems: untested rules, samples for unknown rules

    @property
    def passed(self) -> bool:
        return not self.problems and all(r.passed for r in self.results)


def _samples(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))


def _subdirs(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def run_pack_tests(pack_dir: Path) -> PackTestReport:
    """Compile the pack alone and run every sample; raises RulesError if it does not check."""
    src = read_pack(pack_dir)
    check = examine(src)
    if check.problems:
        raise RulesError(
            f"rule pack {src.name}: {check.problems[0].at('')} (run 'kiosk rules check' first)"
        )
    rules = compile_pack_sources([src], {src.name: check.text} if check.text is not None else {})
    tests = pack_dir / "tests"
    known = set(check.meta)
    left = {q.rule: q.reason for q in check.quarantined}
    problems: list[str] = []
    results: list[SampleResult] = []

    def run(sample: Path, rule: str | None, positive: bool) -> None:
        try:
            data = sample.read_bytes()
        except OSError as e:
            raise RulesError(f"rule pack {src.name}: cannot read {sample}: {e.strerror}") from e
        rel = sample.relative_to(pack_dir).as_posix()
        md5 = hashlib.md5(data).hexdigest()  # noqa: S324 - the LOKI md5 external, not security
        try:
            found = rules.match(
                data=data,
                externals=file_externals(data, sample.name, "/" + rel, md5),
                timeout=TIMEOUT_S,
            )
        except yara.Error as e:
            raise RulesError(f"rule pack {src.name}: matching {rel} failed: {e}") from e
        matched = tuple(sorted(m.rule for m in found))
        if rule is None:
            results.append(SampleResult(rel, "no rule matches", matched, not matched))
        elif positive:
            results.append(SampleResult(rel, f"{rule} matches", matched, rule in matched))
        else:
            results.append(
                SampleResult(rel, f"{rule} does not match", matched, rule not in matched)
            )

    tested: dict[tuple[str, bool], int] = {}
    for positive, kind in ((True, "positive"), (False, "negative")):
        for d in _subdirs(tests / kind):
            if d.name in left:
                problems.append(
                    f"tests/{kind}/{d.name}: rule {d.name} is quarantined: {left[d.name]}"
                )
                continue
            if d.name not in known:
                problems.append(f"tests/{kind}/{d.name}: no rule {d.name} in this pack")
                continue
            for sample in _samples(d):
                run(sample, d.name, positive)
                tested[(d.name, positive)] = tested.get((d.name, positive), 0) + 1
    for sample in _samples(tests / "negative"):
        run(sample, None, False)
    if src.imported:
        # a collection's 5,000 rules cannot each have samples: an imported pack runs the
        # samples staff wrote for it, and needs at least one that must match
        if not any(positive for _, positive in tested):
            problems.append("an imported pack needs at least one sample in tests/positive/<rule>/")
        known = set()
    for rule in sorted(known):
        for positive, kind in ((True, "positive"), (False, "negative")):
            if not tested.get((rule, positive)):
                problems.append(f"rule {rule} has no {kind} sample (tests/{kind}/{rule}/)")
    return PackTestReport(src.name, src.version, tuple(results), tuple(problems))
