"""What a rule pack must be: read ``pack.toml`` and the sources, validate every rule.

Every ``.yar`` file is compiled on its own with only the externals its pack declares, so each
problem is reported as ``file:line``: an unknown or undeclared module, an undeclared external,
a compile error, any libyara warning (each is either "this slows scanning" or "this is
wrong"), a duplicate rule name, and meta that lacks ``category``, ``severity`` (low, medium,
high, critical), ``description``, ``author`` or ``date``, or names a category the pack does not
declare. ``kiosk rules check`` and the scan run this same validation, so a pack that checks
clean is exactly a pack the kiosk will load.

``pack.toml`` may set ``meta_defaults`` for those five keys, so a public collection whose rules
carry ``description``/``author``/``date`` but no ``category``/``severity`` can be wrapped in a
pack without editing its rule text.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yara

from kiosk.errors import RulesError
from kiosk.model import BUILTIN_PACK
from kiosk.packs.collection import is_rule_file
from kiosk.packs.imported import (
    QUARANTINE_FILE,
    RULES_DIR,
    ImportMapping,
    Quarantined,
    parse_labels,
    parse_mapping,
    parse_upstream,
    read_quarantine,
)

SEVERITIES = ("low", "medium", "high", "critical")
REQUIRED_META = ("category", "severity", "description", "author", "date")
EXTERNALS: dict[str, str] = {
    "filename": "",
    "filepath": "",
    "extension": "",
    "filetype": "",
    "owner": "",
    "md5": "",
}
PACK_KEYS = (
    "name",
    "version",
    "description",
    "maintainer",
    "externals",
    "modules",
    "categories",
    "meta_defaults",
    "upstream",  # imported packs only (kiosk.packs.imported)
    "import",
    "category_labels",
    "priority_areas",
)
_PACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_VERSION = re.compile(r"^[0-9A-Za-z]+(?:[.+_-][0-9A-Za-z]+)*$")
_IMPORT = re.compile(r'^[ \t]*import[ \t]+"([^"]*)"', re.MULTILINE)
_RULE_DEF = re.compile(
    r"^[ \t]*(?:(?:private|global)[ \t]+)*rule[ \t]+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE
)
_YARA_LINE = re.compile(r"^line (\d+): (.*)$", re.DOTALL)
_UNDEFINED = re.compile(r'undefined identifier "([A-Za-z_][A-Za-z0-9_]*)"')
_DATE = re.compile(r"^\d{4}([-/])\d{2}\1\d{2}$")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a pack, located by pack-relative file and (when known) line."""

    file: str
    line: int | None
    message: str

    def at(self, prefix: str) -> str:
        where = f"{prefix}/{self.file}" if prefix else self.file
        return f"{where}:{self.line}: {self.message}" if self.line else f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class PackSource:
    """A pack as read from disk, ``pack.toml`` validated, sources not yet compiled."""

    name: str
    version: str
    description: str
    maintainer: str
    externals: tuple[str, ...]
    modules: tuple[str, ...]
    categories: tuple[str, ...]
    meta_defaults: dict[str, str]
    path: Path
    sources: tuple[tuple[str, str], ...]  # (file name, UTF-8 text), sorted by name
    digest: str  # SHA-256 over pack.toml and every .yar, names and bytes, in sorted order
    file_digests: dict[str, str]  # SHA-256 of each of those files, exactly as read
    # imported packs (kiosk.packs.imported): unset for kiosk's own packs
    upstream: dict[str, str] = field(default_factory=dict)
    mapping: ImportMapping | None = None
    labels: dict[str, str] = field(default_factory=dict)  # category -> words for the scope picker
    recorded: tuple[Quarantined, ...] = ()  # quarantine.toml: left out at import

    @property
    def imported(self) -> bool:
        """Someone else's rule text: rules that cannot run are quarantined, not refused."""
        return self.mapping is not None

    # folders scanned first (kiosk.engine.priority): where this pack's findings usually are
    priority_areas: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleMeta:
    category: str
    severity: str
    description: str


@dataclass(frozen=True, slots=True)
class PackCheck:
    """What validating a pack found: problems, and the meta of every rule that passed."""

    problems: tuple[Problem, ...]
    meta: dict[str, RuleMeta] = field(default_factory=dict)  # rule identifier -> meta
    files: dict[str, tuple[str, ...]] = field(default_factory=dict)  # file -> its rules
    quarantined: tuple[Quarantined, ...] = ()  # imported packs: rules left out, with the reason
    text: str | None = None  # imported packs: the namespace text to compile (None: the sources)


# --------------------------------------------------------------------------- reading


def _string_list(meta: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = meta.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RulesError(f"{where}: '{key}' must be a list of names")
    return tuple(value)


def read_pack(pack_dir: Path) -> PackSource:
    """Read and validate ``pack.toml`` and read the sources; compiles nothing."""
    where = f"rule pack {pack_dir.name}: pack.toml"
    toml_path = pack_dir / "pack.toml"
    try:
        meta = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise RulesError(f"rule pack {pack_dir.name}: pack.toml is missing") from e
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise RulesError(f"{where} cannot be read: {e}") from e
    unknown = sorted(set(meta) - set(PACK_KEYS))
    if unknown:
        raise RulesError(f"{where}: unknown key(s) {', '.join(unknown)}")
    name = meta.get("name")
    if not isinstance(name, str) or not _PACK_NAME.match(name):
        raise RulesError(f"{where}: 'name' must be a letter then letters, digits, _ or -")
    if name != pack_dir.name:
        raise RulesError(f"{where}: 'name' is {name!r} but the directory is {pack_dir.name!r}")
    if name == BUILTIN_PACK:  # the kiosk's own checks report as this pack (kiosk.model)
        raise RulesError(f"{where}: 'name' {name!r} is reserved for the kiosk's own checks")
    version = meta.get("version")
    if not isinstance(version, str) or not _VERSION.match(version):
        raise RulesError(f"{where}: 'version' must be text like 1.4.0")
    for key in ("description", "maintainer"):
        if not isinstance(meta.get(key), str) or not meta[key].strip():
            raise RulesError(f"{where}: '{key}' is missing")
    externals = _string_list(meta, "externals", where)
    unsupported = sorted(set(externals) - set(EXTERNALS))
    if unsupported:
        raise RulesError(
            f"{where}: external(s) {', '.join(unsupported)} are not supplied by the kiosk "
            f"(it supplies {', '.join(EXTERNALS)})"
        )
    categories = _string_list(meta, "categories", where)
    if not categories:
        raise RulesError(f"{where}: 'categories' must list the categories its rules use")
    defaults = meta.get("meta_defaults", {})
    if not isinstance(defaults, dict) or not all(
        k in REQUIRED_META and isinstance(v, str) for k, v in defaults.items()
    ):
        raise RulesError(
            f"{where}: 'meta_defaults' may only set {', '.join(REQUIRED_META)}, as text"
        )
    mapping = parse_mapping(meta.get("import", {}), where) if "upstream" in meta else None
    if mapping is None and ("import" in meta or "category_labels" in meta):
        raise RulesError(f"{where}: 'import' and 'category_labels' need an [upstream] table")
    if mapping is not None:
        yars = _imported_files(pack_dir, name)
        extra = [pack_dir / QUARANTINE_FILE] if (pack_dir / QUARANTINE_FILE).is_file() else []
    else:
        yars = sorted(p for p in pack_dir.glob("*.yar") if p.is_file())
        extra = []
    if not yars:
        raise RulesError(f"rule pack {name}: no .yar files in {pack_dir}")
    h = hashlib.sha256()
    sources: list[tuple[str, str]] = []
    file_digests: dict[str, str] = {}
    is_yar = set(yars)
    for p in [toml_path, *extra, *yars]:
        rel = p.relative_to(pack_dir).as_posix()
        try:
            data = p.read_bytes()
        except OSError as e:
            raise RulesError(f"rule pack {name}: cannot read {rel}: {e.strerror}") from e
        h.update(rel.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
        file_digests[rel] = hashlib.sha256(data).hexdigest()
        if p in is_yar:
            try:
                sources.append((rel, data.decode("utf-8")))
            except UnicodeDecodeError as e:
                if mapping is None:
                    raise RulesError(f"rule pack {name}: {rel} is not UTF-8 text") from e
                # a collection's file in another encoding: read as Latin-1, compiled unchanged
                sources.append((rel, data.decode("latin-1")))
    return PackSource(
        name=name,
        version=version,
        description=str(meta["description"]),
        maintainer=str(meta["maintainer"]),
        externals=externals,
        modules=_string_list(meta, "modules", where),
        categories=categories,
        meta_defaults={str(k): str(v) for k, v in defaults.items()},
        path=pack_dir,
        sources=tuple(sources),
        digest=h.hexdigest(),
        file_digests=file_digests,
        upstream=parse_upstream(meta["upstream"], where) if mapping else {},
        mapping=mapping,
        labels=parse_labels(meta.get("category_labels", {}), where),
        recorded=read_quarantine(pack_dir, f"rule pack {name}") if mapping else (),
        priority_areas=_string_list(meta, "priority_areas", where),
    )


def _imported_files(pack_dir: Path, name: str) -> list[Path]:
    """Every rule file under an imported pack's rules/, at any depth, in sorted order."""
    root = pack_dir / RULES_DIR
    if not root.is_dir():
        raise RulesError(f"rule pack {name}: an imported pack keeps its rules in {RULES_DIR}/")
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            rel = p.relative_to(pack_dir).as_posix()
            raise RulesError(f"rule pack {name}: {rel} is a symbolic link; not allowed")
        if p.is_file() and is_rule_file(p.name):
            out.append(p)
    return out


def find_packs(rules_dir: Path) -> list[Path]:
    """Pack directories under ``rules_dir``: each sub-directory holding a pack.toml."""
    if not rules_dir.is_dir():
        raise RulesError(f"rules directory not found: {rules_dir}")
    packs = sorted(p for p in rules_dir.iterdir() if p.is_dir() and (p / "pack.toml").exists())
    if not packs:
        raise RulesError(f"no rule packs (directories with pack.toml) in {rules_dir}")
    return packs


# --------------------------------------------------------------------------- validating


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _compile_problem(file: str, error: yara.Error, declared: tuple[str, ...]) -> Problem:
    m = _YARA_LINE.match(str(error))
    line, message = (int(m.group(1)), m.group(2)) if m else (None, str(error))
    u = _UNDEFINED.search(message)
    if u and u.group(1) in EXTERNALS and u.group(1) not in declared:
        message += " (an external: declare it in pack.toml 'externals')"
    return Problem(file, line, message)


def _rule_meta(rule: Any, src: PackSource) -> tuple[RuleMeta | None, list[str]]:
    m: dict[str, Any] = {**src.meta_defaults, **dict(rule.meta)}
    issues: list[str] = []

    def text(key: str) -> str:
        value = m.get(key)
        return value.strip() if isinstance(value, str) else ""

    missing = [k for k in REQUIRED_META if not text(k)]
    if missing:
        issues.append(f"lacks meta {', '.join(missing)}")
    sev, cat, date = text("severity").lower(), text("category"), text("date")
    if sev and sev not in SEVERITIES:
        issues.append(f"severity {m['severity']!r} is not one of {', '.join(SEVERITIES)}")
    if cat and cat not in src.categories:
        issues.append(f"category {cat!r} is not listed in pack.toml 'categories'")
    if date and not _DATE.match(date):
        issues.append(f"date {date!r} is not YYYY-MM-DD")
    if issues:
        return None, issues
    return RuleMeta(cat, sev, text("description")), []


def check_pack(src: PackSource) -> PackCheck:
    """Compile each file alone and collect every problem, located by file and line."""
    available = set(yara.modules)
    problems: list[Problem] = [
        Problem(
            "pack.toml",
            None,
            f"module {mod!r} is not available in this kiosk's libyara {yara.__version__} "
            f"(available: {', '.join(sorted(available))})",
        )
        for mod in src.modules
        if mod not in available
    ]
    externals = {k: EXTERNALS[k] for k in src.externals}
    meta: dict[str, RuleMeta] = {}
    files: dict[str, tuple[str, ...]] = {}
    defined: dict[str, str] = {}  # rule -> file:line, for duplicates across files
    for fname, text in src.sources:
        skip = False
        for imp in _IMPORT.finditer(text):
            mod, line = imp.group(1), _line_of(text, imp.start())
            if mod not in available:
                problems.append(
                    Problem(fname, line, f"module {mod!r} is not available in this kiosk's libyara")
                )
                skip = True
            elif mod not in src.modules:
                problems.append(
                    Problem(fname, line, f"module {mod!r} is not declared in pack.toml 'modules'")
                )
        if skip:
            continue
        try:
            compiled = yara.compile(source=text, externals=externals, includes=False)
        except yara.Error as e:
            problems.append(_compile_problem(fname, e, src.externals))
            continue
        for w in compiled.warnings:
            p = _compile_problem(fname, yara.Error(w), src.externals)
            problems.append(Problem(p.file, p.line, f"libyara warns: {p.message}"))
        lines = {
            m.group(1): _line_of(text, m.start()) for m in reversed(list(_RULE_DEF.finditer(text)))
        }
        names: list[str] = []
        for rule in compiled:
            ident = rule.identifier
            at = lines.get(ident)
            if ident in defined:
                problems.append(
                    Problem(fname, at, f"rule {ident} is also defined at {defined[ident]}")
                )
                continue
            defined[ident] = f"{fname}:{at}"
            if rule.is_private:
                continue  # never reported, so it needs no meta
            rm, issues = _rule_meta(rule, src)
            problems.extend(Problem(fname, at, f"rule {ident} {msg}") for msg in issues)
            if rm is not None:
                meta[ident] = rm
                names.append(ident)
        files[fname] = tuple(names)
    return PackCheck(tuple(problems), meta, files)


def compile_pack_sources(srcs: list[PackSource], texts: dict[str, str] | None = None) -> Any:
    """One ``yara.Rules`` for all packs, one namespace each, every LOKI/THOR external defined.

    ``texts``: a pack's namespace text when it is not its sources joined (an imported pack
    without its quarantined rules, ``kiosk.packs.quarantine``).
    """
    texts = texts or {}
    try:
        return yara.compile(
            sources={
                s.name: texts[s.name] if s.name in texts else "\n".join(t for _, t in s.sources)
                for s in srcs
            },
            externals=EXTERNALS,
            includes=False,
        )
    except yara.Error as e:
        raise RulesError(f"rule packs do not compile together: {e}") from e
