"""``kiosk rules import``: a public collection becomes a kiosk pack, its rule text untouched.

The collection's rule files are copied byte for byte under ``rules/<pack>/rules/`` (folders
kept: a folder can be a category), its licence under ``licence/``. What kiosk needs and the
collection does not say is written into ``pack.toml`` instead of the rules: where category,
severity, date, author and description come from (``[import]``, ``[meta_defaults]``), the
categories found with words for the scope picker, the modules used, and where the snapshot
came from (``[upstream]``: name, commit, date, archive digest, licence file).

Then the pack is examined as a scan would (``kiosk.packs.quarantine``) and its active rules are
run on the benchmark buffer (``kiosk.packs.benchmark``); what is left out, and why, is written
to ``quarantine.toml``. Importing again over an imported pack is following upstream: the
previous pack's mapping, labels and ``tests/`` are kept, the version rises, and the difference
(``kiosk.packs.diff``) is printed and kept as ``changes.txt``. The new pack replaces the old
only once it is complete, and it is **unsigned**: signing stays forensic staff's explicit act.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yara

from kiosk.errors import KioskError, RulesError
from kiosk.packs.benchmark import BENCH_TIMEOUT_S, slow_rules
from kiosk.packs.check import EXTERNALS, PackCheck, PackSource, read_pack
from kiosk.packs.collection import is_rule_file, parse_rule_file
from kiosk.packs.diff import PackDiff, diff_packs
from kiosk.packs.imported import (
    DEFAULT_SOURCES,
    QUARANTINE_FILE,
    RULES_DIR,
    SOURCE_KEYS,
    ImportMapping,
    category_id,
    default_label,
    parse_mapping,
    quarantine_toml,
)
from kiosk.packs.quarantine import examine
from kiosk.packs.snapshot import Snapshot, licence_files, read_snapshot
from kiosk.trust.policy import compare_versions

CHANGES_FILE = "changes.txt"
LICENCE_DIR = "licence"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
# the words a warrant would use for folder names the big collections share
WELL_KNOWN_LABELS = {
    "antidebug_antivm": "Anti-debugging and anti-VM tricks",
    "apt": "Targeted-attack (APT) tools",
    "backdoor": "Backdoors",
    "capabilities": "Malware capabilities",
    "crypto": "Cryptographic code",
    "cve_rules": "Exploits of known vulnerabilities (CVE)",
    "email": "Malicious e-mail",
    "exploit": "Exploits",
    "exploit_kits": "Exploit kits",
    "hacktool": "Hacking tools",
    "infostealer": "Information stealers",
    "maldocs": "Malicious documents",
    "malware": "Malware",
    "mobile_malware": "Mobile malware",
    "packers": "Packers",
    "ransomware": "Ransomware",
    "trojan": "Trojans",
    "webshell": "Web shells",
    "webshells": "Web shells",
}


@dataclass(frozen=True, slots=True)
class ImportOptions:
    pack: str
    rules_dir: Path
    upstream: str = ""  # the collection's name; default: the folder or archive name
    commit: str = ""
    date: str = ""
    url: str = ""
    version: str = ""  # default: 1.0.0, or the previous version with its last number raised
    maintainer: str = ""
    subdir: str = ""
    exclude: tuple[str, ...] = ()  # default: the previous import's [import] exclude
    sources: dict[str, tuple[str, ...]] = field(default_factory=dict)  # --category-from, …
    default_category: str = ""
    default_severity: str = ""
    bench: bool = True
    bench_timeout_s: int = BENCH_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class ImportResult:
    pack_dir: Path
    version: str
    active: int
    quarantined: int
    reasons: dict[str, int]  # reason kind -> how many rules
    diff: PackDiff
    licence: tuple[str, ...]
    skipped: tuple[str, ...]


def _raise_version(version: str) -> str:
    nums = list(re.finditer(r"\d+", version))
    if not nums:
        return version + ".1"
    last = nums[-1]
    return version[: last.start()] + str(int(last.group()) + 1) + version[last.end() :]


def _previous(pack_dir: Path, say: Callable[[str], None]) -> tuple[PackSource, PackCheck] | None:
    if not (pack_dir / "pack.toml").exists():
        if pack_dir.exists():
            raise RulesError(f"{pack_dir} exists and is not a rule pack; choose another --pack")
        return None
    src = read_pack(pack_dir)
    if not src.imported:
        raise RulesError(
            f"rule pack {src.name} is kiosk's own pack, not an imported one; choose another --pack"
        )
    try:
        return src, examine(src)
    except KioskError as e:
        say(f"note: the previous version cannot be examined ({e}); no rule-by-rule difference")
        return src, PackCheck(())


def import_collection(
    source: Path, opts: ImportOptions, say: Callable[[str], None] = lambda _: None
) -> ImportResult:
    """Build (or update) the pack ``opts.pack`` from a collection; it is left unsigned."""
    if not _NAME.match(opts.pack):
        raise RulesError(f"pack name {opts.pack!r}: a letter, then letters, digits, _ or -")
    if not opts.rules_dir.is_dir():
        raise RulesError(f"rules directory not found: {opts.rules_dir}")
    pack_dir = opts.rules_dir / opts.pack
    previous = _previous(pack_dir, say)
    old_map = previous[0].mapping if previous else None
    exclude = opts.exclude or (old_map.exclude if old_map else ())
    snap = read_snapshot(source, opts.subdir, exclude)
    opts = dataclasses.replace(opts, exclude=exclude)
    version = opts.version or (_raise_version(previous[0].version) if previous else "1.0.0")
    if previous and compare_versions(version, previous[0].version) <= 0:
        raise RulesError(
            f"rule pack {opts.pack}: version {version} is not newer than {previous[0].version}"
        )
    scratch = opts.rules_dir / f".import-{os.getpid()}"  # no pack.toml here: never loaded
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        result = _build(scratch / opts.pack, snap, opts, version, previous, say)
        _swap(scratch / opts.pack, pack_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return dataclasses.replace(result, pack_dir=pack_dir)


def _build(
    work: Path,
    snap: Snapshot,
    opts: ImportOptions,
    version: str,
    previous: tuple[PackSource, PackCheck] | None,
    say: Callable[[str], None],
) -> ImportResult:
    rule_paths = sorted(p for p in snap.files if is_rule_file(p))
    for p in rule_paths:  # the collection's own layout: its folders can be categories
        dest = work / RULES_DIR / p
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(snap.files[p])
    licences = licence_files(snap)
    for p in licences:
        (work / LICENCE_DIR).mkdir(exist_ok=True)
        (work / LICENCE_DIR / p).write_bytes(snap.files[p])
    if previous and (previous[0].path / "tests").is_dir():
        shutil.copytree(previous[0].path / "tests", work / "tests", symlinks=True)
    say(f"{snap.label}: {len(rule_paths)} rule files")

    old = previous[0] if previous else None
    mapping = _mapping(old, opts)
    defaults = _defaults(old, opts, snap)
    modules = _modules_used(work) if old is None else old.modules
    toml = _Toml(
        name=opts.pack,
        version=version,
        description=old.description if old else f"{_upstream_name(snap, opts)} (imported)",
        maintainer=opts.maintainer or (old.maintainer if old else "forensic staff"),
        modules=modules,
        mapping=mapping,
        defaults=defaults,
        upstream=_upstream(snap, opts, licences),
    )
    # every category accepted while examining, to learn which ones the rules carry; then
    # pack.toml lists exactly those, so the same examination holds for the pack as written
    toml.write(work, [defaults["category"]], {})
    check = examine(dataclasses.replace(read_pack(work), categories=()))
    found = sorted({m.category for m in check.meta.values()} | {defaults["category"]})
    labels = {c: (old.labels.get(c) if old else None) or _label(c) for c in found}
    toml.write(work, found, labels)
    src = read_pack(work)
    slow = []
    if opts.bench and check.meta:
        say(f"benchmark: {len(check.meta)} active rules on the 1 MiB benchmark buffer")
        slow = slow_rules(src, check, opts.bench_timeout_s, say)
    (work / QUARANTINE_FILE).write_text(
        quarantine_toml([*check.quarantined, *slow]), encoding="utf-8"
    )
    src = read_pack(work)
    check = examine(src)
    diff = diff_packs(previous, (src, check))
    (work / CHANGES_FILE).write_text("\n".join(diff.lines()) + "\n", encoding="utf-8")
    reasons: dict[str, int] = {}
    for q in check.quarantined:
        kind = _reason_kind(q.reason)
        reasons[kind] = reasons.get(kind, 0) + 1
    return ImportResult(
        work,
        version,
        len(check.meta),
        len(check.quarantined),
        reasons,
        diff,
        tuple(f"{LICENCE_DIR}/{p}" for p in licences),
        snap.skipped,
    )


def _reason_kind(reason: str) -> str:
    for key, kind in (
        ("timed out", "timed out on the benchmark buffer"),
        ("libyara warns", "slow or wrong (libyara warning)"),
        ("needs module", "needs a module"),
        ("also defined", "duplicate name"),
        ("a file it includes", "does not compile"),
        ("includes '", "include not in the collection"),
        ("lacks meta", "meta"),
        ("is not listed", "meta"),
    ):
        if key in reason:
            return kind
    return "does not compile"


def _swap(work: Path, pack_dir: Path) -> None:
    """The new pack takes the old one's place only when it is complete."""
    old = pack_dir.with_name(f".{pack_dir.name}.old-{os.getpid()}")
    if pack_dir.exists():
        pack_dir.rename(old)
    try:
        work.rename(pack_dir)
    except OSError:
        if old.exists():
            old.rename(pack_dir)
        raise
    with contextlib.suppress(OSError):
        shutil.rmtree(old)


def _upstream_name(snap: Snapshot, opts: ImportOptions) -> str:
    if opts.upstream:
        return opts.upstream
    name = snap.label.removeprefix("collection ")
    for suffix in (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip"):
        name = name.removesuffix(suffix)
    return re.sub(r"-(main|master|[0-9a-f]{7,40})$", "", name)


def _upstream(snap: Snapshot, opts: ImportOptions, licences: list[str]) -> dict[str, str]:
    out = {
        "name": _upstream_name(snap, opts),
        "commit": opts.commit or snap.commit,
        "date": opts.date or snap.date,
        "source": snap.label.removeprefix("collection "),
        "sha256": snap.sha256,
        "licence": ", ".join(f"{LICENCE_DIR}/{p}" for p in licences),
        "url": opts.url,
    }
    return {k: v for k, v in out.items() if v}


def _mapping(old: PackSource | None, opts: ImportOptions) -> ImportMapping:
    base = old.mapping if old and old.mapping else parse_mapping({}, "defaults")
    sources = {**base.sources, **opts.sources}
    return dataclasses.replace(base, sources=sources, exclude=opts.exclude)


def _defaults(old: PackSource | None, opts: ImportOptions, snap: Snapshot) -> dict[str, str]:
    out = dict(old.meta_defaults) if old else {}
    name = _upstream_name(snap, opts)
    out["category"] = category_id(opts.default_category or out.get("category") or name)
    out["severity"] = opts.default_severity or out.get("severity") or "medium"
    out.setdefault("author", name)
    out["date"] = opts.date or snap.date or out.get("date", "")
    if not out["date"]:
        out.pop("date")
    return out


def _label(category: str) -> str:
    return WELL_KNOWN_LABELS.get(category, default_label(category))


def _modules_used(work: Path) -> tuple[str, ...]:
    """The modules the collection imports that this kiosk has (others quarantine their rules)."""
    used: set[str] = set()
    for p in (work / RULES_DIR).rglob("*"):
        if p.is_file() and is_rule_file(p.name):
            text = p.read_bytes().decode("utf-8", "replace")
            used |= {m for m, _ in parse_rule_file(p.name, text).imports}
    return tuple(sorted(used & set(yara.modules)))


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=True)


def _list(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(_q(i) for i in items) + "]"


@dataclass(frozen=True, slots=True)
class _Toml:
    """pack.toml of an imported pack, written by hand so it keeps its comments."""

    name: str
    version: str
    description: str
    maintainer: str
    modules: tuple[str, ...]
    mapping: ImportMapping
    defaults: dict[str, str]
    upstream: dict[str, str]

    def write(self, work: Path, categories: list[str], labels: dict[str, str]) -> None:
        _write_toml(self, work, categories, labels)


def _write_toml(t: _Toml, work: Path, categories: list[str], labels: dict[str, str]) -> None:
    name, version, description, maintainer = t.name, t.version, t.description, t.maintainer
    modules, mapping, defaults, upstream = t.modules, t.mapping, t.defaults, t.upstream
    lines = [
        f"# Imported from {upstream['name']} by 'kiosk rules import'. The files under {RULES_DIR}/",
        "# are the collection's own, unedited: change the mapping here, never the rules, and",
        "# import again to follow upstream. rules/README.md says what each key does.",
        f"name = {_q(name)}",
        f"version = {_q(version)}",
        f"description = {_q(description)}",
        f"maintainer = {_q(maintainer)}",
        f"externals = {_list(sorted(EXTERNALS))}",
        f"modules = {_list(modules)}",
        f"categories = {_list(categories)}",
        "",
        "[upstream]",
        *(f"{k} = {_q(v)}" for k, v in upstream.items()),
        "",
        "[import]",
        *(f"{k} = {_list(mapping.sources.get(k, DEFAULT_SOURCES[k]))}" for k in SOURCE_KEYS),
        "",
        "[import.score]  # the lowest 0-100 score of each severity",
        *(f"{sev} = {lowest}" for sev, lowest in mapping.score),
    ]
    if mapping.exclude:
        lines.insert(
            lines.index("[import.score]  # the lowest 0-100 score of each severity") - 1,
            f"exclude = {_list(mapping.exclude)}",
        )
    if mapping.category_map:
        lines += ["", "[import.category_map]"]
        lines += [f"{_q(k)} = {_q(v)}" for k, v in sorted(mapping.category_map.items())]
    lines += ["", "[meta_defaults]", *(f"{k} = {_q(v)}" for k, v in sorted(defaults.items()))]
    lines += ["", "[category_labels]  # the words the scope picker shows"]
    lines += [f"{c} = {_q(label)}" for c, label in sorted(labels.items())]
    work.mkdir(parents=True, exist_ok=True)
    (work / "pack.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
