"""Does every engine read a pack as libyara does? What ``kiosk rules check`` adds per engine.

Why: YARA-X parses the same language but not every construct (for example rule-name wildcards
such as ``any of (pe_*)`` in 1.23) and evaluates a few edge cases differently. A pack that
libyara accepts but the scan's engine refuses would stop the scan; one that both accept but
match differently would make findings depend on the engine. So each ``.yar`` file is compiled
alone by every other engine with the pack's externals, then the whole pack is matched by every
engine over every sample under ``tests/`` (the pack's own positive and negative samples, with
the externals a scan would set), and every rule whose result differs is named with the sample.
Samples only show differences they exercise; tests/test_engines.py runs both engines over
sample images and a bench-style tree as well.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from kiosk.errors import KioskError, RulesError
from kiosk.packs.check import EXTERNALS, PackSource, Problem
from kiosk.packs.engines import ENGINE_NAMES, LIBYARA, Engine, engine
from kiosk.packs.load import file_externals

TIMEOUT_S = 60


def _samples(pack_dir: Path) -> list[Path]:
    tests = pack_dir / "tests"
    if not tests.is_dir():
        return []
    return sorted(
        p
        for p in tests.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(tests).parts)
    )


def _matches(eng: Engine, rules: object, pack_dir: Path, samples: list[Path]) -> list[set[str]]:
    scanner = eng.scanner(rules, TIMEOUT_S)
    out = []
    for sample in samples:
        data = sample.read_bytes()
        rel = "/" + sample.relative_to(pack_dir).as_posix()
        md5 = hashlib.md5(data).hexdigest()  # noqa: S324 - the LOKI md5 external, not security
        out.append({r for _, r in scanner.scan(data, file_externals(data, sample.name, rel, md5))})
    return out


def engine_problems(src: PackSource, engines: tuple[str, ...] = ENGINE_NAMES) -> list[Problem]:
    """Each file another engine cannot compile, and each rule it matches differently.

    The pack must already check clean with libyara (``check_pack``): libyara is the reference.
    """
    externals = dict(EXTERNALS)  # as the scan compiles (check_pack checks the declarations)
    problems: list[Problem] = []
    others = [engine(n) for n in engines if n != LIBYARA]
    ref = engine(LIBYARA)
    whole = {src.name: "\n".join(t for _, t in src.sources)}
    samples = _samples(src.path)
    try:
        want = _matches(ref, ref.compile(whole, externals), src.path, samples)
    except KioskError as e:
        return [Problem("tests", None, f"{ref.label} could not match the samples: {e}")]
    for eng in others:
        refused = False
        for fname, text in src.sources:
            try:
                eng.compile({src.name: text}, externals)
            except RulesError as e:
                problems.append(Problem(fname, None, f"{eng.label} cannot compile it: {e}"))
                refused = True
        if refused:
            continue
        try:
            got = _matches(eng, eng.compile(whole, externals), src.path, samples)
        except KioskError as e:
            problems.append(Problem("tests", None, f"{eng.label} could not match: {e}"))
            continue
        for sample, a, b in zip(samples, want, got, strict=True):
            for rule in sorted(a ^ b):
                problems.append(
                    Problem(
                        sample.relative_to(src.path).as_posix(),
                        None,
                        f"rule {rule} {'matches' if rule in a else 'does not match'} with "
                        f"{ref.label} but {'matches' if rule in b else 'does not'} with "
                        f"{eng.label}",
                    )
                )
    return problems


def sample_count(src: PackSource) -> int:
    """How many samples the engines were compared on (for the ``rules check`` summary)."""
    return len(_samples(src.path))
