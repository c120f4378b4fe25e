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
from kiosk.packs.imported import Quarantined

_YARA_LINE = re.compile(r"^line (\d+): (.*)$", re.DOTALL)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def examine(src: PackSource) -> PackCheck:
    """Validate a pack: strictly if it is kiosk's own, quarantining if it is imported."""
    return check_imported(src) if src.imported else check_pack(src)


def _parse(error: str) -> tuple[int | None, str]:
    m = _YARA_LINE.match(error)
    return (int(m.group(1)), m.group(2)) if m else (None, error)


class _Pack:
    """One imported pack being examined: its files, what is left out so far, in order."""

    def __init__(self, src: PackSource) -> None:
        self.src = src
        self.files = {p: parse_rule_file(p, t) for p, t in src.sources}
        self.order = compile_order(self.files)
        self.left: dict[tuple[str, str], Quarantined] = {}
        self.blank_lines: dict[str, set[int]] = {}
        self.effective: dict[str, str] = {}
        names = {(f.path, r.name) for f in self.files.values() for r in f.rules}
        for q in src.recorded:  # the import's decisions (benchmark timeouts among them)
            if (q.file, q.rule) in names:
                self.left[(q.file, q.rule)] = q

    def out(self, f: RuleFile) -> set[str]:
        return {r for (p, r) in self.left if p == f.path}

    def drop(self, f: RuleFile, name: str, reason: str) -> None:
        chunk = next(r for r in f.rules if r.name == name)
        self.left.setdefault((f.path, name), Quarantined(f.path, name, chunk.line, reason))

    def drop_all(self, f: RuleFile, reason: str) -> None:
        for r in f.rules:
            self.drop(f, r.name, reason)

    def text(self, f: RuleFile) -> str:
        return f.effective_text(self.out(f), self.blank_lines.get(f.path, set()))


def check_imported(src: PackSource) -> PackCheck:
    """Every rule that cannot run left out with its reason; the meta of every other rule."""
    pack = _Pack(src)
    available = set(yara.modules)
    externals = {k: EXTERNALS[k] for k in src.externals}
    defined: dict[str, str] = {}  # rule name -> file:line, across the pack's one namespace
    meta: dict[str, RuleMeta] = {}
    files: dict[str, tuple[str, ...]] = {}
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
        deps = include_closure(path, pack.files, pack.order)[:-1]
        prefix = "".join(pack.effective[d] + "\n" for d in deps)
        files[path] = _compile_file(pack, f, prefix, externals, meta)
        pack.effective[path] = pack.text(f)
    text = "\n".join(pack.effective[p] for p in pack.order)
    try:
        yara.compile(source=text, externals=externals, includes=False)
    except yara.Error as e:  # each file compiled with what it includes; together they must too
        raise RulesError(f"rule pack {src.name}: its rules do not compile together: {e}") from e
    quarantined = tuple(sorted(pack.left.values(), key=lambda q: (q.file, q.line or 0, q.rule)))
    return PackCheck((), meta, files, quarantined, text)


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


def _compile_file(
    pack: _Pack,
    f: RuleFile,
    prefix: str,
    externals: dict[str, str],
    meta: dict[str, RuleMeta],
) -> tuple[str, ...]:
    """Compile one file (after what it includes) until what is left compiles cleanly."""
    offset = prefix.count("\n")
    src = pack.src
    for _ in range(len(f.rules) + 2):
        out = pack.out(f)
        if len(out) == len(f.rules):
            return ()
        try:
            compiled = yara.compile(
                source=prefix + pack.text(f), externals=externals, includes=False
            )
        except yara.Error as e:
            _blame(pack, f, offset, str(e), "")
            continue
        before = len(pack.left)
        for w in compiled.warnings:
            _blame(pack, f, offset, str(w), "libyara warns: ")
        mine = {r.name for r in f.rules} - pack.out(f)
        active: list[str] = []
        for rule in compiled:
            if rule.identifier not in mine or pack.out(f) & {rule.identifier}:
                continue
            if rule.is_private:
                continue
            rm, issue = _mapped_meta(src, f.path, rule)
            if rm is None:
                pack.drop(f, rule.identifier, f"rule {rule.identifier} {issue}")
            else:
                meta[rule.identifier] = rm
                active.append(rule.identifier)
        if len(pack.left) == before:
            return tuple(active)
        for name in active:  # compile again without what was just left out
            meta.pop(name, None)
    pack.drop_all(f, "could not be made to compile")  # a guard: each round leaves one out
    return ()


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
            pack.left[(q.file, q.rule)] = q
        for path in pack.order:
            f = pack.files[path]
            _modules(pack, f, set(yara.modules))
            pack.effective[path] = pack.text(f)
        out[src.name] = "\n".join(pack.effective[p] for p in pack.order)
    return out
