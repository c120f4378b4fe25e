"""The pack's benchmark buffer: rules that cannot finish on 1 MiB are found at import, by name.

A rule can compile without a warning and still never finish: a loop over every byte inside a
loop over every byte, a regex that backtracks on ordinary text. In a scan it would hit the
per-file timeout on every large file and turn findings into errors. So an import matches the
pack's active rules against a fixed 1 MiB buffer (a PE head, text, UTF-16 text, random bytes
and zeros — what most files look like to a rule) with a timeout; if the whole set times out,
it is split in halves until the rules that time out on their own are found. Each is left out
with the reason and recorded in ``quarantine.toml``, because timing depends on the machine: the
decision is made once, reviewed, and signed, and every later load honours it.

A subset keeps the rules its members refer to by name (a private helper, ``any of (a_*)`` is
not split: such a set is tested whole), so a subset compiles whenever the pack does.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

import yara

from kiosk.packs.check import EXTERNALS, PackCheck, PackSource
from kiosk.packs.collection import RuleFile, compile_order, parse_rule_file
from kiosk.packs.imported import Quarantined

BENCH_BYTES = 1 << 20
BENCH_TIMEOUT_S = 2  # yara's timeout is in whole seconds
_SEED = 20261206
_WILDCARD = re.compile(r"[A-Za-z0-9_]\*\s*[,)]")


def bench_buffer() -> bytes:
    """The same 1 MiB on every machine: PE head, ASCII and UTF-16 text, random, zeros."""
    rng = random.Random(_SEED)  # noqa: S311 - filler bytes, the same on every machine
    words = [
        "the", "file", "data", "user", "system", "config", "http", "www", "error", "value",
        "windows", "program", "invoke", "password", "update", "service", "local", "temp",
    ]  # fmt: skip
    text = " ".join(rng.choice(words) for _ in range(40_000)).encode()
    parts = [
        b"MZ\x90\x00" + bytes(60) + b"PE\x00\x00" + bytes(184),
        text[:200_000],
        text[200_000:300_000].decode().encode("utf-16-le"),
        rng.randbytes(300_000),
        bytes(100_000),
    ]
    buf = b"".join(parts)
    return (buf + text)[:BENCH_BYTES]


class _Subsets:
    def __init__(self, src: PackSource, check: PackCheck) -> None:
        self.files = {p: parse_rule_file(p, t) for p, t in src.sources}
        self.order = compile_order(self.files)
        self.externals = {k: EXTERNALS[k] for k in src.externals}
        left = {(q.file, q.rule) for q in check.quarantined}
        self.active = [
            (f.path, r.name)
            for f in (self.files[p] for p in self.order)
            for r in f.rules
            if (f.path, r.name) not in left
        ]
        self.left = left
        words = {}
        for p, name in self.active:
            f = self.files[p]
            chunk = next(r for r in f.rules if r.name == name)
            words[name] = f.words(chunk)
        self.refs = {
            name: {n for _, n in self.active if n in w and n != name} for name, w in words.items()
        }
        self.wild = any(_WILDCARD.search(self.files[p].masked) for p in self.files)

    def text(self, keep: set[str]) -> str:
        todo, closed = list(keep), set(keep)
        while todo:
            for n in self.refs.get(todo.pop(), ()):
                if n not in closed:
                    closed.add(n)
                    todo.append(n)
        out = []
        for p in self.order:
            f: RuleFile = self.files[p]
            drop = {r.name for r in f.rules if r.name not in closed or (p, r.name) in self.left}
            out.append(f.effective_text(drop, _unused_imports(f)))
        return "\n".join(out)


def _unused_imports(f: RuleFile) -> set[int]:
    return {line for mod, line in f.imports if mod not in yara.modules}


def slow_rules(
    src: PackSource,
    check: PackCheck,
    timeout_s: int = BENCH_TIMEOUT_S,
    progress: Callable[[str], None] | None = None,
) -> list[Quarantined]:
    """The pack's active rules that time out on the benchmark buffer on their own."""
    subsets = _Subsets(src, check)
    data = bench_buffer()

    def times_out(keep: set[str]) -> bool:
        try:
            rules = yara.compile(
                source=subsets.text(keep), externals=subsets.externals, includes=False
            )
            rules.match(data=data, externals=subsets.externals, timeout=timeout_s)
        except yara.TimeoutError:
            return True
        except yara.Error:
            return False  # the pack's own check decides about compiling, not the benchmark
        return False

    names = [n for _, n in subsets.active]
    where = {n: p for p, n in subsets.active}
    if not names or not times_out(set(names)):
        return []
    if subsets.wild:  # a rule set by wildcard cannot be split: the pack is tested whole
        return [
            Quarantined(where[n], n, None, "the pack times out on the benchmark buffer")
            for n in names
        ]
    found: list[str] = []
    stack = [names]
    while stack:
        group = stack.pop()
        if progress:
            progress(f"benchmark: looking for slow rules among {len(group)}")
        if len(group) == 1:
            found.append(group[0])
            continue
        half = len(group) // 2
        for part in (group[:half], group[half:]):
            if times_out(set(part)):
                stack.append(part)
    lines = {(p, r.name): r.line for p in subsets.files for r in subsets.files[p].rules}
    return [
        Quarantined(
            where[n],
            n,
            lines.get((where[n], n)),
            f"timed out ({timeout_s} s) on the pack's 1 MiB benchmark buffer",
        )
        for n in sorted(found)
    ]
