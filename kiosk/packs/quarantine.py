"""Quarantine, not refusal: an imported pack loads without the rules that cannot run.

Kiosk's own packs are checked strictly (``kiosk.packs.check``): one problem refuses the pack,
because the people who wrote it can fix it. An imported collection is someone else's text,
used unedited (``kiosk.packs.imported``); one rule in 5,900 that needs ``cuckoo``, or a regex
without atoms that would slow every file, must not keep the other 5,899 out. So each rule that

- does not compile (an error located in its text, or a name it uses that is not there),
- compiles only with a libyara warning (each one is "this slows scanning" or "this is wrong"),
- needs a module this kiosk lacks, or one pack.toml does not declare,
- sits in a file whose ``include`` leaves the collection or names a file that is not in it,
- repeats a rule name already defined in the pack,
- has meta that cannot be mapped (a category pack.toml does not list), or
- timed out on the pack's benchmark buffer when it was imported (``quarantine.toml``)

is left out **by name, with the reason**, and the rest compile. Everything here but the
benchmark is decided from the pack's bytes and this kiosk's libyara alone, so the scan, ``rules
check`` and ``rules sign`` leave out the same rules; the benchmark (timing, machine-dependent)
runs only at import and is recorded in the signed ``quarantine.toml``, which every later load
honours.

Blanking a rule keeps its line breaks (``RuleFile.effective_text``), so an error's line number
still names the line in the file on disk, and a rule's removal never moves another's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import yara

from kiosk.errors import RulesError
from kiosk.packs.check import (
    EXTERNALS,
    SEVERITIES,
    PackCheck,
    PackSource,
    RuleMeta,
    check_pack,
)
from kiosk.packs.collection import (
    RuleFile,
    compile_order,
    include_closure,
    parse_rule_file,
    resolve_include,
)
from kiosk.packs.engines import ENGINE_NAMES, LIBYARA, Engine, engine
from kiosk.packs.imported import Quarantined

_YARA_LINE = re.compile(r"^line (\d+): (.*)$", re.DOTALL)
_ENGINE_LINE = re.compile(r"\(line:(\d+):\d+\)")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def examine(src: PackSource) -> PackCheck:
    """Validate a pack: strictly if it is kiosk's own, quarantining if it is imported."""
    return check_imported(src) if src.imported else check_pack(src)


def _parse(error: str) -> tuple[int | None, str]:
    m = _YARA_LINE.match(error)
    return (int(m.group(1)), m.group(2)) if m else (None, error)


GROUP = 32  # files compiled together, each in its own namespace, before any is isolated


class _Pack:
    """One imported pack being examined: its files, what is left out so far, in order."""

    def __init__(self, src: PackSource) -> None:
        self.src = src
        self.files = {p: parse_rule_file(p, t) for p, t in src.sources}
        self.order = compile_order(self.files)
        self.left: dict[str, dict[str, Quarantined]] = {p: {} for p in self.files}
        self.blank_lines: dict[str, set[int]] = {}
        self.deps = {
            p: [d for d in include_closure(p, self.files, self.order) if d != p] for p in self.order
        }
        for q in src.recorded:  # the import's decisions (benchmark timeouts among them)
            f = self.files.get(q.file)
            if f is not None and any(r.name == q.rule for r in f.rules):
                self.left[q.file][q.rule] = q

    def out(self, f: RuleFile) -> set[str]:
        return set(self.left[f.path])

    def done(self, f: RuleFile) -> bool:
        return len(self.left[f.path]) >= len(f.rules)

    def drop(self, f: RuleFile, name: str, reason: str) -> bool:
        """Leave a rule out; False if it already was."""
        if name in self.left[f.path]:
            return False
        chunk = next(r for r in f.rules if r.name == name)
        self.left[f.path][name] = Quarantined(f.path, name, chunk.line, reason)
        return True

    def drop_all(self, f: RuleFile, reason: str) -> None:
        for r in f.rules:
            self.drop(f, r.name, reason)

    def text(self, f: RuleFile) -> str:
        return f.effective_text(self.out(f), self.blank_lines.get(f.path, set()))

    def alone(self, f: RuleFile) -> str:
        """What ``f`` compiles as: the files it includes, then itself."""
        return "".join(self.text(self.files[d]) + "\n" for d in self.deps[f.path]) + self.text(f)

    def all_left(self) -> tuple[Quarantined, ...]:
        rows = [q for per in self.left.values() for q in per.values()]
        return tuple(sorted(rows, key=lambda q: (q.file, q.line or 0, q.rule)))


def check_imported(src: PackSource) -> PackCheck:
    """Every rule that cannot run left out with its reason; the meta of every other rule.

    Each file compiles with what it includes and nothing else (its own namespace), so whether a
    rule is left out never depends on which other files happen to be compiled beside it.
    Files are compiled in groups (one ``yara.compile`` costs milliseconds even when empty);
    a file whose error stops its group is taken out and compiled alone.
    """
    pack = _Pack(src)
    available = set(yara.modules)
    externals = {k: EXTERNALS[k] for k in src.externals}
    defined: dict[str, str] = {}  # rule name -> file:line, across the pack's one namespace
    for path in pack.order:
        f = pack.files[path]
        for r in f.rules:
            if r.name in defined:
                pack.drop(f, r.name, f"rule {r.name} is also defined at {defined[r.name]}")
            else:
                defined[r.name] = f"{path}:{r.line}"
        for target, _ in f.includes:
            dep = resolve_include(path, target, frozenset(pack.files))
            if dep.startswith("!"):
                pack.drop_all(f, dep[1:])
        _modules(pack, f, available)
    todo = [pack.files[p] for p in pack.order if pack.files[p].rules]
    for k in range(0, len(todo), GROUP):
        _compile_group(pack, todo[k : k + GROUP], externals)
    for name in ENGINE_NAMES:  # the same rules whichever engine the scan runs
        if name != LIBYARA:
            eng = engine(name)
            for k in range(0, len(todo), GROUP):
                _engine_group(pack, todo[k : k + GROUP], externals, eng)
    return _together(pack, externals)


def _engine_group(
    pack: _Pack, group: list[RuleFile], externals: dict[str, str], eng: Engine
) -> None:
    """Leave out what another engine cannot compile (YARA-X is stricter about some regexes
    and does not take rule-name wildcards), located as libyara's errors are."""
    for _ in range(sum(len(f.rules) for f in group) + 2):
        pending = [f for f in group if not pack.done(f)]
        if not pending:
            return
        sources: dict[str, str] = {}
        starts: list[tuple[int, int, RuleFile]] = []  # each namespace's lines
        firsts: dict[str, int] = {}  # the first line of each file's own text
        at = 0
        for i, f in enumerate(pending):
            body = pack.alone(f)
            sources[f"f{i}"] = "\n" * at + body
            firsts[f.path] = at + body.count("\n") - pack.text(f).count("\n") + 1
            starts.append((at + 1, at + 1 + body.count("\n"), f))
            at += body.count("\n") + 1
        try:
            eng.compile(sources, externals)
            return
        except RulesError as e:
            m = _ENGINE_LINE.search(str(e))
            line = int(m.group(1)) if m else None
            owner = _owner(starts, line) or pending[0]
            first = firsts[owner.path]
            chunk = owner.chunk_at(line - first + 1) if line is not None else None
            reason = f"{eng.label} cannot compile it: {str(e).split(' (line:')[0]}"
            if line is None or chunk is None or chunk.name in pack.out(owner):
                pack.drop_all(owner, reason)
            else:
                pack.drop(owner, chunk.name, f"{reason} (line {line - first + 1})")
    for f in group:
        if not pack.done(f):
            pack.drop_all(f, f"{eng.label} could not be made to compile it")


def _compile_group(pack: _Pack, group: list[RuleFile], externals: dict[str, str]) -> None:
    """Compile files side by side, line numbers made unique by padding, until clean."""
    pending = [f for f in group if not pack.done(f)]
    for _ in range(len(group) * 2 + sum(len(f.rules) for f in group) + 2):
        if not pending:
            return
        sources: dict[str, str] = {}
        spans: list[tuple[int, int, RuleFile]] = []  # [first, last] global line of f's own text
        starts: list[tuple[int, int, RuleFile]] = []  # the same for f's whole namespace
        at = 0
        for i, f in enumerate(pending):
            body = pack.alone(f)
            own = pack.text(f)
            first = at + body.count("\n") - own.count("\n") + 1
            sources[f"f{i}"] = "\n" * at + body
            starts.append((at + 1, at + 1 + body.count("\n"), f))
            at += body.count("\n") + 1
            spans.append((first, at, f))
        try:
            compiled = yara.compile(sources=sources, externals=externals, includes=False)
        except yara.Error as e:
            line, _ = _parse(str(e))
            hit = _owner(starts, line) or pending[0]
            pending.remove(hit)
            _compile_file(pack, hit, externals)  # alone: every error it has, one by one
            continue
        dropped = False
        for w in compiled.warnings:
            line, message = _parse(str(w))
            owner = _owner(spans, line)
            if owner is None:
                continue  # a warning in an included file: that file's own compile reports it
            first = next(a for a, _, f in spans if f is owner)
            dropped |= _blame_line(pack, owner, line - first + 1 if line else None, message)
        if not dropped:
            return
        pending = [f for f in pending if not pack.done(f)]
    for f in pending:  # a guard: each round leaves at least one rule out
        pack.drop_all(f, "could not be made to compile")


def _owner(spans: list[tuple[int, int, RuleFile]], line: int | None) -> RuleFile | None:
    if line is None:
        return None
    return next((f for a, b, f in spans if a <= line <= b), None)


def _blame_line(pack: _Pack, f: RuleFile, line: int | None, message: str) -> bool:
    """Leave out the rule of ``f`` at ``line`` (a warning: it slows scanning or is wrong)."""
    chunk = f.chunk_at(line) if line is not None else None
    if chunk is None:
        pack.drop_all(f, f"libyara warns: {message}")
        return True
    return pack.drop(f, chunk.name, f"libyara warns: {message} (line {line})")


def _together(pack: _Pack, externals: dict[str, str]) -> PackCheck:
    """The pack as one namespace: must compile; each rule's meta mapped (or it is left out)."""
    src = pack.src
    for _ in range(sum(len(f.rules) for f in pack.files.values()) + 2):
        text = "\n".join(pack.text(pack.files[p]) for p in pack.order)
        try:
            compiled = yara.compile(source=text, externals=externals, includes=False)
        except yara.Error as e:  # each file compiled with what it includes; all must together
            raise RulesError(f"rule pack {src.name}: its rules do not compile together: {e}") from e
        where = {  # the file each compiled rule came from: the one where it is not left out
            r.name: f
            for f in pack.files.values()
            for r in f.rules
            if r.name not in pack.left[f.path]
        }
        meta: dict[str, RuleMeta] = {}
        dropped = False
        for rule in compiled:
            f = where[rule.identifier]
            if rule.is_private or rule.identifier in pack.left[f.path]:
                continue
            rm, issue = _mapped_meta(src, f.path, rule)
            if rm is None:
                dropped |= pack.drop(f, rule.identifier, f"rule {rule.identifier} {issue}")
            else:
                meta[rule.identifier] = rm
        if not dropped:
            files = {
                p: tuple(r.name for r in pack.files[p].rules if r.name in meta) for p in pack.order
            }
            return PackCheck((), meta, files, pack.all_left(), text)
    raise RulesError(f"rule pack {src.name}: its rules' meta could not be settled")


def _modules(pack: _Pack, f: RuleFile, available: set[str]) -> None:
    """Rules that use a module the kiosk lacks, or one not declared, are left out; the
    others of the file compile without that import (it would cost every scanned file)."""
    for mod, line in f.imports:
        if mod not in available:
            reason = f"needs module {mod!r}, which this kiosk's libyara {yara.__version__} lacks"
        elif mod not in pack.src.modules:
            reason = f"needs module {mod!r}, which pack.toml 'modules' does not declare"
        else:
            continue
        pack.blank_lines.setdefault(f.path, set()).add(line)
        uses = re.compile(rf"\b{re.escape(mod)}\s*\.")
        for r in f.rules:
            if uses.search(f.masked, r.start, r.end):
                pack.drop(f, r.name, reason)


def _compile_file(pack: _Pack, f: RuleFile, externals: dict[str, str]) -> None:
    """Compile one file (after what it includes) until what is left compiles cleanly."""
    for _ in range(len(f.rules) + 2):
        if pack.done(f):
            return
        own = pack.text(f)
        body = pack.alone(f)
        offset = body.count("\n") - own.count("\n")
        try:
            compiled = yara.compile(source=body, externals=externals, includes=False)
        except yara.Error as e:
            _blame(pack, f, offset, str(e), "")
            continue
        dropped = False
        for w in compiled.warnings:
            line, message = _parse(str(w))
            if line is None or line > offset:
                dropped |= _blame_line(pack, f, line - offset if line else None, message)
        if not dropped:
            return
    pack.drop_all(f, "could not be made to compile")  # a guard: each round leaves one out


def _blame(pack: _Pack, f: RuleFile, offset: int, error: str, prefix: str) -> None:
    line, message = _parse(error)
    if line is not None and line <= offset:
        pack.drop_all(f, f"a file it includes does not compile: {message}")
        return
    if line is None:
        pack.drop_all(f, f"{prefix}{message}")
        return
    chunk = f.chunk_at(line - offset)
    if chunk is None or chunk.name in pack.out(f):
        pack.drop_all(f, f"{prefix}{message} (line {line - offset})")
        return
    hint = ""
    if "undefined identifier" in message and any(f'"{x}"' in message for x in EXTERNALS):
        hint = " (an external: declare it in pack.toml 'externals')"
    pack.drop(f, chunk.name, f"{prefix}{message}{hint} (line {line - offset})")


def _mapped_meta(src: PackSource, path: str, rule: Any) -> tuple[RuleMeta | None, str]:
    if src.mapping is None:  # only imported packs come here
        raise RulesError(f"rule pack {src.name} is not an imported pack")
    values = src.mapping.resolve(dict(rule.meta), rule.identifier, path, src.meta_defaults)
    missing = [k for k in ("category", "severity", "author", "date") if not values[k]]
    if missing:
        return None, f"lacks meta {', '.join(missing)} (and pack.toml gives no default)"
    if values["severity"] not in SEVERITIES:
        return None, f"severity {values['severity']!r} is not one of {', '.join(SEVERITIES)}"
    if src.categories and values["category"] not in src.categories:  # () while importing
        return None, f"category {values['category']!r} is not listed in pack.toml 'categories'"
    if not _DATE.match(values["date"]):
        return None, f"date {values['date']!r} is not YYYY-MM-DD"
    return RuleMeta(values["category"], values["severity"], values["description"]), ""


def pack_texts(
    srcs: Iterable[PackSource], left: dict[str, tuple[Quarantined, ...]]
) -> dict[str, str]:
    """Each pack's namespace text for a known quarantine (a cache hit: nothing compiles)."""
    out: dict[str, str] = {}
    for src in srcs:
        if not src.imported:
            out[src.name] = "\n".join(t for _, t in src.sources)
            continue
        pack = _Pack(src)
        for q in left.get(src.name, ()):
            if q.file in pack.left:
                pack.left[q.file][q.rule] = q
        available = set(yara.modules)
        for path in pack.order:
            _modules(pack, pack.files[path], available)
        out[src.name] = "\n".join(pack.text(pack.files[p]) for p in pack.order)
    return out
